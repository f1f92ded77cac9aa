// libFuzzer target for ShmMailbox: opens and drives a mailbox (or an endpoint segment) over
// arbitrary segment bytes. Compiled INTO the ShmMailbox module (see Fuzz/build.sh), so the
// internal API is reachable: `Mailbox.open(_:waitStrategy:trust:patience:)`, `EndpointSegment`,
// the rings. Not part of the package; SwiftPM never sees this file.
//
// Input layout (see Fuzz/README.md):
//   byte 0        flags
//                   bit 0     target: 0 mailbox segment, 1 endpoint segment
//                   bit 1     mode: 0 raw (the rest IS the segment), 1 built (the library creates a
//                             valid segment from selector bytes, then the rest patches it)
//                   bit 2     raw mode: zero the pid-namespace field (else a foreign namespace
//                             stops most inputs at `foreignPidNamespace`)
//                   bits 3-4  wait strategy of the handles: block, default, spin, block
//                   bit 5     whenReceiverBusy = .wait
//                   bit 6     raw mode: restore magic and version (get past the first checks)
//   byte 1        op count - 1 (low 5 bits: 1...32 ops)
//   2 bytes/op    opcode, argument
//   raw mode:     the segment's bytes (the object is ftruncate'd to exactly this many)
//   built mode:   8 selector bytes, then 11-byte patches (see `applyPatches`)
//
// Every call is non-blocking or has a zero timeout. Any thrown error is a fine outcome; a crash,
// a trap, a hang (libFuzzer -timeout), an out-of-bounds read (SIGSEGV/SIGBUS, or ASan) or a leak
// is a finding.

#if canImport(Glibc)
import Glibc
#endif
import Synchronization

// MARK: - Process-wide state

/// Writes a line to standard error (fd 2: the C `stderr` global is not concurrency-safe).
func fuzzLog(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

enum FuzzState {
    /// `<tag>-<pid>`: the one mailbox name (and endpoint name) this process uses.
    nonisolated(unsafe) static var baseName = ""
    nonisolated(unsafe) static var mailboxName: MailboxName?
    /// Keeps received bytes observable, so that reads of payloads are not optimised away.
    nonisolated(unsafe) static var sink: UInt64 = 0
    nonisolated(unsafe) static var packedMe: UInt64 = 0
    nonisolated(unsafe) static var initialised = false
    /// Whether SHMMB_FUZZ_DEBUG is set: print each input's outcome to stderr.
    nonisolated(unsafe) static var debug = false
    /// Whether SHMMB_FUZZ_SELFTEST is set (see `fuzzMailboxTestOneInput`).
    nonisolated(unsafe) static var selfTest = false
    /// Whether SHMMB_FUZZ_HOSTILE_LINKS is set (see `EndpointDriver.hostileLink`).
    nonisolated(unsafe) static var hostileLinks = false
}

/// The packed identity of a process that is not running (a pid near the 2^22 limit, with a start
/// time no such process has): stands for a peer that died.
let fuzzDeadIdentity = ProcessIdentity(pid: 4_194_000, startTime: 7).packed

/// Time after which an input's remaining ops are skipped. Some zero-timeout calls wait a bounded
/// time by design (a non-blocking synchronous send to a zero-capacity mailbox whose event says a
/// receiver waits gives it 50 ms), and 32 of them would approach libFuzzer's -timeout=2. A single
/// call that hangs still runs into the timeout.
let fuzzOpBudgetNanos: UInt64 = 1_000_000_000

/// Removes every shared-memory object of this process: the mailbox, its chained segments
/// (`NAME#g.NONCE`), temporaries (`NAME~PID.X`), the endpoint segment (`@NAME`) and links.
func fuzzRemoveOwnObjects() {
    let base = FuzzState.baseName
    guard !base.isEmpty, let objects = try? SharedSegment.objectNames() else { return }
    for object in objects {
        let mine = object == base || object.hasPrefix(base + "#") || object.hasPrefix(base + "~")
            || object == "@" + base || object.hasPrefix("@" + base + "~") || object.hasPrefix("@" + base + ">")
            || object.hasSuffix(">" + base)
        if mine { shm_unlink("/" + MailboxName.objectPrefix + object) }
    }
}

private func fuzzSetUp() {
    guard !FuzzState.initialised else { return }
    FuzzState.initialised = true
    let tag = getenv("SHMMB_FUZZ_TAG").map { String(cString: $0) } ?? "fuzz"
    FuzzState.baseName = "\(tag)-\(getpid())"
    FuzzState.mailboxName = try? MailboxName(FuzzState.baseName)
    FuzzState.packedMe = ProcessIdentity.current().packed
    FuzzState.debug = getenv("SHMMB_FUZZ_DEBUG") != nil
    FuzzState.selfTest = getenv("SHMMB_FUZZ_SELFTEST") != nil
    FuzzState.hostileLinks = getenv("SHMMB_FUZZ_HOSTILE_LINKS") != nil
    fuzzRemoveOwnObjects()
    atexit { fuzzRemoveOwnObjects() }
}

// MARK: - Reading the input

/// A cursor over the input that yields zeros once exhausted.
struct FuzzInput {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }

    mutating func u64() -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 8) { value |= UInt64(byte()) << UInt64(shift) }
        return value
    }

    var rest: UnsafeRawBufferPointer {
        guard offset < bytes.count else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(rebasing: bytes[offset...])
    }

    var remaining: Int { max(0, bytes.count - offset) }
}

