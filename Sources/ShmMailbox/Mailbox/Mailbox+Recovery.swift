#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Waiting, and repairing what dead processes leave behind: stuck slots, messages whose
/// receiver died while reading them, and sleeper announcements of processes that died asleep.
///
/// Nothing here trusts a single observation: a slot must stay exactly the same for
/// `stallCheckNanos` before its holder's liveness is even checked, and every repair is a CAS on
/// the exact word observed, so a slow but live process is never disturbed and two repairers
/// never both act.
extension Mailbox {
    /// Runs `attempt` until it succeeds (spinning, then sleeping on `event`, as the wait
    /// strategy says), or throws `timedOut` when `deadline` passes. The caller has tried once
    /// already and holds a lease (its sleeper bit).
    func wait(on event: EventCount, deadline: UInt64, _ attempt: (Waiter.Phase) throws -> Bool) throws {
        guard let lease else { throw MailboxError.corrupted(reason: "waiting without a lease") }
        do {
            try Waiter.wait(strategy: waitStrategy, deadline: deadline, on: event, as: lease.index,
                            slice: { sleepSlice() },
                            tick: { if ownership == .process { try checkOwner(force: false) } },
                            attempt)
        } catch MailboxError.system(_, EFAULT) {
            // The kernel could not read the futex word: the segment was truncated under us. Touch
            // it, so that the SIGBUS guard takes the mapping over, and report it.
            _ = event.word.pointee.load(ordering: .relaxed)
            try checkNotGone()
            throw MailboxError.corrupted(reason: "the event word of mailbox \"\(name)\" cannot be read")
        }
    }

    /// `wait(on:deadline:_:)` for async calls: the task parks in the `WaitReactor` instead of
    /// sleeping in the kernel, and with nothing to repair it sleeps up to `asyncSleepSliceNanos`
    /// between checks, so that many idle async receivers cost next to nothing.
    nonisolated(nonsending)
    func waitAsync(on event: EventCount, deadline: UInt64, _ attempt: (Waiter.Phase) throws -> Bool) async throws {
        guard let lease else { throw MailboxError.corrupted(reason: "waiting without a lease") }
        try await Waiter.waitAsync(strategy: waitStrategy, deadline: deadline, on: event, as: lease.index,
                                   keepAlive: WaitReactor.KeepAlive(object: segment),
                                   slice: { sleepSlice(upTo: ownership == .process ? Self.sleepSliceNanos : Self.asyncSleepSliceNanos) },
                                   tick: { if ownership == .process { try checkOwner(force: false) } },
                                   attempt)
    }

    /// How long the next sleep may last: until the next repair check is due (a stuck slot or a
    /// suspected orphan), at most `limit`.
    private func sleepSlice(upTo limit: UInt64 = Mailbox.sleepSliceNanos) -> UInt64 {
        var due: UInt64 = .max
        if let stall { due = stall.since &+ Self.stallCheckNanos }
        for watched in orphanWatch.values { due = min(due, watched.since &+ Self.stallCheckNanos) }
        guard due != .max else { return limit }
        let now = MonotonicClock.now()
        return due > now ? min(max(due - now, 500_000), limit) : 500_000
    }

    // MARK: Stuck slots

    /// Tracks a shared-ring slot that blocks progress (a sender's claim at the head, or a slot
    /// still in use a lap behind the tail); once it has stayed the same for `stallCheckNanos`,
    /// repairs it if the process holding it is dead (see `SharedRing.repair`).
    ///
    /// A receiver close behind a sender finds nearly every message claimed but not yet committed
    /// for a poll or two, so this runs on the hot path of a stream and reads no clock there: a
    /// slot seen stuck for the first time is only recorded, and the clock is read once the same
    /// slot has been seen stuck `stallPollStride` more times, or when the caller is about to
    /// sleep. Timing starts at that first reading. That stride counts the polls of a blocking
    /// call; a non-blocking call reads the clock whenever it finds a slot stuck (see
    /// `startOneShotAttempt`), since its caller may poll only now and then.
    @inline(never)
    func noteStall(word: UInt64, position: UInt64, in ring: SharedRing, phase: Waiter.Phase) {
        // Claimed or taken: a holder named in the word. Empty (a lap behind `tail`, or at `head`
        // with `tail` past it): a claimer that has not written the slot (`holderIsDead` tells).
        let slotState = SharedRing.state(of: word)
        guard slotState != SharedRing.stateFull else { return }
        let isNew = stall.map { $0.word != word || $0.position != position } ?? true
        if isNew { stall = (word, position, 0) }
        if phase == .spinning, state.pointee.stallPollsLeft > 0 {
            state.pointee.stallPollsLeft = isNew ? Self.stallPollStride : state.pointee.stallPollsLeft &- 1
            return
        }
        state.pointee.stallPollsLeft = Self.stallPollStride
        checkStall(word: word, position: position, in: ring)
    }

    /// `noteStall`'s clock reading: starts timing the recorded stall, or repairs it once it has
    /// lasted `stallCheckNanos` and its holder is dead.
    @inline(never)
    private func checkStall(word: UInt64, position: UInt64, in ring: SharedRing) {
        let now = MonotonicClock.now()
        guard let seen = stall, seen.since != 0 else {
            stall = (word, position, now)
            return
        }
        guard now &- seen.since >= Self.stallCheckNanos else { return }
        if ring.holderIsDead(word, at: position, liveness: liveness),
           let repair = ring.repair(stuck: word, at: position, by: leaseReference, liveness: liveness) {
            stall = nil
            countRepair()
            MailboxEvents.emit(MailboxEvent(mailbox: name, kind: .slotRepaired(repair, position: position)))
            // A freed slot is room for senders; a redelivered message is news for receivers.
            notifySenders(all: false)
            notifyReceivers()
        } else {
            stall = (word, position, now)
        }
    }

