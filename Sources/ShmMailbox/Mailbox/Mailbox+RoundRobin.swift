import Synchronization

/// Round-robin receiving: a table of registered receivers and a turn index in the segment.
///
/// A receiver registers (claims a free or dead entry, see `LeaseArray`) at its first receive. It
/// may take the head message only while the turn names its entry; after taking one it passes the
/// turn to the next registered entry. An entry that is free, or whose process died, is skipped by
/// whoever finds the turn on it. Turn changes go through compare-and-swap, so two receivers never
/// both own a turn.
extension Mailbox {
    private var receiversTable: LeaseArray {
        LeaseArray(at: SegmentLayout.receiversOffset, count: SegmentLayout.receiversCount, in: segment.base)
    }

    private var turnWord: UnsafeMutablePointer<Atomic<UInt64>> {
        segment.base.atomicUInt64(at: SegmentLayout.turnOffset)
    }

    /// Registers this process in the receivers table and returns its entry.
    func registerForTurns() throws(MailboxError) -> Int {
        guard let index = receiversTable.claim(for: packedMe, liveness: liveness) else {
            throw .notPermitted("round-robin mailbox \"\(name)\" already has \(SegmentLayout.receiversCount) live receivers")
        }
        return index
    }

    /// Whether it is entry `index`'s turn. A turn resting on a free or dead entry is passed on
    /// (liveness is checked at most every `stallCheckNanos`, tracked in `turnCheckedAt`).
    func hasTurn(_ index: Int) -> Bool {
        // Acquire: pairs with the release CAS that passed the turn.
        let turn = turnWord.pointee.load(ordering: .acquiring)
        let current = Int(turn % UInt64(SegmentLayout.receiversCount))
        if current == index { return true }
        let holder = receiversTable.entry(current).holder
        if holder != 0 {
            let now = MonotonicClock.now()
            guard now &- turnCheckedAt >= Self.stallCheckNanos else { return false }
            turnCheckedAt = now
            if liveness.isAlive(holder) { return false }
        }
        passTurn(from: turn)
        return false
    }

    /// Moves the turn from `turn` to the next registered entry (or the next entry if none is).
    func passTurn(from turn: UInt64) {
        let count = UInt64(SegmentLayout.receiversCount)
        var next = turn &+ 1
        for step in 1...count where receiversTable.entry(Int((turn &+ step) % count)).holder != 0 {
            next = turn &+ step
            break
        }
        // Acquire-release: only the holder of `turn` (or a skipper of a dead one) moves it once.
        if turnWord.pointee.compareExchange(expected: turn, desired: next, ordering: .acquiringAndReleasing).exchanged {
            // Receivers waiting for their turn sleep on the message event; the CAS above is the
            // change they re-check, so the usual notify protocol applies (every sleeper: only the
            // one whose turn it is now can go on).
            notifyReceivers()
        }
    }

    /// After taking a message on its turn, the receiver passes the turn on.
    func finishTurn(_ index: Int) {
        // Acquire: as in `hasTurn`.
        let turn = turnWord.pointee.load(ordering: .acquiring)
        if Int(turn % UInt64(SegmentLayout.receiversCount)) == index { passTurn(from: turn) }
    }

    /// Leaves the rotation (on close): frees the entry and passes the turn if it is ours.
    func leaveTurns(_ index: Int) {
        receiversTable.entry(index).release(packedMe)
        finishTurn(index)
    }
}
