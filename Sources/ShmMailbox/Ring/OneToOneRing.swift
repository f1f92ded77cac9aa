import Synchronization

/// The single-sender, single-receiver ring: variable-size records in a power-of-two byte area.
///
/// A record is a 16-byte header and its payload, padded to 16 bytes. The header's first word is
/// the record's *stamp*: one more than the 64-bit position at which it was written, XORed with a
/// key drawn at creation (so the zero-filled area, stale records of earlier laps and payload bytes
/// never pass for a record). The sender writes the payload and the rest of the header, then
/// stores the stamp with release ordering; the receiver treats the record at `head` as present
/// exactly when its stamp is right for `head`. So the receiver never reads the sender's position
/// on its fast path, and a message costs it one cache-line transfer (the record's). A record
/// never straddles the end of the area; the sender fills the rest of the area with a padding
/// record instead.
///
/// **One word per side.** The receiver publishes one word, `head`; the sender one word, `tail`,
/// which is only a hint. Every other fact is derived from the records themselves, so a process
/// killed between any two of its stores leaves nothing inconsistent behind:
/// - The sender's true tail is where the stamps end: a sender that takes over (or any new sender
///   handle) walks the stamped records from `head` to find it, and counts the messages on the
///   way. A dead sender's records — also ones it stamped but never covered by a published tail,
///   inside a batch or a failed zero-copy send — are all kept and received.
/// - `capacity` bounds the number of waiting messages exactly: the sender counts the messages it
///   wrote beyond the receiver's head; when the receiver's head moves, the sender walks the
///   records it passed (their space is the sender's again, so nobody else writes there) and
///   counts them off. The walk happens only when the sender's cached view says "full".
/// - A synchronous send's message is received once `head` has passed its end.
/// - The receiver stores, before it hands a record to its caller, the end position of that
///   record (`readingUpTo`). A receiver that takes over hands the records below that position
///   to its caller again, marked *redelivered*: at least once, never lost.
///
/// There are no read-modify-write atomics here: plain loads, release stores and acquire loads.
/// Everything read from shared memory is checked before use, with wrapping arithmetic (so
/// hostile positions cannot trap): a position or record that breaks these rules throws
/// `MailboxError.corrupted`, and no byte outside the data area is read.
struct OneToOneRing {
    /// Where the ring is and how it is shaped, fixed for the handle's life.
    struct Fixed {
        let tailWord: UnsafeMutablePointer<Atomic<UInt64>>
        let headWord: UnsafeMutablePointer<Atomic<UInt64>>
        let readingUpTo: UnsafeMutablePointer<Atomic<UInt64>>
        /// The sender role's lease word: the packed identity of the sender that holds the ring.
        let senderRole: UnsafeMutablePointer<Atomic<UInt64>>
        let data: UnsafeMutableRawPointer
        let dataSize: UInt64
        let mask: UInt64
        let capacity: UInt64
        let maxMessageSize: Int
        /// Padding is only ever written where a record of at most this size did not fit.
        let maxRecordSize: UInt64
        let stampKey: UInt64
    }

    /// This handle's private view of the ring, with the ring's fixed facts. Lives in process
    /// memory (never shared), behind a pointer so the ring itself stays a one-word trivial value:
    /// no reference counting, no exclusivity checks and nothing to copy on the hot path.
    struct LocalState {
        let fixed: Fixed

        // Sender. Valid once `sending` is set (the handle holds the sender role and found the
        // true tail).
        var sending = false
        /// The end of the last record written (the true tail).
        var tail: UInt64 = 0
        /// The tail as last published.
        var publishedTail: UInt64 = 0
        /// The receiver's head as last counted (a record boundary at or before `tail`).
        var countedHead: UInt64 = 0
        /// Messages in `countedHead ..< tail`.
        var inFlight: UInt64 = 0
        /// The end positions of those messages, oldest first, in a circular buffer of
        /// `capacity` entries at `firstEnd` (nil for capacities above `endsLimit`): counting what
        /// the receiver took is then a scan of process memory, not of the ring's records.
        var ends: UnsafeMutablePointer<UInt64>?
        var firstEnd = 0
        /// The end of the latest message written (what a synchronous send waits for).
        var lastMessageEnd: UInt64 = 0

        // Receiver. Valid once `receiving` is set.
        var receiving = false
        /// The next record to read (the true head).
        var head: UInt64 = 0
        /// The head as last published.
        var releasedHead: UInt64 = 0
        /// Records that start below this were handed to a receiver that died: redelivered.
        var redeliverBelow: UInt64 = 0
        /// Empty polls so far; every 256th (starting with the first) cross-checks the tail.
        var emptyPolls: UInt32 = 0
    }

