import ShmMailbox

/// Direct naming across machines: a process joins under a name that every host of the cluster
/// can send to (`send(to: "Q")`), and receives from one named sender (`receive(from: "P")`) or
/// from anyone, with the sender's name — the remote counterpart of `Endpoint`.
///
/// The name is a lease (held until `close()`, the process's death or its disconnection, then
/// free `LeaseTable.ttl` later). Each endpoint has a stream; each sender a bounded link in it
/// (see `StreamMapping`). Messages sent to a name wait in its stream while nobody holds the
/// name, for the next process that joins it; sending to a name nobody holds throws
/// `noSuchEndpoint`. A receiver that dies mid-receive leaves the message to be redelivered to
/// the name's next holder.
///
/// ```swift
/// let p = try RemoteEndpoint.join("P", on: nats)
/// try p.send(to: "Q", "hello")             // Q may be on any host
/// let reply = try p.receive(from: "Q")
/// ```
public final class RemoteEndpoint {
    /// How `join` shapes the endpoint's stream (when it makes it).
    public struct Options: Sendable, Equatable {
        /// Messages each sender's link holds before that sender blocks.
        public var linkCapacity: Int
        /// The largest message in bytes.
        public var maxMessageSize: Int
        /// Copies a cluster keeps of the endpoint's stream (1, 3 or 5).
        public var replicas: Int
        /// Where the server keeps the messages.
        public var storage: RemoteMailboxOptions.Storage
        /// See `RemoteMailboxOptions.redeliveryDelay`.
        public var redeliveryDelay: Duration

        /// Options; the defaults match `Endpoint.Options` (256 messages of up to 16 KiB per link).
        public init(linkCapacity: Int = 256, maxMessageSize: Int = 16 * 1024, replicas: Int = 1,
                    storage: RemoteMailboxOptions.Storage = .file, redeliveryDelay: Duration = .seconds(30)) {
            self.linkCapacity = linkCapacity
            self.maxMessageSize = maxMessageSize
            self.replicas = replicas
            self.storage = storage
            self.redeliveryDelay = redeliveryDelay
        }
    }

    /// The name this endpoint holds.
    public let name: String
    /// The connection it travels on.
    public let connection: NATSConnection
    private let nameLease: Lease
    /// Receive-from-anyone: the `any` consumer of this endpoint's stream.
    private let inbox: RemoteMailbox
    /// Receive-from-P: the `from-P` consumers, made at first use.
    private var fromViews: [String: RemoteMailbox] = [:]
    /// Sending to Q: this endpoint's link in Q's stream, opened at first use.
    private var links: [String: RemoteMailbox] = [:]
    /// When each receiver was last seen holding its name (looked up at most once a second).
    private var lastSeen: [String: ContinuousClock.Instant] = [:]
    private var isClosed = false

    private init(name: String, connection: NATSConnection, lease: Lease, inbox: RemoteMailbox) {
        self.name = name
        self.connection = connection
        nameLease = lease
        self.inbox = inbox
    }

    deinit { close() }

    /// Joins under `name`: takes the name, making the endpoint's stream if it has none.
    ///
    /// - Throws: `nameTaken` (another live process holds it), `invalidName`, `invalidOptions`,
    ///   or a connection error.
    public static func join(_ name: String, on connection: NATSConnection, options: Options = Options()) throws(RemoteMailboxError) -> RemoteEndpoint {
        let mapping = try StreamMapping(endpoint: name, sender: nil)
        let boxOptions = RemoteMailboxOptions(capacity: .bounded(options.linkCapacity), maxMessageSize: options.maxMessageSize,
                                              replicas: options.replicas, storage: options.storage,
                                              redeliveryDelay: options.redeliveryDelay)
        try RemoteMailbox.validate(boxOptions, connection: connection)
        let (lease, holder) = try connection.takeLease("endpoint.\(name)", identity: RemoteSender.current.named(name),
                                                       replicas: options.replicas)
        guard let lease else { throw .nameTaken(name, holder: RemoteMailbox.holderName(holder)) }
        do throws(RemoteMailboxError) {
            let settings: StreamMapping.Settings
            do {
                settings = try RemoteMailbox.settings(of: mapping, connection: connection)
            } catch .notFound {
                let made = StreamMapping.Settings(capacity: .bounded(options.linkCapacity), maxMessageSize: options.maxMessageSize,
                                                  receiverPolicy: .competing, ownership: .none, nonce: RemoteMailbox.randomHex(),
                                                  redeliveryDelay: options.redeliveryDelay)
                do {
                    try RemoteMailbox.makeStream(mapping, settings: made, options: boxOptions, connection: connection)
                } catch .alreadyExists {
                    // Made meanwhile by a sender's first look? Senders never make streams; a
                    // previous holder of the name did: use it.
                }
                try RemoteMailbox.addConsumer(mapping, redeliveryDelay: options.redeliveryDelay, connection: connection,
                                              deleteStreamOnFailure: false)
                settings = try RemoteMailbox.settings(of: mapping, connection: connection)
            }
            let inbox = RemoteMailbox(connection: connection, mapping: mapping, settings: settings)
            inbox.identity = RemoteSender.current.named(name)
            return RemoteEndpoint(name: name, connection: connection, lease: lease, inbox: inbox)
        } catch {
            lease.release()
            throw error
        }
    }

