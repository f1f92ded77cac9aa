import Synchronization

extension OneToOneRing {
    /// Copies up to `limit` waiting records, oldest first, without taking them: nothing in the
    /// segment or in this handle's sending or receiving state is written.
    ///
    /// Safety against the concurrent sender and receiver: a record at position `q` is written
    /// before its stamp (release) and overwritten only by a record a lap later, which the sender
    /// writes only after it has seen `head` pass `q`. So the walk loads the stamp (acquire),
    /// copies the record, then (after an acquire fence) loads the stamp and `head` again: if the
    /// stamp is still right for `q` and `head` has not passed `q`, the sender could not have
    /// started to overwrite it, and the copy is the record as published. The walk stops at the
    /// first record that fails this (the receiver took it meanwhile, or the ring moved on).
    func peek(limit: Int) -> [Mailbox.Message] {
        // Acquire: pairs with the receiver's release store of `head`.
        let start = headWord.pointee.load(ordering: .acquiring)
        guard start % UInt64(SegmentLayout.recordAlignment) == 0, limit > 0 else { return [] }
        var found: [Mailbox.Message] = []
        var position = start
        while position &- start < dataSize, found.count < min(limit, Int(capacity)),
              let record = try? record(at: position), record.size <= dataSize &- (position &- start) {
            if record.isMessage {
                let at = data + Int(position & mask)
                let length = Int(at.load(fromByteOffset: SegmentLayout.recordLength, as: UInt32.self))
                let sender = at.load(fromByteOffset: SegmentLayout.recordSender, as: UInt32.self)
                guard UInt64(SegmentLayout.recordHeaderSize + length) <= record.size else { break }
                let bytes = [UInt8](UnsafeRawBufferPointer(start: at + SegmentLayout.recordHeaderSize, count: length))
                // Acquire fence: the copies above happen before the re-checks below.
                atomicMemoryFence(ordering: .acquiring)
                let head = headWord.pointee.load(ordering: .relaxed)
                guard stamp(at: position & mask).pointee.load(ordering: .relaxed) == stampValue(position),
                      Int64(bitPattern: position &- head) >= 0 else { break }
                found.append(Mailbox.Message(bytes: bytes, sender: senderIdentity(pid: sender)))
            }
            position &+= record.size
        }
        return found
    }

    /// The byte positions (acquire loads, a snapshot): `tail` as the sender last published it (a
    /// hint), and `head`.
    var positions: (head: UInt64, tail: UInt64) {
        (headWord.pointee.load(ordering: .acquiring), tailWord.pointee.load(ordering: .acquiring))
    }

    /// The messages recorded in `from ..< to` (byte positions), walking their stamps; nil when
    /// the walk cannot vouch for the range (a record there was overwritten or is not stamped
    /// yet, or the range is not a whole number of records).
    func messages(from: UInt64, to: UInt64) -> Int? {
        guard from % UInt64(SegmentLayout.recordAlignment) == 0, to &- from <= dataSize else { return nil }
        var position = from
        var count = 0
        while position != to {
            guard let record = try? record(at: position), record.size <= to &- position else { return nil }
            if record.isMessage { count += 1 }
            position &+= record.size
        }
        return count
    }
}
