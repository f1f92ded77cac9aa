#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Ownership and receive rights (the textbook's process-owned and system-owned mailboxes).
extension Mailbox {
    /// The mailbox's current owner, or nil for `.none` ownership.
    public var owner: ProcessIdentity? {
        let word = ownerWord.holder
        return word == 0 ? nil : ProcessIdentity(packed: word)
    }

    private var rightsTable: LeaseArray {
        LeaseArray(at: SegmentLayout.rightsOffset, count: SegmentLayout.rightsCount, in: segment.base)
    }

    /// Lets `process` receive from this system-owned mailbox. Only the owner may grant. A start
    /// time of 0 means whichever process has that pid now; a known start time must be the
    /// running process's, so a message's `sender` can be granted as it is
    /// (`grantReceive(to: message.sender)`) without granting a later process that reused its pid.
    ///
    /// - Throws: `notPermitted` (not system-owned, not the owner, or 32 live processes already
    ///   hold rights), `noSuchProcess` (`process` does not run).
    public func grantReceive(to process: ProcessIdentity) throws(MailboxError) {
        try requireSystemOwner("grant receive rights")
        let target = try Self.running(process)
        guard rightsTable.claim(for: target.packed, liveness: liveness) != nil else {
            throw .notPermitted("mailbox \"\(name)\" already grants \(SegmentLayout.rightsCount) live processes the right to receive")
        }
    }

    /// Lets process `pid` (whichever process has it now) receive from this system-owned mailbox:
    /// `grantReceive(to: ProcessIdentity(pid: pid, startTime: 0))`.
    ///
    /// - Throws: `notPermitted` (not system-owned, not the owner, or 32 live processes already
    ///   hold rights), `noSuchProcess`.
    public func grantReceive(to pid: Int32) throws(MailboxError) {
        try grantReceive(to: ProcessIdentity(pid: pid, startTime: 0))
    }

    /// Makes `process` the owner of this system-owned mailbox. This process loses ownership
    /// and, unless it was granted a receive right, the right to receive. A start time of 0 means
    /// whichever process has that pid now; a known start time must be the running process's.
    ///
    /// - Throws: `notPermitted` (not system-owned, or not the owner), `noSuchProcess`
    ///   (`process` does not run).
    public func transferOwnership(to process: ProcessIdentity) throws(MailboxError) {
        try requireSystemOwner("transfer ownership")
        let target = try Self.running(process)
        // Exactly one transfer from this owner wins; receivers that see the new owner re-check
        // their rights.
        guard ownerWord.replace(packedMe, with: target.packed) else {
            throw .notPermitted("ownership of mailbox \"\(name)\" changed while transferring it")
        }
        confirmedOwner = 0
    }

    /// Makes process `pid` (whichever process has it now) the owner of this system-owned
    /// mailbox: `transferOwnership(to: ProcessIdentity(pid: pid, startTime: 0))`.
    ///
    /// - Throws: `notPermitted` (not system-owned, or not the owner), `noSuchProcess`.
    public func transferOwnership(to pid: Int32) throws(MailboxError) {
        try transferOwnership(to: ProcessIdentity(pid: pid, startTime: 0))
    }

    /// The running process `process` names, with its start time (looked up with
    /// `ProcessIdentity.live(pid:)`): any process with its pid if its start time is 0 (unknown),
    /// else only the one that started then (compared in the bits a packed identity keeps, since
    /// identities read from shared memory carry only those).
    private static func running(_ process: ProcessIdentity) throws(MailboxError) -> ProcessIdentity {
        guard let live = ProcessIdentity.live(pid: process.pid),
              process.startTime == 0
                || live.startTime & ProcessIdentity.packedStartMask == process.startTime & ProcessIdentity.packedStartMask
        else { throw .noSuchProcess(process.pid) }
        return live
    }