    /// Owned by the handle that created this value; freed with `deallocate()`.
    private let local: UnsafeMutablePointer<LocalState>

    var tailWord: UnsafeMutablePointer<Atomic<UInt64>> { local.pointee.fixed.tailWord }
    var headWord: UnsafeMutablePointer<Atomic<UInt64>> { local.pointee.fixed.headWord }
    private var readingUpTo: UnsafeMutablePointer<Atomic<UInt64>> { local.pointee.fixed.readingUpTo }
    var data: UnsafeMutableRawPointer { local.pointee.fixed.data }
    var dataSize: UInt64 { local.pointee.fixed.dataSize }
    var mask: UInt64 { local.pointee.fixed.mask }
    var capacity: UInt64 { local.pointee.fixed.capacity }
    private var maxMessageSize: Int { local.pointee.fixed.maxMessageSize }
    private var maxRecordSize: UInt64 { local.pointee.fixed.maxRecordSize }
    private var stampKey: UInt64 { local.pointee.fixed.stampKey }

    init(header: UnsafeMutableRawPointer, geometry: SegmentGeometry, nonce: UInt64) {
        let fixed = Fixed(
            tailWord: header.atomicUInt64(at: SegmentLayout.tailOffset),
            headWord: header.atomicUInt64(at: SegmentLayout.headOffset),
            readingUpTo: header.atomicUInt64(at: SegmentLayout.readingUpToOffset),
            senderRole: header.atomicUInt64(at: SegmentLayout.senderRoleOffset),
            data: header + geometry.dataOffset,
            dataSize: UInt64(geometry.dataSize),
            mask: UInt64(geometry.dataSize - 1),
            capacity: UInt64(geometry.capacity),
            maxMessageSize: geometry.maxMessageSize,
            maxRecordSize: UInt64(Self.recordSize(payload: geometry.maxMessageSize)),
            stampKey: Self.stampKey(nonce: nonce))
        local = .allocate(capacity: 1)
        local.initialize(to: LocalState(fixed: fixed))
        if geometry.capacity <= Self.endsLimit {
            local.pointee.ends = .allocate(capacity: geometry.capacity)
        }
    }

    /// Frees the handle-private state. The ring must not be used afterwards.
    func deallocate() {
        local.pointee.ends?.deallocate()
        local.deinitialize(count: 1)
        local.deallocate()
    }

    /// The largest capacity whose message ends a sender keeps in process memory (512 KiB);
    /// above it, it counts by walking the records.
    static let endsLimit = 1 << 16

    /// Remembers the end of a message just written (the newest of `inFlight`).
    @inline(__always)
    private func rememberEnd(_ end: UInt64) {
        guard let ends = local.pointee.ends else { return }
        var index = local.pointee.firstEnd + Int(local.pointee.inFlight)
        if index >= Int(capacity) { index -= Int(capacity) }
        ends[index] = end
    }

    /// The stamp key of a segment: its nonce with the low four bits clear, so that a stamp
    /// (`position + 1`, whose low four bits are 0001) never becomes 0, the zero-filled area.
    static func stampKey(nonce: UInt64) -> UInt64 { nonce & ~0xF }

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
    func stamp(at index: UInt64) -> UnsafeMutablePointer<Atomic<UInt64>> {
        data.atomicUInt64(at: Int(index) + SegmentLayout.recordStamp)
    }

    /// The stamp of a record written at `position`.
    @inline(__always)
    func stampValue(_ position: UInt64) -> UInt64 { (position &+ 1) ^ stampKey }

    /// A record found at `position` by a walk: its size in the area, and whether it is a message
    /// (not padding). Nil if no record is stamped there. Throws for an impossible record.
    func record(at position: UInt64) throws(MailboxError) -> (size: UInt64, isMessage: Bool)? {
        let index = position & mask
        // Acquire: pairs with the release store of the stamp; the header is complete.
        guard stamp(at: index).pointee.load(ordering: .acquiring) == stampValue(position) else { return nil }
        let length = data.load(fromByteOffset: Int(index) + SegmentLayout.recordLength, as: UInt32.self)
        let toEnd = dataSize - index
        if length == SegmentLayout.paddingLength {
            guard toEnd < maxRecordSize else {
                throw .corrupted(reason: "padding record at position \(position) spans \(toEnd) bytes, more than a record can need")
            }
            return (toEnd, false)
        }
        guard length <= UInt32(maxMessageSize) else {
            throw .corrupted(reason: "record at position \(position) claims \(length) bytes, more than maxMessageSize \(maxMessageSize)")
        }
        let size = UInt64(Self.recordSize(payload: Int(length)))
        guard size <= toEnd else {
            throw .corrupted(reason: "record at position \(position) runs past the end of the ring")
        }
        return (size, true)
    }

