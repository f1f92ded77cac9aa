import Synchronization
import Testing
@testable import ShmMailbox

/// The rings on plain process memory, with liveness answered by the test (the `Liveness` seam):
/// crash states are built by hand and the repairs checked without processes or `/proc`.
@Suite("Rings without processes")
struct RingUnitTests {
    /// A zero-filled, page-aligned "segment" in process memory with a header written for
    /// `geometry`.
    final class FakeSegment {
        let base: UnsafeMutableRawPointer
        let size: Int
        init(_ geometry: SegmentGeometry, nonce: UInt64 = 0x1234_5678_9ABC_DEF0) {
            size = geometry.segmentSize
            base = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
            base.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            geometry.write(to: base, mode: 0o600, creator: ProcessIdentity.current(), createdAt: 0, nonce: nonce)
            if geometry.kind == .shared { SharedRing.initialize(header: base, geometry: geometry) }
        }
        deinit { base.deallocate() }
    }

    /// Made-up processes (pids above any this machine hands out).
    static let alice = ProcessIdentity(pid: 3_000_001, startTime: 111).packed
    static let bob = ProcessIdentity(pid: 3_000_002, startTime: 222).packed
    static let carol = ProcessIdentity(pid: 3_000_003, startTime: 333).packed

    /// A shared ring of 2 slots of 32 bytes in process memory, with leases for Alice, Bob and
    /// Carol (in that order).
    static func sharedRingOfThree() throws -> (SegmentGeometry, FakeSegment, SharedRing, LeaseTable,
                                               LeaseTable.Lease, LeaseTable.Lease, LeaseTable.Lease) {
        let geometry = try SegmentGeometry(kind: .shared, capacity: 2, maxMessageSize: 32)
        let segment = FakeSegment(geometry)
        let leases = LeaseTable(header: segment.base)
        let everyone = ScriptedLiveness(dead: [])
        let (alice, _) = try leases.acquire(for: Self.alice, liveness: everyone) { _ in true }
        let (bob, _) = try leases.acquire(for: Self.bob, liveness: everyone) { _ in true }
        let (carol, _) = try leases.acquire(for: Self.carol, liveness: everyone) { _ in true }
        return (geometry, segment, SharedRing(header: segment.base, geometry: geometry), leases, alice, bob, carol)
    }

    /// A one-to-one record holds only its sender's pid: the receiver names the sender by the
    /// sender role word when that word names the same pid (start time included), else by the
    /// pid alone (start time 0): a released, another process's or a retired role.
    @Test func oneToOneReceiverNamesTheSenderByTheRoleWord() throws {
        let geometry = try SegmentGeometry(kind: .oneToOne, capacity: 8, maxMessageSize: 100)
        let segment = FakeSegment(geometry)
        let ring = OneToOneRing(header: segment.base, geometry: geometry, nonce: 0x1234_5678_9ABC_DEF0)
        defer { ring.deallocate() }
        let role = segment.base.atomicUInt64(at: SegmentLayout.senderRoleOffset)
        let alice = ProcessIdentity(packed: Self.alice)
        let cases: [(role: UInt64, expected: ProcessIdentity)] = [
            (Self.alice, alice),
            (0, ProcessIdentity(pid: alice.pid, startTime: 0)),
            (Self.bob, ProcessIdentity(pid: alice.pid, startTime: 0)),
            (LeaseWord.retired, ProcessIdentity(pid: alice.pid, startTime: 0)),
        ]
        for (index, (word, expected)) in cases.enumerated() {
            #expect(try ring.tryWrite(length: 4, sender: UInt32(alice.pid), publish: true) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(index)) })
            role.pointee.store(word, ordering: .relaxed)
            #expect(ring.peek(limit: 1).first?.sender == expected)
            var sender: ProcessIdentity?
            #expect(try ring.tryRead(release: true) { _, from, _ in sender = from })
            #expect(sender == expected, "role word \(word)")
        }
        // The retired value's pid bits are the largest pid a packed identity holds: a record of
        // that pid is not named by a retired role either.
        let largest = UInt32(ProcessIdentity.packedPidMask)
        #expect(try ring.tryWrite(length: 4, sender: largest, publish: true) { _ in })
        role.pointee.store(LeaseWord.retired, ordering: .relaxed)
        var sender: ProcessIdentity?
        #expect(try ring.tryRead(release: true) { _, from, _ in sender = from })
        #expect(sender == ProcessIdentity(pid: Int32(largest), startTime: 0))
    }

