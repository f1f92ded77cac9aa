import Synchronization

/// The single-sender, single-receiver ring: variable-size records in a power-of-two byte area.
///
/// A record is a 16-byte header and its payload, padded to 16 bytes. The header's first word is
/// the record's *stamp*: one more than the 64-bit position at which it was written (so the
/// zero-filled area holds no record). The sender writes the payload and the rest of the header,
/// then stores the stamp with release ordering; the receiver treats the record at `head` as
/// present exactly when its stamp is `head + 1`. So the receiver
/// never reads the sender's `tail` on its fast path: a message costs the receiver one cache-line
/// transfer (the record's), not two (tail, then record). A record never straddles the end of the
/// area; the sender fills the rest of the area with a padding record instead.
///
/// Only the sender writes `tail` and `producedCount`; only the receiver writes `head` and
/// `consumedCount`. The sender keeps a private cache of the receiver's positions and reloads it
/// only when the cache says "full". `tail` is published for the sender's own restarts, for
/// inspection and for the receiver's corruption check; the receiver reads it only when it finds
/// no record at `head`. There are no read-modify-write atomics here: plain loads, release
/// stores and acquire loads. `capacity` bounds the number of waiting messages exactly; the byte
/// area is sized so that `capacity` maximum-size messages always fit.
///
/// Everything read from shared memory is checked before use: a position or record that breaks
/// these rules throws `MailboxError.corrupted`, and no byte outside the data area is read.
struct OneToOneRing {
    /// This handle's private view of the ring: caches of the receiver's positions, and positions
    /// of work not yet published. Lives in process memory (never shared), behind a pointer so the
    /// ring itself stays a trivial value: no reference counting and no exclusivity checks on the
    /// hot path.
    struct LocalState {
        // Sender-private caches of the receiver's positions (stale values are conservative).
        var cachedHead: UInt64 = 0
        var cachedConsumed: UInt64 = 0
        // Records written (and stamped) whose tail is not yet published (sender), and records read
        // whose space is not yet released (receiver). While a flag is set, the local values are
        // this side's true positions and the shared copies lag behind them.
        var hasUnpublishedWrites = false
        var unpublishedTail: UInt64 = 0
        var unpublishedProduced: UInt64 = 0
        // The tail this sender last published (or found published).
        var publishedTail: UInt64 = 0
        var hasUnreleasedReads = false
        var unreleasedHead: UInt64 = 0
        var unreleasedConsumed: UInt64 = 0
        // Empty polls so far; every 256th (starting with the first) cross-checks the tail.
        var emptyPolls: UInt32 = 0
    }

    private let tail: UnsafeMutablePointer<Atomic<UInt64>>
    private let producedCount: UnsafeMutablePointer<Atomic<UInt64>>
    private let head: UnsafeMutablePointer<Atomic<UInt64>>
    private let consumedCount: UnsafeMutablePointer<Atomic<UInt64>>
    private let data: UnsafeMutableRawPointer
    private let dataSize: UInt64
    private let mask: UInt64
    private let capacity: UInt64
    private let maxMessageSize: Int
    /// Padding is only ever written where a record of at most this size did not fit.
    private let maxRecordSize: UInt64
    /// Owned by the handle that created this value; freed with `deallocate()`.
    private let local: UnsafeMutablePointer<LocalState>

    init(header: UnsafeMutableRawPointer, geometry: SegmentGeometry) {
        tail = header.atomicUInt64(at: SegmentLayout.tailOffset)
        producedCount = header.atomicUInt64(at: SegmentLayout.producedCountOffset)
        head = header.atomicUInt64(at: SegmentLayout.headOffset)
        consumedCount = header.atomicUInt64(at: SegmentLayout.consumedCountOffset)
        data = header + geometry.dataOffset
        dataSize = UInt64(geometry.dataSize)
        mask = UInt64(geometry.dataSize - 1)
        capacity = UInt64(geometry.capacity)
        maxMessageSize = geometry.maxMessageSize
        maxRecordSize = UInt64(Self.recordSize(payload: geometry.maxMessageSize))
        local = .allocate(capacity: 1)
        local.initialize(to: LocalState())
    }

