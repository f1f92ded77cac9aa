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
    /// The mailbox's name (its stream is `SHMMB_<name>`).
    public let name: String
    /// The connection this handle travels on.
    public let connection: NATSConnection
    /// How many messages can wait (see `RemoteMailboxOptions.capacity`).
    public let capacity: MailboxOptions.Capacity
    /// The largest message in bytes.
    public let maxMessageSize: Int
    /// Who may receive (see `RemoteMailboxOptions.receiverPolicy`).
    public let receiverPolicy: MailboxOptions.ReceiverPolicy
    /// Who owns the mailbox (see `RemoteMailboxOptions.ownership`).
    public let ownership: MailboxOptions.Ownership
    /// How long a message taken by a receiver that neither finished nor failed stays with it.
    public let redeliveryDelay: Duration
    /// Who this handle's messages say sent them (this host and process; set `name` to send as a
    /// named endpoint).
    public var identity: RemoteSender = .current
    /// This handle's choice when an `.exclusive` or `.pair` mailbox's receive turn is held by
    /// another live process (default `.fail`: throw `receiverBusy`).
    public var whenReceiverBusy = Mailbox.WhenReceiverBusy.fail
    /// How long a receipt-bearing message waits for its sender's go-ahead before a receiver drops
    /// it (the sender gave up or died).
    var handshakeTimeout: Duration

    let mapping: StreamMapping
    /// The largest pack a batch sends (see `Pack`).
    let packLimit: Int
    /// Message ids are `<sender id>.<n>`: unique to this handle, so the server's de-duplication
    /// recognises a retried send and nothing else.
    let senderID: String
    var sendCount: UInt64 = 0
    /// The pull subscription on the `receivers` consumer, made at the first receive.
    var subscription: OpaquePointer?
    /// Messages fetched but not yet handed to a receive call (unacknowledged), newest first.
    var prefetched: [OpaquePointer] = []
    /// When the fetch that brought them was asked for (their redelivery timers started after).
    var fetchedAt = ContinuousClock.now
    /// The pack this handle is part-way through, kept between receive calls (see `Pack`).
    var packInHand: PackInHand?
    /// How many messages the last stored message taken carried (1 unless it was a pack).
    var lastPackCount = 1
    /// The most bytes one pull request asks for: half the connection's receive buffer, halved
    /// each time the server cut this client off while a request was answered (see `fetch`).
    lazy var requestBytes = connection.receiveBufferSize / 2
    /// The stream sequences of the messages this handle handed over and acknowledged lately, to
    /// drop a copy the server sends again after an acknowledgement lost with a connection.
    var handed = HandedSequences()
    #if DEBUG
    /// Tests: acknowledgements sent without waiting are not sent, as if lost with a connection
    /// that the call then finds replaced (see `receiveMessages`).
    var testingLosesAcknowledgementsSentWithoutWaiting = false
    /// Tests: every fetched message comes twice in a row, as a server that counted a delivery to
    /// a client it cut off as never made may send it (see `receiveMessages`).
    var testingDeliversFetchedTwice = false
    /// Tests: the delivery facts of those copies (which, not bound to a subscription, have no
    /// JetStream metadata of their own), until first asked for.
    var testingCopies: [OpaquePointer: (redelivered: Bool, sequence: UInt64)] = [:]
    /// Tests: called at each point of the pack protocol where a process may die (`handed`: a
    /// pack's message handed over, not yet recorded; `recorded`: progress recorded, the server
    /// not yet told; `acknowledged`: a finished pack acknowledged, its progress key not yet
    /// removed), so that a test can stop the process there and kill it. (SPI, for the tests'
    /// helper process, which cannot import the module `@testable`: it is built in release too.)
    @_spi(Testing) public var testingPackPoint: ((String) -> Void)?
    #endif
    /// The last sender header seen and what it parsed to.
    var lastSender: (text: String, sender: RemoteSender?)?
    /// The asynchronous publishing of `batch`, made at the first batch.
    var pipeline: SendPipeline?
    var isClosed = false
    /// The leases this handle holds (see `RemoteMailbox+Roles`).
    var receiverLease: Lease?
    var senderLease: Lease?
    var ownerLease: Lease?
    /// A system-owned mailbox's owner handle holds `<name>.owner-alive` (see `+Ownership`).
    var ownerAliveLease: Lease?
    /// Every open handle of a system-owned mailbox holds `<name>.open.<host>.<pid>` (see
    /// `+Ownership`), so that a process made owner by a transfer counts as present before it
    /// first receives.
    var presenceLease: Lease?
    /// When this handle's right to receive from a system-owned mailbox was last confirmed.
    var rightConfirmed: ContinuousClock.Instant?
    var lastOwnerCheck = ContinuousClock.now - .seconds(60)
    /// The nonce of the stream this handle opened (see `incarnation`).
    let nonce: String
    /// When a receive that found nothing last checked that the mailbox is still there.
    var lastPresenceCheck = ContinuousClock.now

    init(connection: NATSConnection, mapping: StreamMapping, settings: StreamMapping.Settings) {
        self.connection = connection
        self.mapping = mapping
        name = mapping.name
        capacity = settings.capacity
        maxMessageSize = settings.maxMessageSize
        packLimit = settings.packLimit
        receiverPolicy = settings.receiverPolicy
        ownership = settings.ownership
        handshakeTimeout = connection.options.requestTimeout
        redeliveryDelay = settings.redeliveryDelay
        nonce = settings.nonce
        senderID = "\(Self.randomHex()).\(getpid())"
    }

    deinit { close() }

    /// Ends this handle's use of the mailbox (the mailbox itself stays; see `delete`).
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        // Messages fetched but never handed over go back to the stream at once.
        for message in prefetched { letGo(message, since: fetchedAt) }
        prefetched.removeAll()
        if let pack = packInHand {
            // How far this handle got is recorded: the next holder skips that far.
            letGo(pack.message, since: pack.touched)
            packInHand = nil
        }
        pipeline = nil
        releaseRoles()
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
        var settings = StreamMapping.Settings(capacity: options.capacity, maxMessageSize: options.maxMessageSize,
                                              receiverPolicy: options.receiverPolicy, ownership: options.ownership,
                                              nonce: randomHex(), redeliveryDelay: options.redeliveryDelay)
        if options.capacity.kind == .unbounded {
            settings.storedSize = max(options.maxMessageSize, min(Pack.maxBody, connection.maxPayload - StreamMapping.headerAllowance))
        }
        try makeStream(mapping, settings: settings, options: options, connection: connection)
        try addConsumer(mapping, redeliveryDelay: options.redeliveryDelay, connection: connection)
        if options.capacity.kind == .unbounded {
            // Batches pack their sends into this mailbox; the packs' progress is kept with as many
            // copies as the mailbox's (if the bucket does not exist yet).
            do throws(RemoteMailboxError) {
                _ = try connection.packProgress(replicas: options.replicas)
            } catch {
                _ = try? deleteStream(mapping, connection: connection)
                throw error
            }
        }
        let box = RemoteMailbox(connection: connection, mapping: mapping, settings: settings)
        if options.ownership == .system {
            do throws(RemoteMailboxError) {
                try box.becomeSystemOwner()
            } catch {
                _ = try? deleteStream(mapping, connection: connection)
                throw error
            }
        }
        if options.ownership == .process {
            do throws(RemoteMailboxError) {
                let (lease, holder) = try connection.takeLease(box.leaseKey("owner"), identity: box.identity, replicas: options.replicas)
                // A new mailbox's owner key is free unless a dead predecessor's is still unexpired.
                guard let lease else { throw .alreadyExists("\(name) (its previous owner \(holderName(holder)) is not yet expired)") }
                box.ownerLease = lease
            } catch {
                _ = try? deleteStream(mapping, connection: connection)
                throw error
            }
        }
        return box
    }

    /// Creates the stream for `mapping` with `settings` in its description; `alreadyExists` if
    /// one is there (even with the same configuration: the description's nonce tells).
    static func makeStream(_ mapping: StreamMapping, settings: StreamMapping.Settings, options: RemoteMailboxOptions,
                           connection: NATSConnection) throws(RemoteMailboxError) {
        let strings = CStrings()
        var config = jsStreamConfig()
        jsStreamConfig_Init(&config)
        config.Name = strings.make(mapping.streamName)
        config.Description = strings.make(settings.encoded)
        var subject: UnsafePointer<CChar>? = strings.make(mapping.streamSubjects)
        config.SubjectsLen = 1
        config.Discard = js_DiscardNew
        if mapping.isEndpoint {
            // Overlapping consumers (any, from-P) need limits retention; a handled message is
            // deleted by its receiver. Each link (subject) holds at most the capacity.
            config.Retention = js_LimitsPolicy
            config.MaxMsgs = -1
            config.MaxMsgsPerSubject = Int64(options.capacity.messages)
            config.DiscardNewPerSubject = true
        } else {
            config.Retention = js_WorkQueuePolicy
            switch options.capacity.kind {
            case .zero: config.MaxMsgs = 1
            case .bounded: config.MaxMsgs = Int64(options.capacity.messages)
            case .unbounded:
                config.MaxMsgs = -1
                config.MaxBytes = options.maxBytes.map { Int64($0) } ?? -1
            }
        }
        config.Storage = options.storage == .file ? js_FileStorage : js_MemoryStorage
        config.Replicas = Int64(options.replicas)
        // An unbounded mailbox's stream also takes a full pack (a send is still refused beyond
        // `maxMessageSize`, as `messageTooLarge`, before anything is sent).
        config.MaxMsgSize = Int32((settings.storedSize ?? options.maxMessageSize) + StreamMapping.headerAllowance)
        config.Duplicates = options.duplicateWindow.nanoseconds
        var info: UnsafeMutablePointer<jsStreamInfo>?
        let (status, code) = withUnsafeMutablePointer(to: &subject) { subjects in
            config.Subjects = UnsafeMutablePointer(mutating: subjects)
            return connection.jetStreamRequest { code in
                jsStreamInfo_Destroy(info)
                info = nil
                return js_AddStream(&info, connection.jetStream, &config, nil, &code)
            }
        }
        defer { jsStreamInfo_Destroy(info) }
        if status != NATS_OK {
            // 10058: a stream with this name and another configuration exists; 10065: another
            // stream already listens on the subject.
            if code == JSStreamNameExistErr || code.rawValue == 10065 { throw .alreadyExists(mapping.name) }
            throw NATSStatus.error(status, errorCode: code, "creating stream \(mapping.streamName)")
        }
        // Adding a stream identical to an existing one succeeds: the nonce tells ours apart.
        if let info, let description = info.pointee.Config.pointee.Description,
           StreamMapping.Settings(description: String(cString: description))?.nonce != settings.nonce {
            throw .alreadyExists(mapping.name)
        }
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
        let box = RemoteMailbox(connection: connection, mapping: mapping, settings: settings)
        try box.checkOwner(force: true)
        // The owner of a system-owned mailbox shows it is alive while a handle of it is open;
        // every process with a handle open shows it is present (it may be made owner).
        if box.ownership == .system {
            try box.holdPresence()
            if let owner = try box.owner, owner.host == box.identity.host, owner.pid == box.identity.pid {
                try box.holdOwnerAlive()
            }
        }
        return box
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
        let settings = try settings(of: mapping, connection: connection)
        guard try deleteStream(mapping, connection: connection) else { throw .notFound(name) }
        forgetPacks(of: name, connection: connection)
        if settings.ownership == .system, let rights = try? connection.rights() {
            rights.remove("\(name).owner")
            rights.remove("\(name).grants")
        }
    }

    /// Removes what the progress bucket keeps about packs of mailbox `name`, in any incarnation
    /// (nothing if the bucket does not exist).
    static func forgetPacks(of name: String, connection: NATSConnection) {
        var options = jsOptions()
        jsOptions_Init(&options)
        var code = jsErrCode(0)
        "$KV.\(Pack.progressBucket).\(name).>".withCString { subject in
            options.Stream.Purge.Subject = subject
            _ = js_PurgeStream(connection.jetStream, "KV_" + Pack.progressBucket, &options, &code)
        }
    }

    /// Deletes the mailbox's stream; false if it was already gone.
    static func deleteStream(_ mapping: StreamMapping, connection: NATSConnection) throws(RemoteMailboxError) -> Bool {
        let (status, code) = connection.jetStreamRequest { code in js_DeleteStream(connection.jetStream, mapping.streamName, nil, &code) }
        if code == JSStreamNotFoundErr || status == NATS_NOT_FOUND { return false }
        try NATSStatus.check(status, errorCode: code, "deleting stream \(mapping.streamName)")
        return true
    }

    /// The names of the remote mailboxes on the server.
    public static func list(on connection: NATSConnection) throws(RemoteMailboxError) -> [String] {
        var list: UnsafeMutablePointer<jsStreamNamesList>?
        let (status, code) = connection.jetStreamRequest { code in
            jsStreamNamesList_Destroy(list)
            list = nil
            return js_StreamNames(&list, connection.jetStream, nil, &code)
        }
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

    /// How many messages wait in the mailbox (including ones taken but not yet finished). A pack
    /// of messages sent together by a `batch` counts once until it is finished.
    public var depth: Int {
        get throws(RemoteMailboxError) {
            let info = try Self.streamInfo(mapping, connection: connection)
            defer { jsStreamInfo_Destroy(info) }
            return Int(info.pointee.State.Msgs)
        }
    }

    // MARK: Helpers

    static func validate(_ options: RemoteMailboxOptions, connection: NATSConnection) throws(RemoteMailboxError) {
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
        case .exclusive, .pair: break
        }

    }

    static func addConsumer(_ mapping: StreamMapping, redeliveryDelay: Duration, connection: NATSConnection,
                            deleteStreamOnFailure: Bool = true) throws(RemoteMailboxError) {
        let strings = CStrings()
        var config = jsConsumerConfig()
        jsConsumerConfig_Init(&config)
        config.Durable = strings.make(mapping.consumerName)
        config.AckPolicy = js_AckExplicit
        config.AckWait = redeliveryDelay.nanoseconds
        config.MaxDeliver = -1
        config.DeliverPolicy = js_DeliverAll
        config.FilterSubject = strings.make(mapping.consumerFilter)
        let (status, code) = connection.jetStreamRequest { code in
            var info: UnsafeMutablePointer<jsConsumerInfo>?
            defer { jsConsumerInfo_Destroy(info) }
            return js_AddConsumer(&info, connection.jetStream, mapping.streamName, &config, nil, &code)
        }
        if status != NATS_OK {
            let error = NATSStatus.error(status, errorCode: code, "creating consumer \(mapping.consumerName)")
            // Leave no half-made mailbox behind.
            if deleteStreamOnFailure { _ = js_DeleteStream(connection.jetStream, mapping.streamName, nil, nil) }
            throw error
        }
    }

    static func streamInfo(_ mapping: StreamMapping, connection: NATSConnection) throws(RemoteMailboxError) -> UnsafeMutablePointer<jsStreamInfo> {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        let (status, code) = connection.jetStreamRequest { code in
            jsStreamInfo_Destroy(info)
            info = nil
            return js_GetStreamInfo(&info, connection.jetStream, mapping.streamName, nil, &code)
        }
        if status == NATS_NOT_FOUND || code == JSStreamNotFoundErr { throw .notFound(mapping.name) }
        try NATSStatus.check(status, errorCode: code, "reading stream \(mapping.streamName)")
        guard let info else { throw .notFound(mapping.name) }
        return info
    }

    static func settings(of mapping: StreamMapping, connection: NATSConnection) throws(RemoteMailboxError) -> StreamMapping.Settings {
        let info = try streamInfo(mapping, connection: connection)
        defer { jsStreamInfo_Destroy(info) }
        guard let config = info.pointee.Config, let description = config.pointee.Description,
              let settings = StreamMapping.Settings(description: String(cString: description))
        else { throw .notAMailbox(mapping.name) }
        var described = settings
        if config.pointee.MaxMsgSize > 0 { described.storedSize = Int(config.pointee.MaxMsgSize) - StreamMapping.headerAllowance }
        return described
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

/// The last `kept` stream sequences a receiving handle acknowledged (see `RemoteMailbox.handed`).
struct HandedSequences {
    static let kept = 4096
    var sequences = Set<UInt64>()
    /// The same sequences in the order handed; `next` is the oldest once `kept` are held.
    var order: [UInt64] = []
    var next = 0
}
