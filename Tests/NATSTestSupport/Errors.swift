import Foundation

/// Why a NATS server (or a process of this module) could not be started.
public enum NATSServerError: Error, CustomStringConvertible, Sendable {
    /// `nats-server` is neither on PATH nor in /usr/sbin or /usr/bin.
    case notInstalled
    /// `posix_spawn` failed.
    case spawnFailed(executable: String, errno: Int32)
    /// The server did not become ready: it exited, or its health check did not pass in time.
    case notReady(server: String, reason: String, logTail: String)
    /// A system call or file operation failed.
    case io(String)

    public var description: String {
        switch self {
        case .notInstalled:
            "nats-server is not installed (not on PATH, /usr/sbin or /usr/bin); install it with `apt-get install nats-server`"
        case .spawnFailed(let executable, let errno):
            "posix_spawn \(executable) failed: \(String(cString: strerror(errno)))"
        case .notReady(let server, let reason, let logTail):
            "nats-server \(server) not ready: \(reason)\n--- last lines of its log ---\n\(logTail)"
        case .io(let message):
            message
        }
    }
}

/// Why a ``NetworkHosts`` operation failed.
public enum NetworkHostsError: Error, CustomStringConvertible, Sendable {
    /// Network namespaces cannot be used here; the reason says why.
    case unavailable(String)
    /// A helper command (`ip`, `tc`) failed.
    case commandFailed(command: [String], status: ExitStatus?, output: String)

    public var description: String {
        switch self {
        case .unavailable(let reason):
            "network namespaces unavailable: \(reason)"
        case .commandFailed(let command, let status, let output):
            "`\(command.joined(separator: " "))` failed (\(status.map(\.description) ?? "timed out")): \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }
}
