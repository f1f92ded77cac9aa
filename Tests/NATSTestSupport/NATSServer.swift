import Foundation
import Glibc

/// A real `nats-server` process for tests, with its configuration, JetStream store and log in a
/// private temporary directory that is removed when the object goes away.
///
/// ```swift
/// let server = try NATSServer()          // JetStream on, 127.0.0.1, free ports, ready
/// connect(to: server.url)                // "nats://127.0.0.1:PORT"
/// server.kill(); try server.restart()    // crash and recover on the same port and store
/// ```
///
/// Methods may be called from any thread; each call is serialized with the others.
public final class NATSServer: @unchecked Sendable {
    /// The path of `nats-server` if it is installed (on PATH, in /usr/sbin or /usr/bin).
    public static var executablePath: String? { Executables.find("nats-server") }

    /// Whether `nats-server` is installed; for `.enabled(if: NATSServer.isInstalled, "…")`.
    public static var isInstalled: Bool { executablePath != nil }

    /// Kills nats-servers and removes temporary directories left by test processes that died
    /// before cleaning up (found by the owner pid in the directory names). Runs automatically
    /// before the first server of a process starts; call it to clean up at another time.
    public static func removeLeftovers() {
        Leftovers.sweep()
    }

    /// The private directory holding the configuration file, the log and the store.
    public let directory: String
    /// The generated configuration file.
    public let configurationPath: String
    /// The server's standard output and error (appended to across restarts).
    public let logPath: String
    /// The network namespace the server runs in, or `nil` for the test process's own.
    public let namespace: String?

    private let executable: String
    private let lock = NSLock()
    private var configuration: ServerConfiguration
    private var process: SpawnedProcess?

    /// Starts a server on 127.0.0.1 with free client and monitoring ports and waits until it is
    /// healthy (with JetStream on, until `/healthz?js-enabled=true` answers 200).
    ///
    /// Ports are picked by binding port 0; if another process takes one first, the server is
    /// started again on fresh ports (a few times).
    /// - Throws: ``NATSServerError/notInstalled``, or ``NATSServerError/notReady(server:reason:logTail:)``
    ///   with the end of the server's log.
    public convenience init(options: Options = Options()) throws {
        try self.init(name: "nats-test", host: "127.0.0.1", namespace: nil, options: options,
                      ports: { _ in (try FreePort.pick(), try FreePort.pick(), nil) })
        var attempt = 1
        while true {
            do {
                try start()
                try waitUntilReady()
                return
            } catch NATSServerError.notReady(_, _, let logTail) where logTail.contains("address already in use") && attempt < 5 {
                attempt += 1
                try reconfigure(port: try FreePort.pick(), monitorPort: try FreePort.pick())
            }
        }
    }

    /// Prepares (but does not start) a server: makes its directory and writes its configuration.
    /// `ports` returns the client port, monitoring port and cluster membership for the store directory.
    init(name: String, host: String, namespace: String?, options: Options,
         ports: (String) throws -> (Int, Int, ServerConfiguration.Cluster?)) throws {
        guard let executable = Self.executablePath else { throw NATSServerError.notInstalled }
        _ = Leftovers.sweptOnce
        self.executable = executable
        directory = try TemporaryDirectory.make("shmmb-nats")
        configurationPath = directory + "/server.conf"
        logPath = directory + "/server.log"
        self.namespace = namespace
        do {
            let storeDirectory = directory + "/store"
            let (port, monitorPort, cluster) = try ports(storeDirectory)
            configuration = ServerConfiguration(name: name, host: host, port: port, monitorPort: monitorPort,
                                                storeDirectory: storeDirectory, options: options, cluster: cluster)
            try writeConfiguration()
        } catch {
            TemporaryDirectory.remove(directory)
            throw error
        }
    }

    deinit {
        process?.terminate(grace: .seconds(5))
        TemporaryDirectory.remove(directory)
    }

    /// The server's name (`server_name`).
    public var name: String { lock.withLock { configuration.name } }
    /// The address the server listens on (127.0.0.1, or a namespace host's address).
    public var host: String { lock.withLock { configuration.host } }
    /// The client port.
    public var port: Int { lock.withLock { configuration.port } }
    /// The HTTP monitoring port (`/healthz`, `/varz`, `/jsz`).
    public var monitorPort: Int { lock.withLock { configuration.monitorPort } }
    /// The JetStream store directory (nats-server keeps its data in a `jetstream` directory below it).
    public var storeDirectory: String { lock.withLock { configuration.storeDirectory } }
    /// The client URL, `nats://HOST:PORT`.
    public var url: String { lock.withLock { "nats://\(configuration.host):\(configuration.port)" } }
    /// The options the server was configured with.
    public var options: Options { lock.withLock { configuration.options } }