    /// Frees the handle-private state. The ring must not be used afterwards.
    func deallocate() {
        local.deinitialize(count: 1)
        local.deallocate()
    }

    /// Bytes of data area a payload of `length` bytes takes.
    @inline(__always)
    static func recordSize(payload length: Int) -> Int {
        SegmentLayout.align(SegmentLayout.recordHeaderSize + length, to: SegmentLayout.recordAlignment)
    }

    /// Data-area size that guarantees `capacity` records of `maxMessageSize` fit, whatever the
    /// wrap-around padding: a power of two of at least (capacity + 1) maximum records.
    static func dataSize(capacity: Int, maxMessageSize: Int) -> Int? {
        let record = recordSize(payload: maxMessageSize)
        let (needed, overflow) = (capacity + 1).multipliedReportingOverflow(by: record)
        guard !overflow, needed <= 1 << 46 else { return nil }
        var size = 4096
        while size < needed { size <<= 1 }
        return size
    }

    @inline(__always)
    private func stamp(at index: UInt64) -> UnsafeMutablePointer<Atomic<UInt64>> {
        data.atomicUInt64(at: Int(index) + SegmentLayout.recordStamp)
    }

    /// The stamp of a record written at `position`.
    @inline(__always)
    private static func stampValue(_ position: UInt64) -> UInt64 { position &+ 1 }

    // MARK: Sender side

