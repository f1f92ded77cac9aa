extension Mailbox {
    /// A message taken from a mailbox: its bytes and the process that sent it.
    public struct Message: Sendable, Equatable {
        /// The payload, exactly as sent.
        public var bytes: [UInt8]
        /// The sending process: its pid and, where known, its start time (so that a later process
        /// given the same pid is not taken for it; `grantReceive(to:)` accepts it as it is).
        ///
        /// - `.shared` mailboxes: each slot holds its sender's full identity, so the start time is
        ///   always known.
        /// - `.oneToOne` mailboxes (and endpoint links): a record holds only its sender's pid. The
        ///   receiver takes the start time from the sender role, which names the one process
        ///   allowed to send at that moment: if that process has the record's pid, the message
        ///   carries its identity. If the sender has given up the role since (it closed its handle
        ///   or died, and another process may have taken the role), only the pid is known and
        ///   `startTime` is 0 (unknown). In the rare case that a sender died and the ring's next
        ///   sender was given the same pid, a record of the dead sender is attributed to the new
        ///   one.
        /// - Messages built with `init(bytes:sender:isRedelivered:)`: what the caller passed.
        public var sender: ProcessIdentity
        /// Whether a receiver took this message before and died while it was reading it, so the
        /// message may have been handled in part already. Messages are never lost when a receiver
        /// dies; they are delivered again, marked like this, so a receiver that must not act twice
        /// can de-duplicate (by a sequence number or id in the payload). A message whose receive call
        /// returned is never delivered again. On a `.shared` mailbox a redelivered message may arrive
        /// after messages sent later (up to capacity − 1 of them, when senders kept the mailbox full).
        public var isRedelivered: Bool

        /// A message with payload `bytes` from process `sender`.
        public init(bytes: [UInt8], sender: ProcessIdentity, isRedelivered: Bool = false) {
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
