#if canImport(Glibc)
import Glibc
#endif
import CNATS
import Synchronization

/// A connection to a NATS server or cluster, with its JetStream context: what remote mailboxes
/// travel on. Thread-safe (libnats connections are); share one among many mailboxes.
///
/// libnats reconnects on its own when the server is lost (to any URL of the cluster): calls made
/// meanwhile wait, time out or fail as their timeouts say, and sends are retried under the same
/// message id, so none is lost or doubled.
public final class NATSConnection: @unchecked Sendable {
    /// How to connect.
    public struct Options: Sendable, Equatable {
        /// Shown by the server's monitoring (`/connz`) for this client.
        public var name: String?
        /// User and password (also accepted in the URL, `nats://user:password@host:port`).
        public var user: String?
        /// The password for `user`.
        public var password: String?
        /// Token authentication (also accepted in the URL, `nats://token@host:port`).
        public var token: String?
        /// TLS: require it, trusting these CA certificates (PEM file), optionally presenting a
        /// client certificate and key (PEM files).
        public var tls: TLS?
        /// How long connecting to one server may take.
        public var connectTimeout: Duration = .seconds(2)
        /// How long a JetStream request (publish acknowledgement, stream and consumer requests)
        /// waits for its answer before a call retries or gives up.
        public var requestTimeout: Duration = .seconds(5)
        /// How often to try to reconnect after losing the server (nil: forever), and the pause
        /// between attempts on one server.
        public var maxReconnects: Int? = nil
        /// The pause between reconnect attempts on one server.
        public var reconnectWait: Duration = .milliseconds(250)
        /// The most message bytes a receiver keeps in hand (fetched, not yet handed over) per
        /// mailbox. A receive asks the server for at most half of it at once (a pull request's
        /// `max_bytes`), so a batch of large messages comes in parts and the client never falls
        /// behind what it asked for (NATS's "slow consumer": libnats drops messages, which then
        /// come back only after the mailbox's `redeliveryDelay`). Raised to twice the server's
        /// `max_payload` plus headers where smaller, so that any one message fits.
        ///
        /// The server has a limit of its own: it cuts off a client for which more than its
        /// `max_pending` (64 MB by default) waits to be written. A receive cut off while fetching
        /// halves what its mailbox handle asks for from then on, down to one message. Over a slow
        /// link, what one request asks for should also cross it within the server's
        /// `write_deadline`.
        public var receiveBufferSize: Int = 16 << 20

        /// TLS settings (libnats's, backed by OpenSSL).
        public struct TLS: Sendable, Equatable {
            /// PEM file of the CA certificates the server's certificate must chain to.
            public var caCertificatesFile: String?
            /// PEM file of the client certificate (with `keyFile`), for servers that verify clients.
            public var certificateFile: String?
            /// PEM file of the client certificate's private key.
            public var keyFile: String?
            /// The host name the server's certificate must name, if not the URL's.
            public var expectedHostname: String?

            /// TLS with these files; all optional (the system's CAs are not loaded: name one).
            public init(caCertificatesFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil,
                        expectedHostname: String? = nil) {
                self.caCertificatesFile = caCertificatesFile
                self.certificateFile = certificateFile
                self.keyFile = keyFile
                self.expectedHostname = expectedHostname
            }
        }

        /// Options with these credentials; the timeouts and reconnect settings keep their defaults.
        public init(name: String? = nil, user: String? = nil, password: String? = nil, token: String? = nil,
                    tls: TLS? = nil) {
            self.name = name
            self.user = user
            self.password = password
            self.token = token
            self.tls = tls
        }
    }

    /// The server URLs given (any of them may serve; libnats also learns the cluster's others).
    public let urls: [String]
    /// How this connection was made.
    public let options: Options
    let connection: OpaquePointer
    let jetStream: OpaquePointer
    /// The server's `max_payload`: no message may be larger.
    public let maxPayload: Int
    /// `options.receiveBufferSize`, raised to hold two of the largest messages (see there).
    let receiveBufferSize: Int
    /// The key-value buckets (leases, rights, packs' progress), each opened at first use, and
    /// the thread that keeps this connection's leases.
    private let leaseTable = Mutex<LeaseTable?>(nil)
    private let rightsTable = Mutex<LeaseTable?>(nil)
    private let packTable = Mutex<LeaseTable?>(nil)
    let leaseKeeper = LeaseKeeper()

