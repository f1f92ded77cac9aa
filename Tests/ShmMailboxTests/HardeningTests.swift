import Foundation
import PeerProcess
import MailboxTestSupport
import Synchronization
import Testing
@testable import ShmMailbox

/// Waits until process `pid` sleeps on `event` of `box` (its lease entry's bit is announced).
func waitUntilAsleep(_ pid: Int32, on event: EventCount, of box: Mailbox) -> Bool {
    eventually {
        event.announcedSleepers().contains { box.leases.holder(at: $0) & ProcessIdentity.packedPidMask == UInt64(pid) }
    }
}

/// CPU time (user + system) of process `pid` in clock ticks, from /proc/PID/stat.
func cpuTicks(_ pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // fields[11] is field 14 (utime), fields[12] field 15 (stime).
    guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
    return user + system
}

/// `cpuTicks(pid)` once it has stopped rising (the same over a 200 ms look), after at least
/// 300 ms and at most 10 s; nil if the process is gone.
func settledCPUTicks(_ pid: Int32) -> Int? {
    usleep(300_000)
    let deadline = ContinuousClock.now + .seconds(10)
    var last = cpuTicks(pid)
    while let ticks = last, ContinuousClock.now < deadline {
        usleep(200_000)
        last = cpuTicks(pid)
        if last == ticks { break }
    }
    return last
}

/// A liveness oracle for tests: alive unless listed dead; runs `onCheck` before answering.
final class ScriptedLiveness: Liveness, @unchecked Sendable {
    let dead: Set<UInt64>
    let onCheck: (UInt64) -> Void
    init(dead: Set<UInt64>, onCheck: @escaping (UInt64) -> Void = { _ in }) {
        self.dead = dead
        self.onCheck = onCheck
    }
    func isAlive(_ packed: UInt64) -> Bool {
        onCheck(packed)
        return !dead.contains(packed)
    }
}

