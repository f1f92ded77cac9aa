#if canImport(Glibc)
import Glibc
#endif
import CNATS
import ShmMailbox

/// A mailbox on a NATS server (a JetStream stream), reachable from every host that reaches the
/// server or its cluster: the remote counterpart of `Mailbox`, with the same shape of calls.
///
/// ```swift
/// let nats = try NATSConnection("nats://10.0.0.1:4222")
/// let box = try RemoteMailbox.create("jobs", on: nats, options: RemoteMailboxOptions(capacity: 100))
/// try box.send("job 1")
/// // on another machine:
/// let message = try RemoteMailbox.open("jobs", on: nats).receive()
/// ```
///
/// One handle is used by one thread at a time (like `Mailbox`); open one per thread, sharing the
/// `NATSConnection`.
public final class RemoteMailbox {
    public let name: String
    /// The connection this handle travels on.
    public let connection: NATSConnection
    public let capacity: Capacity
    public let maxMessageSize: Int
    public let receiverPolicy: MailboxOptions.ReceiverPolicy
    public let ownership: MailboxOptions.Ownership
    /// Who this handle's messages say sent them (this host and process; set `name` to send as a
    /// named endpoint).
    public var identity: RemoteSender = .current
    /// How long a receipt-bearing message waits for its sender's go-ahead before a receiver drops
    /// it (the sender gave up or died).
    var handshakeTimeout: Duration

    let mapping: StreamMapping
    /// Message ids are `<sender id>.<n>`: unique to this handle, so the server's de-duplication
    /// recognises a retried send and nothing else.
    let senderID: String
    var sendCount: UInt64 = 0
    /// The pull subscription on the `receivers` consumer, made at the first receive.
    var subscription: OpaquePointer?
    /// Messages fetched but not yet handed to a receive call (unacknowledged).
    var prefetched: [OpaquePointer] = []
    /// The asynchronous publishing of `batch`, made at the first batch.
    var pipeline: SendPipeline?
    var isClosed = false

    init(connection: NATSConnection, mapping: StreamMapping, settings: StreamMapping.Settings) {
        self.connection = connection
        self.mapping = mapping
        name = mapping.name
        capacity = settings.capacity
        maxMessageSize = settings.maxMessageSize
        receiverPolicy = settings.receiverPolicy
        ownership = settings.ownership
        handshakeTimeout = connection.options.requestTimeout
        senderID = "\(Self.randomHex()).\(getpid())"
    }

    deinit { close() }