    /// Writes and stamps one record of `length` payload bytes, filled by `fill`; the receiver can
    /// take it at once. With `publish: false` the tail is left for `publishWrites()`. Returns
    /// false when the ring is full. If `fill` throws, no message is written.
    @inline(__always)
    func tryWrite(length: Int, sender: UInt32, publish: Bool, _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> Bool {
        var position: UInt64
        let produced: UInt64
        if local.pointee.hasUnpublishedWrites {
            position = local.pointee.unpublishedTail
            produced = local.pointee.unpublishedProduced
        } else {
            // Relaxed: this process is the only writer of tail and producedCount (the sender role
            // is claimed before the first send), so it reads back its own latest stores.
            position = tail.pointee.load(ordering: .relaxed)
            produced = producedCount.pointee.load(ordering: .relaxed)
            local.pointee.publishedTail = position
        }
        let record = UInt64(Self.recordSize(payload: length))
        var index = position & mask
        let toEnd = dataSize - index
        let needed = toEnd < record ? toEnd + record : record

        if produced &- local.pointee.cachedConsumed >= capacity || position &+ needed &- local.pointee.cachedHead > dataSize {
            // Acquire: the receiver finished reading the bytes before it released head, so
            // overwriting them afterwards cannot race with its reads.
            let freshHead = head.pointee.load(ordering: .acquiring)
            // Relaxed: stored before head's release store, so the acquire above covers it.
            let freshConsumed = consumedCount.pointee.load(ordering: .relaxed)
            guard freshHead <= position, position - freshHead <= dataSize,
                  freshConsumed <= produced, produced - freshConsumed <= capacity else {
                throw MailboxError.corrupted(reason: "one-to-one ring positions out of range (head \(freshHead), tail \(position), consumed \(freshConsumed), produced \(produced))")
            }
            local.pointee.cachedHead = freshHead
            local.pointee.cachedConsumed = freshConsumed
            if produced - freshConsumed >= capacity || position + needed - freshHead > dataSize {
                return false
            }
        }

        if toEnd < record {
            // Pad to the end of the area so the record does not straddle it. The padding is
            // visible at once, so from here on it counts as written even if `fill` throws.
            writeHeader(at: index, position: position, length: SegmentLayout.paddingLength, sender: sender)
            position += toEnd
            index = 0
            remember(tail: position, produced: produced)
        }
        try fill(UnsafeMutableRawBufferPointer(start: data + Int(index) + SegmentLayout.recordHeaderSize, count: length))
        writeHeader(at: index, position: position, length: UInt32(length), sender: sender)
        remember(tail: position &+ record, produced: produced &+ 1)
        // Inside a batch, publish anyway once half the area is unpublished: a receiver that keeps
        // up never lets the ring fill, and the published tail must stay within one area of the
        // receiver's head (the receiver's consistency check relies on it).
        if publish || position &+ record &- local.pointee.publishedTail >= dataSize / 2 {
            _ = publishWrites()
        }
        return true
    }

    /// Writes a record header; the stamp goes last, with release ordering.
    @inline(__always)
    private func writeHeader(at index: UInt64, position: UInt64, length: UInt32, sender: UInt32) {
        let at = data + Int(index)
        at.storeBytes(of: length, toByteOffset: SegmentLayout.recordLength, as: UInt32.self)
        at.storeBytes(of: sender, toByteOffset: SegmentLayout.recordSender, as: UInt32.self)
        // Release: the payload and header fields are visible no later than the stamp that
        // declares the record present.
        stamp(at: index).pointee.store(Self.stampValue(position), ordering: .releasing)
    }

    @inline(__always)
    private func remember(tail newTail: UInt64, produced: UInt64) {
        local.pointee.unpublishedTail = newTail
        local.pointee.unpublishedProduced = produced
        local.pointee.hasUnpublishedWrites = true
    }

    /// Publishes the tail of records written with `publish: false`. Returns whether there were any.
    @inline(__always)
    func publishWrites() -> Bool {
        guard local.pointee.hasUnpublishedWrites else { return false }
        local.pointee.hasUnpublishedWrites = false
        // Relaxed: ordered before the release store of tail below, which publishes both.
        producedCount.pointee.store(local.pointee.unpublishedProduced, ordering: .relaxed)
        // Release: a reader of tail sees every record (and stamp) before it.
        tail.pointee.store(local.pointee.unpublishedTail, ordering: .releasing)
        local.pointee.publishedTail = local.pointee.unpublishedTail
        return true
    }

    // MARK: Receiver side

    /// Hands the oldest record to `body` (payload valid only inside it) and releases its space
    /// (or, with `release: false`, leaves that to `releaseReads()`), also when `body` throws.
    /// Returns false when the ring is empty.
    @inline(__always)
    func tryRead(release: Bool, _ body: (UnsafeRawBufferPointer, Int32) throws -> Void) throws -> Bool {
        // Relaxed: this process is the only writer of head and consumedCount.
        var position = local.pointee.hasUnreleasedReads ? local.pointee.unreleasedHead : head.pointee.load(ordering: .relaxed)
        var index = position & mask
        var at = data + Int(index)
        // Acquire: pairs with the sender's release store of the stamp; the record is complete.
        guard stamp(at: index).pointee.load(ordering: .acquiring) == Self.stampValue(position) else {
            try noteEmpty(at: position)
            return false
        }
        var length = at.load(fromByteOffset: SegmentLayout.recordLength, as: UInt32.self)
        if length == SegmentLayout.paddingLength {
            let toEnd = dataSize - index
            guard toEnd < maxRecordSize else {
                throw MailboxError.corrupted(reason: "padding record at position \(position) spans \(toEnd) bytes, more than a record can need")
            }
            position += toEnd
            index = 0
            at = data
            // Skipping the padding is progress even if no record follows yet.
            rememberRead(head: position, consumed: consumedSoFar())
            guard stamp(at: 0).pointee.load(ordering: .acquiring) == Self.stampValue(position) else {
                if release { _ = releaseReads() }
                try noteEmpty(at: position)
                return false
            }
            length = at.load(fromByteOffset: SegmentLayout.recordLength, as: UInt32.self)
        }
        // `length` is a local copy: another process changing the shared one cannot affect us.
        guard length <= UInt32(maxMessageSize) else {
            throw MailboxError.corrupted(reason: "record at position \(position) claims \(length) bytes, more than maxMessageSize \(maxMessageSize)")
        }
        let record = UInt64(Self.recordSize(payload: Int(length)))
        guard record <= dataSize - index else {
            throw MailboxError.corrupted(reason: "record at position \(position) runs past the end of the ring")
        }
        let sender = Int32(bitPattern: at.load(fromByteOffset: SegmentLayout.recordSender, as: UInt32.self))
        defer {
            rememberRead(head: position &+ record, consumed: consumedSoFar() &+ 1)
            if release { _ = releaseReads() }
        }
        try body(UnsafeRawBufferPointer(start: at + SegmentLayout.recordHeaderSize, count: Int(length)), sender)
        return true
    }

    /// No record at `position`. The cross-check against the published tail reads a line the
    /// sender writes, so a receiver spinning on an empty ring does it only on its first and then
    /// every 256th empty poll, to keep that line from bouncing between the CPUs.
    @inline(__always)
    private func noteEmpty(at position: UInt64) throws {
        if local.pointee.emptyPolls & 255 == 0 { try checkEmpty(at: position) }
        local.pointee.emptyPolls &+= 1
    }

    /// No record is stamped at `position`: fine if the sender has not written one, corrupted if
    /// the published tail says it has (or the tail is nowhere near the head).
    @inline(never)
    private func checkEmpty(at position: UInt64) throws {
        // Acquire: pairs with the tail's release store; every record before it is stamped.
        let written = tail.pointee.load(ordering: .acquiring)
        let ahead = Int64(bitPattern: written &- position)
        // The tail may trail the head (batched or padding-only writes), never by a whole area.
        guard ahead >= -Int64(dataSize), ahead <= Int64(dataSize) else {
            throw MailboxError.corrupted(reason: "one-to-one ring positions out of range (head \(position), tail \(written))")
        }
        // Loaded after the tail (acquire), the stamp must now be there if the tail covers it.
        if ahead > 0 && stamp(at: position & mask).pointee.load(ordering: .acquiring) != Self.stampValue(position) {
            throw MailboxError.corrupted(reason: "record at position \(position) is covered by tail \(written) but not stamped")
        }
    }

    @inline(__always)
    private func consumedSoFar() -> UInt64 {
        // Relaxed: this process is the only writer of consumedCount.
        local.pointee.hasUnreleasedReads ? local.pointee.unreleasedConsumed : consumedCount.pointee.load(ordering: .relaxed)
    }

    @inline(__always)
    private func rememberRead(head newHead: UInt64, consumed: UInt64) {
        local.pointee.unreleasedHead = newHead
        local.pointee.unreleasedConsumed = consumed
        local.pointee.hasUnreleasedReads = true
    }

    /// Releases the space of records read with `release: false`. Returns whether there were any.
    @inline(__always)
    func releaseReads() -> Bool {
        guard local.pointee.hasUnreleasedReads else { return false }
        local.pointee.hasUnreleasedReads = false
        // Relaxed: ordered before the release store of head below, which publishes both.
        consumedCount.pointee.store(local.pointee.unreleasedConsumed, ordering: .relaxed)
        // Release: our reads of the records happen before the sender may reuse their bytes.
        head.pointee.store(local.pointee.unreleasedHead, ordering: .releasing)
        return true
    }

    /// How many messages this sender has written in all (the sequence of its latest message).
    var writtenCount: UInt64 {
        // Relaxed: this process is the only writer of producedCount.
        local.pointee.hasUnpublishedWrites ? local.pointee.unpublishedProduced : producedCount.pointee.load(ordering: .relaxed)
    }

    /// Whether the receiver has taken `count` messages in all (released their space).
    func hasConsumed(_ count: UInt64) -> Bool {
        // Acquire: a receiver that released the message has finished reading it.
        consumedCount.pointee.load(ordering: .acquiring) >= count
    }

    /// Messages waiting (a snapshot; batched work not yet published is not counted).
    var depth: Int {
        // Acquire loads: a snapshot for reporting only; it orders nothing else.
        let produced = producedCount.pointee.load(ordering: .acquiring)
        let consumed = consumedCount.pointee.load(ordering: .acquiring)
        return produced >= consumed ? Int(min(produced - consumed, capacity)) : 0
    }
}