    /// Loads the receiver's `head` and checks it: 16-byte aligned (a misaligned position would
    /// make misaligned atomic loads).
    private func loadHead() throws(MailboxError) -> UInt64 {
        // Acquire: the receiver finished reading every record before it released this head.
        let head = headWord.pointee.load(ordering: .acquiring)
        guard head % UInt64(SegmentLayout.recordAlignment) == 0 else {
            throw .corrupted(reason: "one-to-one ring head \(head) is not a record position")
        }
        return head
    }

    // MARK: Sender side

    /// Finds the true tail (see the type's documentation) before this handle's first send, and
    /// after it (re)took the sender role: walks the stamped records from the receiver's head.
    @inline(never)
    func startSending() throws(MailboxError) {
        let head = try loadHead()
        var position = head
        var messages: UInt64 = 0
        var lastMessageEnd = head
        local.pointee.firstEnd = 0
        while position &- head < dataSize, let found = try record(at: position) {
            guard found.size <= dataSize &- (position &- head) else {
                throw .corrupted(reason: "one-to-one ring records from head \(head) run past a whole ring")
            }
            position &+= found.size
            if found.isMessage {
                guard messages < capacity else {
                    throw .corrupted(reason: "one-to-one ring holds more than its capacity of \(capacity) messages")
                }
                local.pointee.inFlight = messages
                rememberEnd(position)
                messages += 1
                lastMessageEnd = position
            }
        }
        local.pointee.tail = position
        local.pointee.countedHead = head
        local.pointee.inFlight = messages
        local.pointee.lastMessageEnd = lastMessageEnd
        // Relaxed: only a hint of ours; the next publication stores the true tail.
        local.pointee.publishedTail = tailWord.pointee.load(ordering: .relaxed)
        local.pointee.sending = true
    }

