/// A snapshot of one mailbox's counters, read from its segment by `Mailbox.statistics`.
///
/// Everything here is derived from what the mailbox keeps in shared memory anyway (ring
/// positions, record stamps, sleeper bitmaps), so sends and receives pay nothing for it. Values
/// come from memory other processes write: each is validated or clamped, never trusted.
public struct MailboxStatistics: Sendable, Equatable {
    /// The mailbox's name.
    public var name: String
    /// The mailbox's ring kind.
    public var kind: MailboxOptions.RingKind
    /// Messages sent into the mailbox since it was created; nil where the segment cannot tell
    /// (see `Mailbox.messageTotals`: a one-to-one mailbox after its first lap).
    public var messagesSent: UInt64?
    /// Messages taken out of the mailbox since it was created (received, or given back unfilled
    /// by a sender); nil as for `messagesSent`.
    public var messagesReceived: UInt64?
    /// Messages waiting now.
    public var depth: Int
    /// Shared-memory segments the mailbox occupies now (more than 1 only for an unbounded one).
    public var segments: Int
    /// Bytes of shared memory the mailbox occupies now.
    public var memoryUsed: Int
    /// Processes asleep (or about to sleep) waiting for a message.
    public var sleepingReceivers: Int
    /// Processes asleep (or about to sleep) waiting for space.
    public var sleepingSenders: Int
    /// Whether the mailbox was deleted (`Mailbox.delete`).
    public var isDeleted: Bool
    /// Slots repaired after the process holding them died, by any process, since the mailbox was
    /// created: claims of dead senders freed, messages of dead receivers requeued or adopted
    /// (redelivered), receipts nobody collects freed. 0 for mailboxes created by a version that
    /// did not count.
    public var repairs: UInt64
    /// Blocking, timed and async sends that found the mailbox full and waited for room, since it
    /// was created (a non-blocking `trySend` that finds it full is not counted). 0 for mailboxes
    /// created by a version that did not count.
    public var fullWaits: UInt64

    /// A snapshot with the given values (for tests and tools; `Mailbox.statistics` makes real ones).
    public init(name: String, kind: MailboxOptions.RingKind, messagesSent: UInt64?, messagesReceived: UInt64?,
                depth: Int, segments: Int, memoryUsed: Int, sleepingReceivers: Int, sleepingSenders: Int,
                isDeleted: Bool, repairs: UInt64 = 0, fullWaits: UInt64 = 0) {
        self.name = name
        self.kind = kind
        self.messagesSent = messagesSent
        self.messagesReceived = messagesReceived
        self.depth = depth
        self.segments = segments
        self.memoryUsed = memoryUsed
        self.sleepingReceivers = sleepingReceivers
        self.sleepingSenders = sleepingSenders
        self.isDeleted = isDeleted
        self.repairs = repairs
        self.fullWaits = fullWaits
    }
}