    /// Ends this handle's use of the mailbox (the mailbox itself stays; see `delete`).
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        // Messages fetched but never handed over go back to the stream at once.
        for message in prefetched {
            natsMsg_Nak(message, nil)
            natsMsg_Destroy(message)
        }
        prefetched.removeAll()
        pipeline = nil
        if let subscription {
            // Unsubscribing only drops this process's pull interest; the durable consumer stays.
            natsSubscription_Destroy(subscription)
            self.subscription = nil
        }
    }

    // MARK: Create, open, delete

    /// Creates the mailbox `name` on the server (a JetStream stream and its receivers' consumer).
    ///
    /// - Throws: `alreadyExists`, `invalidName`, `invalidOptions`, `unsupported` (a receiver
    ///   policy or ownership not carried across machines yet), or a connection error.
    public static func create(_ name: String, on connection: NATSConnection,
                              options: RemoteMailboxOptions = RemoteMailboxOptions()) throws(RemoteMailboxError) -> RemoteMailbox {
        let mapping = try StreamMapping(name: name)
        try validate(options, connection: connection)
        let settings = StreamMapping.Settings(capacity: options.capacity, maxMessageSize: options.maxMessageSize,
                                              receiverPolicy: options.receiverPolicy, ownership: options.ownership,
                                              nonce: randomHex())
        let strings = CStrings()
        var config = jsStreamConfig()
        jsStreamConfig_Init(&config)
        config.Name = strings.make(mapping.streamName)
        config.Description = strings.make(settings.encoded)
        var subject: UnsafePointer<CChar>? = strings.make(mapping.subject)
        config.SubjectsLen = 1
        config.Retention = js_WorkQueuePolicy
        config.Discard = js_DiscardNew
        config.Storage = options.storage == .file ? js_FileStorage : js_MemoryStorage
        config.Replicas = Int64(options.replicas)
        config.MaxMsgSize = Int32(options.maxMessageSize + StreamMapping.headerAllowance)
        config.Duplicates = options.duplicateWindow.nanoseconds
        switch options.capacity.kind {
        case .zero: config.MaxMsgs = 1
        case .bounded: config.MaxMsgs = Int64(options.capacity.messages)
        case .unbounded:
            config.MaxMsgs = -1
            config.MaxBytes = options.maxBytes.map { Int64($0) } ?? -1
        }
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(0)
        let status = withUnsafeMutablePointer(to: &subject) { subjects in
            config.Subjects = UnsafeMutablePointer(mutating: subjects)
            return js_AddStream(&info, connection.jetStream, &config, nil, &code)
        }
        defer { jsStreamInfo_Destroy(info) }
        if status != NATS_OK {
            // 10058: a stream with this name and another configuration exists; 10065: another
            // stream already listens on the subject.
            if code == JSStreamNameExistErr || code.rawValue == 10065 { throw .alreadyExists(name) }
            throw NATSStatus.error(status, errorCode: code, "creating stream \(mapping.streamName)")
        }
        // Adding a stream identical to an existing one succeeds: the nonce tells ours apart.
        if let info, let description = info.pointee.Config.pointee.Description,
           StreamMapping.Settings(description: String(cString: description))?.nonce != settings.nonce {
            throw .alreadyExists(name)
        }
        try addConsumer(mapping, options: options, connection: connection)
        return RemoteMailbox(connection: connection, mapping: mapping, settings: settings)
    }

    /// `create(_:on:options:)` on a new connection to `urls`.
    public static func create(_ name: String, nats urls: [String],
                              options: RemoteMailboxOptions = RemoteMailboxOptions()) throws(RemoteMailboxError) -> RemoteMailbox {
        try create(name, on: NATSConnection(urls), options: options)
    }

    /// Opens the existing mailbox `name`.
    ///
    /// - Throws: `notFound`, `notAMailbox` (a stream not made by ShmMailboxNATS), or a connection
    ///   error.
    public static func open(_ name: String, on connection: NATSConnection) throws(RemoteMailboxError) -> RemoteMailbox {
        let mapping = try StreamMapping(name: name)
        let settings = try settings(of: mapping, connection: connection)
        return RemoteMailbox(connection: connection, mapping: mapping, settings: settings)
    }

    /// `open(_:on:)` on a new connection to `urls`.
    public static func open(_ name: String, nats urls: [String]) throws(RemoteMailboxError) -> RemoteMailbox {
        try open(name, on: NATSConnection(urls))
    }

    /// Deletes the mailbox `name` and every message in it. Handles still open fail with `deleted`.
    ///
    /// - Throws: `notFound`, `notAMailbox`, or a connection error.
    public static func delete(_ name: String, on connection: NATSConnection) throws(RemoteMailboxError) {
        let mapping = try StreamMapping(name: name)
        _ = try settings(of: mapping, connection: connection)
        var code = jsErrCode(0)
        let status = js_DeleteStream(connection.jetStream, mapping.streamName, nil, &code)
        if code == JSStreamNotFoundErr { throw .notFound(name) }
        try NATSStatus.check(status, errorCode: code, "deleting stream \(mapping.streamName)")
    }

    /// The names of the remote mailboxes on the server.
    public static func list(on connection: NATSConnection) throws(RemoteMailboxError) -> [String] {
        var list: UnsafeMutablePointer<jsStreamNamesList>?
        var code = jsErrCode(0)
        let status = js_StreamNames(&list, connection.jetStream, nil, &code)
        if status == NATS_NOT_FOUND { return [] }
        try NATSStatus.check(status, errorCode: code, "listing streams")
        defer { jsStreamNamesList_Destroy(list) }
        guard let list else { return [] }
        var names: [String] = []
        for index in 0..<Int(list.pointee.Count) {
            guard let cName = list.pointee.List[index] else { continue }
            let stream = String(cString: cName)
            if stream.hasPrefix("SHMMB_") { names.append(String(stream.dropFirst(6))) }
        }
        return names.sorted()
    }

    /// How many messages wait in the mailbox (including ones taken but not yet finished).
    public var depth: Int {
        get throws(RemoteMailboxError) {
            let info = try Self.streamInfo(mapping, connection: connection)
            defer { jsStreamInfo_Destroy(info) }
            return Int(info.pointee.State.Msgs)
        }
    }

    // MARK: Helpers

    private static func validate(_ options: RemoteMailboxOptions, connection: NATSConnection) throws(RemoteMailboxError) {
        let largest = connection.maxPayload - StreamMapping.headerAllowance
        guard options.maxMessageSize >= 1, options.maxMessageSize <= largest else {
            throw .invalidOptions("maxMessageSize must be 1...\(largest) (the server's max_payload \(connection.maxPayload) less \(StreamMapping.headerAllowance) bytes for headers)")
        }
        guard [1, 3, 5].contains(options.replicas) else { throw .invalidOptions("replicas must be 1, 3 or 5") }
        guard options.redeliveryDelay >= .milliseconds(100) else { throw .invalidOptions("redeliveryDelay must be at least 100 ms") }
        if let maxBytes = options.maxBytes {
            guard options.capacity.kind == .unbounded else { throw .invalidOptions("maxBytes applies to unbounded mailboxes only") }
            guard maxBytes > options.maxMessageSize else { throw .invalidOptions("maxBytes must exceed maxMessageSize") }
        }
        switch options.receiverPolicy {
        case .competing: break
        case .roundRobin:
            throw .unsupported("receiver policy roundRobin: a JetStream consumer hands messages to whichever pull request comes first and cannot take receivers in turn")
        case .exclusive, .pair:
            throw .unsupported("receiver policy \(options.receiverPolicy.rawValue) is not carried across machines yet")
        }
        if options.ownership == .process {
            throw .unsupported("process ownership is not carried across machines yet")
        }
    }

    private static func addConsumer(_ mapping: StreamMapping, options: RemoteMailboxOptions, connection: NATSConnection) throws(RemoteMailboxError) {
        let strings = CStrings()
        var config = jsConsumerConfig()
        jsConsumerConfig_Init(&config)
        config.Durable = strings.make(StreamMapping.consumerName)
        config.AckPolicy = js_AckExplicit
        config.AckWait = options.redeliveryDelay.nanoseconds
        config.MaxDeliver = -1
        config.DeliverPolicy = js_DeliverAll
        config.FilterSubject = strings.make(mapping.subject)
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var code = jsErrCode(0)
        let status = js_AddConsumer(&info, connection.jetStream, mapping.streamName, &config, nil, &code)
        jsConsumerInfo_Destroy(info)
        if status != NATS_OK {
            let error = NATSStatus.error(status, errorCode: code, "creating consumer \(StreamMapping.consumerName)")
            // Leave no half-made mailbox behind.
            _ = js_DeleteStream(connection.jetStream, mapping.streamName, nil, nil)
            throw error
        }
    }

    static func streamInfo(_ mapping: StreamMapping, connection: NATSConnection) throws(RemoteMailboxError) -> UnsafeMutablePointer<jsStreamInfo> {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(0)
        let status = js_GetStreamInfo(&info, connection.jetStream, mapping.streamName, nil, &code)
        if status == NATS_NOT_FOUND || code == JSStreamNotFoundErr { throw .notFound(mapping.name) }
        try NATSStatus.check(status, errorCode: code, "reading stream \(mapping.streamName)")
        guard let info else { throw .notFound(mapping.name) }
        return info
    }

    private static func settings(of mapping: StreamMapping, connection: NATSConnection) throws(RemoteMailboxError) -> StreamMapping.Settings {
        let info = try streamInfo(mapping, connection: connection)
        defer { jsStreamInfo_Destroy(info) }
        guard let config = info.pointee.Config, let description = config.pointee.Description,
              let settings = StreamMapping.Settings(description: String(cString: description))
        else { throw .notAMailbox(mapping.name) }
        return settings
    }

    static func randomHex() -> String {
        // The system generator (getrandom): ids from two processes or hosts never collide in practice.
        let value = UInt64.random(in: .min ... .max)
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }

    static func deadline(_ timeout: Duration?) -> ContinuousClock.Instant? {
        timeout.map { ContinuousClock.now + max($0, .zero) }
    }
}