    /// Writes and stamps one record of `length` payload bytes, filled by `fill`; the receiver can
    /// take it at once. With `publish: false` the tail hint is left for `publishWrites()`.
    /// Returns false when the ring is full. If `fill` throws, no message is written.
    @inline(__always)
    func tryWrite(length: Int, sender: UInt32, publish: Bool, _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> Bool {
        if !local.pointee.sending { try startSending() }
        var position = local.pointee.tail
        let record = UInt64(Self.recordSize(payload: length))
        var index = position & mask
        let toEnd = dataSize - index
        let needed = toEnd < record ? toEnd + record : record

        if local.pointee.inFlight >= capacity || position &+ needed &- local.pointee.countedHead > dataSize {
            try countReceived()
            if local.pointee.inFlight >= capacity || position &+ needed &- local.pointee.countedHead > dataSize {
                return false
            }
        }
        if toEnd < record {
            // Pad to the end of the area so the record does not straddle it. The padding is
            // visible at once, so from here on it counts as written even if `fill` throws.
            writeHeader(at: index, position: position, length: SegmentLayout.paddingLength, sender: sender)
            crashPoint(.oneToOneAfterPadding)
            position &+= toEnd
            index = 0
            local.pointee.tail = position
        }
        try fill(UnsafeMutableRawBufferPointer(start: data + Int(index) + SegmentLayout.recordHeaderSize, count: length))
        crashPoint(.oneToOneAfterPayload)
        writeHeader(at: index, position: position, length: UInt32(length), sender: sender)
        crashPoint(.oneToOneAfterStamp)
        position &+= record
        local.pointee.tail = position
        local.pointee.lastMessageEnd = position
        rememberEnd(position)
        local.pointee.inFlight += 1
        // Inside a batch, publish anyway once half the area is unpublished, so that the published
        // tail never trails the receiver's head by a whole area (its consistency check).
        if publish || position &- local.pointee.publishedTail >= dataSize / 2 {
            publishWrites()
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
        stamp(at: index).pointee.store(stampValue(position), ordering: .releasing)
    }

    /// The sender's view says "full": loads the receiver's head and counts off the messages it
    /// passed — from the ends it remembers, or (large capacities) by walking their records,
    /// which are the sender's to overwrite now, so they are intact: they hold what it wrote.
    @inline(never)
    private func countReceived() throws(MailboxError) {
        let counted = local.pointee.countedHead
        let tail = local.pointee.tail
        let head = try loadHead()
        // Wrapping: the receiver's head lies between what we counted and our tail.
        guard head &- counted <= tail &- counted else {
            throw .corrupted(reason: "one-to-one ring head \(head) is outside \(counted)...\(tail)")
        }
        if head == tail {
            // The receiver has taken everything (the usual case when it keeps up): no walk.
            local.pointee.inFlight = 0
            local.pointee.countedHead = head
            return
        }
        if let ends = local.pointee.ends {
            // Pop the messages whose end the head has reached (wrapping comparison).
            var first = local.pointee.firstEnd
            var inFlight = local.pointee.inFlight
            while inFlight > 0 && Int64(bitPattern: head &- ends[first]) >= 0 {
                first += 1
                if first == Int(capacity) { first = 0 }
                inFlight -= 1
            }
            local.pointee.firstEnd = first
            local.pointee.inFlight = inFlight
            local.pointee.countedHead = head
            return
        }
        var position = counted
        var passed: UInt64 = 0
        while position != head {
            guard let found = try record(at: position), found.size <= head &- position else {
                throw .corrupted(reason: "one-to-one ring head \(head) is not at a record boundary after \(position)")
            }
            position &+= found.size
            if found.isMessage { passed += 1 }
        }
        guard passed <= local.pointee.inFlight else {
            throw .corrupted(reason: "one-to-one ring head passed more messages than were written")
        }
        local.pointee.inFlight -= passed
        local.pointee.countedHead = head
    }

    /// Publishes the tail hint (for inspection, the receiver's consistency check, and as a
    /// starting point nobody relies on).
    @inline(__always)
    func publishWrites() {
        guard local.pointee.publishedTail != local.pointee.tail else { return }
        // Release: a reader of the tail sees every record (and stamp) before it.
        tailWord.pointee.store(local.pointee.tail, ordering: .releasing)
        local.pointee.publishedTail = local.pointee.tail
        crashPoint(.oneToOneAfterPublish)
    }

    /// Whether this handle's writes are not yet published.
    var hasUnpublishedWrites: Bool {
        local.pointee.sending && local.pointee.publishedTail != local.pointee.tail
    }

    /// The end position of the latest message this sender wrote (for `hasBeenReceived`).
    var lastMessageEnd: UInt64 { local.pointee.lastMessageEnd }

    /// Whether the receiver has finished with every record before `end` (released its space).
    func hasBeenReceived(upTo end: UInt64) -> Bool {
        // Acquire: a receiver that released the record has finished reading it.
        let head = headWord.pointee.load(ordering: .acquiring)
        return Int64(bitPattern: head &- end) >= 0
    }

    // MARK: Receiver side

    /// Takes up the receive side: from the published head, and with the records a dead receiver
    /// was handing out (below `readingUpTo`) marked as redelivered.
    @inline(never)
    func startReceiving() throws(MailboxError) {
        let head = try loadHead()
        // Acquire: the receiver role was released (with release) or its holder died (its last
        // stores were complete when the kernel ended it) before we claimed it.
        let reading = readingUpTo.pointee.load(ordering: .acquiring)
        // Only a value within a ring ahead of head means records were handed out unreleased.
        let ahead = reading &- head
        local.pointee.redeliverBelow = ahead > 0 && ahead <= dataSize ? reading : head
        local.pointee.head = head
        local.pointee.releasedHead = head
        local.pointee.emptyPolls = 0
        local.pointee.receiving = true
    }

    /// Hands the oldest record to `body` (payload valid only inside it, with the sender's identity
    /// (see `senderIdentity(pid:)`) and whether it is a redelivery) and releases its space (or,
    /// with `release: false`, leaves that to `releaseReads()`), also when `body` throws. Returns
    /// false when the ring is empty.
    @inline(__always)
    func tryRead(release: Bool, _ body: (UnsafeRawBufferPointer, ProcessIdentity, Bool) throws -> Void) throws -> Bool {
        if !local.pointee.receiving { try startReceiving() }
        var position = local.pointee.head
        var index = position & mask
        var at = data + Int(index)
        // Acquire: pairs with the sender's release store of the stamp; the record is complete.
        guard stamp(at: index).pointee.load(ordering: .acquiring) == stampValue(position) else {
            try noteEmpty(at: position)
            return false
        }
        var length = at.load(fromByteOffset: SegmentLayout.recordLength, as: UInt32.self)
        if length == SegmentLayout.paddingLength {
            let toEnd = dataSize - index
            guard toEnd < maxRecordSize else {
                throw MailboxError.corrupted(reason: "padding record at position \(position) spans \(toEnd) bytes, more than a record can need")
            }
            position &+= toEnd
            index = 0
            at = data
            // Skipping the padding is progress even if no record follows yet.
            local.pointee.head = position
            guard stamp(at: 0).pointee.load(ordering: .acquiring) == stampValue(position) else {
                if release { releaseReads() }
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
        let sender = senderIdentity(pid: at.load(fromByteOffset: SegmentLayout.recordSender, as: UInt32.self))
        let end = position &+ record
        let redeliverBelow = local.pointee.redeliverBelow
        let redelivered = Int64(bitPattern: position &- redeliverBelow) < 0
        // Never below what a dead predecessor handed out: a receiver killed while it hands
        // those records out again must leave them marked for its successor too (found by the
        // SPIN model, Models/one_to_one.pml, F1).
        let handedOutUpTo = Int64(bitPattern: end &- redeliverBelow) >= 0 ? end : redeliverBelow
        // Relaxed: read only by a receiver that takes over after this one died (its role claim
        // orders it); the release of `head` below supersedes it.
        readingUpTo.pointee.store(handedOutUpTo, ordering: .relaxed)
        crashPoint(.oneToOneAfterIntent)
        defer {
            local.pointee.head = end
            crashPoint(.oneToOneBeforeRelease)
            if release { releaseReads() }
        }
        try body(UnsafeRawBufferPointer(start: at + SegmentLayout.recordHeaderSize, count: Int(length)), sender, redelivered)
        return true
    }

    /// The identity of the process that wrote a record whose header names pid `pid`. A record
    /// holds only the pid; the sender that holds the ring now is named in full (start time
    /// included) by the sender role word. If that word names the same pid, its identity is the
    /// record's sender's (rarely wrong: a sender that died and whose pid the ring's next sender
    /// happens to have been given); otherwise the writer has given up the role since, and only
    /// its pid is known (start time 0, "unknown").
    ///
    /// One extra load per record, of a line written only when the role changes hands (it shares
    /// it with the receiver role, which this receiver holds): it does not bounce between the CPUs.
    @inline(__always)
    func senderIdentity(pid: UInt32) -> ProcessIdentity {
        // Relaxed: the value is informational, it orders nothing. The holder of the role when
        // this record was written may be gone (or replaced) by now, whatever ordering we used;
        // the pid check below catches that.
        let role = local.pointee.fixed.senderRole.pointee.load(ordering: .relaxed)
        if role & ProcessIdentity.packedPidMask == UInt64(pid), role != LeaseWord.retired {
            return ProcessIdentity(packed: role)
        }
        return ProcessIdentity(pid: Int32(bitPattern: pid), startTime: 0)
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
        let written = tailWord.pointee.load(ordering: .acquiring)
        let ahead = Int64(bitPattern: written &- position)
        // The tail hint may trail the head by any amount (batched or padding-only writes,
        // senders that died after stamping and before publishing — one after the other, so
        // their unpublished records add up: Models/one_to_one.pml, F2), but it never runs more
        // than a whole area ahead of the head.
        guard ahead <= Int64(dataSize) else {
            throw MailboxError.corrupted(reason: "one-to-one ring positions out of range (head \(position), tail \(written))")
        }
        // Loaded after the tail (acquire), the stamp must now be there if the tail covers it.
        if ahead > 0 && stamp(at: position & mask).pointee.load(ordering: .acquiring) != stampValue(position) {
            throw MailboxError.corrupted(reason: "record at position \(position) is covered by tail \(written) but not stamped")
        }
    }

    /// Releases the space of records read with `release: false`.
    @inline(__always)
    func releaseReads() {
        guard local.pointee.releasedHead != local.pointee.head else { return }
        // Release: our reads of the records happen before the sender may reuse their bytes.
        headWord.pointee.store(local.pointee.head, ordering: .releasing)
        local.pointee.releasedHead = local.pointee.head
    }

    /// Whether this handle has read records whose space it has not released.
    var hasUnreleasedReads: Bool {
        local.pointee.receiving && local.pointee.releasedHead != local.pointee.head
    }

    /// Forgets this handle's positions when it gives its role up: whoever takes the role next
    /// starts from the shared state.
    func stop() {
        local.pointee.sending = false
        local.pointee.receiving = false
    }

    /// Messages waiting (a snapshot, from any process): walks the stamped records from the head.
    /// Records overwritten while it walks end the walk early.
    var depth: Int {
        // Acquire: see `loadHead`.
        let head = headWord.pointee.load(ordering: .acquiring)
        guard head % UInt64(SegmentLayout.recordAlignment) == 0 else { return 0 }
        var position = head
        var messages = 0
        while position &- head < dataSize, messages < Int(capacity),
              let found = try? record(at: position), found.size <= dataSize &- (position &- head) {
            position &+= found.size
            if found.isMessage { messages += 1 }
        }
        return messages
    }
}
