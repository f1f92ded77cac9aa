import Synchronization

/// The single-sender, single-receiver ring: variable-size records in a power-of-two byte area.
///
/// Only the sender writes `tail` and `producedCount`; only the receiver writes `head` and
/// `consumedCount`. Each side keeps a private cache of the other side's position and reloads it
/// only when the cache says "full" (sender) or "empty" (receiver), so in steady state each side
/// touches the other's cache line once per batch, not once per message. There are no
/// read-modify-write atomics on this path: plain loads, release stores and acquire loads.
///
/// A record is a 16-byte header (length, kind, sender pid, reserved) and its payload, padded to
/// 16 bytes. A record never straddles the end of the area; the sender fills the rest of the area
/// with a padding record instead. `capacity` bounds the number of waiting messages exactly;
/// the byte area is sized so that `capacity` maximum-size messages always fit.
///
/// Everything read from shared memory is checked before use: a position or record that breaks
/// these rules throws `MailboxError.corrupted`, and no byte outside the data area is read.
struct OneToOneRing {
    /// This handle's private view of the ring: caches of the other side's positions and the
    /// positions of batched but unpublished work. Lives in process memory (never shared), behind a
    /// pointer so the ring itself stays a trivial value: no reference counting and no exclusivity
    /// checks on the hot path.
    struct LocalState {
        // Sender-private caches of the receiver's positions (stale values are conservative).
        var cachedHead: UInt64 = 0
        var cachedConsumed: UInt64 = 0
        // Receiver-private cache of the sender's tail (a stale value only hides new messages).
        var cachedTail: UInt64 = 0
        // Batching: records written but not yet published (sender), and records read but whose
        // space is not yet released (receiver). While a flag is set, the local values are this
        // side's true positions and the shared copies lag behind them.
        var hasUnpublishedWrites = false
        var unpublishedTail: UInt64 = 0
        var unpublishedProduced: UInt64 = 0
        var hasUnreleasedReads = false
        var unreleasedHead: UInt64 = 0
        var unreleasedConsumed: UInt64 = 0
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

    // MARK: Sender side

    /// Writes one record of `length` payload bytes, filled by `fill`, and publishes it (or, with
    /// `publish: false`, leaves it for `publishWrites()`). Returns false when the ring is full.
    /// If `fill` throws, nothing is written.
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
        }
        let record = UInt64(Self.recordSize(payload: length))
        var index = position & mask
        let toEnd = dataSize - index
        let needed = toEnd < record ? toEnd + record : record

        if produced &- local.pointee.cachedConsumed >= capacity || position &+ needed &- local.pointee.cachedHead > dataSize {
            // Acquire: the receiver finished reading the bytes before it released head, so
            // overwriting them afterwards cannot race with its reads.
            local.pointee.cachedHead = head.pointee.load(ordering: .acquiring)
            // Relaxed: stored before head's release store, so the acquire above covers it.
            local.pointee.cachedConsumed = consumedCount.pointee.load(ordering: .relaxed)
            guard local.pointee.cachedHead <= position, position - local.pointee.cachedHead <= dataSize,
                  local.pointee.cachedConsumed <= produced, produced - local.pointee.cachedConsumed <= capacity else {
                throw MailboxError.corrupted(reason: "one-to-one ring positions out of range (head \(local.pointee.cachedHead), tail \(position), consumed \(local.pointee.cachedConsumed), produced \(produced))")
            }
            if produced - local.pointee.cachedConsumed >= capacity || position + needed - local.pointee.cachedHead > dataSize {
                return false
            }
        }