struct FuzzOp {
    let code: UInt8
    let arg: UInt8
}

// MARK: - Writing shared-memory objects

/// Replaces the object `/shmmb.<object>` with one holding exactly `contents`.
func fuzzWriteObject(_ object: String, _ contents: UnsafeRawBufferPointer, minimumSize: Int = 0) -> Bool {
    let path = "/" + MailboxName.objectPrefix + object
    shm_unlink(path)
    let fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    guard ftruncate(fd, off_t(max(contents.count, minimumSize))) == 0 else { return false }
    var written = 0
    while written < contents.count {
        let n = pwrite(fd, contents.baseAddress! + written, contents.count - written, off_t(written))
        guard n > 0 else { return false }
        written += n
    }
    return true
}

/// Overwrites `value` (its low `width` bytes) at `offset` of the object, if it fits.
func fuzzPatchObject(_ object: String, _ body: (UnsafeMutableRawPointer, Int) -> Void) {
    let fd = shm_open("/" + MailboxName.objectPrefix + object, O_RDWR | O_CLOEXEC, 0)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_size > 0 else { return }
    let size = Int(info.st_size)
    guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else { return }
    body(base, size)
    munmap(base, size)
}

/// Applies 11-byte patches: [kind][offset u16][value u64]. `kind` bits 0-1: width 1, 2, 4 or 8
/// bytes; bits 2-3: region (an index into `regions`, each a byte range of the segment); bit 4:
/// add to the current value instead of storing. The offset is taken modulo the region's size.
func fuzzApplyPatches(_ input: inout FuzzInput, object: String, regions: [Range<Int>]) {
    guard input.remaining >= 11 else { return }
    var patches: [(kind: UInt8, offset: Int, value: UInt64)] = []
    while input.remaining >= 11 && patches.count < 64 {
        patches.append((input.byte(), Int(input.u16()), input.u64()))
    }
    fuzzPatchObject(object) { base, size in
        for patch in patches {
            let width = 1 << Int(patch.kind & 3)
            let region = regions[Int(patch.kind >> 2 & 3) % regions.count].clamped(to: 0..<size)
            guard region.count >= width else { continue }
            let offset = region.lowerBound + patch.offset % (region.count - width + 1)
            var value = patch.value
            if patch.kind & 0x10 != 0 {
                var current: UInt64 = 0
                memcpy(&current, base + offset, width)
                value = current &+ value
            }
            memcpy(base + offset, &value, width)  // little-endian: the low `width` bytes
        }
    }
}

// MARK: - The entry points

