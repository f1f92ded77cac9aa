#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Ownership and receive rights (the textbook's process-owned and system-owned mailboxes).
extension Mailbox {
    /// The mailbox's current owner, or nil for `.none` ownership.
    public var owner: ProcessIdentity? {
        // Acquire: pairs with the release CAS of a transfer.
        let word = ownerWord.pointee.load(ordering: .acquiring)
        return word == 0 ? nil : ProcessIdentity(packed: word)
    }

    /// Lets process `pid` receive from this system-owned mailbox. Only the owner may grant.
    ///
    /// - Throws: `notPermitted` (not system-owned, not the owner, or 32 rights already granted),
    ///   `noSuchProcess`.
    public func grantReceive(to pid: Int32) throws(MailboxError) {
        try requireSystemOwner("grant receive rights")
        guard let target = ProcessIdentity.live(pid: pid) else { throw .noSuchProcess(pid) }
        let packed = target.packed
        var free: UnsafeMutablePointer<Atomic<UInt64>>?
        for index in 0..<SegmentLayout.rightsCount {
            let entry = rightsEntry(index)
            // Acquire: pairs with the release CAS that filled the entry.
            let holder = entry.pointee.load(ordering: .acquiring)
            if holder == packed { return }
            if free == nil && (holder == 0 || !ProcessIdentity.isAlive(packed: holder)) { free = entry }
        }
        // Acquire-release: the CAS claims the entry; a concurrent grant simply retries elsewhere.
        guard let free, free.pointee.compareExchange(expected: free.pointee.load(ordering: .acquiring), desired: packed,
                                                     ordering: .acquiringAndReleasing).exchanged else {
            throw .notPermitted("mailbox \"\(name)\" already grants \(SegmentLayout.rightsCount) live processes the right to receive")
        }
    }

    /// Makes process `pid` the owner of this system-owned mailbox. This process loses ownership
    /// and, unless it was granted a receive right, the right to receive.
    ///
    /// - Throws: `notPermitted` (not system-owned, or not the owner), `noSuchProcess`.
    public func transferOwnership(to pid: Int32) throws(MailboxError) {
        try requireSystemOwner("transfer ownership")
        guard let target = ProcessIdentity.live(pid: pid) else { throw .noSuchProcess(pid) }
        // Acquire-release: exactly one transfer from this owner wins; receivers that see the new
        // owner (acquire) re-check their rights.
        guard ownerWord.pointee.compareExchange(expected: me.packed, desired: target.packed,
                                                ordering: .acquiringAndReleasing).exchanged else {
            throw .notPermitted("ownership of mailbox \"\(name)\" changed while transferring it")
        }
        confirmedOwner = 0
    }

    /// Removes every process-owned mailbox whose owner has exited or died, the further segments
    /// of unbounded mailboxes that no longer exist, and segments whose builder was killed while
    /// building them under a temporary name, and returns their names (a further segment as
    /// `NAME#N`, a temporary one as `NAME~PID.X`). Mailboxes that cannot be opened (damaged, not
    /// permitted) are left alone.
    public static func removeAbandoned() throws(MailboxError) -> [String] {
        var removed: [String] = []
        for name in try list() {
            do {
                _ = try open(name, waitStrategy: .block)
            } catch .ownerTerminated {
                removed.append(name)
            } catch {
                continue
            }
        }
        let remaining = Set(try list())
        for object in try SharedSegment.objectNames() {
            let abandoned: Bool
            if let temporary = SharedSegment.temporary(object) {
                // Still being built (see `SharedSegment.createInitialized`): abandoned once the
                // builder named in the name has gone.
                abandoned = temporary.builder.map { !ProcessIdentity.isAlive(pid: $0) } ?? false
            } else if let chained = SegmentChain.parse(object[...]) {
                // A further segment of an unbounded mailbox that no longer exists.
                abandoned = MailboxName.isValid(String(chained.mailbox)) && !remaining.contains(String(chained.mailbox))
            } else {
                abandoned = false
            }
            if abandoned, (try? SharedSegment.unlink(MailboxName(derived: object))) != nil { removed.append(object) }
        }
        return removed
    }

    // MARK: Checks used by send and receive

    /// Confirms that this process may receive under the current owner, and remembers the owner
    /// value so that the check reruns only when ownership changes.
    func checkReceiveRight() throws(MailboxError) {
        // Acquire: pairs with the release CAS of a transfer or grant.
        let owner = ownerWord.pointee.load(ordering: .acquiring)
        switch ownership {
        case .none:
            break
        case .process:
            if owner != me.packed {
                if ownerFlags.pointee.load(ordering: .acquiring) & SegmentLayout.ownerTerminatedFlag != 0 {
                    throw .ownerTerminated(name)
                }
                throw .notPermitted("only the owning process (\(ProcessIdentity(packed: owner).pid)) receives from process-owned mailbox \"\(name)\"; others may only send")
            }
        case .system:
            if owner != me.packed && !hasReceiveRight() {
                throw .notPermitted("process \(me.pid) has no right to receive from mailbox \"\(name)\"; its owner (\(ProcessIdentity(packed: owner).pid)) can grant one with grantReceive(to:)")
            }
        }
        confirmedOwner = owner
    }

    private func hasReceiveRight() -> Bool {
        let packed = me.packed
        for index in 0..<SegmentLayout.rightsCount where rightsEntry(index).pointee.load(ordering: .acquiring) == packed {
            return true
        }
        return false
    }

    /// For a process-owned mailbox: throws `ownerTerminated` (and removes the segment) if the
    /// owner has terminated the mailbox or no longer runs. Liveness (a read of `/proc`) is checked
    /// at most every 10 ms unless `force` is set; the terminated flag on every call.
    func checkOwner(force: Bool) throws(MailboxError) {
        // Acquire: pairs with the release store in `terminate`.
        var gone = ownerFlags.pointee.load(ordering: .acquiring) & SegmentLayout.ownerTerminatedFlag != 0
        if !gone {
            let now = MonotonicClock.coarseNow()
            guard force || now >= nextOwnerCheck else { return }
            nextOwnerCheck = now &+ 10_000_000
            gone = !ProcessIdentity.isAlive(packed: ownerWord.pointee.load(ordering: .acquiring))
        }
        guard gone else { return }
        // Whoever notices first removes the name; later attempts find it gone.
        try? SharedSegment.unlink(MailboxName(name))
        SegmentChain.unlinkSegments(of: name)
        throw .ownerTerminated(name)
    }

    /// The owner's exit: marks the mailbox terminated, removes its name and wakes everyone who
    /// waits on it, so that blocked senders fail with `ownerTerminated` at once.
    func terminate() {
        // Release: a process that sees the flag also sees everything the owner did before.
        ownerFlags.pointee.bitwiseOr(SegmentLayout.ownerTerminatedFlag, ordering: .releasing)
        try? SharedSegment.unlink(MailboxName(name))
        SegmentChain.unlinkSegments(of: name)
        messageEvent.wakeEveryone()
        spaceEvent.wakeEveryone()
    }

    private func requireSystemOwner(_ action: String) throws(MailboxError) {
        guard ownership == .system else {
            throw .notPermitted("only system-owned mailboxes let their owner \(action); \"\(name)\" is \(ownership.rawValue)-owned")
        }
        guard ownerWord.pointee.load(ordering: .acquiring) == me.packed else {
            throw .notPermitted("only the owner of mailbox \"\(name)\" may \(action)")
        }
    }

    private func rightsEntry(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        segment.base.atomicUInt64(at: SegmentLayout.rightsOffset + index * 8)
    }
}
