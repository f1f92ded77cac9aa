import Synchronization

// Message totals since creation, derived from what the rings already keep in the segment (their
// positions, record stamps and, for unbounded mailboxes, each generation's creation record), so
// that no send or receive pays for them. Read-only: nothing here writes to a segment.

extension OneToOneRing {
    /// The most records `messageTotals` walks; beyond, the totals are unknown (a statistics read
    /// stays short however small the messages are).
    static let totalsWalkLimit = 1 << 20

    /// Messages sent and received since the mailbox was created, counted by walking the records
    /// from position 0: possible while the sender has not begun a second lap of the data area,
    /// because until then every record ever written is still in place. Nil once it has (the
    /// record at position 0 then carries another stamp, or the walk cannot reach `head`), when the
    /// walk would exceed `totalsWalkLimit` records, or when the area holds an impossible record.
    ///
    /// A snapshot: records stamped inside an unfinished batch count as sent (the receiver can
    /// already take them).
    var messageTotals: (sent: UInt64, received: UInt64)? {
        // Acquire: pairs with the receiver's release store of `head` (as in `loadHead`).
        let head = headWord.pointee.load(ordering: .acquiring)
        guard head % UInt64(SegmentLayout.recordAlignment) == 0, head <= dataSize else { return nil }
        var position: UInt64 = 0
        var sent = 0
        var received: Int? = head == 0 ? 0 : nil
        while position < dataSize, sent < Self.totalsWalkLimit {
            // `record(at:)` acquire-loads each stamp and bounds every length it reads.
            guard let found = try? record(at: position) else { break }
            if found.isMessage { sent += 1 }
            position &+= found.size
            if position == head { received = sent }
        }
        guard let received, sent < Self.totalsWalkLimit else { return nil }
        // Acquire fence: the loads of the walk happen before the re-check. The sender's second
        // lap starts by writing the record at index 0 (position `dataSize`); while that record
        // still carries the stamp of position 0, no record of the first lap was overwritten.
        atomicMemoryFence(ordering: .acquiring)
        if position != 0 {
            guard stamp(at: 0).pointee.load(ordering: .relaxed) == stampValue(0) else { return nil }
        }
        return (UInt64(sent), UInt64(received))
    }
}

extension SegmentChain {
    /// Messages sent into and taken out of the chain since the mailbox was created: for each
    /// generation not given back, the messages before it (recorded at its creation,
    /// `SegmentLayout.messagesBeforeOffset`) plus its own positions, up to where it was sealed.
    /// Generations fill and drain in order, so the newest generation gives the messages sent,
    /// and the newest one receivers have taken from (else the oldest) the messages received.
    /// Nil if a generation in use does not record the messages before it.
    var messageTotals: (sent: UInt64, received: UInt64)? {
        var sent: UInt64 = 0
        var received: UInt64?
        for (generation, segment, ring) in inspectedGenerations() {
            let before = generation == 0 ? 0 : segment.base.load(fromByteOffset: SegmentLayout.messagesBeforeOffset, as: UInt64.self)
            guard generation == 0 || before != 0 else { return nil }
            let positions = ring.positions
            // Positions at or beyond the seal were given back unused.
            let limit = ring.sealedPosition ?? .max
            let taken = min(positions.head, limit)
            // Wrapping: the values come from shared memory; garbage makes garbage totals, never a trap.
            sent = max(sent, before &+ min(positions.tail, limit))
            if taken > 0 || received == nil { received = before &+ taken }
        }
        return (sent, received ?? 0)
    }
}
