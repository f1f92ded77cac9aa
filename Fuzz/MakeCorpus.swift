// Seed corpus for the ShmMailbox fuzz target (`fuzz-mailbox --make-corpus DIR`): real segments
// made by the library (every ring kind and buffering, rings that wrapped, crash leftovers), dumped
// byte for byte behind a few op programs, plus built-mode selectors. See Fuzz/README.md.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Op programs (opcode, argument) put in front of the seeds' segment bytes.
enum FuzzPrograms {
    /// A bit of everything, on both handle slots.
    static let general: [(UInt8, UInt8)] = [
        (3, 0), (2, 0), (0, 4), (1, 3), (4, 5), (5, 0), (6, 0), (7, 0), (8, 0), (9, 1), (10, 1), (12, 2),
        (13, 3), (16, 0), (17, 0), (18, 0), (11, 2), (20, 7), (21, 6), (22, 0), (19, 0), (15, 128), (2, 128), (0, 129),
    ]
    /// Receives, with pauses that let stuck slots and orphaned messages age into repairs.
    static let receiving: [(UInt8, UInt8)] = [
        (2, 0), (3, 0), (14, 0), (2, 0), (14, 0), (3, 0), (4, 7), (0, 1), (0, 4), (9, 4), (10, 0), (5, 0), (6, 0),
    ]
    /// A sender and a receiver stopped by stuck slots, pausing so the slots age into repairs.
    static let repairing: [(UInt8, UInt8)] = [
        (0, 1), (14, 0), (0, 1), (14, 0), (0, 1), (2, 0), (2, 0), (2, 0), (2, 0), (2, 0), (5, 0), (6, 0),
    ]
    /// Sends until full, then drains.
    static let sending: [(UInt8, UInt8)] = [
        (0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (1, 4), (1, 7), (12, 3), (12, 7), (5, 0), (10, 4), (4, 7), (3, 0),
    ]
    /// Ownership and rights (system- and process-owned mailboxes), then delete.
    static let ownership: [(UInt8, UInt8)] = [
        (24, 0), (24, 1), (2, 0), (25, 0), (2, 0), (26, 0), (3, 0), (25, 1), (26, 0), (3, 0), (23, 0),
        (15, 0), (0, 0), (27, 0), (2, 0), (0, 0),
    ]
    /// Endpoint segments: every read, then writes, then the public API.
    static let endpoint: [(UInt8, UInt8)] = [
        (0, 0), (1, 0), (2, 0), (3, 0), (3, 1), (3, 2), (4, 1), (4, 3), (5, 0), (6, 1), (7, 0), (8, 1), (9, 0),
        (11, 0), (0, 0), (10, 0), (12, 5), (13, 7), (0, 0), (12, 66),
    ]
}

/// Writes the seed corpus into `dir`; returns how many files it wrote.
func fuzzMakeCorpus(into dir: String) -> Int {
    mkdir(dir, 0o755)
    var written = 0
    var counter = 0

    func emit(_ label: String, flags: UInt8, program: [(UInt8, UInt8)], body: [UInt8]) {
        var bytes: [UInt8] = [flags, UInt8(program.count - 1)]
        for (code, arg) in program { bytes += [code, arg] }
        bytes += body
        let path = "\(dir)/seed-\(String(written, radix: 10))-\(label)"
        guard let file = fopen(path, "wb") else { return }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
        written += 1
    }

    /// The current bytes of `/dev/shm/shmmb.<object>`.
    func dump(_ object: String) -> [UInt8] {
        let fd = shm_open("/" + MailboxName.objectPrefix + object, O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return count == bytes.count ? bytes : []
    }

    /// Emits a raw-mode mailbox seed of the segment as it is now: behind each program, with the
    /// pid namespace kept (flags 0) and zeroed (flags 4).
    func snapshot(_ label: String, _ object: String) {
        let bytes = dump(object)
        guard !bytes.isEmpty else { return }
        emit(label, flags: 0x04, program: FuzzPrograms.general, body: bytes)
        emit(label, flags: 0x0C, program: FuzzPrograms.receiving, body: bytes)
        emit(label, flags: 0x10, program: FuzzPrograms.sending, body: bytes)
        emit(label, flags: 0x24, program: FuzzPrograms.ownership, body: bytes)
    }

    /// Creates a mailbox, lets `setup` fill it (and take snapshots), then removes it.
    func mailbox(_ label: String, _ options: MailboxOptions, _ setup: (Mailbox, String) throws -> Void) {
        counter += 1
        let name = "\(FuzzState.baseName)-seed\(counter)"
        do {
            let box = try Mailbox.create(name, options: options)
            box.terminatesOnClose = false
            try setup(box, name)
            box.close()
            try? Mailbox.unlink(name)
        } catch {
            fuzzLog("fuzz-mailbox: seed \(label) failed: \(error)")
        }
        if let valid = try? MailboxName(name) { try? SharedSegment.unlink(valid) }
    }

    func text(_ count: Int, _ fill: UInt8 = 0x61) -> [UInt8] { [UInt8](repeating: fill, count: count) }

    /// A lease reference naming a dead receiver or sender: entry 5, tag 1 (see `recordDeadLease`).
    let deadEntry = 5
    let deadReference = UInt32(deadEntry) << LeaseTable.tagBits | 1

    /// Makes lease entry `deadEntry` belong to a process that is gone (as a crashed peer's does).
    func recordDeadLease(_ base: UnsafeMutableRawPointer, roles: UInt32, intent: UInt64) {
        let entry = base + SegmentLayout.leaseTableOffset + deadEntry * SegmentLayout.leaseEntrySize
        entry.storeBytes(of: fuzzDeadIdentity, toByteOffset: SegmentLayout.leaseHolder, as: UInt64.self)
        entry.storeBytes(of: UInt32(1), toByteOffset: SegmentLayout.leaseTag, as: UInt32.self)
        entry.storeBytes(of: roles, toByteOffset: SegmentLayout.leaseRoles, as: UInt32.self)
        entry.storeBytes(of: intent, toByteOffset: SegmentLayout.leaseIntent, as: UInt64.self)
    }

    // One-to-one rings.
    mailbox("o2o-waiting", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .oneToOne)) { box, name in
        for message in ["a", "bb", "ccc"] { _ = try box.trySend(message) }
        snapshot("o2o-3-waiting", name)
        _ = try box.tryReceive()
        snapshot("o2o-2-waiting-roles-held", name)
    }
    mailbox("o2o-wrapped", MailboxOptions(capacity: 4, maxMessageSize: 200, kind: .oneToOne)) { box, name in
        // Records of 200 bytes take 224 bytes of the 4096-byte area: the 19th no longer fits
        // before the end, so the ring pads to the end and wraps.
        for _ in 0..<17 {
            _ = try box.trySend(text(200))
            _ = try box.tryReceive()
        }
        for index in 0..<3 { _ = try box.trySend(text(200, 0x41 + UInt8(index))) }
        snapshot("o2o-wrapped-padding-3-waiting", name)
        _ = try box.tryReceive()
        snapshot("o2o-head-at-padding", name)
        _ = try box.tryReceive()
        snapshot("o2o-wrapped-1-waiting", name)
    }
    mailbox("o2o-full", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .oneToOne)) { box, name in
        for index in 0..<4 { _ = try box.trySend(text(index * 20)) }
        snapshot("o2o-full", name)
    }
    mailbox("o2o-batch", MailboxOptions(capacity: 8, maxMessageSize: 32, kind: .oneToOne)) { box, name in
        // Stamped records beyond the published tail (a sender that died inside a batch).
        try box.batch {
            for index in 0..<3 { _ = try box.trySend(text(index + 1)) }
            snapshot("o2o-unpublished-batch", name)
        }
    }
    mailbox("o2o-reading", MailboxOptions(capacity: 4, maxMessageSize: 1000, kind: .oneToOne)) { box, name in
        _ = try box.trySend(text(1000))
        _ = try box.trySend(text(1))
        // The receiver is handing the first record out (readingUpTo set, head not yet moved).
        _ = try box.tryReceive { (_: RawSpan, _: ProcessIdentity) -> Int in
            snapshot("o2o-receiver-died-reading", name)
            return 0
        }
    }
    mailbox("o2o-closed", MailboxOptions(capacity: 2, maxMessageSize: 16, kind: .oneToOne)) { box, name in
        _ = try box.trySend("x")
        _ = try box.tryReceive()
        _ = try box.trySend("y")
        box.close()
        snapshot("o2o-roles-released", name)
    }