        if toEnd < record {
            // Pad to the end of the area so the record does not straddle it.
            writeHeader(at: index, length: UInt32(toEnd) - UInt32(SegmentLayout.recordHeaderSize),
                        kind: SegmentLayout.kindPadding, sender: sender)
            position += toEnd
            index = 0
        }
        let payload = UnsafeMutableRawBufferPointer(start: data + Int(index) + SegmentLayout.recordHeaderSize, count: length)
        try fill(payload)
        writeHeader(at: index, length: UInt32(length), kind: SegmentLayout.kindMessage, sender: sender)
        if publish {
            local.pointee.hasUnpublishedWrites = false
            store(tail: position &+ record, produced: produced &+ 1)
        } else {
            local.pointee.unpublishedTail = position &+ record
            local.pointee.unpublishedProduced = produced &+ 1
            local.pointee.hasUnpublishedWrites = true
        }
        return true
    }

    /// Publishes records written with `publish: false`. Returns whether there were any.
    @inline(__always)
    func publishWrites() -> Bool {
        guard local.pointee.hasUnpublishedWrites else { return false }
        local.pointee.hasUnpublishedWrites = false
        store(tail: local.pointee.unpublishedTail, produced: local.pointee.unpublishedProduced)
        return true
    }

    @inline(__always)
    private func store(tail newTail: UInt64, produced: UInt64) {
        // Relaxed: ordered before the release store of tail below, which publishes both.
        producedCount.pointee.store(produced, ordering: .relaxed)
        // Release: the records' bytes become visible no later than the position that covers them.
        tail.pointee.store(newTail, ordering: .releasing)
    }

    @inline(__always)
    private func writeHeader(at index: UInt64, length: UInt32, kind: UInt32, sender: UInt32) {
        let at = data + Int(index)
        at.storeBytes(of: length, toByteOffset: SegmentLayout.recordLength, as: UInt32.self)
        at.storeBytes(of: kind, toByteOffset: SegmentLayout.recordKind, as: UInt32.self)
        at.storeBytes(of: sender, toByteOffset: SegmentLayout.recordSender, as: UInt32.self)
    }

    // MARK: Receiver side

    /// Hands the oldest record to `body` (payload valid only inside it) and releases its space
    /// (or, with `release: false`, leaves that to `releaseReads()`), also when `body` throws.
    /// Returns nil when the ring is empty.
    @inline(__always)
    func tryRead<R>(release: Bool, _ body: (UnsafeRawBufferPointer, Int32) throws -> R) throws -> R? {
        // Relaxed: this process is the only writer of head and consumedCount.
        var position = local.pointee.hasUnreleasedReads ? local.pointee.unreleasedHead : head.pointee.load(ordering: .relaxed)
        // The cache is only a hint: reload it when it says "empty" or does not fit this head
        // (a new handle, or a receiver role taken over from another process).
        if position == local.pointee.cachedTail || local.pointee.cachedTail &- position > dataSize {
            // Acquire: pairs with the sender's release store, making the records it covers visible.
            local.pointee.cachedTail = tail.pointee.load(ordering: .acquiring)
            if position == local.pointee.cachedTail { return nil }
            guard local.pointee.cachedTail &- position <= dataSize else {
                throw MailboxError.corrupted(reason: "one-to-one ring positions out of range (head \(position), tail \(local.pointee.cachedTail))")
            }
        }
        var index = position & mask
        var at = data + Int(index)
        var kind = at.load(fromByteOffset: SegmentLayout.recordKind, as: UInt32.self)
        if kind == SegmentLayout.kindPadding {
            position += dataSize - index
            guard position < local.pointee.cachedTail, local.pointee.cachedTail - position <= dataSize else {
                throw MailboxError.corrupted(reason: "padding record runs past the published tail")
            }
            index = 0
            at = data
            kind = at.load(fromByteOffset: SegmentLayout.recordKind, as: UInt32.self)
        }
        // Read the length once into a local: another process could change the shared copy.
        let length = Int(at.load(fromByteOffset: SegmentLayout.recordLength, as: UInt32.self))
        guard kind == SegmentLayout.kindMessage else {
            throw MailboxError.corrupted(reason: "record at position \(position) has unknown kind \(kind)")
        }
        guard length <= maxMessageSize else {
            throw MailboxError.corrupted(reason: "record at position \(position) claims \(length) bytes, more than maxMessageSize \(maxMessageSize)")
        }
        let record = UInt64(Self.recordSize(payload: length))
        guard record <= dataSize - index, record <= local.pointee.cachedTail - position else {
            throw MailboxError.corrupted(reason: "record at position \(position) runs past the end of the ring or the published tail")
        }
        let sender = Int32(bitPattern: at.load(fromByteOffset: SegmentLayout.recordSender, as: UInt32.self))
        defer {
            // Relaxed: this process is the only writer of consumedCount.
            let consumed = local.pointee.hasUnreleasedReads ? local.pointee.unreleasedConsumed : consumedCount.pointee.load(ordering: .relaxed)
            if release {
                local.pointee.hasUnreleasedReads = false
                store(head: position &+ record, consumed: consumed &+ 1)
            } else {
                local.pointee.unreleasedHead = position &+ record
                local.pointee.unreleasedConsumed = consumed &+ 1
                local.pointee.hasUnreleasedReads = true
            }
        }
        return try body(UnsafeRawBufferPointer(start: at + SegmentLayout.recordHeaderSize, count: length), sender)
    }

    /// Releases the space of records read with `release: false`. Returns whether there were any.
    @inline(__always)
    func releaseReads() -> Bool {
        guard local.pointee.hasUnreleasedReads else { return false }
        local.pointee.hasUnreleasedReads = false
        store(head: local.pointee.unreleasedHead, consumed: local.pointee.unreleasedConsumed)
        return true
    }

    @inline(__always)
    private func store(head newHead: UInt64, consumed: UInt64) {
        // Relaxed: ordered before the release store of head below, which publishes both.
        consumedCount.pointee.store(consumed, ordering: .relaxed)
        // Release: our reads of the records happen before the sender may reuse their bytes.
        head.pointee.store(newHead, ordering: .releasing)
    }

    /// Messages waiting (a snapshot).
    var depth: Int {
        // Acquire loads: a snapshot for reporting only; it orders nothing else.
        let produced = producedCount.pointee.load(ordering: .acquiring)
        let consumed = consumedCount.pointee.load(ordering: .acquiring)
        return produced >= consumed ? Int(min(produced - consumed, capacity)) : 0
    }
}
