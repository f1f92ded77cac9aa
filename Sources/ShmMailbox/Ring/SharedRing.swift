import Synchronization

/// The many-senders, many-receivers ring: `capacity` fixed-size slots, each holding one
/// variable-size message of up to `maxMessageSize` bytes.
///
/// The design follows Vyukov's bounded MPMC queue (a sequence number per slot), changed so that
/// the word that claims a slot also names the claiming process. Each slot starts with one 64-bit
/// state word:
///
///     bits 24..<64  sequence: the position (mod 2^40) the slot currently serves
///     bits 22..<24  state: 0 empty, 1 claimed by a sender, 2 full, 3 taken by a receiver
///     bits  0..<22  pid of the claiming sender or taking receiver (Linux pids fit in 22 bits)
///
/// A slot moves `empty(p) → claimed(p, sender) → full(p, sender) → taken(p, receiver) →
/// empty(p + capacity)`, each step by compare-and-swap or (for the owner of the slot) a release
/// store. `tail` and `head` are 64-bit hints of the next position to claim / take; whoever finds
/// them behind a slot that has moved on advances them (helping), so a process that dies between
/// claiming a slot and advancing `tail` stalls nobody.
///
/// Crash windows: a sender killed between claim and commit leaves `claimed(p, pid)`; a receiver
/// that finds such a slot at the head and sees `pid` dead (`kill(pid, 0)` / `/proc`) turns it into
/// `empty(p + capacity)` and moves on. A receiver killed between take and release leaves
/// `taken(p, pid)`; a sender that finds the ring full because of such a slot frees it the same
/// way (the message it held is lost with the receiver that took it). `Mailbox` checks liveness only
/// after a slot has stayed stuck for a while, so a slow but live process is never skipped.
///
/// Sealing (unbounded mailboxes only): a sender that finds the ring full stores the full position
/// in `sealedAt` and moves on to the next segment of the chain. A sender that claims a slot at or
/// beyond `sealedAt` turns it into a cancelled record and moves on too; a receiver leaves the ring
/// once its head has reached `sealedAt` and the slot there is unclaimed. The claim, the check of
/// `sealedAt` after it, the sealing store and the receiver's two loads are sequentially
/// consistent, which makes this a Dekker handshake: either the receiver sees the claim (and waits
/// for the message), or the claimer sees the seal (and takes its message elsewhere).
///
/// Why slots and not a byte ring: the per-slot word makes every crash window detectable and
/// repairable without timeouts; the price is that each slot reserves `maxMessageSize` bytes.
struct SharedRing {
    enum WriteResult {
        case written(position: UInt64)
        /// Full; `blockedBy` is the state word of the slot in the way (for the dead-reader check)
        /// at the previous lap's `position`.
        case full(blockedBy: UInt64, position: UInt64)
        /// The ring is sealed (unbounded mailboxes): write to the next segment of the chain.
        case sealed
    }

    enum ReadResult {
        case message
        case empty
        /// The slot at the head is claimed by a sender that has not committed yet.
        case pending(word: UInt64, position: UInt64)
    }

    static let sequenceBits: UInt64 = 40
    static let sequenceShift: UInt64 = 24
    static let stateShift: UInt64 = 22
    static let pidMask: UInt64 = (1 << 22) - 1
    static let stateEmpty: UInt64 = 0
    static let stateClaimed: UInt64 = 1
    static let stateFull: UInt64 = 2
    static let stateTaken: UInt64 = 3

    private let tail: UnsafeMutablePointer<Atomic<UInt64>>
    private let head: UnsafeMutablePointer<Atomic<UInt64>>
    private let slots: UnsafeMutableRawPointer
    private let slotStride: Int
    private let capacity: UInt64
    private let maxMessageSize: Int
    /// The `sealedAt` word of a segment of an unbounded mailbox; nil for a bounded ring.
    private let seal: UnsafeMutablePointer<Atomic<UInt64>>?

