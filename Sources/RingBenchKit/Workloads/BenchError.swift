#if canImport(Glibc)
import Glibc
#endif

/// Every failure of ringbench. A failed verification is always an error (the run stops and
/// ringbench exits non-zero); it is never counted and carried on.
public enum BenchError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A command-line value out of range or inconsistent.
    case invalidArgument(String)
    /// A system call failed.
    case system(operation: String, errno: Int32)
    /// A received message is not what was sent: `message` is its sequence number (warm-up
    /// messages included, counted from 0), `sender` the sending process's index in a fan-in.
    case verificationFailed(message: Int, sender: Int?, detail: String)
    /// The other side closed its end before the run was over.
    case peerClosed(String)
    /// A peer process failed; `detail` is what it said on standard error, or its exit status.
    case peerFailed(String)
    /// The process that started this peer is gone.
    case parentGone
    /// Waited too long for a peer (start-up, a result line).
    case timedOut(String)
    /// A transport cannot do what was asked (for example fan in), and why.
    case unsupported(transport: String, reason: String)
    /// The bytes on a transport break its framing (length prefix, chunk header).
    case protocolViolation(String)
    /// A ShmMailbox call failed.
    case mailbox(operation: String, description: String)

    public var description: String {
        switch self {
        case .invalidArgument(let text):
            return text
        case .system(let operation, let code):
            return "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
        case .verificationFailed(let message, let sender, let detail):
            let from = sender.map { " from sender \($0)" } ?? ""
            return "verification failed: message \(message)\(from): \(detail)"
        case .peerClosed(let what):
            return "peer closed the connection early (\(what))"
        case .peerFailed(let detail):
            return "peer failed: \(detail)"
        case .parentGone:
            return "the parent ringbench process is gone"
        case .timedOut(let what):
            return "timed out: \(what)"
        case .unsupported(let transport, let reason):
            return "\(transport): \(reason)"
        case .protocolViolation(let what):
            return "framing error: \(what)"
        case .mailbox(let operation, let description):
            return "\(operation): \(description)"
        }
    }

    /// Whether this error is a consequence of the other side going away (so the other side's own
    /// error, if any, is the one to report).
    var isPeerLoss: Bool {
        switch self {
        case .peerClosed, .parentGone, .peerFailed: return true
        case .system(_, let code): return code == EPIPE || code == ECONNRESET || code == ECONNREFUSED
        default: return false
        }
    }
}
