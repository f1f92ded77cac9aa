import ShmMailbox

/// System ownership across machines: a system-owned mailbox lives until deleted, whoever created
/// it; its owner (at first its creator) receives, and lets others receive with `grantReceive`.
///
/// The owner and the grants are kept in the key-value bucket `SHMMB_RIGHTS` (no time to live):
/// `<name>.owner` holds the owner's identity (`host;pid`), `<name>.grants` the identities it
/// granted. While its handle is open, the owner also holds the lease `<name>.owner-alive` (in
/// `SHMMB_LEASES`), which is how `reclaimOwnership` tells a dead owner from a live one on another
/// host. Every process with a handle of the mailbox open holds `<name>.open.<host>.<pid>` too:
/// a process made owner by `transferOwnership` takes `owner-alive` only at its next receive, and
/// until then its open lease says it is there. Each change is one conditional write on the
/// revision read, as every lease is.
///
/// Identities are the ones handles declare (`identity`: host name and pid), as pids are locally:
/// rights order cooperating processes. To keep other programs out, use NATS accounts and subject
/// permissions on the server.
extension RemoteMailbox {
    /// The owner of a system-owned mailbox (nil for other ownerships).
    public var owner: RemoteSender? {
        get throws(RemoteMailboxError) {
            guard ownership == .system else { return nil }
            return try connection.rights().read(rightsKey("owner")).flatMap { RemoteSender(encoded: $0.1) }
        }
    }

    /// Lets `receiver` (a process on any host) receive from this system-owned mailbox. Only the
    /// owner may grant.
    ///
    /// - Throws: `notPermitted` (not system-owned, or this handle is not the owner).
    public func grantReceive(to receiver: RemoteSender) throws(RemoteMailboxError) {
        try requireSystemOwner("grant receive rights")
        let rights = try connection.rights()
        let granted = "\(receiver.host);\(receiver.pid)"
        for _ in 0..<8 {
            guard let (revision, value) = try rights.read(rightsKey("grants")) else {
                try rights.put(rightsKey("grants"), granted)
                return
            }
            let list = value.split(separator: " ").map(String.init)
            if list.contains(granted) { return }
            if rights.update(rightsKey("grants"), (list + [granted]).joined(separator: " "), revision: revision) { return }
        }
        throw .notPermitted("the receive rights of mailbox '\(name)' kept changing while granting")
    }

    /// Makes `newOwner` the owner of this system-owned mailbox. This handle's process loses
    /// ownership and, unless it was granted a receive right, the right to receive.
    ///
    /// - Throws: `notPermitted` (not system-owned, not the owner, or ownership changed meanwhile).
    public func transferOwnership(to newOwner: RemoteSender) throws(RemoteMailboxError) {
        let revision = try requireSystemOwner("transfer ownership")
        guard try connection.rights().update(rightsKey("owner"), RemoteSender(host: newOwner.host, pid: newOwner.pid).encoded,
                                             revision: revision) else {
            throw .notPermitted("ownership of mailbox '\(name)' changed while transferring it")
        }
        ownerAliveLease?.release()
        ownerAliveLease = nil
        rightConfirmed = nil
    }

    /// Makes this handle's process the owner of a system-owned mailbox whose owner has gone
    /// (closed its handle, died or lost its connection, without transferring it): the way back to
    /// a mailbox nobody could receive from any more.
    ///
    /// - Throws: `notPermitted` (not system-owned, or the owner still holds it).
    public func reclaimOwnership() throws(RemoteMailboxError) {
        guard ownership == .system else {
            throw .notPermitted("only system-owned mailboxes can be reclaimed; '\(name)' is \(ownership.rawValue)-owned")
        }
        let rights = try connection.rights()
        let current = try rights.read(rightsKey("owner"))
        if let current, Self.sameProcess(current.1, identity) { return try holdOwnerAlive() }
        if let holder = try connection.leases().holder(of: leaseKey("owner-alive")) {
            throw .notPermitted("the owner of mailbox '\(name)', \(Self.holderName(holder)), still holds it")
        }
        // An owner by transfer that has the mailbox open, but has not received since.
        if let current, let owner = RemoteSender(encoded: current.1),
           let holder = try connection.leases().holder(of: presenceKey(of: owner)) {
            throw .notPermitted("the owner of mailbox '\(name)', \(Self.holderName(holder)), still holds it (open)")
        }
        let mine = RemoteSender(host: identity.host, pid: identity.pid).encoded
        let changed = if let current { rights.update(rightsKey("owner"), mine, revision: current.0) } else { (try? rights.put(rightsKey("owner"), mine)) != nil }
        guard changed else { throw .notPermitted("ownership of mailbox '\(name)' changed while reclaiming it") }
        rightConfirmed = nil
        try holdOwnerAlive()
    }

