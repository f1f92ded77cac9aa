#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RingBenchKit

/// A nats-server of ringbench's own for one run: JetStream with file storage in a fresh temporary
/// directory, listening on a free port of 127.0.0.1, `max_payload` raised to 8 MB so 1 MiB
/// messages fit. `stop()` ends it and removes the directory.
///
/// The server binary is `$NATS_SERVER` if set, else `nats-server` on the PATH or in /usr/sbin
/// (where Debian puts it).
final class NATSServer {
    let pid: pid_t
    let port: UInt16
    let directory: String
    private var stopped = false

    var url: String { "nats://127.0.0.1:\(port)" }

    /// Starts a server and waits until it accepts connections (at most 10 s).
    init() throws {
        let binary = try Self.locate()
        var template = Array("/tmp/ringbench-nats-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw BenchError.system(operation: "mkdtemp", errno: errno) }
        directory = String(cString: made)
        var lastError: Error = BenchError.timedOut("nats-server did not start")
        // The free port is found by binding port 0 and closing; another process may take it in
        // between, so a failed start is tried again on another port.
        for _ in 0..<3 {
            do {
                let port = try Self.freePort()
                let pid = try Self.spawn(binary, port: port, directory: directory)
                do {
                    try Self.waitUntilReady(pid: pid, port: port, log: directory + "/server.log")
                } catch {
                    Glibc.kill(pid, SIGKILL)
                    var status: Int32 = 0
                    _ = waitpid(pid, &status, 0)
                    throw error
                }
                self.pid = pid
                self.port = port
                return
            } catch {
                lastError = error
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
        throw lastError
    }

    deinit { stop() }

    /// CPU seconds (user + system) the server has used so far, from /proc/<pid>/stat.
    var cpuSeconds: Double { ProcessCPU.seconds(pid) }

    /// Stops the server (SIGTERM, SIGKILL after 5 s) and removes its directory. Idempotent.
    func stop() {
        guard !stopped else { return }
        stopped = true
        Glibc.kill(pid, SIGTERM)
        var status: Int32 = 0
        let deadline = Deadline(after: .seconds(5))
        while waitpid(pid, &status, WNOHANG) == 0 {
            if deadline.hasPassed {
                Glibc.kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                break
            }
            usleep(2_000)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: Starting

    static func locate() throws -> String {
        if let given = ProcessInfo.processInfo.environment["NATS_SERVER"], !given.isEmpty {
            guard access(given, X_OK) == 0 else {
                throw BenchError.invalidArgument("NATS_SERVER=\(given) is not an executable file")
            }
            return given
        }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in path + ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"] {
            let candidate = directory + "/nats-server"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw BenchError.invalidArgument(
            "the NATS transports start a nats-server of their own, and none was found on the PATH or in /usr/sbin: "
                + "install it (apt install nats-server, or https://github.com/nats-io/nats-server/releases) or set NATS_SERVER to its path")
    }

    private static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BenchError.system(operation: "socket", errno: errno) }
        defer { Glibc.close(fd) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 ? getsockname(fd, socketAddress, &length) : -1
            }
        }
        guard rc == 0 else { throw BenchError.system(operation: "bind(127.0.0.1:0)", errno: errno) }
        return UInt16(bigEndian: address.sin_port)
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        return address
    }

    private static func spawn(_ binary: String, port: UInt16, directory: String) throws -> pid_t {
        let config = """
        listen: "127.0.0.1:\(port)"
        max_payload: 8MB
        jetstream {
            store_dir: "\(directory)/store"
        }

        """
        try config.write(toFile: directory + "/server.conf", atomically: true, encoding: .utf8)
        return try spawnLogged(binary, ["-c", directory + "/server.conf"], log: directory + "/server.log")
    }

    /// Waits until the server accepts a TCP connection; throws with its log if it exits first.
    private static func waitUntilReady(pid: pid_t, port: UInt16, log: String) throws {
        let deadline = Deadline(after: .seconds(10))
        while !deadline.hasPassed {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                let tail = text.split(separator: "\n").suffix(3).joined(separator: " | ")
                throw BenchError.peerFailed("nats-server exited at start: \(tail)")
            }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = loopback(port: port)
            let connected = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            Glibc.close(fd)
            if connected == 0 { return }
            usleep(5_000)
        }
        throw BenchError.timedOut("nats-server did not accept connections on 127.0.0.1:\(port) within 10 s")
    }
}
