import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

/// The generations of an unbounded mailbox's further segments now in /dev/shm
/// (`NAME#g.NONCE`), sorted.
func chainedSegments(of name: String) -> [Int] {
    chainedSegmentObjects(of: name).map(\.generation).sorted()
}

/// The object names (without `shmmb.`) and generations of an unbounded mailbox's further segments.
func chainedSegmentObjects(of name: String) -> [(object: String, generation: Int)] {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []
    return files.compactMap { file in
        guard file.hasPrefix("shmmb."), let parsed = SegmentChain.parse(file.dropFirst("shmmb.".count)),
              parsed.mailbox == name[...] else { return nil }
        return (String(file.dropFirst("shmmb.".count)), Int(parsed.generation))
    }
}

/// Whether a sweep of `Mailbox.removeAbandoned()` removed the object listed as `listed` (its
/// name without `shmmb.`, at `/shmmb.<listed>`): this call's, or a concurrent test's — the sweep
/// covers the whole machine, and other suites run one (or `shmbox gc`) at the same time, so
/// whichever comes first removes it; either way it must be gone afterwards.
func collectedByRemoveAbandoned(_ listed: String) throws -> Bool {
    if try Mailbox.removeAbandoned().contains(listed) { return true }
    let fd = shm_open("/shmmb.\(listed)", O_RDONLY, 0)
    if fd >= 0 {
        close(fd)
        return false
    }
    return errno == ENOENT
}

/// The object name (without `shmmb.`) of generation `generation` of an unbounded mailbox.
func chainedSegmentObject(of name: String, generation: Int) -> String? {
    chainedSegmentObjects(of: name).first { $0.generation == generation }?.object
}

/// Whether this process may give a child a private, tiny /dev/shm (root and `unshare -m`; tried
/// once with a throwaway mount).
let privateShmAvailable: Bool = {
    guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else { return false }
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
    probe.arguments = ["-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /dev/shm"]
    guard (try? probe.run()) != nil else { return false }
    probe.waitUntilExit()
    return probe.terminationStatus == 0
}()

@Suite("Unbounded buffering, in one process")
struct UnboundedBasics {
    /// `trySend` never reports full: 10 segments' worth goes in with nobody receiving; then every
    /// message comes out once, in order, intact, and the drained segments are given back.
    @Test func growsWithoutBlockingAndShrinksWhenDrained() throws {
        let segment = 16
        let count = segment * 10
        try withMailbox("grow", MailboxOptions(capacity: .unbounded(segmentCapacity: segment), maxMessageSize: 256)) { name, box throws in
            #expect(box.capacity == .unbounded(segmentCapacity: segment) && box.capacity.limit == nil)
            for sequence in 0..<UInt64(count) {
                let message = TestMessages.make(sender: 1, sequence: sequence, length: 16 + Int(sequence % 200))
                #expect(try box.trySend(message), "send \(sequence) found the mailbox full")
            }
            #expect(box.depth == count)
            #expect(chainedSegments(of: name) == Array(1...9), "segments: \(chainedSegments(of: name))")
            let receiver = try Mailbox.open(name)
            for sequence in 0..<UInt64(count) {
                let message = try #require(try receiver.tryReceive(), "message \(sequence) missing")
                try message.bytes.withUnsafeBytes { try TestMessages.verify($0, sender: 1, sequence: sequence, length: 16 + Int(sequence % 200)) }
            }
            #expect(try receiver.tryReceive() == nil)
            // Only the segment senders write to now is left besides the mailbox's own.
            #expect(chainedSegments(of: name) == [9])
            #expect(box.depth == 0)
        }
        #expect(try Mailbox.list().allSatisfy { !$0.contains("#") })
    }

