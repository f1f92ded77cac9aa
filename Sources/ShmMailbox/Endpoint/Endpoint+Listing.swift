extension Endpoint {
    /// A one-to-one link between two endpoints: the mailbox (`/dev/shm/shmmb.@FROM>TO`) that
    /// carries messages from `from` to `to`.
    public struct Link: Sendable, Equatable {
        /// The sending endpoint.
        public var from: String
        /// The receiving endpoint.
        public var to: String
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