    /// A sender that stamped records (inside a batch: no tail published) and died: a new sender
    /// finds the true tail by walking the stamps from the head, counts the messages, and the
    /// receiver gets everything once, in order.
    @Test func oneToOneTakeoverWalksTheStamps() throws {
        let geometry = try SegmentGeometry(kind: .oneToOne, capacity: 8, maxMessageSize: 100)
        let segment = FakeSegment(geometry)
        let dead = OneToOneRing(header: segment.base, geometry: geometry, nonce: 0x1234_5678_9ABC_DEF0)
        for index in 0..<5 {
            #expect(try dead.tryWrite(length: 10 + index, sender: 7, publish: false) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(index)) })
        }
        dead.deallocate()  // killed: its local state (the true tail) is gone, the tail hint is 0
        #expect(segment.base.load(fromByteOffset: SegmentLayout.tailOffset, as: UInt64.self) == 0)
        let next = OneToOneRing(header: segment.base, geometry: geometry, nonce: 0x1234_5678_9ABC_DEF0)
        defer { next.deallocate() }
        for index in 5..<8 {
            #expect(try next.tryWrite(length: 10 + index, sender: 8, publish: true) { $0.initializeMemory(as: UInt8.self, repeating: UInt8(index)) })
        }
        // Capacity counts the dead sender's messages: 8 wait, a ninth does not fit.
        #expect(try !next.tryWrite(length: 1, sender: 8, publish: true) { _ in })
        let receiver = OneToOneRing(header: segment.base, geometry: geometry, nonce: 0x1234_5678_9ABC_DEF0)
        defer { receiver.deallocate() }
        var got: [(Int, Int32)] = []
        while try receiver.tryRead(release: true, { bytes, sender, redelivered in
            #expect(!redelivered)
            #expect(bytes.allSatisfy { $0 == bytes.first })
            got.append((bytes.count, sender.pid))
        }) {}
        #expect(got.map(\.0) == (0..<8).map { 10 + $0 })
        #expect(got.map(\.1) == [7, 7, 7, 7, 7, 8, 8, 8])
    }

