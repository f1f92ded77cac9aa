/// A message taken from a mailbox: its bytes and the process that sent it.
public struct Message: Sendable, Equatable {
    /// The payload, exactly as sent.
    public var bytes: [UInt8]
    /// The sending process's pid.
    public var sender: Int32

    public init(bytes: [UInt8], sender: Int32) {
        self.bytes = bytes
        self.sender = sender
    }

    /// The payload decoded as UTF-8 (invalid sequences become U+FFFD).
    public var string: String { String(decoding: bytes, as: UTF8.self) }

    /// The payload as a value of `type`, which must be exactly `MemoryLayout<T>.size` bytes long
    /// (`sizeMismatch` otherwise; the message stays available in `bytes`).
    public func load<T: BitwiseCopyable>(as type: T.Type) throws(MailboxError) -> T {
        guard bytes.count == MemoryLayout<T>.size else {
            throw .sizeMismatch(expected: MemoryLayout<T>.size, actual: bytes.count)
        }
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }
}