    /// Gives the name up (messages already sent to it stay for its next holder).
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        inbox.close()
        fromViews.values.forEach { $0.close() }
        links.values.forEach { $0.close() }
        nameLease.release()
    }

    // MARK: Sending

    /// Sends `buffer` to the endpoint `receiver` (on any host), waiting while this endpoint's
    /// link to it is full, at most `timeout` (forever if nil).
    ///
    /// - Throws: `noSuchEndpoint`, `timedOut`, `sendUnconfirmed`, `messageTooLarge`, `closed`.
    public func send(to receiver: String, _ buffer: UnsafeRawBufferPointer, timeout: Duration? = nil) throws(RemoteMailboxError) {
        try link(to: receiver).send(buffer, timeout: timeout)
    }

    /// `send(to:_:timeout:)` for an `Array`, a slice or any collection of bytes.
    public func send<Bytes: Collection<UInt8>>(to receiver: String, _ bytes: Bytes, timeout: Duration? = nil) throws(RemoteMailboxError) {
        try link(to: receiver).send(bytes, timeout: timeout)
    }

    /// `send(to:_:timeout:)` for the UTF-8 bytes of `text`.
    public func send(to receiver: String, _ text: String, timeout: Duration? = nil) throws(RemoteMailboxError) {
        try link(to: receiver).send(text, timeout: timeout)
    }

    /// Sends if this endpoint's link to `receiver` has room now; `false` (nothing sent) if not.
    public func trySend<Bytes: Collection<UInt8>>(to receiver: String, _ bytes: Bytes) throws(RemoteMailboxError) -> Bool {
        try link(to: receiver).trySend(bytes)
    }

    /// `trySend(to:_:)` for the UTF-8 bytes of `text`.
    public func trySend(to receiver: String, _ text: String) throws(RemoteMailboxError) -> Bool {
        try link(to: receiver).trySend(text)
    }

    /// This endpoint's link to `receiver`, after checking someone holds that name.
    private func link(to receiver: String) throws(RemoteMailboxError) -> RemoteMailbox {
        guard !isClosed else { throw .closed }
        let now = ContinuousClock.now
        if lastSeen[receiver].map({ now - $0 >= .seconds(1) }) ?? true {
            guard try connection.leases().holder(of: "endpoint.\(receiver)") != nil else {
                lastSeen[receiver] = nil
                throw .noSuchEndpoint(receiver)
            }
            lastSeen[receiver] = now
        }
        if let link = links[receiver] { return link }
        let mapping = try StreamMapping(endpoint: receiver, sender: name)
        let settings: StreamMapping.Settings
        do {
            settings = try RemoteMailbox.settings(of: mapping, connection: connection)
        } catch .notFound {
            throw .noSuchEndpoint(receiver)
        }
        let link = RemoteMailbox(connection: connection, mapping: mapping, settings: settings)
        link.identity = RemoteSender.current.named(name)
        links[receiver] = link
        return link
    }

    // MARK: Receiving

    /// Takes the oldest message sent to this endpoint by `sender`, waiting at most `timeout`.
    public func receive(from sender: String, timeout: Duration? = nil) throws(RemoteMailboxError) -> RemoteMessage {
        try view(from: sender).receive(timeout: timeout)
    }

    /// Takes the oldest message from `sender` if one waits; nil otherwise.
    public func tryReceive(from sender: String) throws(RemoteMailboxError) -> RemoteMessage? {
        try view(from: sender).tryReceive()
    }

    /// Takes the oldest message sent to this endpoint by anyone; `sender?.name` names its
    /// sending endpoint.
    public func receive(timeout: Duration? = nil) throws(RemoteMailboxError) -> RemoteMessage {
        guard !isClosed else { throw .closed }
        return try inbox.receive(timeout: timeout)
    }

    /// `receive(timeout:)` if a message waits; nil otherwise.
    public func tryReceive() throws(RemoteMailboxError) -> RemoteMessage? {
        guard !isClosed else { throw .closed }
        return try inbox.tryReceive()
    }

    /// Zero-copy receive from anyone: the bytes (valid only inside `body`) and the sending
    /// endpoint's name.
    public func receive<R>(timeout: Duration? = nil, _ body: (RawSpan, _ from: String) throws -> R) throws -> R {
        guard !isClosed else { throw RemoteMailboxError.closed }
        return try inbox.receive(timeout: timeout) { bytes, sender in try body(bytes, sender?.name ?? "") }
    }

    /// Up to `limit` messages from anyone in one fetch; how many were handed to `body`.
    public func receiveBatch(limit: Int = 256, timeout: Duration? = nil,
                             _ body: (RawSpan, _ from: String) throws -> Void) throws -> Int {
        guard !isClosed else { throw RemoteMailboxError.closed }
        return try inbox.receiveBatch(limit: limit, timeout: timeout) { bytes, sender in try body(bytes, sender?.name ?? "") }
    }

    private func view(from sender: String) throws(RemoteMailboxError) -> RemoteMailbox {
        guard !isClosed else { throw .closed }
        if nameLease.isLost { throw .nameTaken(name, holder: "another process (this one's lease expired)") }
        if let view = fromViews[sender] { return view }
        let mapping = try StreamMapping(endpoint: name, sender: nil, from: sender)
        let view = RemoteMailbox(connection: connection, mapping: mapping, settings: try RemoteMailbox.settings(of: mapping, connection: connection))
        view.identity = RemoteSender.current.named(name)
        fromViews[sender] = view
        return view
    }
}

extension RemoteSender {
    /// This identity sending as the endpoint `name`.
    func named(_ name: String) -> RemoteSender { RemoteSender(host: host, pid: pid, name: name) }
}