/// One test per defect of the hardening issue that the crash-point walk does not already cover
/// (see the numbering in each test's comment).
@Suite("Hardening, in one process")
struct HardeningBasics {
    /// Defect 1: a zero-copy send whose closure throws after the padding record before it was
    /// stamped, then `close()`, and a receiver that passes that padding: the next sender handle
    /// neither writes behind the receiver's head (its messages lost, then every receive
    /// `corrupted`) nor wedges the ring; every message arrives in order.
    /// A directory entry whose name ends at the end of readable memory, as the last record of
    /// `readdir`'s buffer can (records are only as long as their names): reading its name must
    /// stop at the NUL. Copying `d_name` whole, as listing /dev/shm once did, reads 256 bytes and
    /// faults on the guard page here (the fuzzer's AddressSanitizer found it: Fuzz/README.md, 3).
    @Test func directoryEntryNameIsReadOnlyUpToItsEnd() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let memory = try #require(mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(memory != MAP_FAILED)
        defer { munmap(memory, 2 * page) }
        #expect(mprotect(memory + page, page, PROT_NONE) == 0)
        let name = Array("abcd".utf8CString)   // with its NUL: 5 bytes
        let offset = MemoryLayout<dirent>.offset(of: \.d_name)!
        let length = offset + name.count
        let start = page - length
        try #require(start % MemoryLayout<dirent>.alignment == 0, "choose a name length that ends the record on the page end")
        let entry = (memory + start).bindMemory(to: dirent.self, capacity: 1)
        name.withUnsafeBytes { (memory + start + offset).copyMemory(from: $0.baseAddress!, byteCount: name.count) }
        #expect(SharedSegment.fileName(of: entry) == "abcd")
    }

    @Test func failedZeroCopySendAfterPaddingThenClose() throws {
        try withMailbox("pad-throw", MailboxOptions(capacity: 8, maxMessageSize: 1000, kind: .oneToOne)) { name, box throws in
            let receiver = try Mailbox.open(name)
            let dataSize = 16384
            func record(_ length: Int) -> Int { SegmentLayout.align(SegmentLayout.recordHeaderSize + length, to: SegmentLayout.recordAlignment) }
            var tail = 0
            var sequence: UInt64 = 0
            // Stream until the next 1000-byte record would not fit before the end of the area.
            while dataSize - tail % dataSize >= record(1000) {
                let length = 300 + Int(sequence % 7) * 50
                let toEnd = dataSize - tail % dataSize
                if toEnd < record(length) { tail += toEnd }
                let message = TestMessages.make(sender: 1, sequence: sequence, length: length)
                try box.send(message)
                tail += record(length)
                sequence += 1
                #expect(try receiver.tryReceive()?.bytes == message)
            }
            struct Refused: Error {}
            #expect(throws: Refused.self) { try box.send(count: 1000) { _ in throw Refused() } }
            box.close()
            // The receiver passes the padding the failed send left, with nothing after it yet.
            #expect(try receiver.tryReceive() == nil)
            let next = try Mailbox.open(name)
            for _ in 0..<40 {
                let message = TestMessages.make(sender: 1, sequence: sequence, length: 1000)
                try next.send(message)
                sequence += 1
                #expect(try receiver.tryReceive()?.bytes == message)
            }
            #expect(try receiver.tryReceive() == nil)
        }
    }

    /// Defect 3: positions near 2^64, odd positions and garbage far apart are `corrupted` (or
    /// harmless), never a trap or a misaligned atomic load.
    @Test(arguments: [UInt64.max, UInt64.max - 15, UInt64.max - 16, 1 << 63, 0x1235])
    func hostilePositionsNeverTrap(value: UInt64) throws {
        for kind in MailboxOptions.RingKind.allCases {
            try withMailbox("trap-\(kind)", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: kind)) { name, box throws in
                try box.send("m")
                let receiver = try Mailbox.open(name)
                for offset in [SegmentLayout.headOffset, SegmentLayout.tailOffset, SegmentLayout.readingUpToOffset] {
                    scribble(on: name) { base, _ in base.storeBytes(of: value, toByteOffset: offset, as: UInt64.self) }
                    let reopened = try Mailbox.open(name)
                    for handle in [box, receiver, reopened] {
                        _ = try? handle.tryReceive()
                        _ = try? handle.trySend("x")
                        for _ in 0..<6 { _ = try? handle.send("y", timeout: .milliseconds(1)) }
                        _ = handle.depth
                    }
                }
            }
        }
    }

    /// Defect 3: a misaligned one-to-one head is `corrupted` (the alignment gate), not an
    /// empty mailbox that swallows what is sent next. (An aligned head off a record boundary is
    /// caught by the sender, whose count of received messages walks the records to the head.)
    @Test func oneToOneHeadOffARecordIsCorrupted() throws {
        try withMailbox("o2o-off", MailboxOptions(capacity: 8, maxMessageSize: 64, kind: .oneToOne)) { name, box throws in
            try box.send("first")
            let receiver = try Mailbox.open(name)
            #expect(try receiver.tryReceive()?.string == "first")
            let tail = box.segment.base.load(fromByteOffset: SegmentLayout.tailOffset, as: UInt64.self)
            scribble(on: name) { base, _ in base.storeBytes(of: tail + 4, toByteOffset: SegmentLayout.headOffset, as: UInt64.self) }
            receiver.close()
            let next = try Mailbox.open(name)
            expectError({ $0.isCorrupted }) { try next.tryReceive() }
        }
    }

    /// Defect 3: a record forged with a valid stamp at a head just below 2^64 is read without
    /// trapping on the position arithmetic (positions wrap).
    @Test func forgedRecordAtTheTopOfThePositionSpace() throws {
        try withMailbox("o2o-top", MailboxOptions(capacity: 8, maxMessageSize: 64, kind: .oneToOne)) { name, box throws in
            let key = OneToOneRing.stampKey(nonce: box.nonce)
            let head = UInt64.max - 15
            let dataSize = UInt64(box.segment.base.load(fromByteOffset: SegmentLayout.dataSizeOffset, as: UInt64.self))
            scribble(on: name) { base, _ in
                base.storeBytes(of: head, toByteOffset: SegmentLayout.headOffset, as: UInt64.self)
                base.storeBytes(of: head, toByteOffset: SegmentLayout.tailOffset, as: UInt64.self)
                let record = SegmentLayout.dataOffset + Int(head & (dataSize - 1))
                base.storeBytes(of: UInt32(0), toByteOffset: record + SegmentLayout.recordLength, as: UInt32.self)
                base.storeBytes(of: (head &+ 1) ^ key, toByteOffset: record + SegmentLayout.recordStamp, as: UInt64.self)
            }
            let receiver = try Mailbox.open(name)
            let message = try receiver.tryReceive()
            #expect(message?.bytes == [])
            // Positions wrap past 2^64 and the ring goes on.
            try box.send("after the wrap")
            #expect(try receiver.tryReceive()?.string == "after the wrap")
        }
    }

    /// Defect 4, at the mailbox level: a segment truncated under live handles (by anyone with
    /// write access) makes their calls throw `corrupted`; the process survives.
    @Test func truncatedUnderLiveHandles() throws {
        for kind in MailboxOptions.RingKind.allCases {
            try withMailbox("shrunk-\(kind)", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: kind)) { name, box throws in
                let receiver = try Mailbox.open(name)
                try box.send("before")
                let object = strdup("/shmmb." + name)!
                defer { free(object) }
                #expect(forkRaw {
                    let fd = shm_open(object, O_RDWR, 0)
                    return fd >= 0 && ftruncate(fd, 0) == 0 ? 0 : 1
                } == 0)
                expectError({ $0.isCorrupted }) { try receiver.tryReceive() }
                expectError({ $0.isCorrupted }) { try box.send("after", timeout: .milliseconds(10)) }
                expectError({ $0.isCorrupted }) { try receiver.receive(timeout: .milliseconds(10)) }
            }
        }
    }

    /// Defect 6: a lease is claimed only from the exact value judged free or dead. A claimant
    /// that judges an entry dead while another process takes it meanwhile must not overwrite it.
    @Test func leaseClaimNeverOverwritesAValueItDidNotJudge() throws {
        let base = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        defer { base.deallocate() }
        base.initializeMemory(as: UInt64.self, repeating: 0, count: 8)
        let table = LeaseArray(at: 0, count: 2, in: base)
        let dead: UInt64 = 0x1234_5678 << 22 | 4_000_001
        let rival: UInt64 = 0x1234_5679 << 22 | 4_000_002
        let me: UInt64 = 0x1234_567A << 22 | 4_000_003
        table.entry(0).replace(0, with: dead)
        table.entry(1).replace(0, with: rival)
        // While we judge entry 0's holder, a rival takes it (and entry 1 frees up).
        let liveness = ScriptedLiveness(dead: [dead]) { checked in
            if checked == dead {
                table.entry(0).replace(dead, with: rival)
                table.entry(1).replace(rival, with: 0)
            }
        }
        let index = table.claim(for: me, liveness: liveness)
        #expect(index == 1)
        #expect(table.entry(0).holder == rival, "the rival's claim was overwritten")
        #expect(table.entry(1).holder == me)
        // And a word that a live process holds is never taken.
        let word = table.entry(0)
        #expect(word.claim(for: me, liveness: liveness) == .heldBy(rival))
    }

    /// Defect 7: a slot's claim names a lease, not a bare pid. Once the lease entry was taken
    /// again (a new tag), the claim reads as its holder's death even though a live process now
    /// holds the entry; and a pid reused by another process never keeps a dead claim alive.
    @Test func slotClaimsOutliveNoPidReuse() throws {
        try withMailbox("reuse", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .shared)) { name, box throws in
            let leases = box.leases
            // A stranger: this process's pid with a start time this process does not have.
            let stranger = ProcessIdentity(pid: getpid(), startTime: 12345).packed
            let (lease, _) = try leases.acquire(for: stranger, liveness: SystemLiveness()) { _ in true }
            #expect(!leases.isAlive(lease.reference, liveness: SystemLiveness()), "a reused pid passed for the lease's holder")
            // Its entry leased again: the old reference now names nobody, whoever holds the entry.
            scribble(on: name) { base, _ in
                let entry = SegmentLayout.leaseTableOffset + lease.index * SegmentLayout.leaseEntrySize
                base.storeBytes(of: lease.tag &+ 1, toByteOffset: entry + SegmentLayout.leaseTag, as: UInt32.self)
            }
            #expect(leases.holder(of: lease.reference) == nil)
            #expect(!leases.isAlive(lease.reference, liveness: ScriptedLiveness(dead: [])))
        }
    }

    /// Defect 7: the pid sentinels 0 and -1 never count as alive (`kill(0, 0)` and `kill(-1, 0)`
    /// address process groups and would say yes).
    @Test func pidSentinelsAreNeverAlive() {
        #expect(!ProcessIdentity.isAlive(pid: 0))
        #expect(!ProcessIdentity.isAlive(pid: -1))
        #expect(!ProcessIdentity.isAlive(packed: 0))
        #expect(!ProcessIdentity.isAlive(packed: 12345 << 22))
        #expect(!ProcessIdentity(pid: 0, startTime: 0).isAlive)
        #expect(!ProcessIdentity(pid: -1, startTime: 0).isAlive)
        #expect(ProcessIdentity.current().isAlive)
    }

    /// Defect 7: two handles of one process cannot both hold a one-to-one role; closing the one
    /// that does not hold it leaves the role with the other, closing the holder frees it.
    @Test func oneRolePerHandle() throws {
        try withMailbox("two-handles", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .oneToOne)) { name, first throws in
            let second = try Mailbox.open(name)
            try first.send("from the first")
            expectError(.roleTaken(.sender, pid: getpid())) { try second.send("from the second") }
            second.close()
            try first.send("still the first")
            first.close()
            let third = try Mailbox.open(name)
            try third.send("now the third")
            let receiver = try Mailbox.open(name)
            #expect(try receiver.receive().string == "from the first")
            #expect(try receiver.receive().string == "still the first")
            #expect(try receiver.receive().string == "now the third")
        }
    }

    /// Defect 7: a mailbox created in another pid namespace is refused with a typed error.
    @Test func anotherPidNamespaceIsRefused() throws {
        try withMailbox("pidns", MailboxOptions(capacity: 4, maxMessageSize: 64)) { name, _ in
            scribble(on: name) { base, _ in
                base.storeBytes(of: UInt64(0xDEAD_BEEF), toByteOffset: SegmentLayout.pidNamespaceOffset, as: UInt64.self)
            }
            expectError(.foreignPidNamespace(name)) { try Mailbox.open(name) }
        }
    }

    /// Defect 8: an endpoint hears from any number of senders over its life: links whose sender
    /// has gone and that are empty give their table entries back (the table holds 256).
    @Test func endpointTableEntriesAreReused() throws {
        let receiverName = uniqueName("ep-many")
        defer { _ = try? Endpoint.remove(receiverName) }
        let options = Endpoint.Options(linkCapacity: 2, maxMessageSize: 64)
        let receiver = try Endpoint.join(receiverName, options: options)
        for index in 0..<300 {
            let senderName = "\(receiverName)-s\(index)"
            defer { _ = try? Endpoint.remove(senderName) }
            let sender = try Endpoint.join(senderName, options: options)
            try sender.send(to: receiverName, "hello \(index)")
            sender.close()
            let message = try receiver.receive(timeout: .seconds(5))
            #expect(message.from == senderName && message.string == "hello \(index)")
        }
        #expect(try receiver.incomingLinks().count < EndpointLayout.tableCapacity)
        // An idle receive from anyone does not read the table again (one load of its change count).
        _ = try receiver.tryReceive()
        let reads = receiver.tableReads
        for _ in 0..<100 { #expect(try receiver.tryReceive() == nil) }
        #expect(receiver.tableReads == reads)
    }

    /// A signal that interrupts the reservation of a new segment's pages (`posix_fallocate`
    /// returns EINTR) is retried, in smaller pieces, instead of failing the creation: here the
    /// first 5 calls for this segment's size report EINTR (debug builds, `ReservationInterrupts`).
    /// Before the fix, `create` threw `system(posix_fallocate, EINTR)`.
    @Test func interruptedReservationIsRetried() throws {
        // An odd size, so that no other test's segment is interrupted.
        let options = MailboxOptions(capacity: .bounded(777), maxMessageSize: 1000, kind: .shared)
        let geometry = try SegmentGeometry(kind: .shared, capacity: options.capacity, maxMessageSize: 1000)
        ReservationInterrupts.arm(size: geometry.segmentSize, count: 5)
        defer { ReservationInterrupts.arm(size: 0, count: 0) }
        try withName("eintr") { name in
            let box = try Mailbox.create(name, options: options)
            defer { try? Mailbox.delete(name) }
            // Every interruption was seen, by this creation (no other segment has this size).
            #expect(ReservationInterrupts.remaining.load(ordering: .relaxed) <= 0)
            // Every page is reserved: the object's allocated blocks cover its size.
            var info = stat()
            #expect(stat("/dev/shm/shmmb.\(name)", &info) == 0)
            #expect(Int(info.st_blocks) * 512 >= geometry.segmentSize)
            for index in 0..<777 { #expect(try box.trySend("m\(index)")) }
            #expect(try box.trySend("full") == false)
        }
    }

    /// Defect 11: futex errors that are not transient are thrown, not retried forever.
    @Test func futexErrorsAreThrown() throws {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
        defer { raw.deallocate() }
        let misaligned = (raw + 1).assumingMemoryBound(to: Atomic<UInt32>.self)
        expectError(.system(operation: "futex wait", errno: EINVAL)) {
            try Futex.wait(misaligned, expected: 0, timeoutNanos: 1_000_000)
        }
    }

    /// Defect 11: a further segment left behind below the read hint (its remover died between
    /// raising the hint and removing it) is removed by `removeAbandoned`.
    @Test func leakedGenerationsAreCollected() throws {
        try withMailbox("leak", MailboxOptions(capacity: .unbounded(segmentCapacity: 2), maxMessageSize: 64)) { name, box throws in
            for index in 0..<10 { try box.send("m\(index)") }
            let receiver = try Mailbox.open(name)
            for index in 0..<10 { #expect(try receiver.receive(timeout: .seconds(1)).string == "m\(index)") }
            #expect(chainedSegments(of: name) == [4])
            // A generation the hint has passed, as a remover killed before unlinking leaves it.
            let leaked = SegmentChain.segmentName(of: name, nonce: box.nonce, generation: 2)
            let fd = shm_open(leaked.objectName, O_RDWR | O_CREAT | O_EXCL, 0o600)
            #expect(fd >= 0)
            close(fd)
            #expect(try collectedByRemoveAbandoned(leaked.name))
            #expect(chainedSegments(of: name) == [4])
        }
    }

    /// Defect 12: a synchronous send that timed out frees its slot at once: two of them on a
    /// mailbox of capacity 2 with no receiver leave it empty and open to sends; and on a
    /// zero-capacity mailbox the depth stays 0.
    @Test func timedOutSynchronousSendsLeaveNoGhost() throws {
        try withMailbox("ghost", MailboxOptions(capacity: .bounded(2), maxMessageSize: 64, kind: .shared)) { _, box throws in
            for _ in 0..<2 { expectError(.timedOut) { try box.send("sync", timeout: .milliseconds(20), until: .received) } }
            #expect(box.depth == 0)
            #expect(try box.trySend("a"))
            #expect(try box.trySend("b"))
            #expect(try !box.trySend("c"))
            #expect(try box.tryReceive()?.string == "a")
            #expect(try box.tryReceive()?.string == "b")
        }
        try withMailbox("ghost-zero", MailboxOptions(capacity: .zero, maxMessageSize: 64, kind: .shared)) { _, box throws in
            for _ in 0..<3 { expectError(.timedOut) { try box.send("sync", timeout: .milliseconds(20)) } }
            #expect(box.depth == 0)
            #expect(try box.trySend("nobody waits") == false)
            #expect(box.depth == 0)
        }
    }
}

extension MultiProcess {
    @Suite("Hardening, between processes")
    struct HardeningBetweenProcesses {
        /// Defect 2: a stale handle that notices a dead owner does not remove a mailbox created
        /// since under the same name; nor does the owner's own close after its name was reused.
        @Test func staleHandlesNeverRemoveANewMailbox() throws {
            try withName("stale") { name in
                let owner = try Peer(["own", name, "4"])
                #expect(try eventually { try Mailbox.list().contains(name) })
                let first = try Mailbox.open(name)
                let second = try Mailbox.open(name)
                owner.kill9()
                _ = owner.finish()
                usleep(20_000)  // senders check a process owner's liveness at most every 10 ms
                expectError(.ownerTerminated(name)) { try first.send("to the dead owner", timeout: .seconds(5)) }
                let replacement = try Mailbox.create(name)
                expectError(.ownerTerminated(name)) { try second.send("to the dead owner too", timeout: .seconds(5)) }
                #expect(try Mailbox.list().contains(name), "a stale handle removed the new mailbox")
                try replacement.send("new")
                #expect(try Mailbox.open(name).receive().string == "new")
            }
            try withName("stale-close") { name in
                let owner = try Peer(["own", name, "4", "1500"])
                #expect(try eventually { try Mailbox.list().contains(name) })
                try Mailbox.unlink(name)
                let replacement = try Mailbox.create(name)
                #expect(owner.expectSuccess().contains("closed"))
                #expect(try Mailbox.list().contains(name), "the old owner's close removed the new mailbox")
                try replacement.send("still here")
                #expect(try replacement.receive().string == "still here")
            }
        }

        /// Defect 5: a receiver killed while it sleeps leaves its sleeper bit, which the next
        /// notification that wakes nobody withdraws: senders stop paying wake-up system calls.
        @Test func deadSleeperIsWithdrawn() throws {
            try withMailbox("dead-sleeper", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .shared)) { name, box throws in
                let sleeper = try Peer(["receive-one", name], strategy: "block")
                #expect(waitUntilAsleep(sleeper.pid, on: box.messageEvent, of: box))
                sleeper.kill9()
                _ = sleeper.finish()
                #expect(!box.messageEvent.announcedSleepers().isEmpty)
                try box.send("anyone?")
                #expect(box.messageEvent.announcedSleepers().isEmpty, "the dead sleeper's bit stayed")
                #expect(box.messageEvent.notify() == nil, "a notification still makes a system call")
            }
        }

        /// Defect 9: a synchronous send's timeout holds even when a receiver has taken the message
        /// and is slow with it: the send throws `deliveryUnconfirmed` in time, the message is still
        /// received, and its slot is freed afterwards.
        @Test func synchronousSendTimeoutHoldsWhileTheReceiverReads() throws {
            try withMailbox("slow-reader", MailboxOptions(capacity: 2, maxMessageSize: 64, kind: .shared)) { name, box throws in
                let reader = try Peer(["slow-receive", name, "3000"])
                let (_, seconds) = timed {
                    expectError({ if case .deliveryUnconfirmed(let pid) = $0 { return pid == reader.pid } else { return false } }) {
                        try box.send("slowly", timeout: .milliseconds(500), until: .received)
                    }
                }
                #expect(seconds < 2, "the send waited \(seconds) s")
                #expect(reader.expectSuccess() == "slowly\n")
                #expect(box.depth == 0)
                #expect(try box.trySend("a") && box.trySend("b"))
            }
        }

        /// Defect 11: wake one where one suffices: three competing receivers asleep, one
        /// notification wakes one of them.
        @Test func oneNotificationWakesOneCompetingReceiver() throws {
            try withMailbox("wake-one", MailboxOptions(capacity: 8, maxMessageSize: 64, kind: .shared)) { name, box throws in
                let receivers = try (0..<3).map { _ in try Peer(["receive-one", name], strategy: "block") }
                for receiver in receivers { #expect(waitUntilAsleep(receiver.pid, on: box.messageEvent, of: box)) }
                usleep(20_000)  // let the last announcer reach the kernel's queue
                #expect(box.messageEvent.notify() == 1)
                for index in 0..<3 { try box.send("m\(index)") }
                for receiver in receivers { #expect(receiver.expectSuccess().hasPrefix("m")) }
            }
        }

        /// Defect 11: a handle inherited across fork refuses to work in the child, and the child
        /// closing it does not give up the parent's role.
        @Test func handlesInheritedAcrossForkAreRefused() throws {
            try withMailbox("fork", MailboxOptions(capacity: 8, maxMessageSize: 64, kind: .oneToOne)) { name, box throws in
                let parent = try Peer(["fork-use", name])
                #expect(eventually { box.depth >= 1 })
                // While the parent still runs (it waits half a second after its child exited),
                // the child's close of the inherited handle has left the parent's role alone.
                usleep(200_000)
                let role = box.segment.base.atomicUInt64(at: SegmentLayout.senderRoleOffset).pointee.load(ordering: .acquiring)
                #expect(ProcessIdentity(packed: role).pid == parent.pid, "the sender role names \(ProcessIdentity(packed: role).pid)")
                #expect(parent.expectSuccess() == "child 18\n")
                #expect(try box.receive().string == "parent before fork")
                #expect(try box.receive().string == "parent after fork")
            }
        }

        /// Defect 13: an exclusive mailbox's standby receiver sleeps until the turn frees: under
        /// 1 % of a core while it waits, and it gets the turn when the holder gives it up.
        @Test func exclusiveStandbySleeps() throws {
            try withMailbox("standby", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .shared, receiverPolicy: .exclusive)) { name, box throws in
                let holder = try Peer(["receive-one", name], strategy: "block")
                #expect(eventually { box.segment.base.atomicUInt64(at: SegmentLayout.receiverRoleOffset).pointee.load(ordering: .acquiring) != 0 })
                let standby = try Peer(["receive-one", name, "wait"], strategy: "block")
                // Measure from when it has settled into its wait: on a loaded machine starting a
                // Swift process (loading the runtime, opening the mailbox) takes longer than a
                // fixed pause, and its CPU time would count against the sleep.
                let before = try #require(settledCPUTicks(standby.pid))
                usleep(3_000_000)
                let after = try #require(cpuTicks(standby.pid))
                #expect(after - before <= 3, "the standby receiver used \(after - before) ticks in 3 s")
                try box.send("first")
                #expect(holder.expectSuccess() == "first\n")
                try box.send("second")
                #expect(standby.expectSuccess() == "second\n")
            }
        }

        /// Defect 14: a receiver blocked on a mailbox that is deleted wakes with `deleted`.
        @Test func deleteWakesBlockedReceivers() throws {
            try withName("deleted") { name in
                _ = try Mailbox.create(name, options: MailboxOptions(capacity: 4, maxMessageSize: 64))
                let receiver = try Peer(["receive-one", name], strategy: "block")
                let box = try Mailbox.open(name)
                #expect(waitUntilAsleep(receiver.pid, on: box.messageEvent, of: box))
                let (result, seconds) = timed {
                    try? Mailbox.delete(name)
                    return receiver.finish()
                }
                #expect(result.status == 17, "\(result)")
                #expect(seconds < 1)
                expectError(.deleted(name)) { try box.send("after") }
            }
        }

        /// Defect 14: on a zero-capacity mailbox, a non-blocking send meets a receiver that is
        /// already asleep in `receive()` (the rendezvous where the receiver waits first).
        @Test func zeroCapacityTrySendMeetsASleepingReceiver() throws {
            try withMailbox("rendezvous", MailboxOptions(capacity: .zero, maxMessageSize: 64, kind: .shared)) { name, box throws in
                let receiver = try Peer(["receive-one", name], strategy: "block")
                #expect(waitUntilAsleep(receiver.pid, on: box.messageEvent, of: box))
                #expect(try box.trySend("meet me"))
                #expect(receiver.expectSuccess() == "meet me\n")
                #expect(try !box.trySend("nobody now"))
            }
        }

        /// Defect 14: a system-owned mailbox whose owner died without handing it on can be
        /// reclaimed by a process of the user that owns the segment.
        @Test func systemMailboxOfADeadOwnerIsReclaimed() throws {
            try withName("reclaim") { name in
                let creator = try Peer(["own-system", name])
                #expect(creator.expectSuccess() == "created\n")
                let box = try Mailbox.open(name)
                try box.send("waiting for an owner")
                expectError({ if case .notPermitted = $0 { return true } else { return false } }) { try box.tryReceive() }
                try box.reclaimOwnership()
                #expect(box.owner == ProcessIdentity.current())
                #expect(try box.tryReceive()?.string == "waiting for an owner")
            }
        }
    }
}
