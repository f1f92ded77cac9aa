extension Endpoint {
    /// How `Endpoint.join` sets up an endpoint and the links it creates.
    ///
    /// A link is created by its sender, with the sender's options; the receiving endpoint uses
    /// it as it is. Two endpoints may therefore choose different options: each one's own
    /// settings shape the links it sends on.
    public struct Options: Sendable, Equatable {
        /// Most messages waiting on one link (a `.oneToOne` mailbox) this endpoint sends on
        /// (1…16 Mi, default 256). A send to a full link blocks, times out or fails to `trySend`.
        public var linkCapacity: Int
        /// Largest message in bytes this endpoint can send on a link it creates (1 B…1 GiB,
        /// default 16 KiB). With the defaults each link reserves 8 MiB of `/dev/shm`: the power
        /// of two at or above `(linkCapacity + 1) × align(16 + maxMessageSize, 16)`, plus a 12 KiB header.
        public var maxMessageSize: Int
        /// Permission bits of the endpoint's segment and of the links it creates (default
        /// `0o600`: only this user). Must include `0o600`.
        public var permissions: UInt32
        /// How blocking and timed calls wait (spin, then sleep on a futex).
        public var waitStrategy: WaitStrategy
        /// Whose endpoint segments and links to accept (default: this user's; see `SegmentTrust`).
        public var trust: SegmentTrust

        /// Options with the given values; the defaults give 256 messages of up to 16 KiB per link,
        /// only this user's access, the default wait strategy and this user's segments only.
        public init(linkCapacity: Int = 256, maxMessageSize: Int = 16 * 1024,
                    permissions: UInt32 = 0o600, waitStrategy: WaitStrategy = .default,
                    trust: SegmentTrust = .sameUser) {
            self.linkCapacity = linkCapacity
            self.maxMessageSize = maxMessageSize
            self.permissions = permissions
            self.waitStrategy = waitStrategy
            self.trust = trust
        }

        /// The options of the links this endpoint creates.
        var linkOptions: MailboxOptions {
            MailboxOptions(capacity: .bounded(linkCapacity), maxMessageSize: maxMessageSize, kind: .oneToOne,
                           permissions: permissions, waitStrategy: waitStrategy)
        }

        /// Throws `invalidOptions` for values a link could not be created with.
        func validate() throws(MailboxError) {
            guard linkCapacity >= 1 else {
                throw .invalidOptions("linkCapacity must be at least 1 (a link is a one-to-one mailbox), not \(linkCapacity)")
            }
            _ = try SegmentGeometry(kind: .oneToOne, capacity: .bounded(linkCapacity), maxMessageSize: maxMessageSize)
            guard permissions & ~0o777 == 0, permissions & 0o600 == 0o600 else {
                throw .invalidOptions("permissions must be within 0o777 and include 0o600, not 0o\(String(permissions, radix: 8))")
            }
        }
    }
}
