extension Endpoint {
    /// A one-to-one link between two endpoints: the mailbox (`/dev/shm/shmmb.@FROM>TO`) that
    /// carries messages from `from` to `to`.
    public struct Link: Sendable, Equatable {
        /// The sending endpoint.
        public var from: String
        /// The receiving endpoint.
        public var to: String

        /// Messages waiting in this link right now, sent by `from` and not yet received by `to`
        /// (a snapshot, as `Mailbox.depth`). Read-only: it opens the link's segment without taking
        /// a role or a lease, and writes nothing. The segment is untrusted like any other: its
        /// file is checked against `trust` and its header validated as `Mailbox.open` does, and a
        /// segment that is not a one-to-one link is refused rather than read.
        ///
        /// ```swift
        /// for link in try Endpoint.links() {
        ///     print("\(link.from)>\(link.to)", (try? link.depth()) ?? -1)
        /// }
        /// ```
        ///
        /// - Parameter trust: whose segments to accept (default: this user's, not writable by
        ///   others). See `SegmentTrust`.
        /// - Throws: `invalidName` when `from` or `to` is not a valid endpoint name; `notFound`
        ///   when the link is gone (retired since it was listed); `notAMailbox` when the object
        ///   is not a one-to-one mailbox; otherwise what `Mailbox.open(_:waitStrategy:trust:)`
        ///   throws.
        public func depth(trust: SegmentTrust = .sameUser) throws(MailboxError) -> Int {
            try EndpointName.validate(from)
            try EndpointName.validate(to)
            let name = EndpointName.link(from: from, to: to)
            let link = try Mailbox.open(name, waitStrategy: .block, trust: trust, patience: .zero)
            guard link.kind == .oneToOne else { throw .notAMailbox(name.name) }
            return link.depth
        }
    }

    /// The endpoints on this machine (the `shmmb.@NAME` objects in /dev/shm), sorted.
    public static func list() throws(MailboxError) -> [String] {
        try SharedSegment.objectNames().compactMap { object in
            if case .endpoint(let name) = EndpointName.parse(objectName: object) { return name }
            return nil
        }
    }

    /// The links between endpoints on this machine (the `shmmb.@FROM>TO` objects), sorted by
    /// sender, then receiver.
    public static func links() throws(MailboxError) -> [Link] {
        try SharedSegment.objectNames().compactMap { object in
            if case .link(let from, let to) = EndpointName.parse(objectName: object) { return Link(from: from, to: to) }
            return nil
        }
    }
}
