import CShim
import Synchronization

/// The many-senders, many-receivers ring: `capacity` fixed-size slots, each holding one
/// variable-size message of up to `maxMessageSize` bytes.
///
/// The design follows Vyukov's bounded MPMC queue: a sender claims a position by CAS on `tail`,
/// a receiver takes one by CAS on `head`, and a word per slot says whose turn it is. While one
/// process sends and one receives, each cursor's line stays with its CPU, so neither CAS waits on
/// the other process; the only line that travels is the slot's. (Claiming and taking by CAS on
/// the slot word itself, as version 2 of the format did, made each side wait for the other's
/// copy of that line on every message: a quarter of a round trip.) Each slot starts with one
/// 64-bit state word:
///
///     bits 24..<64  sequence: the position (mod 2^40) the slot currently serves
///     bits 22..<24  state: 0 empty, 1 claimed by a sender, 2 full, 3 taken by a receiver
///     bits  0..<22  lease reference of the claiming sender, committing sender or taking
///                   receiver (see `LeaseTable`): entry index and tag; 0 when empty
///
/// A position moves `empty(p)` —CAS `tail`→ `claimed(p, s)` → `full(p, s)` —CAS `head`→
/// `taken(p, r)` → `empty(p + capacity)`. The word is written by release stores of the process
/// that holds the position (by CAS for a receipt message, which its sender may take back).
/// Before each cursor CAS the process stores the position in its lease entry (its *intent*:
/// sender intent or receiver intent) and clears it if the CAS fails, so that a position whose
/// cursor has moved but whose word does not name its holder yet can still be attributed.
///
/// Crash windows, and who repairs them (`Mailbox` checks liveness only after a slot has stayed
/// the same for a while, so a slow but live process is never disturbed; every repair is a CAS on
/// the exact word observed; Models/shared_ring.pml checks them all):
/// - A sender killed between its `tail` CAS and its claim store leaves `empty(p)` behind `tail`:
///   receivers at `head` look for that from time to time (`unwrittenClaimAtHead`), and senders a
///   lap later are stopped by it. Once no live process's sender intent names `p`, it is skipped
///   (`empty(p + capacity)`). Nothing was sent.
/// - A sender killed between claim and commit leaves `claimed(p, s)`: whoever is stopped by it
///   (a receiver at `head`, a sender at `tail` a lap later) frees it, `empty(p + capacity)`.
///   Nothing was sent.
/// - A receiver killed between its `head` CAS and its take store leaves `full(p)` behind `head`:
///   the orphan search finds it through the dead receiver's intent and, once no live process's
///   receiver intent names `p`, another receiver adopts it (`full(p, s) → taken(p, me)`). It
///   arrives after later messages, so it is marked redelivered, although nobody had read it.
/// - A receiver killed between take and release leaves `taken(p, r)`, its message possibly half
///   handled. The message is redelivered, marked as such: a receiver that is about to sleep finds
///   it through the dead receiver's intent and adopts it (`taken(p, r) → taken(p, me)`), handing
///   it to its own caller; or a sender stopped at `tail` a lap later turns it into the newest
///   message (`taken(p, r) → taken(p, me)`, a claim of `p + capacity` on `tail`, then
///   `full(p + capacity, me)`). Each step is one CAS on the exact word, so a message is adopted
///   at most once per death.
/// - Receipts (synchronous sends, kind 5): the receiver marks the slot delivered and leaves it
///   taken; the waiting sender reads the receipt and frees the slot. A sender that stops waiting
///   marks it abandoned, and the receiver frees it.
///
/// Sealing (unbounded mailboxes only): a sender that finds the ring full stores the full position
/// in `sealedAt` and moves on to the next segment of the chain. A sender that claims a position at
/// or beyond `sealedAt` gives it back and moves on too; a receiver leaves the ring once its head
/// has reached `sealedAt` and `tail` has not passed `head`. The claim, the check of `sealedAt`
/// after it, the sealing store and the receiver's loads are sequentially consistent, which makes
/// this a Dekker handshake: either the receiver sees the claim (and waits for the message), or
/// the claimer sees the seal (and takes its message elsewhere).
///
/// Why slots and not a byte ring: the per-slot word makes every crash window detectable and
/// repairable without timeouts; the price is that each slot reserves `maxMessageSize` bytes.
struct SharedRing {
    enum WriteResult {
        case written(position: UInt64)
        /// Full; `blockedBy` is the state word of the slot in the way, which serves the previous
        /// lap's `position` (for the dead-holder check).
        case full(blockedBy: UInt64, position: UInt64)
        /// The ring is sealed (unbounded mailboxes): write to the next segment of the chain.
        case sealed
    }

    enum ReadResult {
        /// A message was handed to the body; `receipt`: its sender waits for the receipt.
        case message(receipt: Bool)
        case empty
        /// The slot at the head is claimed by a sender that has not committed yet.
        case pending(word: UInt64, position: UInt64)
    }

    /// What a receiver hands to its caller: the payload (valid only inside the call), the
    /// sender's identity (the slot's packed identity), and whether a receiver that died took this message before.
    typealias Body = (UnsafeRawBufferPointer, ProcessIdentity, Bool) throws -> Void

    /// How far ahead of its latest message a sender asks for a slot's first line (see
    /// `prefetchForWrite`): eight 64-byte messages take longer to send than one transfer of a
    /// line between two CPUs.
    static let prefetchDistance: UInt64 = 8
    /// How many payload bytes share a slot's first cache line with its header (slots start on a
    /// line: `slotAlignment` is one 64-byte line).
    static let firstLinePayload = SegmentLayout.slotAlignment - SegmentLayout.slotHeaderSize
    static let sequenceShift: UInt64 = 24
    static let stateShift: UInt64 = 22
    static let referenceMask: UInt64 = (1 << 22) - 1
    static let stateEmpty: UInt64 = 0
    static let stateClaimed: UInt64 = 1
    static let stateFull: UInt64 = 2
    static let stateTaken: UInt64 = 3

