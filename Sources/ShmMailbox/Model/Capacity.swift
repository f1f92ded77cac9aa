extension MailboxOptions {
    /// How many messages a mailbox buffers: the textbook's zero, bounded and unbounded capacity.
    ///
    /// An integer literal is a bounded capacity (`capacity: 64`), and `0` is `.zero`.
    ///
    /// ```swift
    /// MailboxOptions(capacity: .zero)          // every send is a rendezvous with a receiver
    /// MailboxOptions(capacity: .bounded(64))   // at most 64 waiting; a 65th send blocks
    /// MailboxOptions(capacity: .unbounded)     // senders never block; the mailbox grows
    /// ```
    public struct Capacity: Sendable, Hashable, ExpressibleByIntegerLiteral, CustomStringConvertible {
        /// The three kinds of buffering.
        public enum Kind: Sendable, Hashable {
            /// No message ever waits: a send completes only when a receiver takes its message.
            case zero
            /// At most `messages` messages wait; a send to a full mailbox blocks, times out or fails.
            case bounded
            /// A send never waits for room: when the mailbox's shared-memory segment is full, the
            /// mailbox grows by chaining another segment of `messages` slots, and segments are given
            /// back once their messages have all been received. Only running out of shared memory
            /// stops a send (`outOfSharedMemory`).
            case unbounded
        }

        /// Which kind of buffering.
        public let kind: Kind
        /// `.bounded`: the most messages that can wait. `.unbounded`: the messages each chained
        /// segment holds. `.zero`: 0.
        public let messages: Int

        private init(kind: Kind, messages: Int) {
            self.kind = kind
            self.messages = messages
        }

        /// Zero capacity (`.shared` mailboxes only): a send returns only once a receiver has taken
        /// its message — with a blocking receive, a rendezvous.
        public static let zero = Capacity(kind: .zero, messages: 0)

        /// At most `messages` messages wait (1...16,777,216); `bounded(0)` is `.zero`.
        public static func bounded(_ messages: Int) -> Capacity {
            messages == 0 ? .zero : Capacity(kind: .bounded, messages: messages)
        }

        /// Unbounded (`.shared` mailboxes only), growing 1024 messages at a time.
        public static let unbounded = unbounded(segmentCapacity: 1024)

        /// Unbounded (`.shared` mailboxes only), growing by segments of `segmentCapacity` messages
        /// (1...16,777,216). Each segment takes `segmentCapacity × align(32 + maxMessageSize, 64)`
        /// bytes plus a 12 KiB header.
        public static func unbounded(segmentCapacity: Int) -> Capacity {
            Capacity(kind: .unbounded, messages: segmentCapacity)
        }

        /// `.bounded(value)` (and `.zero` for 0).
        public init(integerLiteral value: Int) {
            self = .bounded(value)
        }

        /// The most messages that can wait, or nil for unbounded.
        public var limit: Int? { kind == .unbounded ? nil : messages }

        /// `zero`, the bound (`64`), or `unbounded` with its segment size.
        public var description: String {
            switch kind {
            case .zero: return "zero"
            case .bounded: return "\(messages)"
            case .unbounded: return "unbounded (segments of \(messages))"
            }
        }
    }
}