    /// Connects to the first server that answers among `urls` (`nats://host:port`).
    ///
    /// - Throws: `unreachable` (naming the URLs) when none answers, `authenticationFailed`,
    ///   `jetStreamUnavailable`, `invalidOptions`.
    public init(_ urls: [String], options: Options = Options()) throws(RemoteMailboxError) {
        guard !urls.isEmpty else { throw .invalidOptions("no NATS server URL given") }
        self.urls = urls
        self.options = options
        var natsOptions: OpaquePointer?
        try NATSStatus.check(natsOptions_Create(&natsOptions), "creating connection options")
        defer { natsOptions_Destroy(natsOptions) }
        try Self.configure(natsOptions, urls: urls, options: options)

        var made: OpaquePointer?
        let status = natsConnection_Connect(&made, natsOptions)
        switch status {
        case NATS_OK: break
        case NATS_CONNECTION_AUTH_FAILED, NATS_NOT_PERMITTED: throw .authenticationFailed(urls: urls)
        default:
            throw .unreachable(urls: urls, reason: "\(NATSStatus.name(status)) \(NATSStatus.lastErrorText())")
        }
        let connection = made!
        // Everything is checked before the stored properties are set: once they are, a throw
        // would run deinit, which releases them.
        var jsOptions = jsOptions()
        jsOptions_Init(&jsOptions)
        jsOptions.Wait = options.requestTimeout.milliseconds
        var context: OpaquePointer?
        let jsStatus = natsConnection_JetStream(&context, connection, &jsOptions)
        guard jsStatus == NATS_OK, let context else {
            natsConnection_Destroy(connection)
            throw NATSStatus.error(jsStatus, "creating the JetStream context")
        }
        // An account without JetStream answers this with an error: say so now, not at first use.
        var info: UnsafeMutablePointer<jsAccountInfo>?
        var code = jsErrCode(0)
        let infoStatus = js_GetAccountInfo(&info, context, nil, &code)
        jsAccountInfo_Destroy(info)
        if infoStatus != NATS_OK {
            let text = NATSStatus.lastErrorText()
            jsCtx_Destroy(context)
            natsConnection_Destroy(connection)
            throw .jetStreamUnavailable("\(NATSStatus.name(infoStatus)) \(text)")
        }
        self.connection = connection
        jetStream = context
        maxPayload = Int(natsConnection_GetMaxPayload(connection))
        receiveBufferSize = max(options.receiveBufferSize, 2 * (maxPayload + Self.headerAllowance))
    }

    /// What a message may take on the wire beyond its payload (subject, reply subject, headers)
    /// when the server counts a pull request's `max_bytes`.
    static let headerAllowance = 4096

    /// Connects to one server (`nats://host:port`); see `init(_:options:)`.
    public convenience init(_ url: String, options: Options = Options()) throws(RemoteMailboxError) {
        try self.init([url], options: options)
    }

    deinit {
        leaseKeeper.stop()
        jsCtx_Destroy(jetStream)
        natsConnection_Close(connection)
        natsConnection_Destroy(connection)
    }

    /// Runs a JetStream API request (`request` returns its status and fills in the JetStream
    /// error code), again while the cluster cannot answer it: no answer, no responder, "temporarily
    /// unavailable" (10008) or "not leader" (10009), as while a server is lost and leaders are
    /// elected again. Gives up after three request timeouts. The requests retried this way are
    /// idempotent (adding an identical stream or consumer, reading, deleting).
    func jetStreamRequest(_ request: (inout jsErrCode) -> natsStatus) -> (natsStatus, jsErrCode) {
        let deadline = ContinuousClock.now + options.requestTimeout * 3
        var pause = Duration.milliseconds(50)
        while true {
            var code = jsErrCode(0)
            let status = request(&code)
            let transient = status == NATS_TIMEOUT || status == NATS_NO_RESPONDERS || code.rawValue == 10008
                || code.rawValue == 10009 || natsConnection_IsReconnecting(connection)
            if status == NATS_OK || !transient || ContinuousClock.now >= deadline { return (status, code) }
            sleepFor(pause)
            pause = min(pause * 2, .milliseconds(500))
        }
    }

    /// The lease bucket (created with `replicas` copies if it does not exist yet).
    func leases(replicas: Int = 1) throws(RemoteMailboxError) -> LeaseTable {
        try table(leaseTable, bucket: LeaseTable.bucket, ttl: LeaseTable.ttl, replicas: replicas)
    }

    /// The bucket of lasting rights (`SHMMB_RIGHTS`, no time to live): system owners and grants.
    func rights(replicas: Int = 1) throws(RemoteMailboxError) -> LeaseTable {
        try table(rightsTable, bucket: "SHMMB_RIGHTS", ttl: nil, replicas: replicas)
    }

    /// The bucket of packs' progress (`SHMMB_PACKS`, no time to live; see `Pack`).
    func packProgress(replicas: Int = 1) throws(RemoteMailboxError) -> LeaseTable {
        try table(packTable, bucket: Pack.progressBucket, ttl: nil, replicas: replicas)
    }