    // Stored: what cannot be derived from the header's address (five words and a flag, so that
    // the mailbox's `Ring` enum stays small to copy). The header's words are at fixed offsets.
    let header: UnsafeMutableRawPointer
    private let slots: UnsafeMutableRawPointer
    private let slotStride: Int
    let capacity: UInt64
    let maxMessageSize: Int
    let isChainable: Bool

    var tail: UnsafeMutablePointer<Atomic<UInt64>> { header.atomicUInt64(at: SegmentLayout.tailOffset) }
    var head: UnsafeMutablePointer<Atomic<UInt64>> { header.atomicUInt64(at: SegmentLayout.headOffset) }
    /// The `sealedAt` word of a segment of an unbounded mailbox; nil for a bounded ring.
    private var seal: UnsafeMutablePointer<Atomic<UInt64>>? {
        isChainable ? header.atomicUInt64(at: SegmentLayout.sealedAtOffset) : nil
    }
    private var leases: LeaseTable { LeaseTable(header: header) }
    private var receiverLeases: UnsafeMutablePointer<Atomic<UInt64>> { header.atomicUInt64(at: SegmentLayout.receiverLeasesOffset) }

    init(header: UnsafeMutableRawPointer, geometry: SegmentGeometry) {
        self.header = header
        isChainable = geometry.isChainable
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
            word.pointee.store(makeWord(position: UInt64(index), state: stateEmpty, reference: 0), ordering: .relaxed)
        }
    }

    // MARK: State words

    @inline(__always)
    static func makeWord(position: UInt64, state: UInt64, reference: UInt32) -> UInt64 {
        (position << sequenceShift) | (state << stateShift) | (UInt64(reference) & referenceMask)
    }

    @inline(__always)
    static func state(of word: UInt64) -> UInt64 { (word >> stateShift) & 3 }

    @inline(__always)
    static func reference(of word: UInt64) -> UInt32 { UInt32(word & referenceMask) }

    /// The slot's sequence minus `position`, as a signed 40-bit difference.
    @inline(__always)
    static func distance(_ word: UInt64, from position: UInt64) -> Int64 {
        let sequence = word >> sequenceShift
        return Int64(bitPattern: (sequence &- position) << sequenceShift) >> Int64(sequenceShift)
    }

    @inline(__always)
    func stateWord(_ position: UInt64) -> UnsafeMutablePointer<Atomic<UInt64>> {
        slots.atomicUInt64(at: Int(position % capacity) * slotStride)
    }

    @inline(__always)
    func slot(_ position: UInt64) -> UnsafeMutableRawPointer {
        slots + Int(position % capacity) * slotStride
    }

    @inline(__always)
    private func kindWord(_ position: UInt64) -> UnsafeMutablePointer<Atomic<UInt32>> {
        slot(position).atomicUInt32(at: SegmentLayout.slotKind)
    }

    /// This sender's intent word: the entry its lease reference names. Its own entry, so the
    /// index is in range.
    @inline(__always)
    private func senderIntent(of lease: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        leases.senderIntent(Int(lease >> LeaseTable.tagBits))
    }

    /// A state word for error messages: "claimed(5, ref 16385)".
    static func describe(_ word: UInt64) -> String {
        let name = ["empty", "claimed", "full", "taken"][Int(state(of: word))]
        return "\(name)(\(word >> sequenceShift), ref \(reference(of: word)))"
    }

    /// Frees the slot this process owns (claimed or taken by it) for the next lap.
    @inline(__always)
    private func free(_ position: UInt64) {
        // Release: everything we did with the slot happens before a sender reuses it.
        stateWord(position).pointee.store(Self.makeWord(position: position &+ capacity, state: Self.stateEmpty, reference: 0),
                                          ordering: .releasing)
    }

    /// Frees a slot nobody will read (a claim given back, a message taken back) at once, and
    /// helps `head` past it, so that it neither counts nor blocks.
    private func giveBack(_ position: UInt64) {
        free(position)
        helpHead()
    }

    /// Moves `head` past every slot at it that already serves a later lap (given back out of
    /// order), at most `capacity` steps. Whoever frees a slot out of order does this, so that
    /// `head` never stays behind slots that run laps ahead of it, even with no receiver about
    /// (concurrent give-backs freed in any order; found by the SPIN model,
    /// Models/shared_ring.pml, F3).
    private func helpHead() {
        for _ in 0..<capacity {
            // Acquire: as in `tryRead`.
            let position = head.pointee.load(ordering: .acquiring)
            let word = stateWord(position).pointee.load(ordering: .acquiring)
            guard Self.distance(word, from: position) > 0 else { return }
            advanceHead(from: position)
        }
    }

    // MARK: Sender side

    /// Claims a slot, lets `fill` write `length` payload bytes into it, and commits it. If `fill`
    /// throws, the slot is freed at once (nothing is sent) and the error is rethrown.
    @inline(__always)
    func tryWrite(length: Int, lease: UInt32, identity: UInt64, receipt: Bool,
                  _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> WriteResult {
        let intent = senderIntent(of: lease)
        while true {
            // Acquire: pairs with the release of the claims that moved `tail`, so the slot word
            // we read next is at least as new as the claim before `position`.
            let position = tail.pointee.load(ordering: .acquiring)
            let word = stateWord(position)
            // Acquire: pairs with the receiver's release store that freed the slot: its reads of
            // the previous message happen before our writes.
            let current = word.pointee.load(ordering: .acquiring)
            let distance = Self.distance(current, from: position)
            if distance == 0, Self.state(of: current) == Self.stateEmpty {
                // Free for `position`: claim it by moving `tail` on. The intent goes first, so
                // that whoever finds the slot never written while `tail` is past it can tell
                // whether its claimer still lives. Relaxed: published by the CAS's release.
                intent.pointee.store(position &+ 1, ordering: .relaxed)
                // Sequentially consistent: release publishes the intent; seq_cst orders the claim
                // before the load of `sealedAt` below (the sealing handshake). The line is this
                // sender's own while it sends alone, so the CAS waits for nothing but the
                // stores before it. Failure relaxed: another sender claimed `position`.
                guard tail.pointee.compareExchange(expected: position, desired: position &+ 1,
                                                   successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed).exchanged else {
                    // Relaxed: only a claim needs the intent, and this one was lost.
                    intent.pointee.store(0, ordering: .relaxed)
                    continue
                }
                crashPoint(.sharedAfterTailClaim)
                // Release: a process that sees the claim also sees `tail` past it.
                word.pointee.store(Self.makeWord(position: position, state: Self.stateClaimed, reference: lease), ordering: .releasing)
                crashPoint(.sharedAfterClaim)
                if let seal, isSealed(seal, at: position) {
                    // Sealed before our claim: give the slot back, write elsewhere.
                    giveBack(position)
                    return .sealed
                }
                try commit(position, length: length, lease: lease, identity: identity, receipt: receipt, fill)
                return .written(position: position)
            }
            if distance < 0 {
                // The slot still serves the previous lap: the ring is full (or that lap's claimer
                // died before writing it: see `isUnwrittenClaim`). A slot's sequence moves in
                // steps of `capacity` and `tail` passes a position only by claiming it, so in a
                // sound ring the slot at `tail` is exactly one lap behind here. That case needs no
                // other check; reading `head` on every poll of a full ring would pull its line
                // away from the receivers, which write it on every take.
                if distance == -Int64(capacity) {
                    if let seal, isSealed(seal, at: position) { return .sealed }
                    return .full(blockedBy: current, position: position &- capacity)
                }
                // Further behind happens only in a damaged ring (a slot's sequence never moves
                // back, so a stale `position` finds it ahead, not behind). Check tail against
                // head so a corrupted tail cannot make the ring look full forever.
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
            // The slot was claimed for `position` (or a later lap) already. A claim moves `tail`
            // before it writes the slot (release), so our `tail` is stale (we were preempted):
            // retry. If `tail` has not moved, no claim justifies the slot: the segment is damaged.
            if tail.pointee.load(ordering: .acquiring) != position { continue }
            throw MailboxError.corrupted(reason: "shared ring slot for position \(position) reads \(Self.describe(current)) while tail has not passed it")
        }
    }

    /// Asks the CPU for the line of the slot `prefetchDistance` positions after `position`, for
    /// writing, in the background: a sender streaming on its own calls it after each write.
    ///
    /// In a stream the receiver freed that slot a lap ago and still holds its line. Fetched on
    /// demand by the locked claim, the line stalls the sender for a whole transfer between the
    /// CPUs per message (`perf` put 80 % of a 64-byte stream's sender at the claim). Senders that
    /// take turns should not call it: the line would go to one of them, then on to the one that
    /// claims it. A prefetch changes no memory and never faults.
    @inline(__always)
    func prefetchForWrite(after position: UInt64) {
        // Wrapping arithmetic (a wrap at 2^64 only aims one prefetch elsewhere in the ring):
        // `ahead` < capacity, so the offset lies inside the slot area.
        let ahead = (position &+ Self.prefetchDistance) % capacity
        shim_prefetch_for_write(slots + Int(truncatingIfNeeded: ahead &* UInt64(truncatingIfNeeded: slotStride)))
    }

    @inline(__always)
    private func commit(_ position: UInt64, length: Int, lease: UInt32, identity: UInt64, receipt: Bool,
                        _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        let at = slot(position)
        at.storeBytes(of: identity, toByteOffset: SegmentLayout.slotSender, as: UInt64.self)
        do {
            try fill(UnsafeMutableRawBufferPointer(start: at + SegmentLayout.slotHeaderSize, count: length))
        } catch {
            giveBack(position)
            throw error
        }
        crashPoint(.sharedAfterPayload)
        at.storeBytes(of: UInt32(length), toByteOffset: SegmentLayout.slotLength, as: UInt32.self)
        // Release: a receiver that reads this kind sees everything before it, also the word of
        // the lap we claimed (see `tryRead`); the state word's release store below publishes it.
        kindWord(position).pointee.store(receipt ? SegmentLayout.kindReceipt : SegmentLayout.kindMessage, ordering: .releasing)
        // Release: the payload and header bytes are visible before the slot reads as full.
        stateWord(position).pointee.store(Self.makeWord(position: position, state: Self.stateFull, reference: lease), ordering: .releasing)
        crashPoint(.sharedAfterCommit)
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

    /// Where this (unbounded) ring was sealed: the number of positions senders used in it; nil
    /// while it is open and for a bounded ring. For statistics only.
    var sealedPosition: UInt64? {
        // Acquire: a snapshot for reporting; `sealedAt` is written once and never changes after.
        guard let seal, case let sealedAt = seal.pointee.load(ordering: .acquiring), sealedAt != 0 else { return nil }
        return sealedAt
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
        // Sequentially consistent: ordered after the seal load, so a claim (a CAS on `tail`) we
        // do not see here will see the seal and be given back. A claim at or beyond `head` that
        // we do see is a message still to be read, or a slot still to be given back (which moves
        // `head` on), or one whose claimer died before writing it (which the orphan search skips).
        let claimed = tail.pointee.load(ordering: .sequentiallyConsistent)
        return Int64(bitPattern: claimed &- position) <= 0
    }

    /// Whether some slot is still claimed or taken (any lap): a sealed, drained ring is given back
    /// only once every message taken from it has been finished with (or redelivered).
    func hasUnfinishedSlots() -> Bool {
        // Acquire: as in `tryRead`.
        let taken = head.pointee.load(ordering: .acquiring)
        return (0..<capacity).contains { index in
            // Acquire: a slot freed by a receiver has been finished with.
            let word = stateWord(index).pointee.load(ordering: .acquiring)
            let state = Self.state(of: word)
            // A full slot behind `head` was taken by a receiver that has not named itself in it.
            return state == Self.stateClaimed || state == Self.stateTaken
                || (state == Self.stateFull && Self.distance(word, from: taken) < 0)
        }
    }

    // MARK: Receiver side

    /// Takes the oldest committed message, hands it to `body` (valid only inside) and frees the
    /// slot, also when `body` throws. `intent` is the receiver's lease intent word.
    @inline(__always)
    func tryRead(lease: UInt32, identity: UInt64, intent: UnsafeMutablePointer<Atomic<UInt64>>, _ body: Body) throws -> ReadResult {
        var staleReloads = 0
        while true {
            // Acquire: pairs with the release of the takes (and helps past given-back slots) that
            // moved `head`, so the slot word we read next is at least as new as they saw.
            let position = head.pointee.load(ordering: .acquiring)
            let word = stateWord(position)
            // Acquire: pairs with the sender's release in `commit`: a full slot's bytes are visible.
            let current = word.pointee.load(ordering: .acquiring)
            let distance = Self.distance(current, from: position)
            if distance == 0 {
                switch Self.state(of: current) {
                case Self.stateFull:
                    // A payload that runs past the slot's first line: ask for its next line
                    // now, so that it travels while we take the message (the locked CAS on
                    // `head` holds back every later load until it completes). The length is read
                    // from the line just loaded; any value is harmless (a prefetch never faults),
                    // `consume` checks the one it uses.
                    let at = slot(position)
                    let length = at.load(fromByteOffset: SegmentLayout.slotLength, as: UInt32.self)
                    if length > UInt32(Self.firstLinePayload) { shim_prefetch_for_read(at + SegmentLayout.slotAlignment) }
                    // The kind of the message `current` names: load it, then the word again, so
                    // that the two belong together. A receipt message its sender took back, its
                    // slot reused a lap later while `head` stayed here (the sender died before
                    // moving it), would otherwise lend us the next message's kind
                    // (Models/shared_ring.pml, MUTANT_NO_RECHECK). Acquire: pairs with the
                    // sender's release store of the kind, so a kind of a later lap comes with the
                    // word of that lap, which the second load then sees.
                    let isReceipt = kindWord(position).pointee.load(ordering: .acquiring) & SegmentLayout.kindMask == SegmentLayout.kindReceipt
                    // Relaxed: ordered after the acquire load above.
                    guard word.pointee.load(ordering: .relaxed) == current else { continue }
                    // Relaxed: the take's CAS below (release) publishes it before the take.
                    intent.pointee.store(position &+ 1, ordering: .relaxed)
                    crashPoint(.sharedAfterIntent)
                    // Take it by moving `head` on: the line is this receiver's own while it
                    // receives alone, so the CAS waits for nothing but the stores before it.
                    // Acquire-release: release publishes the intent to whoever sees `head` past
                    // the position (the payload was made visible by the acquire load above).
                    // Failure relaxed: another receiver took it.
                    guard head.pointee.compareExchange(expected: position, desired: position &+ 1,
                                                       successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed).exchanged else {
                        // Relaxed: only a take needs the intent, and this one was lost.
                        intent.pointee.store(0, ordering: .relaxed)
                        continue
                    }
                    crashPoint(.sharedAfterHeadTake)
                    let taken = Self.makeWord(position: position, state: Self.stateTaken, reference: lease)
                    if isReceipt {
                        // A receipt message's sender may take it back (`retract`: CAS full →
                        // empty) until the slot reads taken, so only a CAS settles which of us
                        // has it. Acquire-release: as for any take of the word. If the sender
                        // took it back, `head` is past it already: look at the next one.
                        guard word.pointee.compareExchange(expected: current, desired: taken, ordering: .acquiringAndReleasing).exchanged else { continue }
                    } else {
                        // Only a receipt message's sender takes a full slot back, and nobody
                        // else changes a full slot behind `head` while its taker lives (see
                        // `holderIsDead`): the slot still holds `current`, so a store names us.
                        // Release: whoever sees the take sees the intent and `head` before it.
                        word.pointee.store(taken, ordering: .releasing)
                    }
                    crashPoint(.sharedAfterTake)
                    return .message(receipt: try consume(position, lease: lease, identity: identity, body))
                case Self.stateEmpty:
                    // Nothing at `head` yet (or a claimer died before writing the slot: the
                    // orphan search looks for that, see `unwrittenClaimAtHead`).
                    return .empty
                case Self.stateClaimed:
                    return .pending(word: current, position: position)
                default:
                    // Taken for `position`: a take moves `head` before it names itself in the
                    // slot (release), so our `head` is stale: retry. If `head` has not moved,
                    // nothing justifies the word: the segment is damaged.
                    if head.pointee.load(ordering: .acquiring) != position { continue }
                    throw MailboxError.corrupted(reason: "shared ring slot for position \(position) reads \(Self.describe(current)) while head has not passed it")
                }
            }
            if distance < 0 {
                // The slot still serves the previous lap: nothing was written at `position` yet.
                // Exactly one lap behind is the sound case (`head`, like `tail` in `tryWrite`,
                // passes a position only once its slot has reached it), and it is what an idle
                // receiver polls: it must not read `tail` each time, or every sender's claim on
                // `tail` would wait for this CPU's copy of that line to be invalidated.
                if distance == -Int64(capacity) { return .empty }
                // Further behind happens only in a damaged ring (see `tryWrite`).
                let written = tail.pointee.load(ordering: .acquiring)
                if !isPlausibleGap(written, position) {
                    // Stale head after preemption (head moved: retry) or garbage (report it).
                    if head.pointee.load(ordering: .acquiring) != position { continue }
                    throw MailboxError.corrupted(reason: "shared ring head \(position) and tail \(written) are further apart than capacity \(capacity) allows")
                }
                return .empty
            }
            if distance > Int64(capacity) * 2 {
                // Laps ahead of head: head moved on while we were preempted (retry), or head lags
                // behind slots given back out of order (help it on), or, if the slot is further
                // ahead than any claim can reach (tail + capacity, plus some slack), the segment
                // is damaged.
                if head.pointee.load(ordering: .acquiring) != position { continue }
                let written = tail.pointee.load(ordering: .acquiring)
                if Self.distance(current, from: written) > Int64(capacity) + 1024 {
                    throw MailboxError.corrupted(reason: "shared ring slot sequence is \(distance) positions ahead of head \(position), beyond tail \(written)")
                }
            }
            // The slot serves a later lap (it was given back), so `position` was used already:
            // help head past it.
            advanceHead(from: position)
            staleReloads += 1
            if staleReloads > 1 << 20 {
                throw MailboxError.corrupted(reason: "shared ring head never catches up with its slots")
            }
        }
    }

    /// Reads the slot at `position`, which this receiver has taken, and finishes with it:
    /// frees it, or for a receipt message marks it delivered (naming `identity`) for its waiting
    /// sender to free. Returns whether the message was a receipt message.
    @inline(__always)
    private func consume(_ position: UInt64, lease: UInt32, identity: UInt64, _ body: Body) throws -> Bool {
        let at = slot(position)
        // Read header fields once into locals: another process could change the shared copies.
        let length = Int(at.load(fromByteOffset: SegmentLayout.slotLength, as: UInt32.self))
        // Acquire: pairs with the sender's stores ordered before its commit (and a repairer's).
        let kindValue = kindWord(position).pointee.load(ordering: .acquiring)
        let kind = kindValue & SegmentLayout.kindMask
        let sender = ProcessIdentity(packed: at.load(fromByteOffset: SegmentLayout.slotSender, as: UInt64.self))
        defer {
            crashPoint(.sharedBeforeRelease)
            if kind == SegmentLayout.kindReceipt {
                finishReceipt(position, identity: identity)
            } else {
                free(position)
            }
        }
        guard kind == SegmentLayout.kindMessage || kind == SegmentLayout.kindReceipt || kind == SegmentLayout.kindAbandoned else {
            throw MailboxError.corrupted(reason: "shared ring slot at position \(position) has unknown kind \(kindValue)")
        }
        guard length <= maxMessageSize else {
            throw MailboxError.corrupted(reason: "shared ring slot at position \(position) claims \(length) bytes, more than maxMessageSize \(maxMessageSize)")
        }
        try body(UnsafeRawBufferPointer(start: at + SegmentLayout.slotHeaderSize, count: length), sender,
                 kindValue & SegmentLayout.redeliveredFlag != 0)
        return kind == SegmentLayout.kindReceipt
    }

    /// The receiver's end of a receipt message: names itself and marks the slot delivered, for the
    /// waiting sender to free; frees it itself if the sender stopped waiting.
    private func finishReceipt(_ position: UInt64, identity: UInt64) {
        slot(position).storeBytes(of: identity, toByteOffset: SegmentLayout.slotTakenBy, as: UInt64.self)
        crashPoint(.receiptBeforeDelivered)
        let kind = kindWord(position)
        // Acquire: the sender's abandonment is seen with everything before it.
        var current = kind.pointee.load(ordering: .acquiring)
        while current & SegmentLayout.kindMask == SegmentLayout.kindReceipt {
            let delivered = current & ~SegmentLayout.kindMask | SegmentLayout.kindDelivered
            // Release: the sender that sees "delivered" also sees `takenBy` and our reads.
            let (exchanged, found) = kind.pointee.compareExchange(expected: current, desired: delivered, ordering: .acquiringAndReleasing)
            if exchanged {
                crashPoint(.receiptAfterDelivered)
                return
            }
            current = found
        }
        // Abandoned by its sender: nobody collects the receipt.
        free(position)
    }

    /// Whether `tail` and `head` (or a position read earlier) can both be right. Legitimately
    /// tail − head lies in 0...capacity, plus what a stale read lags behind; far outside means
    /// garbage.
    private func isPlausibleGap(_ tail: UInt64, _ head: UInt64) -> Bool {
        let gap = Int64(bitPattern: tail &- head)
        let slack = Int64(capacity) * 2 + 1024
        return gap >= -slack && gap <= slack
    }

    /// Moves `head` from `position` to `position + 1` unless someone already did: past a slot
    /// given back, which serves a later lap already (a take moves `head` by its own CAS).
    @inline(__always)
    private func advanceHead(from position: UInt64) {
        // Release: a process that reads the new head (acquire) also sees the slot state that
        // justified advancing it. Failure ordering relaxed: someone else advanced it.
        _ = head.pointee.compareExchange(expected: position, desired: position &+ 1, successOrdering: .releasing, failureOrdering: .relaxed)
    }

    // MARK: Crash recovery

    /// Whether the process a stuck slot waits for has died: the claiming sender (`claimed`), the
    /// taking receiver (`taken`), or, for a delivered receipt message, the sender that should
    /// collect the receipt. Two states name nobody, because their holder died (or is about) to
    /// write the slot after moving a cursor past it:
    /// - `empty(p)` with `tail` past `p` (a sender claimed `p` and has not written the slot): dead
    ///   when no live process's sender intent names `p`.
    /// - `full(p)` with `head` past `p` (a receiver took `p` and has not named itself in the
    ///   slot): dead when no live process's receiver intent names `p`.
    /// A claimer or taker stores its intent before its cursor CAS (release) and keeps it until it
    /// has written the slot, so a live one is always found; one that lost the CAS clears its
    /// intent, and a dead loser is dead, so neither keeps a dead holder's slot alive for long.
    func holderIsDead(_ word: UInt64, at position: UInt64, liveness: some Liveness) -> Bool {
        switch Self.state(of: word) {
        case Self.stateEmpty:
            return isUnwrittenClaim(word, at: position) && !leases.mayHoldLive(position, senders: true, liveness: liveness)
        case Self.stateFull:
            return isUnnamedTake(word, at: position) && !leases.mayHoldLive(position, senders: false, liveness: liveness)
        case Self.stateTaken where isDelivered(position):
            return !liveness.isAlive(senderIdentity(position))
        default:
            return !leases.isAlive(Self.reference(of: word), liveness: liveness)
        }
    }

    /// Whether `word`, the slot of `position`, reads `empty(position)` although `tail` has passed
    /// `position`: its claimer has not written it yet (or died before it did).
    func isUnwrittenClaim(_ word: UInt64, at position: UInt64) -> Bool {
        reads(word, state: Self.stateEmpty, at: position, behind: tail)
    }

    /// Whether `word`, the slot of `position`, reads `full(position)` although `head` has passed
    /// `position`: its taker has not named itself in it yet (or died before it did).
    func isUnnamedTake(_ word: UInt64, at position: UInt64) -> Bool {
        reads(word, state: Self.stateFull, at: position, behind: head)
    }

    /// Whether `word` reads `state` for `position` while `cursor` has passed `position`.
    private func reads(_ word: UInt64, state: UInt64, at position: UInt64, behind cursor: UnsafeMutablePointer<Atomic<UInt64>>) -> Bool {
        guard Self.state(of: word) == state, Self.distance(word, from: position) == 0 else { return false }
        // Acquire: pairs with the release of the claim or take that moved the cursor, so its
        // maker's intent is visible too.
        let moved = cursor.pointee.load(ordering: .acquiring)
        return Int64(bitPattern: moved &- position) > 0 && isPlausibleGap(moved, position)
    }

    /// The slot at `head` if it is an unwritten claim (see `isUnwrittenClaim`): receivers that find
    /// the ring empty look for one from time to time, since nothing else would show it to them.
    func unwrittenClaimAtHead() -> (word: UInt64, position: UInt64)? {
        // Acquire loads: as in `tryRead`.
        let position = head.pointee.load(ordering: .acquiring)
        let word = stateWord(position).pointee.load(ordering: .acquiring)
        return isUnwrittenClaim(word, at: position) ? (word, position) : nil
    }

    private func isDelivered(_ position: UInt64) -> Bool {
        // Acquire: pairs with the receiver's release of "delivered".
        kindWord(position).pointee.load(ordering: .acquiring) & SegmentLayout.kindMask == SegmentLayout.kindDelivered
    }

    private func senderIdentity(_ position: UInt64) -> UInt64 {
        slot(position).load(fromByteOffset: SegmentLayout.slotSender, as: UInt64.self)
    }

    /// Repairs a slot whose holder died (the caller checked `holderIsDead`), if it still holds
    /// exactly `word`: frees a dead sender's claim, written or not (nothing was sent), or a
    /// delivered receipt nobody will collect; and, for a sender (`me`) stopped at `tail` by a
    /// message whose receiver died while reading it, makes that message the newest one, marked
    /// redelivered. A receipt message whose sender still waits is left to that sender. Returns how
    /// it changed the slot, or nil if it did not.
    func repair(stuck word: UInt64, at position: UInt64, by me: UInt32, liveness: some Liveness) -> MailboxEvent.SlotRepair? {
        guard Self.distance(word, from: position) == 0 else { return nil }
        let state = Self.state(of: word)
        let freed = Self.makeWord(position: position &+ capacity, state: Self.stateEmpty, reference: 0)
        if state == Self.stateClaimed || (state == Self.stateEmpty && isUnwrittenClaim(word, at: position)) {
            // Acquire-release: only the exact stuck word is replaced; release publishes the slot.
            guard stateWord(position).pointee.compareExchange(expected: word, desired: freed, ordering: .acquiringAndReleasing).exchanged else { return nil }
            helpHead()
            return .claimFreed
        }
        guard state == Self.stateTaken else { return nil }
        // Acquire: the kind as the receiver (or a sender abandoning) left it.
        let kind = kindWord(position).pointee.load(ordering: .acquiring) & SegmentLayout.kindMask
        if kind == SegmentLayout.kindDelivered {
            // Acquire-release: as above.
            return stateWord(position).pointee.compareExchange(expected: word, desired: freed, ordering: .acquiringAndReleasing).exchanged ? .receiptFreed : nil
        }
        if kind == SegmentLayout.kindReceipt && liveness.isAlive(senderIdentity(position)) { return nil }
        // The message goes back in as position + capacity, which this sender must claim like any
        // other: `tail` stands there, since no sender can claim a slot that is not empty.
        let next = position &+ capacity
        // Acquire: as in `tryWrite`.
        guard tail.pointee.load(ordering: .acquiring) == next else { return nil }
        // Announce the slot in our lease entry first, as a receiver would, so that if we die
        // holding it the orphan search finds it (Models/shared_ring.pml, F5); and the claim of
        // `next`, as a sender would, so that if we die after claiming it the slot is skipped.
        let entry = Int(me >> LeaseTable.tagBits)
        guard entry < leases.count else { return nil }
        // Relaxed: published by the release of the CASes below.
        leases.intent(entry).pointee.store(position &+ 1, ordering: .relaxed)
        leases.senderIntent(entry).pointee.store(next &+ 1, ordering: .relaxed)
        // Relaxed RMW: the orphan search re-checks everything on the slot word.
        receiverLeases.advanced(by: entry / 64).pointee.bitwiseOr(1 << UInt64(entry % 64), ordering: .relaxed)
        // Adopt it (one CAS on the exact word), then hand it to the next lap as a plain message.
        let adopted = Self.makeWord(position: position, state: Self.stateTaken, reference: me)
        // Acquire-release: only one repairer adopts the message; acquire sees its bytes.
        guard stateWord(position).pointee.compareExchange(expected: word, desired: adopted, ordering: .acquiringAndReleasing).exchanged else { return nil }
        crashPoint(.repairAfterAdopt)
        // Sequentially consistent, as any claim (see `tryWrite`). It cannot fail in a sound ring
        // (the slot at `next` is ours, so nobody else claims `next`); if it does, the slot stays
        // adopted by us and, once we are gone, the orphan search redelivers it.
        guard tail.pointee.compareExchange(expected: next, desired: next &+ 1,
                                           successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed).exchanged else { return .messageAdopted }
        // Release: as in `commit`. The slot is ours (taken by us) and its sender no longer writes
        // the kind (dead, or it abandoned it).
        kindWord(position).pointee.store(SegmentLayout.kindMessage | SegmentLayout.redeliveredFlag, ordering: .releasing)
        crashPoint(.repairAfterRedeliverMark)
        // Release: the message bytes and kind are visible before the slot reads as full again.
        stateWord(position).pointee.store(Self.makeWord(position: next, state: Self.stateFull, reference: me), ordering: .releasing)
        return .messageRequeued
    }

    /// Slots taken by a receiver that may have died while reading them: for each receiver lease,
    /// the slot its intent names, if that slot is still taken by that lease, or still full
    /// although `head` has passed it (taken, but the taker has not named itself in it yet).
    /// `entry` is the receiver entry whose intent names the slot: its lease must not be given to
    /// another process while the slot waits for repair (the intent is how it is found).
    func suspectedOrphans() -> [(word: UInt64, position: UInt64, entry: Int)] {
        var found: [(word: UInt64, position: UInt64, entry: Int)] = []
        for bitmapIndex in 0..<EventLayout.bitmapWords {
            // Relaxed: a snapshot; every candidate is re-checked on the slot word itself.
            var bits = receiverLeases.advanced(by: bitmapIndex).pointee.load(ordering: .relaxed)
            while bits != 0 {
                let entry = bitmapIndex * 64 + bits.trailingZeroBitCount
                bits &= bits - 1
                guard entry < leases.count else { continue }
                // Acquire: pairs with the release of the receiver's take, which followed the intent.
                let intent = leases.intent(entry).pointee.load(ordering: .acquiring)
                guard intent != 0 else { continue }
                let position = intent &- 1
                // Acquire: a slot still taken shows the take that the intent announced.
                let word = stateWord(position).pointee.load(ordering: .acquiring)
                if isUnnamedTake(word, at: position) {
                    found.append((word, position, entry))
                    continue
                }
                guard Self.state(of: word) == Self.stateTaken, Self.distance(word, from: position) == 0,
                      Int(Self.reference(of: word) >> LeaseTable.tagBits) == entry,
                      !isDelivered(position) else { continue }
                found.append((word, position, entry))
            }
        }
        return found
    }

    /// Whether the lease entry `index` (of a dead process) may be given to another process: not
    /// while a message waiting for repair is found through its intent, which the reset would lose.
    func mayReclaimLease(_ index: Int) -> Bool {
        !suspectedOrphans().contains { $0.entry == index }
    }

    /// Adopts a message whose receiver died while taking or reading it (the caller checked, after
    /// a while, that the slot still holds `word` and its holder is dead) and hands it to `body`,
    /// marked redelivered. A taker that died before naming itself in the slot (`full` behind
    /// `head`) had not read it, but the message still arrives after later ones, and an unmarked
    /// message is one that arrives in its sender's order. Returns nil if someone else got to it
    /// first, else whether it was a receipt message.
    func adopt(_ word: UInt64, at position: UInt64, lease: UInt32, identity: UInt64,
               intent: UnsafeMutablePointer<Atomic<UInt64>>, _ body: Body) throws -> Bool? {
        let state = Self.state(of: word)
        guard state == Self.stateTaken || state == Self.stateFull, Self.distance(word, from: position) == 0 else { return nil }
        // Relaxed: the CAS below (release) publishes it; should we die reading, the next adopter
        // finds the slot through it.
        intent.pointee.store(position &+ 1, ordering: .relaxed)
        let adopted = Self.makeWord(position: position, state: Self.stateTaken, reference: lease)
        // Acquire-release: only one adopter wins; acquire sees the message bytes.
        guard stateWord(position).pointee.compareExchange(expected: word, desired: adopted, ordering: .acquiringAndReleasing).exchanged else { return nil }
        crashPoint(.repairAfterAdopt)
        // Relaxed RMW: a flag only our own consume reads; an RMW because a waiting receipt
        // sender may change the kind at the same time.
        kindWord(position).pointee.bitwiseOr(SegmentLayout.redeliveredFlag, ordering: .relaxed)
        crashPoint(.repairAfterRedeliverMark)
        return try consume(position, lease: lease, identity: identity, body)
    }

    // MARK: Delivery of a receipt message (the sender's side)

    enum Delivery {
        /// Still waiting in the mailbox.
        case waiting
        /// A receiver is reading it (`word` is the slot's state word, for crash recovery).
        case taking(word: UInt64)
        /// Taken and read by this receiver; the slot has been freed.
        case delivered(receiver: UInt64)
        /// The slot no longer holds the message (freed after its receiver died).
        case lost
    }

    /// Where the receipt message written at `position` stands; frees the slot once the receipt is
    /// read.
    func delivery(at position: UInt64) -> Delivery {
        let word = stateWord(position)
        while true {
            // Acquire: pairs with the receiver's release stores (state word, then kind).
            let current = word.pointee.load(ordering: .acquiring)
            guard Self.distance(current, from: position) == 0 else { return .lost }
            switch Self.state(of: current) {
            case Self.stateFull:
                return .waiting
            case Self.stateTaken:
                guard isDelivered(position) else { return .taking(word: current) }
                let receiver = slot(position).load(fromByteOffset: SegmentLayout.slotTakenBy, as: UInt64.self)
                let freed = Self.makeWord(position: position &+ capacity, state: Self.stateEmpty, reference: 0)
                // Acquire-release: only the exact delivered word is freed; release publishes the
                // slot. If the word changed after we read it (its taker died and another
                // receiver adopted and delivered it meanwhile), look again: it is not lost
                // (Models/shared_ring.pml, F4).
                if word.pointee.compareExchange(expected: current, desired: freed, ordering: .acquiringAndReleasing).exchanged {
                    return .delivered(receiver: receiver)
                }
            default:
                return .lost
            }
        }
    }

    /// Takes back a receipt message nobody has taken yet: frees its slot at once (`full(p, me)`
    /// → `empty(p + capacity)`), so it neither counts nor blocks. Returns false if a receiver got
    /// to it first.
    func retract(at position: UInt64, lease: UInt32) -> Bool {
        let full = Self.makeWord(position: position, state: Self.stateFull, reference: lease)
        let freed = Self.makeWord(position: position &+ capacity, state: Self.stateEmpty, reference: 0)
        // Acquire-release: succeeds only while no receiver has taken the message.
        guard stateWord(position).pointee.compareExchange(expected: full, desired: freed, ordering: .acquiringAndReleasing).exchanged else { return false }
        helpHead()
        return true
    }

    /// Frees a receipt message that `word` shows taken by a receiver that died (the sender gives up
    /// on it). Returns false if the slot moved on (someone adopted or delivered it meanwhile).
    func retract(taken word: UInt64, at position: UInt64) -> Bool {
        let freed = Self.makeWord(position: position &+ capacity, state: Self.stateEmpty, reference: 0)
        // Acquire-release: only the exact word.
        return stateWord(position).pointee.compareExchange(expected: word, desired: freed, ordering: .acquiringAndReleasing).exchanged
    }

    /// Stops waiting for the receipt of a message a receiver is reading: marks it abandoned, so
    /// that the receiver frees the slot when it finishes. Returns false if it was delivered
    /// meanwhile (then `delivery(at:)` collects the receipt).
    func abandon(at position: UInt64) -> Bool {
        let kind = kindWord(position)
        // Acquire: see the receiver's "delivered" with what it published.
        var current = kind.pointee.load(ordering: .acquiring)
        while current & SegmentLayout.kindMask == SegmentLayout.kindReceipt {
            let abandoned = current & ~SegmentLayout.kindMask | SegmentLayout.kindAbandoned
            // Acquire-release: exactly one of "delivered" and "abandoned" wins.
            let (exchanged, found) = kind.pointee.compareExchange(expected: current, desired: abandoned, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = found
        }
        return current & SegmentLayout.kindMask != SegmentLayout.kindDelivered
    }

    /// Messages waiting (a snapshot): the full slots from head to tail.
    var depth: Int {
        // Acquire loads: a snapshot for reporting only.
        let taken = head.pointee.load(ordering: .acquiring)
        let written = tail.pointee.load(ordering: .acquiring)
        let span = Int64(bitPattern: written &- taken)
        guard span > 0 else { return 0 }
        var count = 0
        var position = taken
        for _ in 0..<min(UInt64(span), capacity &* 2) {
            // Acquire: as above, a snapshot.
            let word = stateWord(position).pointee.load(ordering: .acquiring)
            if Self.distance(word, from: position) == 0 && Self.state(of: word) == Self.stateFull { count += 1 }
            position &+= 1
        }
        return min(count, Int(capacity))
    }
}
