/// How `Mailbox.create` shapes a new mailbox.
public struct MailboxOptions: Sendable, Equatable {
    /// Which ring carries the messages.
    public enum RingKind: String, Sendable, Equatable, CaseIterable {
        /// One sending and one receiving process at a time (each role is claimed on first use and
        /// taken over if its holder dies). Fastest: no atomic read-modify-write on the hot path,
        /// messages packed densely. Within a process, one thread sends and one thread receives.
        case oneToOne
        /// Any number of sending and receiving processes (and threads). Each message goes to
        /// exactly one receiver; messages from one sender arrive in the order sent.
        case shared
    }

    /// Who owns a mailbox, which decides who may receive from it and how long it lives.
    public enum Ownership: String, Sendable, Equatable, CaseIterable {
        /// No owner: every process that can open the mailbox may send and receive. It lives until
        /// `Mailbox.delete`. (Not in the textbook model; the practical default, like a POSIX
        /// message queue.)
        case none
        /// Owned by the system: it lives until `Mailbox.delete`, whoever created it. The creator
        /// is its owner and at first its only receiver; `grantReceive(to:)` lets other processes
        /// receive and `transferOwnership(to:)` hands ownership on.
        case system
        /// Owned by the creating process: only the owner receives, others only send. When the
        /// owner closes it, exits or dies (also `kill -9`), the mailbox disappears: senders,
        /// including ones blocked in `send`, get `ownerTerminated`.
        case process
    }

    /// Who may receive when several processes try (the textbook's choices for a mailbox shared by
    /// more than two processes).
    public enum ReceiverPolicy: String, Sendable, Equatable, CaseIterable {
        /// At most two processes: one sender and one receiver. A third process is refused with
        /// `roleTaken`; a role whose holder died is taken over. (The only policy of `.oneToOne`.)
        case pair
        /// Many senders, but one receiving process at a time: it holds the receive turn until it
        /// closes its handle or dies. Another receiver gets `receiverBusy`, or waits for the turn
        /// if its handle's `whenReceiverBusy` is `.wait`.
        case exclusive
        /// Many senders and receivers; each message goes to exactly one of the receivers,
        /// whichever takes it first. (The default for `.shared`.)
        case competing
        /// Receivers take turns in the order they registered (at their first receive, up to 16):
        /// the n-th message goes to the n-th receiver in turn. A receiver that closes its handle
        /// or dies is skipped. A receiver whose turn it is holds the others up until it receives.
        case roundRobin
    }

    /// How many messages can wait (default `.bounded(1024)`; an integer literal is bounded).
    /// `.bounded(n)`: at most n (1...16,777,216); a sender blocks, times out or gets `false` from
    /// `trySend` when n are waiting. `.zero` (`.shared` only): no message ever waits, every send
    /// completes only when a receiver takes its message — with a blocking receive, a rendezvous.
    /// `.unbounded` (`.shared` only): senders never wait for room; the mailbox grows by further
    /// shared-memory segments and gives them back once drained.
    public var capacity: Capacity
    /// The largest message in bytes (1 B...1 GiB). Larger sends throw `messageTooLarge`.
    ///
    /// Shared memory, all reserved at creation: `.shared` takes
    /// `capacity × align(32 + maxMessageSize, 64)` bytes (per segment when unbounded);
    /// `.oneToOne` takes the power of two at or
    /// above `(capacity + 1) × align(16 + maxMessageSize, 16)`; both add a 12 KiB header.
    public var maxMessageSize: Int
    /// The ring kind; `.shared` unless you know there is one sender and one receiver.
    public var kind: RingKind
    /// Permission bits of the segment (default `0o600`: only this user). Must include `0o600`.
    public var permissions: UInt32
    /// How this handle waits in blocking and timed calls.
    public var waitStrategy: WaitStrategy
    /// Who owns the mailbox (default `.none`: anyone who can open it may receive).
    public var ownership: Ownership
    /// Who may receive; nil picks the kind's default (`.pair` for `.oneToOne`, `.competing` for
    /// `.shared`). `.oneToOne` mailboxes support `.pair` only.
    public var receiverPolicy: ReceiverPolicy?

    /// Options for a new mailbox; every parameter has the default its property describes
    /// (1024 messages of up to 4096 bytes, `.shared`, `0o600`, ``WaitStrategy/default``, no owner,
    /// the kind's default receiver policy).
    public init(
        capacity: Capacity = 1024,
        maxMessageSize: Int = 4096,
        kind: RingKind = .shared,
        permissions: UInt32 = 0o600,
        waitStrategy: WaitStrategy = .default,
        ownership: Ownership = .none,
        receiverPolicy: ReceiverPolicy? = nil
    ) {
        self.capacity = capacity
        self.maxMessageSize = maxMessageSize
        self.kind = kind
        self.permissions = permissions
        self.waitStrategy = waitStrategy
        self.ownership = ownership
        self.receiverPolicy = receiverPolicy
    }
}