    /// Adds one to the mailbox's `repairs` counter (in its own segment, also for a repair in a
    /// further generation of an unbounded mailbox).
    @inline(never)
    func countRepair() {
        // Relaxed RMW: a statistic; nothing is ordered by it.
        segment.base.atomicUInt64(at: SegmentLayout.repairsOffset).pointee.wrappingAdd(1, ordering: .relaxed)
    }

    /// Adds one to the mailbox's `fullWaits` counter: a send found no room and is about to wait.
    /// Not inlined: it sits in the send path's branch for a full mailbox, and keeps that path's
    /// code as it was but for one call.
    @inline(never)
    func countFullWait() {
        // Relaxed RMW: a statistic; nothing is ordered by it.
        segment.base.atomicUInt64(at: SegmentLayout.fullWaitsOffset).pointee.wrappingAdd(1, ordering: .relaxed)
    }

    /// Called before the one attempt of a non-blocking call (deadline 0): its caller may poll
    /// only now and then, so the poll strides of `noteStall` and `isOrphanSearchDue` (meant for
    /// the many polls of one blocking call) start spent, and this attempt times what it finds.
    @inline(__always)
    func startOneShotAttempt() {
        state.pointee.stallPollsLeft = 0
        state.pointee.orphanPollsLeft = 0
    }

    // MARK: Messages whose receiver died

    /// Whether to look for orphaned messages now: before every sleep, and every
    /// `stallCheckNanos` while polling (so that a receiver that never sleeps finds them too).
    /// While a blocking call polls, the clock is read only every `orphanPollStride` empty polls;
    /// a non-blocking call reads it every time (`startOneShotAttempt`).
    @inline(__always)
    func isOrphanSearchDue(_ phase: Waiter.Phase) -> Bool {
        if phase == .spinning {
            guard state.pointee.orphanPollsLeft == 0 else {
                state.pointee.orphanPollsLeft &-= 1
                return false
            }
            state.pointee.orphanPollsLeft = Self.orphanPollStride
        }
        let now = MonotonicClock.coarseNow()
        guard phase == .aboutToSleep || now >= nextOrphanSearch else { return false }
        nextOrphanSearch = now &+ Self.stallCheckNanos
        return true
    }

    /// Looks for a message whose receiver died while reading it (through the receivers'
    /// intents, see `SharedRing.suspectedOrphans`); one that has stayed so for `stallCheckNanos`
    /// and whose taker is dead is adopted and handed to `take`, marked redelivered. `segment` tells
    /// the rings of an unbounded mailbox apart (their generation). Returns nil if there was none,
    /// else whether it was a receipt message.
    func adoptOrphan(in ring: SharedRing, segment generation: UInt64 = 0, lease: UInt32,
                     intent: UnsafeMutablePointer<Atomic<UInt64>>, _ take: SharedRing.Body) throws -> Bool? {
        // A claim never written stops receivers at `head` as if the ring were empty, and nothing
        // else shows it to them: time it like a stuck claim.
        if let (word, position) = ring.unwrittenClaimAtHead() {
            noteStall(word: word, position: position, in: ring, phase: .aboutToSleep)
        }
        // Several receivers' intents may name one slot (losers of its take); each sighting
        // times the same watch entry, so repeats change nothing.
        let suspects = ring.suspectedOrphans()
        let watched = orphanWatch.keys.filter { $0.generation == generation }
        if suspects.isEmpty {
            for key in watched { orphanWatch[key] = nil }
            return nil
        }
        let now = MonotonicClock.now()
        for (word, position, _) in suspects {
            let key = OrphanKey(generation: generation, position: position)
            guard let seen = orphanWatch[key], seen.word == word else {
                orphanWatch[key] = (word, now)
                continue
            }
            guard now >= seen.since &+ Self.stallCheckNanos else { continue }
            guard ring.holderIsDead(word, at: position, liveness: liveness) else {
                // A live receiver taking its time: look again in a while, not at once.
                orphanWatch[key] = (word, now &+ Self.sleepSliceNanos)
                continue
            }
            orphanWatch[key] = nil
            if let receipt = try ring.adopt(word, at: position, lease: lease, identity: packedMe, intent: intent, take) {
                countRepair()
                MailboxEvents.emit(MailboxEvent(mailbox: name, kind: .slotRepaired(.messageAdopted, position: position)))
                return receipt
            }
        }
        let current = Set(suspects.map(\.position))
        for key in watched where !current.contains(key.position) { orphanWatch[key] = nil }
        return nil
    }

    // MARK: Sleepers that died asleep

    /// A notification found sleepers announced but woke nobody: a sleeper may have died asleep
    /// and left its bit set, which would cost every notification a system call. At most every
    /// 10 ms, withdraw the bits of announced entries whose holder is dead. (A live sleeper that
    /// is about to sleep is not yet in the kernel's queue either; it is alive, so it keeps its bit.)
    @inline(never)
    func withdrawDeadSleepers(of event: EventCount) {
        let now = MonotonicClock.coarseNow()
        guard now >= nextSleeperCheck else { return }
        nextSleeperCheck = now &+ 10_000_000
        for sleeper in event.announcedSleepers() where sleeper < leases.count {
            let holder = leases.holder(at: sleeper)
            guard holder == 0 || !liveness.isAlive(holder) else { continue }
            event.withdraw(deadSleeper: sleeper)
            // If the entry changed hands meanwhile, its new holder may have announced itself
            // just before we withdrew the bit: wake everyone, so it re-announces.
            if leases.holder(at: sleeper) != holder { event.wakeEveryone() }
        }
    }
}
