#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Leases and roles: a process's entry in the lease table, the one-to-one roles and the
/// exclusive receive turn (lease words naming one process, held within it by one handle).
extension Mailbox {
    /// Takes this process's lease in the segment if this handle has none yet. A dead process's
    /// entry is reclaimed only once no message it was taking is left to redeliver; its stale
    /// sleeper announcements are withdrawn.
    func ensureLease() throws(MailboxError) {
        guard lease == nil else { return }
        let sharedRing: SharedRing?
        switch ring {
        case .shared(let ring): sharedRing = ring
        case .chained(let chain): sharedRing = chain.reader.generation == 0 ? chain.reader.ring : nil
        case .oneToOne: sharedRing = nil
        }
        let (taken, reclaimed) = try leases.acquire(for: packedMe, liveness: liveness) { index in
            guard let sharedRing else { return true }
            return sharedRing.mayReclaimLease(index)
        }
        if reclaimed {
            for event in [messageEvent, spaceEvent, roleEvent] { event.withdraw(deadSleeper: taken.index) }
        }
        lease = taken
        leaseReference = taken.reference
        intentWord = leases.intent(taken.index)
        if case .chained(let chain) = ring { chain.start(lease: taken) }
    }

    /// Whether the receiver policy limits `role` to one process at a time.
    private func isExclusive(_ role: UInt32) -> Bool {
        receiverPolicy == .pair || (receiverPolicy == .exclusive && role == LeaseTable.roleReceived)
    }

    private func roleOffset(_ role: UInt32) -> Int {
        role == LeaseTable.roleSent ? SegmentLayout.senderRoleOffset : SegmentLayout.receiverRoleOffset
    }

    /// Records this process as a sender or receiver and, where the receiver policy allows only one
    /// process in the role, claims it for this handle (taking it over from a dead holder). An
    /// `.exclusive` receiver whose handle says `.wait` sleeps until the turn is given up or its
    /// holder dies, or `deadline` passes.
    @inline(never)
    func takeRole(_ role: UInt32, deadline: UInt64) throws {
        try ensureLease()
        if isExclusive(role) {
            let offset = roleOffset(role)
            var busy: Int32 = 0
            func claim(_ phase: Waiter.Phase) throws -> Bool {
                if let holder = try claimRoleWord(offset) {
                    busy = holder
                    return false
                }
                return true
            }
            if try !claim(.spinning) {
                guard receiverPolicy == .exclusive else {
                    throw MailboxError.roleTaken(role == LeaseTable.roleSent ? .sender : .receiver, pid: busy)
                }
                guard whenReceiverBusy == .wait, deadline != 0 else { throw MailboxError.receiverBusy(pid: busy) }
                // The turn's release is announced on the role event; a holder's death is not,
                // so sleep in slices and check its liveness after each.
                try Waiter.wait(strategy: .block, deadline: deadline, on: roleEvent, as: lease!.index,
                                slice: { Self.sleepSliceNanos }, tick: { try checkNotGone() }, claim)
            }
            heldRoleWords.append(offset)
            roles |= role
            switch ring {
            case .oneToOne(let ring):
                // Where the previous holder left off (see `OneToOneRing`).
                if role == LeaseTable.roleSent { try ring.startSending() } else { try ring.startReceiving() }
                if role == LeaseTable.roleReceived {
                    // Release: a synchronous sender that sees its message consumed reads this name.
                    segment.base.atomicUInt64(at: SegmentLayout.lastReceiverOffset).pointee.store(packedMe, ordering: .releasing)
                }
            default:
                break
            }
        }
        if role == LeaseTable.roleReceived {
            markReceiver()
            if receiverPolicy == .roundRobin { turnEntry = try registerForTurns() }
        }
        roles |= role
        leases.record(role, for: lease!)
    }

    /// Claims the role word at `offset` for this handle. Returns nil on success, else the pid of
    /// the live holder (this process's own pid if another of its handles holds it).
    private func claimRoleWord(_ offset: Int) throws(MailboxError) -> Int32? {
        let key = HandleRoles.Key(nonce: nonce, offset: offset)
        guard HandleRoles.claim(key, by: ObjectIdentifier(self)) else { return me.pid }
        switch LeaseWord(at: offset, in: segment.base).claim(for: packedMe, liveness: liveness) {
        case .taken(let previous):
            if previous != 0 {
                let role: MailboxError.Role = offset == SegmentLayout.senderRoleOffset ? .sender : .receiver
                MailboxEvents.emit(MailboxEvent(mailbox: name, kind: .roleTakenOver(role, previousHolder: ProcessIdentity(packed: previous))))
            }
            return nil
        case .alreadyHeld:
            return nil
        case .heldBy(let holder):
            HandleRoles.release(key, by: ObjectIdentifier(self))
            return ProcessIdentity(packed: holder).pid
        }
    }

    /// Records this process as a receiver of the segment (for the search for messages whose
    /// receiver died while reading them).
    private func markReceiver() {
        guard let lease else { return }
        switch ring {
        case .oneToOne:
            return
        case .shared, .chained:
            let bit = lease.index
            // Relaxed RMW: the orphan search re-checks everything on the slot words.
            segment.base.atomicUInt64(at: SegmentLayout.receiverLeasesOffset + (bit / 64) * 8)
                .pointee.bitwiseOr(1 << UInt64(bit % 64), ordering: .relaxed)
            if case .chained(let chain) = ring { chain.markReceiver(in: chain.reader) }
        }
    }

    /// Gives up the role words this handle holds and wakes whoever waits for them.
    func releaseRoles() {
        guard !heldRoleWords.isEmpty else { return }
        if case .oneToOne(let ring) = ring { ring.stop() }
        for offset in heldRoleWords {
            // Release (in `LeaseWord.replace`): our last publication is ordered before the role frees.
            LeaseWord(at: offset, in: segment.base).release(packedMe)
            HandleRoles.release(HandleRoles.Key(nonce: nonce, offset: offset), by: ObjectIdentifier(self))
        }
        heldRoleWords = []
        roleEvent.notify(all: true)
    }
}
