import Foundation
import Glibc

/// How a child process ended.
public enum ExitStatus: Equatable, Sendable, CustomStringConvertible {
    /// The process called `exit` with this status.
    case exited(Int32)
    /// The process was ended by this signal.
    case signaled(Int32)
    /// The process ended but something else in this process reaped it (a `waitpid(-1)`), so its
    /// status is unknown.
    case lost

    /// `true` for `exit(0)`.
    public var isSuccess: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        case .lost: "ended (reaped elsewhere, status unknown)"
        }
    }
}

/// A child process started with `posix_spawn`, its standard output and error going to files.
///
/// The child gets `/dev/null` as standard input, default signal dispositions, an empty signal
/// mask, and none of the parent's other file descriptors. It is reaped exactly once, by whichever
/// of ``wait(timeout:)``, ``isRunning`` or ``terminate(grace:)`` sees it end first.
public final class SpawnedProcess: @unchecked Sendable {
    /// The child's process id.
    public let pid: pid_t
    /// The executable and arguments it was started with (`arguments[0]` is the executable).
    public let commandLine: [String]
    /// The file receiving the child's standard output.
    public let standardOutputPath: String
    /// The file receiving the child's standard error (may equal ``standardOutputPath``).
    public let standardErrorPath: String

    private let lock = NSLock()
    private var reaped: ExitStatus?

    /// Starts `executable` (an absolute path) with `arguments`.
    ///
    /// - Parameters:
    ///   - environment: the child's whole environment; `nil` inherits the parent's.
    ///   - standardOutputPath: created if missing and appended to.
    ///   - standardErrorPath: the same path as `standardOutputPath` interleaves both streams in one file.
    /// - Throws: ``NATSServerError/spawnFailed(executable:errno:)`` if `posix_spawn` fails.
    public init(executable: String, arguments: [String], environment: [String: String]? = nil,
                standardOutputPath: String, standardErrorPath: String) throws {
        commandLine = [executable] + arguments
        self.standardOutputPath = standardOutputPath
        self.standardErrorPath = standardErrorPath

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let outFlags = O_WRONLY | O_CREAT | O_APPEND
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, standardOutputPath, outFlags, 0o644)
        if standardErrorPath == standardOutputPath {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, standardErrorPath, outFlags, 0o644)
        }
        // Descriptors the test process opened without O_CLOEXEC (pipes of other helpers) must not
        // leak into long-lived servers, or a reader waiting for end-of-file would hang.
        if let closeFrom = SpawnedProcess.closeFrom { _ = closeFrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = commandLine.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentStrings = environment.map { $0.map { "\($0.key)=\($0.value)" } }
        let envp = environmentStrings.map { $0.map { strdup($0) } + [nil] }
        defer { envp?.forEach { free($0) } }

        var child: pid_t = 0
        let result = argv.withUnsafeBufferPointer { argvBuffer in
            if let envp {
                envp.withUnsafeBufferPointer { envBuffer in
                    posix_spawn(&child, executable, &actions, &attributes, argvBuffer.baseAddress!, envBuffer.baseAddress!)
                }
            } else {
                posix_spawn(&child, executable, &actions, &attributes, argvBuffer.baseAddress!, environ)
            }
        }
        guard result == 0 else { throw NATSServerError.spawnFailed(executable: executable, errno: result) }
        pid = child
    }

    /// `true` until the process has ended (reaping it if it just did).
    public var isRunning: Bool { poll() == nil }

    /// The exit status if the process has ended, else `nil`. Never blocks.
    public func poll() -> ExitStatus? {
        lock.withLock {
            if let reaped { return reaped }
            var status: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &status, WNOHANG) } while result < 0 && errno == EINTR
            if result < 0 && errno == ECHILD {
                // Reaped by someone else: gone for good, and its pid may already belong to another
                // process, so never signal it again.
                reaped = .lost
                return .lost
            }
            guard result == pid else { return nil }
            let ended: ExitStatus = (status & 0x7F) == 0 ? .exited((status >> 8) & 0xFF) : .signaled(status & 0x7F)
            reaped = ended
            return ended
        }
    }

    /// Waits at most `timeout` for the process to end; returns its status, or `nil` if it is still running.
    @discardableResult
    public func wait(timeout: Duration) -> ExitStatus? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = poll() { return status }
            if ContinuousClock.now >= deadline { return nil }
            usleep(5_000)
        }
    }

    /// Sends `signal` to the process (nothing if it has already been reaped).
    public func send(_ signal: Int32) {
        lock.withLock {
            if reaped == nil { _ = Glibc.kill(pid, signal) }
        }
    }

    /// Sends SIGTERM, waits at most `grace`, then sends SIGKILL and waits for the end.
    @discardableResult
    public func terminate(grace: Duration = .seconds(10)) -> ExitStatus {
        send(SIGTERM)
        if let status = wait(timeout: grace) { return status }
        return killAndWait()
    }

    /// Sends SIGKILL and waits for the end.
    @discardableResult
    public func killAndWait() -> ExitStatus {
        send(SIGKILL)
        // SIGKILL cannot be ignored; the loop only outlasts a process stuck in the kernel.
        while true {
            if let status = wait(timeout: .seconds(60)) { return status }
        }
    }

    /// What the process wrote to standard output so far.
    public func standardOutput() -> String { Self.read(standardOutputPath) }

    /// What the process wrote to standard error so far.
    public func standardError() -> String { Self.read(standardErrorPath) }

    static func read(_ path: String) -> String {
        (FileManager.default.contents(atPath: path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+), looked up at run time because
    /// the Glibc module does not import it.
    private static let closeFrom: CloseFrom? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: CloseFrom.self)
    }()
}