    // Shared rings.
    mailbox("shared", MailboxOptions(capacity: 8, maxMessageSize: 64, kind: .shared)) { box, name in
        for index in 0..<4 { _ = try box.trySend(text(index * 10 + 1)) }
        _ = try box.tryReceive()
        snapshot("shared-3-waiting", name)
        // A receiver that died after taking the slot at head, and a sender that died after
        // claiming the slot at tail.
        let base = box.segment.base
        let stride = SharedRing.slotStride(maxMessageSize: 64)
        let head = base.load(fromByteOffset: SegmentLayout.headOffset, as: UInt64.self)
        let tail = base.load(fromByteOffset: SegmentLayout.tailOffset, as: UInt64.self)
        func slot(_ position: UInt64) -> UnsafeMutableRawPointer { base + SegmentLayout.dataOffset + Int(position % 8) * stride }
        slot(head).storeBytes(of: SharedRing.makeWord(position: head, state: SharedRing.stateTaken, reference: deadReference), as: UInt64.self)
        base.storeBytes(of: head + 1, toByteOffset: SegmentLayout.headOffset, as: UInt64.self)
        slot(tail).storeBytes(of: SharedRing.makeWord(position: tail, state: SharedRing.stateClaimed, reference: deadReference), as: UInt64.self)
        base.storeBytes(of: tail + 1, toByteOffset: SegmentLayout.tailOffset, as: UInt64.self)
        recordDeadLease(base, roles: LeaseTable.roleSent | LeaseTable.roleReceived, intent: head + 1)
        let leases = base.atomicUInt64(at: SegmentLayout.receiverLeasesOffset)
        leases.pointee.bitwiseOr(1 << UInt64(deadEntry), ordering: .relaxed)
        snapshot("shared-taken-and-claimed-by-dead", name)
        emit("shared-taken-and-claimed-by-dead", flags: 0x04, program: FuzzPrograms.repairing, body: dump(name))
    }
    mailbox("shared-full-stuck", MailboxOptions(capacity: 4, maxMessageSize: 32, kind: .shared)) { box, name in
        // Full, and the oldest slot taken by a receiver that died reading it: a sender stopped
        // at tail finds it stuck, and after a while adopts it (redelivered as the newest message).
        for index in 0..<4 { _ = try box.trySend(text(index + 5)) }
        let base = box.segment.base
        let stride = SharedRing.slotStride(maxMessageSize: 32)
        let head = base.load(fromByteOffset: SegmentLayout.headOffset, as: UInt64.self)
        let slot = base + SegmentLayout.dataOffset + Int(head % 4) * stride
        slot.storeBytes(of: SharedRing.makeWord(position: head, state: SharedRing.stateTaken, reference: deadReference), as: UInt64.self)
        base.storeBytes(of: head + 1, toByteOffset: SegmentLayout.headOffset, as: UInt64.self)
        recordDeadLease(base, roles: LeaseTable.roleReceived, intent: head + 1)
        base.atomicUInt64(at: SegmentLayout.receiverLeasesOffset).pointee.bitwiseOr(1 << UInt64(deadEntry), ordering: .relaxed)
        let bytes = dump(name)
        emit("shared-full-oldest-taken-by-dead", flags: 0x04, program: FuzzPrograms.repairing, body: bytes)
        snapshot("shared-full-oldest-taken-by-dead", name)
    }
    mailbox("shared-wrapped", MailboxOptions(capacity: 3, maxMessageSize: 24, kind: .shared)) { box, name in
        for index in 0..<7 {
            _ = try box.trySend(text(index % 25))
            if index % 2 == 1 { _ = try box.tryReceive() }
        }
        snapshot("shared-wrapped-laps", name)
    }
    mailbox("receipts", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .shared)) { box, name in
        try box.ensureLease()
        guard case .shared(let ring) = box.ring else { return }
        for index in 0..<2 {
            _ = try ring.tryWrite(length: 5 + index, lease: box.leaseReference, identity: box.packedMe, receipt: true) { target in
                for offset in target.indices { target[offset] = 0x72 }
            }
        }
        // Taken and read: "delivered", left taken for its (waiting) sender to collect.
        _ = try ring.tryRead(lease: box.leaseReference, identity: box.packedMe, intent: box.intentWord) { _, _, _ in }
        snapshot("shared-receipt-delivered-and-waiting", name)
    }
    mailbox("zero", MailboxOptions(capacity: .zero, maxMessageSize: 64, kind: .shared)) { box, name in
        snapshot("zero-capacity-empty", name)
        try box.ensureLease()
        guard case .shared(let ring) = box.ring else { return }
        _ = try ring.tryWrite(length: 9, lease: box.leaseReference, identity: box.packedMe, receipt: true) { target in
            for offset in target.indices { target[offset] = 0x7A }
        }
        // A receiver inside a blocking receive (its waiting mark), for the rendezvous hand-over.
        box.messageEvent.enterWaiting(as: box.lease!.index)
        snapshot("zero-capacity-handover", name)
        box.messageEvent.leaveWaiting(as: box.lease!.index)
    }
    mailbox("unbounded", MailboxOptions(capacity: .unbounded(segmentCapacity: 4), maxMessageSize: 64, kind: .shared)) { box, name in
        for index in 0..<3 { _ = try box.trySend(text(index + 3)) }
        snapshot("unbounded-first-segment", name)
        for index in 0..<3 { _ = try box.trySend(text(index + 30)) }
        snapshot("unbounded-sealed-grown", name)
        for _ in 0..<5 { _ = try box.tryReceive() }
        snapshot("unbounded-reader-moved-on", name)
    }
    mailbox("exclusive", MailboxOptions(capacity: 4, maxMessageSize: 32, kind: .shared, receiverPolicy: .exclusive)) { box, name in
        for index in 0..<2 { _ = try box.trySend(text(index + 1)) }
        _ = try box.tryReceive()
        snapshot("shared-exclusive-turn-held", name)
    }
    mailbox("round-robin", MailboxOptions(capacity: 4, maxMessageSize: 32, kind: .shared, receiverPolicy: .roundRobin)) { box, name in
        for index in 0..<3 { _ = try box.trySend(text(index + 1)) }
        _ = try box.tryReceive()
        snapshot("shared-round-robin", name)
    }
    mailbox("system-owned", MailboxOptions(capacity: 4, maxMessageSize: 32, kind: .shared, ownership: .system)) { box, name in
        try box.grantReceive(to: 1)
        for index in 0..<2 { _ = try box.trySend(text(index + 1)) }
        snapshot("shared-system-owned", name)
    }
    mailbox("process-owned", MailboxOptions(capacity: 4, maxMessageSize: 32, kind: .shared, ownership: .process)) { box, name in
        _ = try box.trySend("owned")
        snapshot("shared-process-owned", name)
    }

    // Endpoint segments.
    counter += 1
    let endpoint = "\(FuzzState.baseName)-ep\(counter)"
    do {
        let segment = try EndpointSegment.create(endpoint, holder: FuzzState.packedMe, permissions: 0o600)
        let liveness = SystemLiveness()
        for sender in ["alpha", "beta", "gamma"] {
            try segment.register(sender: sender, as: FuzzState.packedMe, liveness: liveness)
        }
        if let beta = try segment.entries().first(where: { $0.sender == "beta" }) { segment.free(beta) }
        let full = dump("@" + endpoint)
        // The same table cut to 8 entries (openers accept 1...65536): a smaller input.
        let small = EndpointLayout.segmentSize(tableCapacity: 8)
        var shrunk = Array(full.prefix(small))
        withUnsafeBytes(of: UInt32(8)) { shrunk.replaceSubrange(EndpointLayout.tableCapacityOffset..<EndpointLayout.tableCapacityOffset + 4, with: $0) }
        withUnsafeBytes(of: UInt64(small)) { shrunk.replaceSubrange(EndpointLayout.segmentSizeOffset..<EndpointLayout.segmentSizeOffset + 8, with: $0) }
        for (label, bytes) in [("endpoint-table", full), ("endpoint-table-8", shrunk)] where !bytes.isEmpty {
            emit(label, flags: 0x01, program: FuzzPrograms.endpoint, body: bytes)
            emit(label, flags: 0x05, program: FuzzPrograms.endpoint.reversed(), body: bytes)
        }
    } catch {
        fuzzLog("fuzz-mailbox: endpoint seed failed: \(error)")
    }
    shm_unlink("/" + MailboxName.objectPrefix + "@" + endpoint)

    // Built mode: selector bytes only (see `MailboxDriver.build` and `EndpointDriver.build`).
    let shapes: [UInt8] = [0x00, 0x01, 0x03, 0x05, 0x09, 0x11, 0x19, 0x21, 0x41, 0x20]
    for (index, shape) in shapes.enumerated() {
        let selectors: [UInt8] = [shape, 3, UInt8(index % 8), 20, 0x5A, UInt8(index), UInt8(index & 1), 0]
        emit("built-mailbox-\(shape)", flags: 0x02, program: index % 2 == 0 ? FuzzPrograms.general : FuzzPrograms.receiving, body: selectors)
    }
    for holder: UInt8 in 0..<3 {
        emit("built-endpoint-\(holder)", flags: 0x03, program: FuzzPrograms.endpoint, body: [4, 0x02, holder, 0, 0, 0, 0, 0])
    }
    return written
}