    /// Makes this process the owner of a system-owned mailbox whose owner has died (without
    /// transferring it): the way back to a mailbox nobody could receive from any more. Only a
    /// process running as the user that owns the segment may reclaim it (`shmbox reclaim`).
    ///
    /// - Throws: `notPermitted` (not system-owned, the owner still runs, or another user's
    ///   segment).
    public func reclaimOwnership() throws(MailboxError) {
        guard ownership == .system else {
            throw .notPermitted("only system-owned mailboxes can be reclaimed; \"\(name)\" is \(ownership.rawValue)-owned")
        }
        guard segment.uid == geteuid() else {
            throw .notPermitted("mailbox \"\(name)\" belongs to user \(segment.uid); only that user may reclaim it")
        }
        switch ownerWord.claim(for: packedMe, liveness: liveness) {
        case .taken, .alreadyHeld:
            confirmedOwner = 0
        case .heldBy(let holder):
            throw .notPermitted("the owner of mailbox \"\(name)\" (process \(ProcessIdentity(packed: holder).pid)) still runs; ask it to transfer ownership")
        }
    }

    // MARK: Checks used by send and receive

    /// Confirms that this process may receive under the current owner, and remembers the owner
    /// value so that the check reruns only when ownership changes.
    func checkReceiveRight() throws(MailboxError) {
        let owner = ownerWord.holder
        switch ownership {
        case .none:
            break
        case .process:
            if owner != packedMe {
                // Acquire: pairs with the release OR in `terminate`.
                if lifecycle.pointee.load(ordering: .acquiring) & SegmentLayout.ownerTerminatedFlag != 0 {
                    throw .ownerTerminated(name)
                }
                throw .notPermitted("only the owning process (\(ProcessIdentity(packed: owner).pid)) receives from process-owned mailbox \"\(name)\"; others may only send")
            }
        case .system:
            if owner != packedMe && rightsTable.index(of: packedMe) == nil {
                throw .notPermitted("process \(me.pid) has no right to receive from mailbox \"\(name)\"; its owner (\(ProcessIdentity(packed: owner).pid)) can grant one with grantReceive(to:), or if it died, its user can reclaim it (reclaimOwnership, shmbox reclaim)")
            }
        }
        confirmedOwner = owner
    }

    /// For a process-owned mailbox: throws `ownerTerminated` (and removes the segment's name) if
    /// the owner has terminated the mailbox or no longer runs. Liveness (a read of `/proc`) is
    /// checked at most every 10 ms unless `force` is set; the terminated flag on every call.
    func checkOwner(force: Bool) throws(MailboxError) {
        // Acquire: pairs with the release OR in `terminate`.
        if lifecycle.pointee.load(ordering: .acquiring) & SegmentLayout.ownerTerminatedFlag != 0 {
            try ownerGone(died: false)
        }
        let now = MonotonicClock.coarseNow()
        guard force || now >= nextOwnerCheck else { return }
        nextOwnerCheck = now &+ 10_000_000
        guard !liveness.isAlive(ownerWord.holder) else { return }
        try ownerGone(died: true)
    }

    /// The owner has gone (`died`: without terminating the mailbox): removes the name and throws
    /// `ownerTerminated`. The one process that noticed a death and removed the name reports it.
    @inline(never)
    private func ownerGone(died: Bool) throws(MailboxError) -> Never {
        if removeName(), died {
            MailboxEvents.emit(MailboxEvent(mailbox: name, kind: .mailboxGone(.ownerDied)))
        }
        throw .ownerTerminated(name)
    }

    /// The owner's exit: marks the mailbox terminated, removes its name and wakes everyone who
    /// waits on it, so that blocked senders fail with `ownerTerminated` at once.
    func terminate() {
        // Release: a process that sees the flag also sees everything the owner did before.
        lifecycle.pointee.bitwiseOr(SegmentLayout.ownerTerminatedFlag, ordering: .releasing)
        removeName()
        wakeEveryone()
        MailboxEvents.emit(MailboxEvent(mailbox: name, kind: .mailboxGone(.ownerClosed)))
    }

    /// Wakes every process asleep on any of the mailbox's events (it is going away).
    func wakeEveryone() {
        messageEvent.wakeEveryone()
        spaceEvent.wakeEveryone()
        roleEvent.wakeEveryone()
    }

    private func requireSystemOwner(_ action: String) throws(MailboxError) {
        guard ownership == .system else {
            throw .notPermitted("only system-owned mailboxes let their owner \(action); \"\(name)\" is \(ownership.rawValue)-owned")
        }
        guard ownerWord.holder == packedMe else {
            throw .notPermitted("only the owner of mailbox \"\(name)\" may \(action)")
        }
    }
}