    /// The table kept in `slot`, opening `bucket` (created with `replicas` copies and values
    /// living `ttl`, if it does not exist yet) at first use.
    private func table(_ slot: borrowing Mutex<LeaseTable?>, bucket: String, ttl: Duration?, replicas: Int) throws(RemoteMailboxError) -> LeaseTable {
        try slot.withLock { (table) throws(RemoteMailboxError) -> LeaseTable in
            if let table { return table }
            let opened = try LeaseTable(connection: self, bucket: bucket, ttl: ttl, replicas: replicas)
            table = opened
            return opened
        }
    }

    /// Takes `key` for `identity` and keeps it alive until released; nil with the holder's
    /// value when someone else holds it.
    func takeLease(_ key: String, identity: RemoteSender, replicas: Int = 1) throws(RemoteMailboxError) -> (Lease?, heldBy: String?) {
        let table = try leases(replicas: replicas)
        let holder = "\(identity.encoded)|\(RemoteMailbox.randomHex())"
        switch try table.take(key, holder: holder) {
        case .taken(let revision):
            let lease = Lease(key: key, holder: holder, revision: revision, table: table)
            leaseKeeper.keep(lease)
            return (lease, nil)
        case .held(let value):
            return (nil, value)
        }
    }

    /// How many times libnats has reconnected: after losing a server, or after the server cut
    /// this client off (a slow consumer, which `RemoteMailbox`'s receives answer by asking for less).
    var reconnects: UInt64 {
        var statistics: OpaquePointer?
        guard natsStatistics_Create(&statistics) == NATS_OK else { return 0 }
        defer { natsStatistics_Destroy(statistics) }
        var count: UInt64 = 0
        guard natsConnection_GetStats(connection, statistics) == NATS_OK,
              natsStatistics_GetCounts(statistics, nil, nil, nil, nil, &count) == NATS_OK else { return 0 }
        return count
    }

    /// Closes the connection: every mailbox on it then fails with `closed`.
    public func close() {
        natsConnection_Close(connection)
    }

    /// Whether the connection was closed (by `close()` or after giving up reconnecting).
    public var isClosed: Bool { natsConnection_IsClosed(connection) }

    /// The URL of the server currently connected to, if any.
    public var connectedURL: String? {
        var buffer = [CChar](repeating: 0, count: 512)
        guard natsConnection_GetConnectedUrl(connection, &buffer, buffer.count) == NATS_OK, buffer[0] != 0 else { return nil }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    private static func configure(_ natsOptions: OpaquePointer?, urls: [String], options: Options) throws(RemoteMailboxError) {
        var cStrings = urls.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let status = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { natsOptions_SetServers(natsOptions, $0.baseAddress, Int32($0.count)) }
        }
        try NATSStatus.check(status, "setting the server URLs")
        // Try the URLs in the order given (the first is the preferred server).
        try NATSStatus.check(natsOptions_SetNoRandomize(natsOptions, true), "setting the server order")
        if let name = options.name { try NATSStatus.check(natsOptions_SetName(natsOptions, name), "setting the name") }
        if options.user != nil || options.password != nil {
            try NATSStatus.check(natsOptions_SetUserInfo(natsOptions, options.user, options.password), "setting user and password")
        }
        if let token = options.token { try NATSStatus.check(natsOptions_SetToken(natsOptions, token), "setting the token") }
        try NATSStatus.check(natsOptions_SetTimeout(natsOptions, options.connectTimeout.milliseconds), "setting the connect timeout")
        try NATSStatus.check(natsOptions_SetMaxReconnect(natsOptions, Int32(clamping: options.maxReconnects ?? -1)), "setting reconnects")
        try NATSStatus.check(natsOptions_SetReconnectWait(natsOptions, options.reconnectWait.milliseconds), "setting the reconnect wait")
        if let tls = options.tls {
            try NATSStatus.check(natsOptions_SetSecure(natsOptions, true), "enabling TLS")
            if let ca = tls.caCertificatesFile {
                try NATSStatus.check(natsOptions_LoadCATrustedCertificates(natsOptions, ca), "loading CA certificates from \(ca)")
            }
            if let certificate = tls.certificateFile, let key = tls.keyFile {
                try NATSStatus.check(natsOptions_LoadCertificatesChain(natsOptions, certificate, key), "loading the client certificate")
            }
            if let host = tls.expectedHostname {
                try NATSStatus.check(natsOptions_SetExpectedHostname(natsOptions, host), "setting the expected host name")
            }
        }
    }
}

extension Duration {
    /// Whole milliseconds, at least 1 for a positive duration (libnats's unit for timeouts).
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let total = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return total == 0 && self > .zero ? 1 : total
    }

    /// Whole nanoseconds (JetStream's unit for durations in configurations).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