    init(header: UnsafeMutableRawPointer, geometry: SegmentGeometry) {
        seal = geometry.isChainable ? header.atomicUInt64(at: SegmentLayout.sealedAtOffset) : nil
        tail = header.atomicUInt64(at: SegmentLayout.tailOffset)
        head = header.atomicUInt64(at: SegmentLayout.headOffset)
        slots = header + geometry.dataOffset
        slotStride = geometry.slotStride
        capacity = UInt64(geometry.capacity)
        maxMessageSize = geometry.maxMessageSize
    }

    static func slotStride(maxMessageSize: Int) -> Int {
        SegmentLayout.align(SegmentLayout.slotHeaderSize + maxMessageSize, to: SegmentLayout.slotAlignment)
    }

    /// Writes the initial state words (`empty(i)` for slot i). Creator only, before publication.
    static func initialize(header: UnsafeMutableRawPointer, geometry: SegmentGeometry) {
        for index in 0..<geometry.capacity {
            let word = header.atomicUInt64(at: geometry.dataOffset + index * geometry.slotStride)
            // Relaxed: the segment is not yet published (magic is stored later with release).
            word.pointee.store(makeWord(position: UInt64(index), state: stateEmpty, pid: 0), ordering: .relaxed)
        }
    }

    // MARK: State words

    @inline(__always)
    static func makeWord(position: UInt64, state: UInt64, pid: UInt32) -> UInt64 {
        (position << sequenceShift) | (state << stateShift) | (UInt64(pid) & pidMask)
    }

    @inline(__always)
    static func state(of word: UInt64) -> UInt64 { (word >> stateShift) & 3 }

    @inline(__always)
    static func pid(of word: UInt64) -> Int32 { Int32(word & pidMask) }

    /// The slot's sequence minus `position`, as a signed 40-bit difference.
    @inline(__always)
    static func distance(_ word: UInt64, from position: UInt64) -> Int64 {
        let sequence = word >> sequenceShift
        return Int64(bitPattern: (sequence &- position) << sequenceShift) >> Int64(sequenceShift)
    }

    @inline(__always)
    private func stateWord(_ position: UInt64) -> UnsafeMutablePointer<Atomic<UInt64>> {
        slots.atomicUInt64(at: Int(position % capacity) * slotStride)
    }

    @inline(__always)
    private func slot(_ position: UInt64) -> UnsafeMutableRawPointer {
        slots + Int(position % capacity) * slotStride
    }

    // MARK: Sender side

