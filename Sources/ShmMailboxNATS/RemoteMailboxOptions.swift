import ShmMailbox

/// How `RemoteMailbox.create` shapes a new remote mailbox (a JetStream stream; see the mapping
/// table in the README).
public struct RemoteMailboxOptions: Sendable, Equatable {
    /// Where the server keeps the messages.
    public enum Storage: String, Sendable, Equatable {
        /// On disk: the mailbox and its messages survive a server restart.
        case file
        /// In the server's memory: faster, lost when the server (or every replica) stops.
        case memory
    }

    /// How many messages can wait: `.bounded(n)` (the stream's `max_msgs`, discard new: a sender
    /// blocks, times out or gets `false` when n wait), `.unbounded` (no message limit; `maxBytes`
    /// bounds the bytes, then `outOfSpace`), `.zero` (every send is synchronous and at most one
    /// message is in transit). Default `.bounded(1024)`.
    public var capacity: MailboxOptions.Capacity
    /// The largest message in bytes (at most the server's `max_payload` less 1 KiB for headers).
    public var maxMessageSize: Int
    /// For `.unbounded`: the most bytes the messages may take on the server (nil: the account's
    /// and server's limits only).
    public var maxBytes: Int?
    /// Who may receive: `.competing` (default: each message to exactly one receiver, on any
    /// host), `.exclusive` (one receiving process at a time, on any host), `.pair` (one sender
    /// and one receiver). `.roundRobin` throws `unsupported`: a JetStream consumer serves pull
    /// requests first come, first served, and cannot take receivers in turn.
    public var receiverPolicy: MailboxOptions.ReceiverPolicy
    /// `.none` (default): the mailbox lives until deleted, surviving its creator (and, with
    /// `.file` storage, a server restart); anyone receives. `.process`: only the creating handle
    /// receives, and the mailbox is deleted when it closes, or dies or loses its connection
    /// (senders then get `ownerTerminated`). `.system`: lives until deleted; its owner (at first
    /// the creating process) receives and grants others the right to (`grantReceive`,
    /// `transferOwnership`, `reclaimOwnership` after the owner has gone).
    public var ownership: MailboxOptions.Ownership
    /// Copies kept by a cluster (1, 3 or 5; at most the number of servers). With 3, the mailbox
    /// and every accepted message survive losing one server. On nats-server 2.9 give a
    /// `.bounded` mailbox one copy: replicas there enforce the limit each on its own state, and
    /// a replicated bounded mailbox held at its limit lost an acknowledged message in our tests.
    public var replicas: Int
    /// Where the server keeps the messages (default `.file`).
    public var storage: Storage
    /// How long a message taken by a receiver that neither finished nor failed (a crashed or
    /// disconnected process) stays with it before another receiver gets it, marked redelivered.
    public var redeliveryDelay: Duration
    /// How long the server remembers a sent message's id, within which a retried send (after a
    /// lost acknowledgement) is recognised and not stored twice.
    public var duplicateWindow: Duration

    /// Options; each parameter's default is described on its property.
    public init(capacity: MailboxOptions.Capacity = .bounded(1024), maxMessageSize: Int = 64 * 1024, maxBytes: Int? = nil,
                receiverPolicy: MailboxOptions.ReceiverPolicy = .competing, ownership: MailboxOptions.Ownership = .none,
                replicas: Int = 1, storage: Storage = .file, redeliveryDelay: Duration = .seconds(30),
                duplicateWindow: Duration = .seconds(120)) {
        self.capacity = capacity
        self.maxMessageSize = maxMessageSize
        self.maxBytes = maxBytes
        self.receiverPolicy = receiverPolicy
        self.ownership = ownership
        self.replicas = replicas
        self.storage = storage
        self.redeliveryDelay = redeliveryDelay
        self.duplicateWindow = duplicateWindow
    }
}
