import Synchronization

extension SharedRing {
    /// Copies up to `limit` waiting messages, oldest first, without taking them: nothing in the
    /// segment is written.
    ///
    /// Safety against concurrent senders and receivers: a slot's header and payload change only
    /// while its state word is not `full(p, S)` — a sender fills it while it is `claimed`, a
    /// receiver marks it `taken` before reading it, and the next lap's sender claims it only
    /// after it became `empty(p + C)`; the only field written while a slot is full is nothing
    /// (receipt kinds and the redelivered bit change while it is `taken`). So the copy is a
    /// seqlock read: load the state word (acquire), copy the header fields and payload, then an
    /// acquire fence and the state word again. If the word is unchanged (its sequence only ever
    /// grows, so it cannot come back) the slot stayed full for the whole copy and the bytes are
    /// the ones its sender published; otherwise the copy is dropped. Slots being taken, given
    /// back or refilled meanwhile are skipped, so a peek shows consistent messages only, possibly
    /// fewer than `depth`.
    func peek(limit: Int) -> [Mailbox.Message] {
        // Acquire: a snapshot of the positions, for reporting only.
        let first = head.pointee.load(ordering: .acquiring)
        let last = tail.pointee.load(ordering: .acquiring)
        let span = Int64(bitPattern: last &- first)
        guard span > 0, limit > 0 else { return [] }
        var found: [Mailbox.Message] = []
        var position = first
        for _ in 0..<min(UInt64(span), capacity &* 2) {
            defer { position &+= 1 }
            let word = stateWord(position)
            // Acquire: pairs with the sender's release store of `full`; its bytes are visible.
            let before = word.pointee.load(ordering: .acquiring)
            guard Self.distance(before, from: position) == 0, Self.state(of: before) == Self.stateFull else { continue }
            let at = slot(position)
            let length = Int(at.load(fromByteOffset: SegmentLayout.slotLength, as: UInt32.self))
            let kind = at.load(fromByteOffset: SegmentLayout.slotKind, as: UInt32.self)
            let sender = at.load(fromByteOffset: SegmentLayout.slotSender, as: UInt64.self)
            guard length <= maxMessageSize else { continue }
            let bytes = [UInt8](UnsafeRawBufferPointer(start: at + SegmentLayout.slotHeaderSize, count: length))
            // Acquire fence: the copies above happen before the re-check below.
            atomicMemoryFence(ordering: .acquiring)
            guard word.pointee.load(ordering: .relaxed) == before else { continue }
            found.append(Mailbox.Message(bytes: bytes, sender: ProcessIdentity(packed: sender),
                                 isRedelivered: kind & SegmentLayout.redeliveredFlag != 0))
            if found.count == limit { break }
        }
        return found
    }

    /// The ring's positions (acquire loads, a snapshot): `tail` counts the messages sent into
    /// it (slots claimed, as a hint that may trail by the claims in progress), `head` the ones
    /// taken or given back.
    var positions: (head: UInt64, tail: UInt64) {
        (head.pointee.load(ordering: .acquiring), tail.pointee.load(ordering: .acquiring))
    }
}