    /// A sender that last wrote long ago, to a generation since drained and removed, lands its
    /// next message in the current generation, after everything sent before it.
    @Test func aStaleSenderCatchesUp() throws {
        try withMailbox("stale", MailboxOptions(capacity: .unbounded(segmentCapacity: 4), maxMessageSize: 64)) { name, box throws in
            let stale = try Mailbox.open(name)
            try stale.send("first")
            for index in 0..<30 { try box.send("bulk \(index)") }
            let receiver = try Mailbox.open(name)
            #expect(try receiver.receive(timeout: .seconds(1)).string == "first")
            for index in 0..<30 { #expect(try receiver.receive(timeout: .seconds(1)).string == "bulk \(index)") }
            #expect(chainedSegments(of: name).count == 1)
            try stale.send("late")
            try box.send("later")
            #expect(try receiver.receive(timeout: .seconds(1)).string == "late")
            #expect(try receiver.receive(timeout: .seconds(1)).string == "later")
            #expect(try receiver.tryReceive() == nil)
        }
    }

    /// A `readGeneration` hint left behind (as when a slow receiver's update lands after a faster
    /// receiver's) does not stop drained segments from being given back.
    @Test func aLaggingReadHintStillGivesSegmentsBack() throws {
        try withMailbox("lagging", MailboxOptions(capacity: .unbounded(segmentCapacity: 2), maxMessageSize: 64)) { name, box throws in
            for index in 0..<10 { try box.send("m\(index)") }
            #expect(chainedSegments(of: name) == [1, 2, 3, 4])
            let receiver = try Mailbox.open(name)
            for index in 0..<4 { #expect(try receiver.receive(timeout: .seconds(1)).string == "m\(index)") }
            scribble(on: name) { base, _ in base.storeBytes(of: UInt64(0), toByteOffset: SegmentLayout.readGenerationOffset, as: UInt64.self) }
            for index in 4..<10 { #expect(try receiver.receive(timeout: .seconds(1)).string == "m\(index)") }
            #expect(try receiver.tryReceive() == nil)
            #expect(chainedSegments(of: name) == [4])
        }
    }

    /// `Mailbox.delete` removes the further segments too, and `removeAbandoned` removes further
    /// segments whose mailbox is gone (left by a process killed mid-growth).
    @Test func deleteAndGCRemoveFurtherSegments() throws {
        let name = uniqueName("delete")
        let box = try Mailbox.create(name, options: MailboxOptions(capacity: .unbounded(segmentCapacity: 2), maxMessageSize: 64))
        for index in 0..<10 { try box.send("m\(index)") }
        #expect(chainedSegments(of: name).count == 4)
        try Mailbox.delete(name)
        #expect(chainedSegments(of: name).isEmpty)
        // An orphan: a further segment whose mailbox no longer exists.
        let orphan = try Mailbox.create(name, options: MailboxOptions(capacity: .unbounded(segmentCapacity: 2), maxMessageSize: 64))
        for index in 0..<6 { try orphan.send("m\(index)") }
        let further = chainedSegmentObjects(of: name)
        #expect(Set(further.map(\.generation)) == [1, 2])
        try SharedSegment.unlink(MailboxName(name))
        // The sweep covers the machine: a concurrent test's may remove them first (CI saw this
        // call's list come back without them), so each must be gone, by whichever sweep.
        let removed = try Mailbox.removeAbandoned()
        #expect(removed.allSatisfy { !$0.hasPrefix(name + "#") || SegmentChain.parse($0[...])?.nonce == orphan.nonce })
        for segment in further {
            #expect(try collectedByRemoveAbandoned(segment.object), "generation \(segment.generation) left behind")
        }
        #expect(chainedSegments(of: name).isEmpty)
    }

    /// A sweep (`shmbox gc`) that lists the mailboxes, then finds the further segments of a
    /// mailbox created and grown in between (or deleted and created again), must not take them
    /// for a gone mailbox's: it looks at that mailbox again. Failed before: the new mailbox's
    /// generations were unlinked and its messages in them lost.
    @Test func aSweepRacingANewMailboxLeavesItsSegments() throws {
        let name = uniqueName("late")
        let stale = uniqueName("again")
        let options = MailboxOptions(capacity: .unbounded(segmentCapacity: 2), maxMessageSize: 64)
        // `stale` exists at the listing, and is deleted and created again (a new nonce) after it.
        _ = try Mailbox.create(stale, options: options)
        defer {
            try? Mailbox.delete(name)
            try? Mailbox.delete(stale)
        }
        var boxes: [Mailbox] = []
        var failure: (any Error)?
        let removed = try Mailbox.removeAbandoned(afterListing: {
            do {
                let late = try Mailbox.create(name, options: options)
                for index in 0..<6 { try late.send("m\(index)") }
                try Mailbox.delete(stale)
                let again = try Mailbox.create(stale, options: options)
                for index in 0..<6 { try again.send("m\(index)") }
                boxes = [late, again]
            } catch {
                failure = error
            }
        })
        if let failure { throw failure }
        #expect(!removed.contains { $0.hasPrefix(name + "#") || $0.hasPrefix(stale + "#") }, "\(removed)")
        #expect(chainedSegments(of: name) == [1, 2])
        #expect(chainedSegments(of: stale) == [1, 2])
        for mailbox in [name, stale] {
            let receiver = try Mailbox.open(mailbox)
            for index in 0..<6 { #expect(try receiver.receive(timeout: .seconds(1)).string == "m\(index)") }
        }
        _ = boxes
    }

    /// A further segment whose header names another generation is reported, not trusted.
    @Test func aForgedGenerationIsCorruption() throws {
        try withMailbox("forged", MailboxOptions(capacity: .unbounded(segmentCapacity: 2), maxMessageSize: 64)) { name, box throws in
            for index in 0..<3 { try box.send("m\(index)") }
            scribble(on: try #require(chainedSegmentObject(of: name, generation: 1))) { base, _ in
                base.storeBytes(of: 7, toByteOffset: SegmentLayout.generationOffset, as: UInt64.self)
            }
            let receiver = try Mailbox.open(name)
            #expect(try receiver.receive(timeout: .seconds(1)).string == "m0")
            #expect(try receiver.receive(timeout: .seconds(1)).string == "m1")
            expectError({ $0.isCorrupted }) { try receiver.receive(timeout: .seconds(1)) }
        }
    }

    /// Garbage generation hints and seal positions neither crash nor hang a handle: calls return
    /// (messages may be stranded: the segment is damaged) and the mailbox can still be deleted.
    @Test func garbageChainFieldsNeitherCrashNorHang() throws {
        for (offset, value) in [(SegmentLayout.readGenerationOffset, UInt64.max), (SegmentLayout.writeGenerationOffset, UInt64.max - 1),
                                (SegmentLayout.sealedAtOffset, UInt64.max), (SegmentLayout.sealedAtOffset, 1)] {
            try withMailbox("garbage-chain", MailboxOptions(capacity: .unbounded(segmentCapacity: 2), maxMessageSize: 64)) { name, box throws in
                for index in 0..<3 { try box.send("m\(index)") }
                scribble(on: name) { base, _ in base.storeBytes(of: value, toByteOffset: offset, as: UInt64.self) }
                let (_, seconds) = try timed {
                    let other = try Mailbox.open(name)
                    _ = other.depth
                    for index in 0..<5 { _ = try? other.trySend("n\(index)") }
                    for _ in 0..<10 { _ = try? other.tryReceive() }
                    _ = box.depth
                }
                #expect(seconds < 5, "field at \(offset) = \(value): calls took \(seconds) s")
            }
        }
    }

    @Test func capacityValues() {
        #expect(MailboxOptions.Capacity.bounded(0) == .zero)
        #expect((5 as MailboxOptions.Capacity) == .bounded(5))
        #expect(MailboxOptions.Capacity.unbounded == .unbounded(segmentCapacity: 1024))
        #expect(MailboxOptions.Capacity.bounded(7).limit == 7 && MailboxOptions.Capacity.zero.limit == 0)
        #expect("\(MailboxOptions.Capacity.unbounded(segmentCapacity: 8))" == "unbounded (segments of 8)")
    }
}

extension MultiProcess {
    @Suite("Unbounded buffering between processes")
    struct Unbounded {
        /// A sending process writes 10 segments' worth with no receiver running (a blocking send
        /// would hang it); a receiving process started afterwards drains everything in order,
        /// checking every byte; the segments are given back.
        @Test func senderNeverBlocksAndReceiverDrainsInOrder() throws {
            let segment = 64
            let count = segment * 10
            try withMailbox("unbounded", MailboxOptions(capacity: .unbounded(segmentCapacity: segment), maxMessageSize: 1024)) { name, box throws in
                let sender = try Peer(["send", name, "3", String(count), "1", "1024"])
                #expect(sender.expectSuccess(timeout: .seconds(60)).contains("sent \(count)"))
                #expect(box.depth == count)
                #expect(chainedSegments(of: name).count == 9)
                let receiver = try Peer(["receive-sequence", name, "3", String(count), "1", "1024"])
                #expect(receiver.expectSuccess().contains("received \(count)"))
                #expect(box.depth == 0)
                #expect(chainedSegments(of: name).count == 1)
            }
        }

        /// Three senders and two competing receivers on a chain of 8-slot segments: segments are
        /// sealed and switched all the time while others write and read them. Every message
        /// arrives exactly once, intact, each sender's in order (checked by the receivers).
        @Test func manySendersAndReceiversAcrossSegmentSwitches() throws {
            try MultiProcess.Streams.manyToMany(senders: 3, receivers: 2, perSender: 10_000, capacity: .unbounded(segmentCapacity: 8))
        }

        /// A sender SIGKILLed while it grows the chain as fast as it can (mid-claim, mid-seal or
        /// mid-creation of a segment, wherever it happens to be): every message it got in arrives
        /// intact and in order, the chain shrinks back, and a new sender's messages follow.
        @Test func senderKilledWhileTheChainGrows() throws {
            let minSize = TestMessages.headerSize
            try withMailbox("kill-grow", MailboxOptions(capacity: .unbounded(segmentCapacity: 16), maxMessageSize: 256)) { name, box throws in
                let doomed = try Peer(["send", name, "1", "-1", String(minSize), "256"])
                let deadline = ContinuousClock.now + .seconds(20)
                while box.segmentCount < 40 && ContinuousClock.now < deadline { usleep(1_000) }
                doomed.kill9()
                #expect(doomed.finish(timeout: .seconds(10)).signaled)
                #expect(box.segmentCount >= 40)
                var next: [UInt32: UInt64] = [1: 0, 2: 0]
                func drain() throws {
                    while let sender = try box.tryReceive({ bytes, _ in
                        let (sender, sequence) = try TestMessages.verify(bytes)
                        #expect(sequence == next[sender], "sender \(sender): got \(sequence), expected \(next[sender] ?? 0)")
                        next[sender] = sequence + 1
                        return sender
                    }) { _ = sender }
                }
                // A claim the dead sender never committed is skipped once seen stuck (2 ms).
                let settle = ContinuousClock.now + .seconds(2)
                while ContinuousClock.now < settle { try drain(); usleep(10_000) }
                #expect(next[1]! >= 16 * 39, "only \(next[1]!) messages of the killed sender arrived")
                #expect(box.depth == 0)
                #expect(box.segmentCount <= 2)
                // A segment the killed sender was building, if any, is left under a temporary
                // name that never became part of the chain; gc removes it.
                _ = try Mailbox.removeAbandoned()
                #expect(SegmentChain.segmentNames(of: name, nonce: nil, temporaries: true) == SegmentChain.segmentNames(of: name, nonce: nil))
                let second = try Peer(["send", name, "2", "500", String(minSize), "256"])
                second.expectSuccess()
                try drain()
                #expect(next[2] == 500)
            }
        }

        /// A synchronous send on an unbounded mailbox names the receiving process.
        @Test func synchronousSendAcrossSegments() throws {
            try withMailbox("sync-grow", MailboxOptions(capacity: .unbounded(segmentCapacity: 2), maxMessageSize: 64)) { name, box throws in
                for index in 0..<5 { try box.send("queued \(index)") }
                let receiver = try Peer(["sleep-then-receive", name, "100", "6"])
                let delivery = try #require(try box.send("last", timeout: .seconds(10), until: .received))
                #expect(delivery.receiver.pid == receiver.pid)
                #expect(receiver.expectSuccess() == (0..<5).map { "queued \($0)\n" }.joined() + "last\n")
            }
        }

        /// In a private 1 MiB /dev/shm (a mount namespace of its own), an unbounded mailbox grows
        /// until the tmpfs is full: the send that finds no room throws `outOfSharedMemory`, every
        /// message accepted before it is received intact and in order, and once drained the
        /// mailbox grows again.
        @Test(.enabled(if: privateShmAvailable, "needs a private mount namespace with a tmpfs over /dev/shm (root, unshare)"))
        func runningOutOfSharedMemoryLosesNothing() throws {
            let peer = buildDirectory + "/MailboxTestPeer"
            let script = "mount -t tmpfs -o size=1m tmpfs /dev/shm && exec \"$0\" exhaust exhaust-test 16 4096"
            let process = try Peer(["-m", "sh", "-c", script, peer], executablePath: "/usr/bin/unshare")
            let output = process.expectSuccess(timeout: .seconds(60))
            let words = output.split(whereSeparator: { $0 == " " || $0 == "\n" })
            // "sent N segments S depth D" then "drained N and 100 more"
            let sent = words.count > 1 ? Int(words[1]) ?? 0 : 0
            let segments = words.count > 3 ? Int(words[3]) ?? 0 : 0
            #expect(sent > 16 * 5, "only \(sent) messages fitted: \(output)")
            #expect(segments > 5)
            #expect(output.contains("depth \(sent)"))
            #expect(output.contains("drained \(sent) and 100 more"))
        }
    }
}
