extension NATSServer {
    /// How to configure a test server. The defaults give a JetStream server without authentication.
    public struct Options: Sendable {
        /// Enables JetStream (`jetstream { store_dir }`); readiness then also requires JetStream.
        public var jetStream: Bool
        /// With ``password``: clients must log in with this user (`authorization { user, password }`).
        public var user: String?
        /// The password for ``user``.
        public var password: String?
        /// Clients must present this token (`authorization { token }`); not combinable with ``user``.
        public var token: String?
        /// The largest message payload the server accepts (`max_payload`, bytes); `nil` keeps the default (1 MiB).
        public var maxPayload: Int?
        /// Configuration text appended verbatim to the generated file (for example `"max_connections: 10"`).
        public var extraConfiguration: String
        /// Command-line arguments passed after `-c CONFIG` (for example `["-DV"]` for debug and trace logging).
        public var extraArguments: [String]
        /// How long to wait for the health check to pass at start and restart.
        public var readyTimeout: Duration

        /// Creates options; every parameter has the default described on its property.
        public init(jetStream: Bool = true, user: String? = nil, password: String? = nil, token: String? = nil,
                    maxPayload: Int? = nil, extraConfiguration: String = "", extraArguments: [String] = [],
                    readyTimeout: Duration = .seconds(10)) {
            self.jetStream = jetStream
            self.user = user
            self.password = password
            self.token = token
            self.maxPayload = maxPayload
            self.extraConfiguration = extraConfiguration
            self.extraArguments = extraArguments
            self.readyTimeout = readyTimeout
        }
    }
}