    /// The running server's process id, or `nil` while it is stopped.
    public var pid: pid_t? {
        lock.withLock { process.flatMap { $0.isRunning ? $0.pid : nil } }
    }

    /// `true` while the server process is alive.
    public var isRunning: Bool { pid != nil }

    /// Stops the server with SIGTERM (a clean shutdown) and waits; SIGKILL after `grace`.
    /// Returns how it ended, or `nil` if it was not running.
    @discardableResult
    public func stop(grace: Duration = .seconds(10)) -> ExitStatus? {
        lock.withLock { process.map { $0.terminate(grace: grace) } }
    }

    /// Sends SIGTERM without waiting (``stop(grace:)`` then waits), so several servers shut down together.
    func signalStop() {
        lock.withLock { process?.send(SIGTERM) }
    }

    /// Kills the server with SIGKILL (a crash: nothing is flushed) and waits for it to end.
    @discardableResult
    public func kill() -> ExitStatus? {
        lock.withLock { process.map { $0.killAndWait() } }
    }

    /// Starts the server again (stopping it first if it runs) with the same ports, configuration and
    /// store directory, and waits until it is healthy.
    public func restart() throws {
        stop()
        try start()
        try waitUntilReady()
    }

    /// Waits until the health check passes (default timeout: ``Options/readyTimeout``).
    /// - Throws: ``NATSServerError/notReady(server:reason:logTail:)`` if the process exits or the
    ///   deadline passes; the server is then killed.
    public func waitUntilReady(timeout: Duration? = nil) throws {
        let (configuration, process) = lock.withLock { (self.configuration, self.process) }
        guard let process else { throw notReady("it was never started", configuration) }
        let deadline = ContinuousClock.now + (timeout ?? configuration.options.readyTimeout)
        var lastProblem = "no reply yet"
        while true {
            if let status = process.poll() { throw notReady("the process \(status)", configuration) }
            do {
                let reply = try HTTPProbe.get(host: configuration.host, port: configuration.monitorPort,
                                              path: configuration.healthPath, namespace: namespace)
                if reply.status == 200 { return }
                lastProblem = "HTTP \(reply.status): \(reply.body)"
            } catch {
                lastProblem = "\(error)"
            }
            if ContinuousClock.now >= deadline {
                process.killAndWait()
                throw notReady("\(configuration.healthPath) on \(configuration.host):\(configuration.monitorPort) did not answer 200 in time (last: \(lastProblem)); killed it", configuration)
            }
            usleep(50_000)
        }
    }

    /// The last `lines` lines of the server's log.
    public func logTail(lines: Int = 30) -> String {
        SpawnedProcess.read(logPath).split(separator: "\n", omittingEmptySubsequences: false)
            .suffix(lines + 1).joined(separator: "\n")
    }

    /// Fetches a monitoring endpoint (such as `/jsz` or `/varz`) and returns its body if it answered 200.
    public func monitor(_ path: String, timeout: Duration = .seconds(2)) throws -> String {
        let configuration = lock.withLock { self.configuration }
        let reply = try HTTPProbe.get(host: configuration.host, port: configuration.monitorPort, path: path,
                                      namespace: namespace, timeout: timeout)
        guard reply.status == 200 else { throw NATSServerError.io("GET \(path): HTTP \(reply.status): \(reply.body)") }
        return reply.body
    }

    /// Spawns the server process (inside ``namespace`` if set). Does not wait.
    func start() throws {
        try lock.withLock {
            if let process, process.isRunning { return }
            var command = [executable, "-c", configurationPath] + configuration.options.extraArguments
            if let namespace {
                // `ip netns exec` joins the namespace and then execs the server: same pid.
                guard let ip = Executables.find("ip") else { throw NetworkHostsError.unavailable("`ip` (iproute2) not found") }
                command = [ip, "netns", "exec", namespace] + command
            }
            process = try SpawnedProcess(executable: command[0], arguments: Array(command.dropFirst()),
                                         standardOutputPath: logPath, standardErrorPath: logPath)
        }
    }

    /// Changes the ports (before the first successful start) and rewrites the configuration.
    private func reconfigure(port: Int, monitorPort: Int) throws {
        try lock.withLock {
            configuration.port = port
            configuration.monitorPort = monitorPort
            try writeConfiguration()
        }
    }

    private func writeConfiguration() throws {
        do {
            try configuration.render().write(toFile: configurationPath, atomically: true, encoding: .utf8)
        } catch {
            throw NATSServerError.io("writing \(configurationPath): \(error)")
        }
    }

    private func notReady(_ reason: String, _ configuration: ServerConfiguration) -> NATSServerError {
        .notReady(server: "\(configuration.name) (\(configuration.host):\(configuration.port))", reason: reason, logTail: logTail())
    }
}