    /// A receiver that handed records out and died before releasing them: the next receiver
    /// hands them out again, marked redelivered, and the rest unmarked.
    @Test func oneToOneReceiverTakeoverRedelivers() throws {
        let geometry = try SegmentGeometry(kind: .oneToOne, capacity: 8, maxMessageSize: 100)
        let segment = FakeSegment(geometry)
        let sender = OneToOneRing(header: segment.base, geometry: geometry, nonce: 0x1234_5678_9ABC_DEF0)
        defer { sender.deallocate() }
        for index in 0..<4 { #expect(try sender.tryWrite(length: 8, sender: 1, publish: true) { $0.storeBytes(of: UInt64(index), as: UInt64.self) }) }
        let dying = OneToOneRing(header: segment.base, geometry: geometry, nonce: 0x1234_5678_9ABC_DEF0)
        // Reads two in a batch (release: false) and dies before releasing them.
        for _ in 0..<2 { #expect(try dying.tryRead(release: false) { _, _, _ in }) }
        dying.deallocate()
        let next = OneToOneRing(header: segment.base, geometry: geometry, nonce: 0x1234_5678_9ABC_DEF0)
        defer { next.deallocate() }
        var got: [(UInt64, Bool)] = []
        while try next.tryRead(release: true, { bytes, _, redelivered in got.append((bytes.load(as: UInt64.self), redelivered)) }) {}
        #expect(got.map(\.0) == [0, 1, 2, 3])
        #expect(got.map(\.1) == [true, true, false, false])
    }

    /// Shared ring: a claim whose holder is dead is freed; a message taken by a dead receiver is
    /// adopted (by a receiver) or moved to the next lap (by a sender), marked redelivered; a live
    /// holder is never touched.
    @Test func sharedRingRepairs() throws {
        let (geometry, segment, ring, leases, alice, bob, carol) = try Self.sharedRingOfThree()
        let everyone = ScriptedLiveness(dead: [])
        segment.base.atomicUInt64(at: SegmentLayout.receiverLeasesOffset).pointee.store(1 << UInt64(bob.index), ordering: .relaxed)

        // Alice sends m0; Bob takes it and dies while reading it.
        guard case .written(0) = try ring.tryWrite(length: 2, lease: alice.reference, identity: Self.alice, receipt: false, { $0.copyBytes(from: [0, 0]) }) else {
            Issue.record("the first write did not land at position 0")
            return
        }
        // Simulate the death: take the slot by hand (what Bob's take CAS did) and never free it.
        let slot0 = segment.base.atomicUInt64(at: geometry.dataOffset)
        let full = slot0.pointee.load(ordering: .relaxed)
        let taken = SharedRing.makeWord(position: 0, state: SharedRing.stateTaken, reference: bob.reference)
        #expect(slot0.pointee.compareExchange(expected: full, desired: taken, ordering: .relaxed).exchanged)
        leases.intent(bob.index).pointee.store(1, ordering: .relaxed)
        segment.base.atomicUInt64(at: SegmentLayout.headOffset).pointee.store(1, ordering: .relaxed)

        // While Bob lives, nothing is repaired.
        #expect(!ring.holderIsDead(taken, at: 0, liveness: everyone))
        let bobDead = ScriptedLiveness(dead: [Self.bob])
        #expect(ring.suspectedOrphans().map(\.position) == [0])
        #expect(ring.holderIsDead(taken, at: 0, liveness: bobDead))
        // Carol, a receiver, adopts it and gets it marked redelivered.
        var adopted: [UInt8] = []
        let receipt = try ring.adopt(taken, at: 0, lease: carol.reference, identity: Self.carol, intent: leases.intent(carol.index)) { bytes, sender, redelivered in
            #expect(redelivered && sender.pid == 3_000_001)
            adopted = bytes.withUnsafeBytes { Array($0) }
        }
        #expect(receipt == false && adopted == [0, 0])
        // A second adoption of the same word fails (the slot moved on).
        #expect(try ring.adopt(taken, at: 0, lease: carol.reference, identity: Self.carol, intent: leases.intent(carol.index)) { _, _, _ in } == nil)

        // A claim by a dead sender blocks the head; it is freed, and head moves past it.
        let claimedWord = SharedRing.makeWord(position: 1, state: SharedRing.stateClaimed, reference: alice.reference)
        let slot1 = segment.base.atomicUInt64(at: geometry.dataOffset + geometry.slotStride)
        slot1.pointee.store(claimedWord, ordering: .relaxed)
        segment.base.atomicUInt64(at: SegmentLayout.tailOffset).pointee.store(2, ordering: .relaxed)
        guard case .pending(let word, let position) = try ring.tryRead(lease: carol.reference, identity: Self.carol, intent: leases.intent(carol.index), { _, _, _ in }) else {
            Issue.record("expected the dead claim to be pending")
            return
        }
        #expect(word == claimedWord && position == 1)
        #expect(!ring.holderIsDead(word, at: position, liveness: everyone))
        #expect(ring.holderIsDead(word, at: position, liveness: ScriptedLiveness(dead: [Self.alice])))
        #expect(ring.repair(stuck: word, at: position, by: carol.reference, liveness: ScriptedLiveness(dead: [Self.alice])) == .claimFreed)
        #expect(ring.repair(stuck: word, at: position, by: carol.reference, liveness: ScriptedLiveness(dead: [Self.alice])) == nil)
        guard case .empty = try ring.tryRead(lease: carol.reference, identity: Self.carol, intent: leases.intent(carol.index), { _, _, _ in }) else {
            Issue.record("expected an empty ring after the repair")
            return
        }
    }

    /// Shared ring, the windows between a cursor CAS and the slot store: a claim never written
    /// (`empty(p)` behind `tail`) is skipped once no live process's sender intent names `p`; a
    /// take never named (`full(p)` behind `head`) is found through the taker's intent and adopted,
    /// marked redelivered, once no live process's receiver intent names `p`. A live intent holder,
    /// also one that lost the CAS and has not cleared its intent yet, holds the repair back.
    @Test func sharedRingRepairsCursorWindows() throws {
        let (geometry, segment, ring, leases, alice, bob, carol) = try Self.sharedRingOfThree()
        let everyone = ScriptedLiveness(dead: [])
        segment.base.atomicUInt64(at: SegmentLayout.receiverLeasesOffset).pointee.store(1 << UInt64(bob.index) | 1 << UInt64(carol.index), ordering: .relaxed)
        let tail = segment.base.atomicUInt64(at: SegmentLayout.tailOffset)
        let head = segment.base.atomicUInt64(at: SegmentLayout.headOffset)
        let slot0 = segment.base.atomicUInt64(at: geometry.dataOffset)

        // Alice claims position 0 (intent, then tail) and dies before writing the slot.
        leases.senderIntent(alice.index).pointee.store(1, ordering: .relaxed)
        tail.pointee.store(1, ordering: .relaxed)
        guard let (hole, at) = ring.unwrittenClaimAtHead() else {
            Issue.record("the unwritten claim at head was not found")
            return
        }
        #expect(at == 0 && hole == slot0.pointee.load(ordering: .relaxed))
        guard case .empty = try ring.tryRead(lease: carol.reference, identity: Self.carol, intent: leases.intent(carol.index), { _, _, _ in }) else {
            Issue.record("a receiver at an unwritten claim should find the ring empty")
            return
        }
        #expect(!ring.holderIsDead(hole, at: 0, liveness: everyone))
        let aliceDead = ScriptedLiveness(dead: [Self.alice])
        #expect(ring.holderIsDead(hole, at: 0, liveness: aliceDead))
        #expect(ring.repair(stuck: hole, at: 0, by: carol.reference, liveness: aliceDead) == .claimFreed)
        #expect(ring.repair(stuck: hole, at: 0, by: carol.reference, liveness: aliceDead) == nil)
        #expect(head.pointee.load(ordering: .relaxed) == 1, "head moves past the skipped position")
        #expect(ring.unwrittenClaimAtHead() == nil)

        // Carol sends m1 at position 1; Bob takes it (intent, then head) and dies before naming
        // himself in the slot; Carol lost the same take and has not cleared her intent yet.
        guard case .written(1) = try ring.tryWrite(length: 3, lease: carol.reference, identity: Self.carol, receipt: false, { $0.copyBytes(from: [1, 2, 3]) }) else {
            Issue.record("the write did not land at position 1")
            return
        }
        let full = segment.base.atomicUInt64(at: geometry.dataOffset + geometry.slotStride).pointee.load(ordering: .relaxed)
        leases.intent(bob.index).pointee.store(2, ordering: .relaxed)
        leases.intent(carol.index).pointee.store(2, ordering: .relaxed)
        head.pointee.store(2, ordering: .relaxed)
        let suspects = ring.suspectedOrphans()
        #expect(Set(suspects.map(\.entry)) == [bob.index, carol.index] && suspects.allSatisfy { $0.position == 1 && $0.word == full })
        let bobDead = ScriptedLiveness(dead: [Self.alice, Self.bob])
        #expect(!ring.holderIsDead(full, at: 1, liveness: bobDead), "Carol's intent names the position and she lives")
        leases.intent(carol.index).pointee.store(0, ordering: .relaxed)
        #expect(ring.holderIsDead(full, at: 1, liveness: bobDead))
        #expect(!ring.holderIsDead(full, at: 1, liveness: aliceDead), "Bob lives")
        var adopted: [UInt8] = []
        let receipt = try ring.adopt(full, at: 1, lease: carol.reference, identity: Self.carol, intent: leases.intent(carol.index)) { bytes, sender, redelivered in
            #expect(redelivered && sender.pid == 3_000_003)
            adopted = bytes.withUnsafeBytes { Array($0) }
        }
        #expect(receipt == false && adopted == [1, 2, 3])
        #expect(ring.suspectedOrphans().isEmpty)
        #expect(!ring.hasUnfinishedSlots())
    }
}
