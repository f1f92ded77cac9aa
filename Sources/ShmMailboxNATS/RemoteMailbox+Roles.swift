import ShmMailbox

/// Roles across machines, each a lease (see `LeaseTable`):
///
/// - `.exclusive` and `.pair`: the receive turn, `<name>.receiver`, taken at the first receive
///   and held until `close()` or the holder's death or disconnection (then free `LeaseTable.ttl`
///   later). Another receiver gets `receiverBusy`, or waits if `whenReceiverBusy` is `.wait`.
/// - `.pair`: also the send role, `<name>.sender`, taken at the first send (`roleTaken`).
/// - `.system` ownership: see `RemoteMailbox+Ownership`.
/// - `.process` ownership: `<name>.owner`, taken by `create` and held by that handle. Only the
///   owner receives. When the owner closes the handle the mailbox is deleted; when it dies or
///   loses its connection, the first sender to notice (senders look at most once a second, and
///   on every retry while blocked) deletes it, and every sender then gets `ownerTerminated`.
extension RemoteMailbox {
    func leaseKey(_ role: String) -> String { "\(name).\(role)" }

    /// Before a receive: the rights and turn it needs, waiting for the turn until `deadline` if
    /// `whenReceiverBusy` says so.
    func claimReceiveRight(deadline: ContinuousClock.Instant?) throws(RemoteMailboxError) {
        if ownership == .process {
            guard let ownerLease else { throw .notPermitted("only the owner of process-owned mailbox '\(name)' receives from it") }
            if ownerLease.isLost { throw .ownerTerminated(name) }
        }
        if ownership == .system { try checkSystemRight() }
        guard receiverPolicy == .exclusive || receiverPolicy == .pair else { return }
        if let lease = receiverLease, !lease.isLost { return }
        receiverLease = nil
        while true {
            let (lease, holder) = try connection.takeLease(leaseKey("receiver"), identity: identity)
            if let lease {
                receiverLease = lease
                return
            }
            let expired = deadline.map { ContinuousClock.now >= $0 } ?? false
            guard whenReceiverBusy == .wait, !expired else { throw .receiverBusy(Self.holderName(holder)) }
            sleepFor(.milliseconds(100))
        }
    }

    /// Before a send: the send role of a pair; the owner's liveness for a process-owned mailbox.
    func claimSendRight() throws(RemoteMailboxError) {
        if ownership == .process { try checkOwner(force: false) }
        guard receiverPolicy == .pair else { return }
        if let lease = senderLease, !lease.isLost { return }
        senderLease = nil
        let (lease, holder) = try connection.takeLease(leaseKey("sender"), identity: identity)
        guard let lease else { throw .roleTaken("sender", holder: Self.holderName(holder)) }
        senderLease = lease
    }

    /// For a process-owned mailbox: throws `ownerTerminated` (after deleting the mailbox) when
    /// its owner's lease is gone. Looks at most once a second unless `force`d.
    func checkOwner(force: Bool) throws(RemoteMailboxError) {
        guard ownership == .process, ownerLease == nil else { return }
        let now = ContinuousClock.now
        guard force || now - lastOwnerCheck >= .seconds(1) else { return }
        lastOwnerCheck = now
        if try connection.leases().holder(of: leaseKey("owner")) == nil {
            _ = try? Self.deleteStream(mapping, connection: connection)
            throw .ownerTerminated(name)
        }
    }

    /// Gives up every role this handle holds; the owner of a process-owned mailbox deletes it.
    func releaseRoles() {
        receiverLease?.release()
        senderLease?.release()
        ownerAliveLease?.release()
        ownerAliveLease = nil
        presenceLease?.release()
        presenceLease = nil
        receiverLease = nil
        senderLease = nil
        if let ownerLease {
            _ = try? Self.deleteStream(mapping, connection: connection)
            ownerLease.release()
            self.ownerLease = nil
        }
    }

    /// The sender identity in a lease value (`host;pid[;name]|token`), readable.
    static func holderName(_ value: String?) -> String {
        guard let value, let identity = value.split(separator: "|").first,
              let sender = RemoteSender(encoded: String(identity)) else { return value ?? "unknown" }
        return sender.description
    }
}