@_cdecl("LLVMFuzzerInitialize")
public func fuzzMailboxInitialize(_ argc: UnsafeMutablePointer<Int32>,
                                  _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    fuzzSetUp()
    // `--make-corpus DIR`: write the seed corpus and exit before libFuzzer starts.
    let count = Int(argc.pointee)
    if let vector = argv.pointee {
        for index in 0..<count {
            guard let raw = vector[index], String(cString: raw) == "--make-corpus" else { continue }
            guard index + 1 < count, let dir = vector[index + 1] else {
                fuzzLog("usage: fuzz-mailbox --make-corpus DIR")
                exit(2)
            }
            let made = fuzzMakeCorpus(into: String(cString: dir))
            fuzzRemoveOwnObjects()
            fuzzLog("fuzz-mailbox: wrote \(made) seed files to \(String(cString: dir))")
            exit(made > 0 ? 0 : 1)
        }
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMailboxTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzSetUp()
    guard let data, size >= 2 else { return 0 }
    if FuzzState.selfTest && data[0] == UInt8(ascii: "!") {
        // SHMMB_FUZZ_SELFTEST: inputs starting "!!", "!T" and "!L" trap (an overflow), hang and
        // leak on purpose, to check that this build and Fuzz/run.sh report each as a finding.
        switch data[1] {
        case UInt8(ascii: "!"): FuzzState.sink = UInt64(Int.max - 1 + Int(data[0] >> 4))
        case UInt8(ascii: "T"):
            // Busy, as a livelocked loop would be (a sleep would end at libFuzzer's SIGALRM).
            let end = MonotonicClock.now() &+ 5_000_000_000
            while MonotonicClock.now() < end { FuzzState.sink &+= 1 }
        case UInt8(ascii: "L"):
            let leaked = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
            leaked.initialize(repeating: 1, count: 64)
            FuzzState.sink &+= leaked[Int(data[1] & 63)]
        default: break
        }
    }
    var input = FuzzInput(UnsafeRawBufferPointer(start: data, count: size))
    let flags = input.byte()
    let count = Int(input.byte() & 31) + 1
    var ops: [FuzzOp] = []
    for _ in 0..<count { ops.append(FuzzOp(code: input.byte(), arg: input.byte())) }
    let outcome: String
    if flags & 1 == 0 {
        outcome = MailboxDriver(flags: flags, ops: ops).run(&input)
    } else {
        outcome = EndpointDriver(flags: flags, ops: ops).run(&input)
    }
    if FuzzState.debug { fuzzLog("fuzz-mailbox: \(outcome)") }
    // Chained segments, and anything else a run left behind, go before the next input.
    fuzzRemoveOwnObjects()
    return 0
}

// MARK: - Mailbox segments

struct MailboxDriver {
    let flags: UInt8
    let ops: [FuzzOp]

    var waitStrategy: WaitStrategy {
        switch flags >> 3 & 3 {
        case 1: return .default
        case 2: return .spin
        default: return .block
        }
    }

    func run(_ input: inout FuzzInput) -> String {
        guard let name = FuzzState.mailboxName else { return "no name" }
        if flags & 2 == 0 {
            // Raw: the rest of the input is the whole segment.
            let contents = input.rest
            guard fuzzWriteObject(name.name, contents) else { return "write failed" }
            if flags & 0x44 != 0 {
                fuzzPatchObject(name.name) { base, size in
                    if flags & 4 != 0, size >= SegmentLayout.pidNamespaceOffset + 8 {
                        base.storeBytes(of: UInt64(0), toByteOffset: SegmentLayout.pidNamespaceOffset, as: UInt64.self)
                    }
                    if flags & 0x40 != 0, size >= 12 {
                        base.storeBytes(of: SegmentLayout.magic, toByteOffset: SegmentLayout.magicOffset, as: UInt64.self)
                        base.storeBytes(of: SegmentLayout.version, toByteOffset: SegmentLayout.versionOffset, as: UInt32.self)
                    }
                }
            }
        } else {
            guard build(name, &input) else { return "build failed" }
        }
        var handles: [Mailbox?] = [nil, nil]
        do {
            handles[0] = try open(name)
        } catch {
            return "open: \(error)"
        }
        var sleeps = 0
        let budgetEnd = MonotonicClock.now() &+ fuzzOpBudgetNanos
        for op in ops {
            if MonotonicClock.now() >= budgetEnd { break }
            let slot = Int(op.arg >> 7)
            if handles[slot] == nil && op.code % 28 != 15 { continue }
            do {
                try perform(op, on: &handles, slot: slot, name: name, sleeps: &sleeps)
                if FuzzState.debug { fuzzLog("  mailbox op \(op.code % 28) arg \(op.arg): ok (sink \(FuzzState.sink))") }
            } catch {
                // Any error is a fine outcome; go on with the next call.
                if FuzzState.debug { fuzzLog("  mailbox op \(op.code % 28) arg \(op.arg): \(error)") }
            }
        }
        for handle in handles { handle?.close() }
        return "ran \(ops.count) ops"
    }

    func open(_ name: MailboxName) throws(MailboxError) -> Mailbox {
        let box = try Mailbox.open(name, waitStrategy: waitStrategy, trust: .sameUser, patience: .zero)
        if flags & 0x20 != 0 { box.whenReceiverBusy = .wait }
        return box
    }

    /// Built mode: the library creates a real mailbox from 8 selector bytes, sends and receives
    /// a few messages with it (so that rings wrap, chains grow, roles and leases are taken),
    /// closes it, and then the patches overwrite fields of the segment.
    func build(_ name: MailboxName, _ input: inout FuzzInput) -> Bool {
        let shape = input.byte()
        let capacityByte = input.byte()
        let sizeByte = input.byte()
        let steps = Int(input.byte() % 48)
        var pattern = UInt64(input.byte()) << 8 | UInt64(input.byte()) | 0x9E37_79B9_0000_0000
        let holdRoles = input.byte()
        _ = input.byte()  // reserved

        let kind: MailboxOptions.RingKind = shape & 1 == 0 ? .oneToOne : .shared
        let sizes = [1, 7, 16, 24, 64, 100, 200, 500]
        let maxMessageSize = sizes[Int(sizeByte & 7)]
        var capacity: MailboxOptions.Capacity = .bounded(Int(capacityByte % 12) + 1)
        var policy: MailboxOptions.ReceiverPolicy? = nil
        if kind == .shared {
            switch shape >> 1 & 3 {
            case 1: capacity = .zero
            case 2: capacity = .unbounded(segmentCapacity: Int(capacityByte % 6) + 1)
            default: break
            }
            policy = MailboxOptions.ReceiverPolicy.allCases[Int(shape >> 3 & 3)]
        }
        let ownership = MailboxOptions.Ownership.allCases[Int(shape >> 5 & 3) % 3]
        let options = MailboxOptions(capacity: capacity, maxMessageSize: maxMessageSize, kind: kind,
                                     waitStrategy: .block, ownership: ownership, receiverPolicy: policy)
        shm_unlink(name.objectName)
        do {
            let creator = try Mailbox.create(name, options: options)
            creator.terminatesOnClose = false
            var payload = [UInt8](repeating: 0, count: maxMessageSize)
            for step in 0..<steps {
                pattern ^= pattern << 13; pattern ^= pattern >> 7; pattern ^= pattern << 17
                if pattern & 3 != 0 {
                    let length = Int((pattern >> 8) % UInt64(maxMessageSize + 1))
                    for index in 0..<length { payload[index] = UInt8(truncatingIfNeeded: step &+ index) }
                    _ = try? creator.trySend(payload[0..<length])
                } else {
                    _ = try? creator.tryReceive()
                }
            }
            creator.close()
        } catch {
            return false
        }
        if holdRoles & 1 != 0 {
            // As if the creator had died: every header word that names this process (roles,
            // owner, rights, round-robin receivers, lease holders) names a process that is gone.
            fuzzPatchObject(name.name) { base, size in
                for offset in stride(from: 0, to: min(size, SegmentLayout.headerSize), by: 8)
                where base.load(fromByteOffset: offset, as: UInt64.self) == FuzzState.packedMe {
                    base.storeBytes(of: fuzzDeadIdentity, toByteOffset: offset, as: UInt64.self)
                }
            }
        }
        let size = 1 << 20
        fuzzApplyPatches(&input, object: name.name, regions: [
            0..<SegmentLayout.leaseTableOffset,                     // header lines
            SegmentLayout.leaseTableOffset..<SegmentLayout.dataOffset, // lease table
            SegmentLayout.dataOffset..<size,                        // data area
            SegmentLayout.tailOffset..<SegmentLayout.tailOffset + 1024, // positions, events, roles
        ])
        return true
    }

    /// Sizes to send: the edges around the mailbox's maximum, and small ones.
    func size(_ arg: UInt8, _ box: Mailbox) -> Int {
        let max = box.maxMessageSize
        switch arg & 7 {
        case 0: return 0
        case 1: return 1
        case 2: return max / 2
        case 3: return Swift.max(0, max - 1)
        case 4: return max
        case 5: return max + 1
        case 6: return Int(arg >> 3 & 15) * 3
        default: return Swift.min(max, 16)
        }
    }

    func payload(_ count: Int) -> [UInt8] {
        (0..<Swift.min(count, 1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
    }

    static func consume(_ bytes: UnsafeRawBufferPointer, _ sender: ProcessIdentity, _ redelivered: Bool) {
        var sum = UInt64(UInt32(bitPattern: sender.pid)) &+ sender.startTime &+ (redelivered ? 1 : 0)
        for byte in bytes { sum = sum &* 31 &+ UInt64(byte) }
        FuzzState.sink &+= sum
    }

    /// `consume` of the bytes a span views, read through the span (bounds-checked loads).
    static func consume(_ bytes: RawSpan, _ sender: ProcessIdentity, _ redelivered: Bool) {
        var sum = UInt64(UInt32(bitPattern: sender.pid)) &+ sender.startTime &+ (redelivered ? 1 : 0)
        for offset in 0..<bytes.byteCount {
            sum = sum &* 31 &+ UInt64(bytes.unsafeLoad(fromByteOffset: offset, as: UInt8.self))
        }
        FuzzState.sink &+= sum
    }

    struct Thrown: Error {}

    func perform(_ op: FuzzOp, on handles: inout [Mailbox?], slot: Int, name: MailboxName, sleeps: inout Int) throws {
        let code = op.code % 28
        if code == 15 {
            // Close the handle in this slot (if any) and open the mailbox again.
            handles[slot]?.close()
            handles[slot] = nil
            handles[slot] = try open(name)
            return
        }
        guard let box = handles[slot] else { return }
        switch code {
        case 0:
            _ = try box.trySend(payload(size(op.arg, box)))
        case 1:
            // Zero-copy send: fill every byte of the reserved space.
            _ = try box.trySend(count: size(op.arg, box)) { target in
                for index in 0..<target.byteCount { target.storeBytes(of: UInt8(truncatingIfNeeded: index), toByteOffset: index, as: UInt8.self) }
            }
        case 2:
            if let message = try box.tryReceive() {
                message.bytes.withUnsafeBytes { Self.consume($0, message.sender, message.isRedelivered) }
            }
        case 3:
            _ = try box.tryReceive { bytes, sender, redelivered in Self.consume(bytes, sender, redelivered) }
        case 4:
            _ = try box.tryReceiveBatch(limit: Int(op.arg & 7) + 1) { bytes, sender, redelivered in
                Self.consume(bytes, sender, redelivered)
            }
        case 5:
            FuzzState.sink &+= UInt64(truncatingIfNeeded: box.depth)
        case 6:
            for participant in box.participants {
                FuzzState.sink &+= UInt64(truncatingIfNeeded: participant.process.pid) &+ (participant.isAlive ? 1 : 0)
                    &+ participant.firstSeenUnixNanos &+ (participant.hasSent ? 2 : 0) &+ (participant.hasReceived ? 4 : 0)
            }
        case 7:
            FuzzState.sink &+= UInt64(truncatingIfNeeded: box.segmentCount)
        case 8:
            let message = try box.receive(timeout: .zero)
            FuzzState.sink &+= UInt64(message.bytes.count)
        case 9:
            try box.send(payload(size(op.arg, box)), timeout: .zero)
        case 10:
            // Synchronous send that gives a receiver no time: taken back, or left with a taker.
            let delivery = try box.send(payload(size(op.arg, box)), timeout: .zero, until: .received)
            FuzzState.sink &+= UInt64(truncatingIfNeeded: delivery?.receiver.pid ?? 0)
        case 11:
            // A zero-copy send whose fill throws: nothing may be sent, the slot is given back.
            _ = try box.trySend(count: size(op.arg, box)) { target in
                if target.byteCount > 0 { target.storeBytes(of: UInt8(0xAB), toByteOffset: 0, as: UInt8.self) }
                throw Thrown()
            }
        case 12:
            try box.batch {
                for index in 0...Int(op.arg & 3) {
                    _ = try box.trySend(payload(size(op.arg &+ UInt8(index), box)))
                }
            }
        case 13:
            _ = try box.receiveBatch(limit: Int(op.arg & 7) + 1, timeout: .zero) { bytes, sender, redelivered in
                Self.consume(bytes, sender, redelivered)
            }
        case 14:
            // Lets a stuck slot or an orphaned message age past `stallCheckNanos`, so that the
            // repair paths (liveness checks, adoption, redelivery) run. At most twice per input.
            guard sleeps < 2 else { return }
            sleeps += 1
            usleep(2_500)
        case 16:
            FuzzState.sink &+= UInt64(box.permissions) &+ (box.isDeleted ? 1 : 0) &+ (box.owner?.packed ?? 0)
                &+ UInt64(truncatingIfNeeded: box.capacity.messages) &+ UInt64(truncatingIfNeeded: box.maxMessageSize)
                &+ (box.kind == .shared ? 1 : 0)
        case 17:
            _ = try box.trySend(value: UInt64(op.arg) &* 0x0101_0101_0101_0101)
            if let message = try box.tryReceive() {
                FuzzState.sink &+= (try? message.load(as: UInt64.self)) ?? 0
            }
        case 18:
            // A receive whose body throws: the message is consumed anyway.
            _ = try box.tryReceive { (bytes: RawSpan, sender: ProcessIdentity) -> Int in
                Self.consume(bytes, sender, false)
                throw Thrown()
            }
        case 19:
            let count = try box.receive(timeout: .zero) { (bytes: RawSpan, sender: ProcessIdentity, redelivered: Bool) -> Int in
                Self.consume(bytes, sender, redelivered)
                return bytes.byteCount
            }
            FuzzState.sink &+= UInt64(count)
        case 20:
            try box.send(count: size(op.arg, box), timeout: .zero) { target in
                for index in 0..<target.byteCount { target.storeBytes(of: UInt8(truncatingIfNeeded: index &* 3), toByteOffset: index, as: UInt8.self) }
            }
        case 21:
            _ = try box.trySend(String(repeating: "x", count: size(op.arg, box) % 64))
        case 22:
            // A batch of receives without release, then one of sends, interleaved.
            try box.batch {
                _ = try box.tryReceiveBatch(limit: 2) { bytes, sender, redelivered in Self.consume(bytes, sender, redelivered) }
                _ = try box.trySend(payload(size(op.arg, box)))
            }
        case 23:
            box.close()
        case 24:
            // Receive rights (system ownership): to this process or to init, which always runs.
            try box.grantReceive(to: op.arg & 1 == 0 ? getpid() : 1)
        case 25:
            try box.transferOwnership(to: op.arg & 1 == 0 ? getpid() : 1)
        case 26:
            try box.reclaimOwnership()
        default:
            // Ends the mailbox for every handle (later calls throw `deleted` or find it gone).
            try Mailbox.delete(name.name)
        }
    }
}

// MARK: - Endpoint segments

struct EndpointDriver {
    let flags: UInt8
    let ops: [FuzzOp]

    func run(_ input: inout FuzzInput) -> String {
        let endpoint = FuzzState.baseName
        let object = "@" + endpoint
        if flags & 2 == 0 {
            let contents = input.rest
            // `EndpointSegment.open` has no patience bound: it waits 2 s for a zero magic and
            // 0.5 s for an object under 512 bytes. Those inputs would only measure that wait.
            guard contents.count >= 8, contents.loadUnaligned(as: UInt64.self) != 0 || flags & 0x40 != 0 else { return "skipped: zero magic" }
            guard fuzzWriteObject(object, contents, minimumSize: EndpointLayout.tableOffset) else { return "write failed" }
            if flags & 0x44 != 0 {
                fuzzPatchObject(object) { base, size in
                    if flags & 4 != 0 {
                        base.storeBytes(of: UInt64(0), toByteOffset: EndpointLayout.pidNamespaceOffset, as: UInt64.self)
                    }
                    if flags & 0x40 != 0 {
                        base.storeBytes(of: EndpointLayout.magic, toByteOffset: EndpointLayout.magicOffset, as: UInt64.self)
                        base.storeBytes(of: EndpointLayout.version, toByteOffset: EndpointLayout.versionOffset, as: UInt32.self)
                    }
                }
            }
        } else {
            guard build(endpoint, object, &input) else { return "build failed" }
            // A patch may have zeroed the magic: that only measures open's 2 s wait.
            var magic: UInt64 = 0
            fuzzPatchObject(object) { base, _ in magic = base.load(as: UInt64.self) }
            guard magic != 0 else { return "skipped: zero magic" }
        }
        let segment: EndpointSegment
        do {
            segment = try EndpointSegment.open(endpoint)
        } catch {
            return "open: \(error)"
        }
        let budgetEnd = MonotonicClock.now() &+ fuzzOpBudgetNanos
        for op in ops {
            if MonotonicClock.now() >= budgetEnd { break }
            do {
                try perform(op, segment, endpoint: endpoint)
                if FuzzState.debug { fuzzLog("  endpoint op \(op.code % 15) arg \(op.arg): ok (sink \(FuzzState.sink))") }
            } catch {
                // Fine: a typed error.
                if FuzzState.debug { fuzzLog("  endpoint op \(op.code % 15) arg \(op.arg): \(error)") }
            }
        }
        return "ran \(ops.count) ops"
    }

    /// Built mode: a real endpoint segment with a few registered senders, then patches.
    func build(_ endpoint: String, _ object: String, _ input: inout FuzzInput) -> Bool {
        let senders = Int(input.byte() % 9)
        let freed = input.byte()
        let holderChoice = input.byte()
        for _ in 0..<5 { _ = input.byte() }
        shm_unlink("/" + MailboxName.objectPrefix + object)
        let holder: UInt64
        switch holderChoice % 3 {
        case 0: holder = FuzzState.packedMe
        case 1: holder = fuzzDeadIdentity
        default: holder = 0
        }
        do {
            let segment = try EndpointSegment.create(endpoint, holder: holder, permissions: 0o600)
            for index in 0..<senders {
                try segment.register(sender: "sender-\(index)", as: FuzzState.packedMe, liveness: SystemLiveness())
            }
            for entry in try segment.entries() where freed >> UInt8(entry.index % 8) & 1 != 0 {
                segment.free(entry)
            }
        } catch {
            return false
        }
        fuzzApplyPatches(&input, object: object, regions: [
            0..<EndpointLayout.tableOffset,
            EndpointLayout.tableOffset..<EndpointLayout.tableOffset + 8 * EndpointLayout.entrySize,
            EndpointLayout.tableOffset..<1 << 20,
            EndpointLayout.holderOffset..<EndpointLayout.tableOffset,
        ])
        return true
    }

    /// A sender's link that is not a usable one-to-one mailbox (empty, never initialised, not a
    /// mailbox, or a shared mailbox) next to a good link with a message, both in the table. The
    /// quarantine of `Endpoint` promises that one bad sender cannot stop the endpoint from hearing
    /// the others: receive-from-anyone serves the links in a fair rotation, so the good message
    /// must arrive within one pass over the table's links (earlier ops may have left messages on
    /// other links, each served once per pass) plus one call for the bad link's error, reported
    /// once; and no non-blocking call may take a second. A violation traps
    /// (a finding). Off unless SHMMB_FUZZ_HOSTILE_LINKS is set: see Fuzz/README.md, finding 1.
    func hostileLink(_ op: FuzzOp, _ segment: EndpointSegment, endpoint: String) throws {
        guard FuzzState.hostileLinks else { return }
        // The oracle needs a table that reads cleanly and has room for both links.
        guard (try? segment.entries()) != nil else { return }
        let evil = "evil-\(op.arg & 1)"
        let good = "good"
        try segment.register(sender: evil, as: FuzzState.packedMe, liveness: SystemLiveness())
        try segment.register(sender: good, as: FuzzState.packedMe, liveness: SystemLiveness())
        let evilLink = EndpointName.link(from: evil, to: endpoint)
        shm_unlink(evilLink.objectName)
        switch op.arg >> 1 & 3 {
        case 0, 1, 2:
            // 4 bytes; 16 KiB of zeros (never initialised); 16 KiB whose magic is garbage.
            var bytes = [UInt8](repeating: 0, count: op.arg >> 1 & 3 == 0 ? 4 : 16384)
            if op.arg >> 1 & 3 == 2 { for index in 0..<64 { bytes[index] = 0xAB } }
            guard bytes.withUnsafeBytes({ fuzzWriteObject(evilLink.name, $0) }) else { return }
        default:
            // A valid mailbox, but shared: links are one-to-one.
            _ = try Mailbox.create(evilLink, options: MailboxOptions(capacity: 2, maxMessageSize: 16, kind: .shared))
        }
        let goodLink = EndpointName.link(from: good, to: endpoint)
        shm_unlink(goodLink.objectName)
        let link = try Mailbox.create(goodLink, options: MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .oneToOne))
        _ = try link.trySend(Array("hello".utf8))
        link.close()
        guard let joined = try? Endpoint.join(endpoint) else { return }
        defer { joined.close() }
        var delivered = false
        var outcomes: [String] = []
        let budget = ((try? joined.incomingLinks().count) ?? 2) + 1
        for _ in 0..<budget where !delivered {
            let start = MonotonicClock.now()
            do {
                if let message = try joined.tryReceive() {
                    delivered = message.from == good
                    outcomes.append("message from \(message.from)")
                } else {
                    outcomes.append("nil")
                }
            } catch {
                outcomes.append("\(error)")
            }
            let elapsed = MonotonicClock.now() &- start
            if elapsed > 1_000_000_000 {
                fatalError("oracle: Endpoint.tryReceive() blocked \(elapsed / 1_000_000) ms with a bad link from \(evil) (\(outcomes.last!))")
            }
        }
        if !delivered {
            fatalError("oracle: a bad link from \(evil) kept the message from \(good) from being received: \(outcomes)")
        }
    }

    func payloadBytes(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &+ 0x30) }
    }

    func perform(_ op: FuzzOp, _ segment: EndpointSegment, endpoint: String) throws {
        let liveness = SystemLiveness()
        switch op.code % 15 {
        case 0:
            for entry in try segment.entries() {
                FuzzState.sink &+= entry.generation &+ UInt64(entry.sender.utf8.count) &+ UInt64(entry.index)
            }
        case 1:
            FuzzState.sink &+= UInt64(try segment.senders().count)
        case 2:
            FuzzState.sink &+= UInt64(segment.changes)
        case 3:
            if let entry = try segment.entry(at: Int(op.arg) % segment.tableCapacity) {
                FuzzState.sink &+= entry.generation
            }
        case 4:
            try segment.register(sender: "s\(op.arg % 12)", as: FuzzState.packedMe, liveness: liveness)
        case 5:
            let entries = try segment.entries()
            if !entries.isEmpty { segment.free(entries[Int(op.arg) % entries.count]) }
        case 6:
            if segment.claim(for: FuzzState.packedMe, liveness: liveness) == nil, op.arg & 1 != 0 {
                segment.release(FuzzState.packedMe)
            }
        case 7:
            FuzzState.sink &+= segment.currentHolder &+ segment.nonce
        case 8:
            FuzzState.sink &+= UInt64(truncatingIfNeeded: segment.doorbell.notify(all: op.arg & 1 != 0) ?? -1)
        case 9:
            for sleeper in segment.doorbell.announcedSleepers() { FuzzState.sink &+= UInt64(sleeper) }
            segment.doorbell.withdraw(deadSleeper: EndpointLayout.holderSleeperBit)
        case 10:
            // The public API over the same segment: join takes the name over (or finds it taken),
            // lists the incoming links and polls them (the links themselves do not exist).
            let joined = try Endpoint.join(endpoint)
            defer { joined.close() }
            FuzzState.sink &+= UInt64(try joined.incomingLinks().count)
            if let message = try joined.tryReceive() { FuzzState.sink &+= UInt64(message.bytes.count) }
        case 11:
            if let entry = try segment.entries().first {
                try segment.register(sender: entry.sender, as: FuzzState.packedMe, liveness: liveness)
            }
        case 12:
            // A real link from a sender named in the table (or a new one) with a message on it,
            // then the joined endpoint receives from anyone and from that sender.
            let sender = try segment.entries().first?.sender ?? "sender-\(op.arg % 3)"
            let linkName = EndpointName.link(from: sender, to: endpoint)
            shm_unlink(linkName.objectName)
            let link = try Mailbox.create(linkName, options: MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .oneToOne))
            _ = try link.trySend(payloadBytes(Int(op.arg & 63)))
            link.close()
            let joined = try Endpoint.join(endpoint)
            defer { joined.close() }
            if let message = try joined.tryReceive() { FuzzState.sink &+= UInt64(message.bytes.count) }
            if let message = try joined.tryReceive(from: sender) { FuzzState.sink &+= UInt64(message.bytes.count) }
            _ = try joined.tryReceiveBatch(limit: 4) { bytes, pid, from in
                MailboxDriver.consume(bytes, pid, from.isEmpty)
            }
        case 14:
            try hostileLink(op, segment, endpoint: endpoint)
        default:
            // The endpoint sends to itself: registers its link in its own (fuzzed) table.
            let joined = try Endpoint.join(endpoint)
            defer { joined.close() }
            _ = try joined.trySend(to: endpoint, payloadBytes(Int(op.arg & 31)))
            if let message = try joined.tryReceive() { FuzzState.sink &+= UInt64(message.bytes.count) }
        }
    }
}
