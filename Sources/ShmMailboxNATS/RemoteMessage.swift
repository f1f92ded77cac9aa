#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

/// Who sent a remote message: a process on a host, or a named endpoint.
public struct RemoteSender: Sendable, Hashable, CustomStringConvertible {
    /// The sending machine's host name.
    public var host: String
    /// The sending process's pid on that host.
    public var pid: Int32
    /// The sender's endpoint name, when it sent as a named endpoint.
    public var name: String?

    /// A sender identity (`name` for a named endpoint).
    public init(host: String, pid: Int32, name: String? = nil) {
        self.host = host
        self.pid = pid
        self.name = name
    }

    /// This process: the host name and pid.
    public static var current: RemoteSender {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count - 1) == 0 ? buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : "unknown"
        return RemoteSender(host: host, pid: getpid())
    }

    /// `name (host pid N)` or `host pid N`.
    public var description: String { name.map { "\($0) (\(host) pid \(pid))" } ?? "\(host) pid \(pid)" }

    /// The header form: `host;pid` or `host;pid;name`.
    var encoded: String { name.map { "\(host);\(pid);\($0)" } ?? "\(host);\(pid)" }

    init?(encoded: String) {
        let parts = encoded.split(separator: ";", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, let pid = Int32(parts[1]) else { return nil }
        self.init(host: String(parts[0]), pid: pid, name: parts.count == 3 ? String(parts[2]) : nil)
    }
}

/// A message taken from a remote mailbox: its bytes and where it came from.
public struct RemoteMessage: Sendable, Equatable {
    /// The message's bytes.
    public var bytes: [UInt8]
    /// The sender, as its message header named it (nil if the message was published by
    /// something other than ShmMailboxNATS).
    public var sender: RemoteSender?
    /// A receiver took this message before and neither finished nor failed it in time (it died
    /// or lost its connection): it may have been handled in part.
    public var isRedelivered: Bool
    /// The message's sequence number in its mailbox's stream (that of its pack, for a message
    /// sent packed by a `batch`).
    public var sequence: UInt64
    /// The message's place in its pack (0 for a message not sent packed): with `sequence`,
    /// unique within one incarnation of the mailbox.
    public var index: Int

    /// A message (for tests and adapters; receive calls make them).
    public init(bytes: [UInt8], sender: RemoteSender?, isRedelivered: Bool = false, sequence: UInt64 = 0, index: Int = 0) {
        self.bytes = bytes
        self.sender = sender
        self.isRedelivered = isRedelivered
        self.sequence = sequence
        self.index = index
    }

    /// The bytes as UTF-8 text.
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// The bytes as a value of `type` (sent with `send(value:)`).
    public func load<T: BitwiseCopyable>(as type: T.Type) throws(RemoteMailboxError) -> T {
        guard bytes.count == MemoryLayout<T>.size else {
            throw .sizeMismatch(expected: MemoryLayout<T>.size, actual: bytes.count)
        }
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }
}

/// A receipt from a synchronous remote send: who took the message.
public struct RemoteDelivery: Sendable, Equatable, CustomStringConvertible {
    /// The receiving process (its endpoint name, if it received as one).
    public let receiver: RemoteSender
    /// `delivered to …`.
    public var description: String { "delivered to \(receiver)" }
}
