extension Mailbox {
    /// A message taken from a mailbox: its bytes and the process that sent it.
    public struct Message: Sendable, Equatable {
        /// The payload, exactly as sent.
        public var bytes: [UInt8]
        /// The sending process's pid.
        public var sender: Int32
        /// Whether a receiver took this message before and died while it was reading it, so the
        /// message may have been handled in part already. Messages are never lost when a receiver
        /// dies; they are delivered again, marked like this, so a receiver that must not act twice
        /// can de-duplicate (by a sequence number or id in the payload). A message whose receive call
        /// returned is never delivered again. On a `.shared` mailbox a redelivered message may arrive
        /// after messages sent later (up to capacity − 1 of them, when senders kept the mailbox full).
        public var isRedelivered: Bool

        /// A message with payload `bytes` from the process with pid `sender`.
        public init(bytes: [UInt8], sender: Int32, isRedelivered: Bool = false) {
            self.bytes = bytes
            self.sender = sender
            self.isRedelivered = isRedelivered
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
}