    /// Claims a slot, lets `fill` write `length` payload bytes into it, and commits it. If `fill`
    /// throws, the slot is committed as a cancelled record that receivers skip, and the error is
    /// rethrown.
    @inline(__always)
    func tryWrite(length: Int, sender: UInt32, identity: UInt64, receipt: Bool,
                  _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> WriteResult {
        var staleReloads = 0
        while true {
            // Acquire: pairs with the release in `advance`, so the slot word we read next is at
            // least as new as the state that justified this tail value.
            let position = tail.pointee.load(ordering: .acquiring)
            let word = stateWord(position)
            // Acquire: if the slot is empty for us, the receiver's reads of its previous content
            // happened before (it released the slot with a release store).
            let current = word.pointee.load(ordering: .acquiring)
            let distance = Self.distance(current, from: position)
            if distance == 0 {
                if Self.state(of: current) == Self.stateEmpty {
                    let claimed = Self.makeWord(position: position, state: Self.stateClaimed, pid: sender)
                    // Sequentially consistent: acquire as above; release keeps the claim ordered
                    // before our writes; seq_cst orders it before the load of `sealedAt` below
                    // (the sealing handshake). On x86 every locked CAS is all of these anyway.
                    if word.pointee.compareExchange(expected: current, desired: claimed, ordering: .sequentiallyConsistent).exchanged {
                        advance(tail, from: position)
                        if let seal, isSealed(seal, at: position) {
                            // Sealed before our claim: leave a cancelled record, write elsewhere.
                            cancel(position, sender: sender)
                            return .sealed
                        }
                        try commit(position, length: length, sender: sender, identity: identity, receipt: receipt, fill)
                        return .written(position: position)
                    }
                } else {
                    // Another sender claimed this position: help tail past it.
                    advance(tail, from: position)
                }
                continue
            }
            if distance < 0 {
                // The slot still serves the previous lap: the ring is full. Check tail against head
                // so a corrupted tail cannot make the ring look full forever.
                let taken = head.pointee.load(ordering: .acquiring)
                if !isPlausibleGap(position, taken) {
                    // Either we were preempted and `position` is stale (tail moved: retry), or
                    // the positions are garbage (tail did not move: report it).
                    if tail.pointee.load(ordering: .acquiring) != position { continue }
                    throw MailboxError.corrupted(reason: "shared ring tail \(position) and head \(taken) are further apart than capacity \(capacity) allows")
                }
                if let seal, isSealed(seal, at: position) { return .sealed }
                return .full(blockedBy: current, position: position &- capacity)
            }
            // distance > 0: tail is behind the slot (someone has not advanced it yet).
            if distance > Int64(capacity) {
                // A slot can be more than a lap ahead of tail only if tail moved on since we read
                // it (we were preempted): retry. If tail has not moved, the segment is damaged.
                if tail.pointee.load(ordering: .acquiring) != position { continue }
                throw MailboxError.corrupted(reason: "shared ring slot sequence is \(distance) positions ahead of tail")
            }
            // The slot serves a later lap, so `position` was used already: help tail past it.
            advance(tail, from: position)
            staleReloads += 1
            if staleReloads > 1 << 20 {
                throw MailboxError.corrupted(reason: "shared ring tail never catches up with its slots")
            }
        }
    }

    @inline(__always)
    private func commit(_ position: UInt64, length: Int, sender: UInt32, identity: UInt64, receipt: Bool,
                        _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        let at = slot(position)
        var kind = receipt ? SegmentLayout.kindReceipt : SegmentLayout.kindMessage
        at.storeBytes(of: identity, toByteOffset: SegmentLayout.slotSender, as: UInt64.self)
        var committedLength = length
        defer {
            at.storeBytes(of: UInt32(committedLength), toByteOffset: SegmentLayout.slotLength, as: UInt32.self)
            at.storeBytes(of: kind, toByteOffset: SegmentLayout.slotKind, as: UInt32.self)
            // Release: the payload and header bytes are visible before the slot reads as full.
            stateWord(position).pointee.store(Self.makeWord(position: position, state: Self.stateFull, pid: sender), ordering: .releasing)
        }
        do {
            try fill(UnsafeMutableRawBufferPointer(start: at + SegmentLayout.slotHeaderSize, count: length))
        } catch {
            kind = SegmentLayout.kindCancelled
            committedLength = 0
            throw error
        }
    }

    /// Whether `seal` says senders stopped using this ring at or before `position`.
    @inline(__always)
    private func isSealed(_ seal: UnsafeMutablePointer<Atomic<UInt64>>, at position: UInt64) -> Bool {
        // Sequentially consistent: the claimer's half of the sealing handshake (see the type's
        // documentation); a relaxed or acquire load could miss a seal the receiver acted on.
        let sealedAt = seal.pointee.load(ordering: .sequentiallyConsistent)
        return sealedAt != 0 && Int64(bitPattern: position &- sealedAt) >= 0
    }

    /// Seals the ring at `position` (where a sender found it full), unless it is sealed already.
    /// Unbounded mailboxes only.
    func seal(at position: UInt64) {
        guard let seal else { return }
        // Sequentially consistent: the sealer's half of the handshake. Only the first seal counts;
        // failure ordering relaxed: someone else sealed, and we only move on.
        _ = seal.pointee.compareExchange(expected: 0, desired: max(position, 1), successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
    }

    /// Whether this (unbounded) ring is sealed and every message written before the seal has been
    /// taken: its receivers move on to the next segment. Call after `tryRead` found it empty.
    func isSealedAndDrained() -> Bool {
        guard let seal else { return false }
        // Sequentially consistent: the receiver's half of the handshake (seal, then slot).
        let sealedAt = seal.pointee.load(ordering: .sequentiallyConsistent)
        guard sealedAt != 0 else { return false }
        let position = head.pointee.load(ordering: .sequentiallyConsistent)
        guard Int64(bitPattern: position &- sealedAt) >= 0 else { return false }
        // Sequentially consistent: ordered after the seal load, so a claim we do not see here
        // will see the seal and be cancelled.
        let current = stateWord(position).pointee.load(ordering: .sequentiallyConsistent)
        let distance = Self.distance(current, from: position)
        // A slot still in the previous lap, or empty for `position`: nothing was claimed here.
        // Claimed or full for `position`: a message (or a cancelled record) is still to be read.
        // A later lap: `position` is stale; the next `tryRead` moves head on.
        return distance < 0 || (distance == 0 && Self.state(of: current) == Self.stateEmpty)
    }

    /// Commits the slot this sender claimed at `position` as a cancelled record (no payload).
    private func cancel(_ position: UInt64, sender: UInt32) {
        let at = slot(position)
        at.storeBytes(of: 0, toByteOffset: SegmentLayout.slotLength, as: UInt32.self)
        at.storeBytes(of: SegmentLayout.kindCancelled, toByteOffset: SegmentLayout.slotKind, as: UInt32.self)
        // Release: the header bytes are visible before the slot reads as full.
        stateWord(position).pointee.store(Self.makeWord(position: position, state: Self.stateFull, pid: sender), ordering: .releasing)
    }

    // MARK: Receiver side

    /// Takes the oldest committed message, hands it to `body` (valid only inside) and frees the
    /// slot, also when `body` throws. Cancelled records are skipped.
    @inline(__always)
    func tryRead(receiver: UInt32, identity: UInt64, _ body: (UnsafeRawBufferPointer, Int32) throws -> Void) throws -> ReadResult {
        var staleReloads = 0
        while true {
            // Acquire: pairs with `advance`'s release (see tryWrite).
            let position = head.pointee.load(ordering: .acquiring)
            let word = stateWord(position)
            // Acquire: pairs with the sender's release in `commit`: a full slot's bytes are visible.
            let current = word.pointee.load(ordering: .acquiring)
            let distance = Self.distance(current, from: position)
            if distance == 0 {
                switch Self.state(of: current) {
                case Self.stateFull:
                    let taken = Self.makeWord(position: position, state: Self.stateTaken, pid: receiver)
                    // Acquire-release: acquire makes the payload visible; the claim needs no release.
                    guard word.pointee.compareExchange(expected: current, desired: taken, ordering: .acquiringAndReleasing).exchanged else { continue }
                    advance(head, from: position)
                    if try consume(position, sender: Self.pid(of: current), receiver: identity, body) {
                        return .message
                    }
                    continue
                case Self.stateEmpty:
                    return .empty
                case Self.stateClaimed:
                    return .pending(word: current, position: position)
                default:
                    // Taken by another receiver: help head past it.
                    advance(head, from: position)
                    continue
                }
            }
            if distance < 0 {
                // The slot still serves the previous lap: nothing was written at `position` yet.
                let written = tail.pointee.load(ordering: .acquiring)
                if !isPlausibleGap(written, position) {
                    // Stale head after preemption (head moved: retry) or garbage (report it).
                    if head.pointee.load(ordering: .acquiring) != position { continue }
                    throw MailboxError.corrupted(reason: "shared ring head \(position) and tail \(written) are further apart than capacity \(capacity) allows")
                }
                return .empty
            }
            if distance > Int64(capacity) {
                // More than a lap ahead of head: head moved on while we were preempted (retry),
                // or, if it did not move, the segment is damaged.
                if head.pointee.load(ordering: .acquiring) != position { continue }
                throw MailboxError.corrupted(reason: "shared ring slot sequence is \(distance) positions ahead of head")
            }
            // The slot serves a later lap, so `position` was used already: help head past it.
            advance(head, from: position)
            staleReloads += 1
            if staleReloads > 1 << 20 {
                throw MailboxError.corrupted(reason: "shared ring head never catches up with its slots")
            }
        }
    }

    /// Reads the taken slot at `position`; returns false for a cancelled record. A receipt
    /// message is not freed here: it is marked delivered (naming `receiver`), and its waiting
    /// sender frees it after reading the receipt.
    @inline(__always)
    private func consume(_ position: UInt64, sender: Int32, receiver: UInt64, _ body: (UnsafeRawBufferPointer, Int32) throws -> Void) throws -> Bool {
        let at = slot(position)
        // Read header fields once into locals: another process could change the shared copies.
        let length = Int(at.load(fromByteOffset: SegmentLayout.slotLength, as: UInt32.self))
        let kind = at.load(fromByteOffset: SegmentLayout.slotKind, as: UInt32.self)
        // A full slot naming no sender was taken back by its sender (`retract`).
        let cancelled = kind == SegmentLayout.kindCancelled || sender == 0
        defer {
            if kind == SegmentLayout.kindReceipt && !cancelled {
                at.storeBytes(of: receiver, toByteOffset: SegmentLayout.slotTakenBy, as: UInt64.self)
                // Release: the sender that sees "delivered" also sees who took the message.
                at.atomicUInt32(at: SegmentLayout.slotKind).pointee.store(SegmentLayout.kindDelivered, ordering: .releasing)
            } else {
                // Release: our reads of the slot happen before a sender can claim it for the next lap.
                stateWord(position).pointee.store(Self.makeWord(position: position &+ capacity, state: Self.stateEmpty, pid: 0), ordering: .releasing)
            }
        }
        if cancelled { return false }
        guard kind == SegmentLayout.kindMessage || kind == SegmentLayout.kindReceipt else {
            throw MailboxError.corrupted(reason: "shared ring slot at position \(position) has unknown kind \(kind)")
        }
        guard length <= maxMessageSize else {
            throw MailboxError.corrupted(reason: "shared ring slot at position \(position) claims \(length) bytes, more than maxMessageSize \(maxMessageSize)")
        }
        try body(UnsafeRawBufferPointer(start: at + SegmentLayout.slotHeaderSize, count: length), sender)
        return true
    }

    /// Whether `tail` and `head` (both hints) can both be right. Legitimately tail − head lies in
    /// 0...capacity, plus a little lag of either hint behind the slots; far outside means garbage.
    private func isPlausibleGap(_ tail: UInt64, _ head: UInt64) -> Bool {
        let gap = Int64(bitPattern: tail &- head)
        let slack = Int64(capacity) * 2 + 1024
        return gap >= -slack && gap <= slack
    }

    /// Moves `cursor` from `position` to `position + 1` unless someone already did.
    @inline(__always)
    private func advance(_ cursor: UnsafeMutablePointer<Atomic<UInt64>>, from position: UInt64) {
        // Release: a process that reads the new cursor value (acquire) also sees the slot state
        // that justified advancing it. Failure ordering relaxed: someone else advanced it.
        _ = cursor.pointee.compareExchange(expected: position, desired: position &+ 1, successOrdering: .releasing, failureOrdering: .relaxed)
    }

    // MARK: Crash recovery

    /// Whether the process a stuck slot waits for has died: the claiming sender (state
    /// `claimed`), the taking receiver (state `taken`), or, for a delivered receipt message, the
    /// sender that should collect the receipt.
    func holderIsDead(_ word: UInt64, at position: UInt64) -> Bool {
        let state = Self.state(of: word)
        if state == Self.stateTaken,
           slot(position).atomicUInt32(at: SegmentLayout.slotKind).pointee.load(ordering: .acquiring) == SegmentLayout.kindDelivered {
            let sender = slot(position).load(fromByteOffset: SegmentLayout.slotSender, as: UInt64.self)
            return !ProcessIdentity.isAlive(packed: sender)
        }
        return !ProcessIdentity.isAlive(pid: Self.pid(of: word))
    }

    /// Frees a slot whose claiming sender (state `claimed`) or taking receiver (state `taken`)
    /// died, if the slot still holds exactly `word`. Returns whether it did.
    func release(stuck word: UInt64, at position: UInt64) -> Bool {
        let state = Self.state(of: word)
        guard state == Self.stateClaimed || state == Self.stateTaken,
              Self.distance(word, from: position) == 0 else { return false }
        let freed = Self.makeWord(position: position &+ capacity, state: Self.stateEmpty, pid: 0)
        // Acquire-release: the CAS only succeeds on the exact stuck word, so a slot that moved on
        // meanwhile is left alone; release publishes the freed slot to senders.
        let done = stateWord(position).pointee.compareExchange(expected: word, desired: freed, ordering: .acquiringAndReleasing).exchanged
        if done && state == Self.stateClaimed { advance(head, from: position) }
        return done
    }

    // MARK: Delivery of a receipt message (the sender's side)

    enum Delivery {
        /// Still waiting in the mailbox.
        case waiting
        /// A receiver is reading it (`word` is the slot's state word, for crash recovery).
        case taking(receiverPid: Int32, word: UInt64)
        /// Taken and read by this receiver; the slot has been freed.
        case delivered(receiver: UInt64)
        /// The slot no longer holds the message (freed after its receiver died).
        case lost
    }

    /// Where the receipt message written at `position` by `sender` stands; frees the slot once the
    /// receipt is read.
    func delivery(at position: UInt64, sender: UInt32) -> Delivery {
        let word = stateWord(position)
        // Acquire: pairs with the receiver's release stores (state word, then kind).
        let current = word.pointee.load(ordering: .acquiring)
        guard Self.distance(current, from: position) == 0 else { return .lost }
        switch Self.state(of: current) {
        case Self.stateFull:
            return .waiting
        case Self.stateTaken:
            let at = slot(position)
            guard at.atomicUInt32(at: SegmentLayout.slotKind).pointee.load(ordering: .acquiring) == SegmentLayout.kindDelivered else {
                return .taking(receiverPid: Self.pid(of: current), word: current)
            }
            let receiver = at.load(fromByteOffset: SegmentLayout.slotTakenBy, as: UInt64.self)
            let freed = Self.makeWord(position: position &+ capacity, state: Self.stateEmpty, pid: 0)
            // Acquire-release: only the exact delivered word is freed; release publishes the slot.
            guard word.pointee.compareExchange(expected: current, desired: freed, ordering: .acquiringAndReleasing).exchanged else {
                return .lost
            }
            return .delivered(receiver: receiver)
        default:
            return .lost
        }
    }

    /// Takes back a receipt message nobody has taken yet, by turning `full(p, sender)` into
    /// `full(p, 0)`: a full slot naming no sender is a cancelled message, which the receiver that
    /// reaches it skips and frees in the normal way (so `head` passes it like any other slot).
    /// Returns false if a receiver got to the message first.
    func retract(at position: UInt64, sender: UInt32) -> Bool {
        let full = Self.makeWord(position: position, state: Self.stateFull, pid: sender)
        let cancelled = Self.makeWord(position: position, state: Self.stateFull, pid: 0)
        // Acquire-release: succeeds only while no receiver has taken the message.
        return stateWord(position).pointee.compareExchange(expected: full, desired: cancelled, ordering: .acquiringAndReleasing).exchanged
    }

    /// Messages waiting (a snapshot: tail minus head, clamped to capacity).
    var depth: Int {
        let taken = head.pointee.load(ordering: .acquiring)
        let written = tail.pointee.load(ordering: .acquiring)
        return written >= taken ? Int(min(written - taken, capacity)) : 0
    }
}