    // MARK: Internals

    func rightsKey(_ part: String) -> String { "\(name).\(part)" }

    /// At `create`: this handle's process owns the new mailbox; no grants.
    func becomeSystemOwner() throws(RemoteMailboxError) {
        let rights = try connection.rights()
        try rights.put(rightsKey("owner"), RemoteSender(host: identity.host, pid: identity.pid).encoded)
        rights.remove(rightsKey("grants"))
        try holdPresence()
        try holdOwnerAlive()
    }

    /// The key of `process`'s open lease on this mailbox (host name characters that keys do not
    /// allow become `_`).
    func presenceKey(of process: RemoteSender) -> String {
        let host = String(process.host.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") ? $0 : "_" })
        return leaseKey("open.\(host).\(process.pid)")
    }

    /// This handle holds its process's open lease on this system-owned mailbox while open
    /// (another handle of the process may hold it already: then nothing to do).
    func holdPresence() throws(RemoteMailboxError) {
        let key = presenceKey(of: identity)
        guard presenceLease?.key != key else { return }
        // The handle's identity changed since (`identity` is settable): present as the new one.
        presenceLease?.release()
        presenceLease = try connection.takeLease(key, identity: identity).0
    }

    /// The owner's handle holds `<name>.owner-alive` while open (another handle of the owner
    /// process may hold it already: then nothing to do).
    func holdOwnerAlive() throws(RemoteMailboxError) {
        guard ownerAliveLease == nil else { return }
        ownerAliveLease = try connection.takeLease(leaseKey("owner-alive"), identity: identity).0
    }

    /// Before a receive from a system-owned mailbox: the owner or a grantee may (checked at most
    /// once a second; a handle of the owner also keeps the owner's lease).
    func checkSystemRight() throws(RemoteMailboxError) {
        if let confirmed = rightConfirmed, ContinuousClock.now - confirmed < .seconds(1) { return }
        try holdPresence()
        let rights = try connection.rights()
        let owner = try rights.read(rightsKey("owner"))
        if let owner, Self.sameProcess(owner.1, identity) {
            try holdOwnerAlive()
        } else {
            let grants = try rights.read(rightsKey("grants"))?.1.split(separator: " ") ?? []
            guard grants.contains(where: { Self.sameProcess(String($0), identity) }) else {
                let ownerName = owner.flatMap { RemoteSender(encoded: $0.1) }.map(\.description) ?? "nobody"
                throw .notPermitted("mailbox '\(name)' is owned by \(ownerName); only it and the processes it grants receive rights may receive")
            }
        }
        rightConfirmed = .now
    }

    /// Throws `notPermitted` unless this handle's process owns this system-owned mailbox; returns
    /// the owner record's revision.
    @discardableResult
    private func requireSystemOwner(_ action: String) throws(RemoteMailboxError) -> UInt64 {
        guard ownership == .system else {
            throw .notPermitted("only system-owned mailboxes \(action); '\(name)' is \(ownership.rawValue)-owned")
        }
        guard let (revision, value) = try connection.rights().read(rightsKey("owner")), Self.sameProcess(value, identity) else {
            throw .notPermitted("only the owner of mailbox '\(name)' may \(action)")
        }
        return revision
    }

    /// Whether the encoded identity names the same process (host and pid) as `sender`.
    static func sameProcess(_ encoded: String, _ sender: RemoteSender) -> Bool {
        guard let other = RemoteSender(encoded: encoded) else { return false }
        return other.host == sender.host && other.pid == sender.pid
    }
}
