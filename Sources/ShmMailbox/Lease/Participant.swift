extension Mailbox {
    /// A process that has sent to or received from a mailbox, as recorded in its lease table.
    public struct Participant: Sendable, Equatable {
        /// The process.
        public var process: ProcessIdentity
        /// Whether it has sent at least one message.
        public var hasSent: Bool
        /// Whether it has received at least one message.
        public var hasReceived: Bool
        /// When it was first seen, in nanoseconds since the Unix epoch.
        public var firstSeenUnixNanos: UInt64
        /// Whether it still runs (pid and start time match a live process).
        public var isAlive: Bool { ProcessIdentity.isAlive(packed: process.packed) }
    }
}
