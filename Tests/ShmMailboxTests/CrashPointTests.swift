import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

/// One message as a receiver saw it.
struct Received: Equatable, CustomStringConvertible {
    let sender: UInt32
    let sequence: UInt64
    let redelivered: Bool
    var description: String { "\(sender):\(sequence)\(redelivered ? "*" : "")" }
}

/// Receives in this process until `finished` holds for what it received so far and nothing more
/// arrives for a while (or `limit` passes, which fails the test). Every message is verified byte
/// for byte.
func drain(_ box: Mailbox, limit: Duration = .seconds(60), until finished: ([Received]) -> Bool) throws -> [Received] {
    var received: [Received] = []
    var quiet = 0
    let deadline = ContinuousClock.now + limit
    while quiet < 3 {
        guard ContinuousClock.now < deadline else {
            Issue.record("still receiving after \(limit): \(received.count) so far")
            break
        }
        do {
            let message = try box.receive(timeout: .milliseconds(100)) { bytes, _, redelivered in
                let (sender, sequence) = try TestMessages.verify(bytes)
                return Received(sender: sender, sequence: sequence, redelivered: redelivered)
            }
            received.append(message)
            quiet = 0
        } catch MailboxError.timedOut {
            if finished(received) { quiet += 1 }
        }
    }
    return received
}

/// Receives in this process with `tryReceive` every 20 ms (a caller that polls now and then)
/// until `count` messages arrived or 300 polls found nothing. Every message is verified byte for
/// byte. Returns them with the number of polls that found nothing.
func pollSlowly(_ box: Mailbox, until count: Int) throws -> (received: [Received], emptyPolls: Int) {
    var received: [Received] = []
    var emptyPolls = 0
    while received.count < count && emptyPolls < 300 {
        let message = try box.tryReceive { bytes, _, redelivered in
            let (sender, sequence) = try TestMessages.verify(bytes)
            return Received(sender: sender, sequence: sequence, redelivered: redelivered)
        }
        if let message {
            received.append(message)
        } else {
            emptyPolls += 1
            usleep(20_000)
        }
    }
    return (received, emptyPolls)
}

/// The "done Q" lines of a `walk-send` peer: how many sends returned.
func completedSends(_ output: String) -> Int {
    output.split(separator: "\n").filter { $0.hasPrefix("done ") }.count
}

/// The "got S Q R" lines of a `walk-receive` peer.
func peerReceived(_ output: String) -> [Received] {
    output.split(separator: "\n").compactMap { line in
        let words = line.split(separator: " ")
        guard words.count == 4, words[0] == "got", let sender = UInt32(words[1]), let sequence = UInt64(words[2]) else { return nil }
        return Received(sender: sender, sequence: sequence, redelivered: words[3] == "1")
    }
}

extension MultiProcess {
    /// The crash-point walk: a helper process kills itself (SIGKILL) exactly at a named place
    /// between two stores of a protocol (see `CrashPoint`), and the survivors must lose nothing
    /// that was sent, deliver a message twice only marked as redelivered, keep each sender's
    /// order, and go on working.
    @Suite("Crash-point walk")
    struct CrashPointWalk {
        static let minSize = TestMessages.headerSize
        static let maxSize = 200

        /// Where a sender dies, and whether the message it was sending had become visible.
        struct SenderCase: CustomStringConvertible, Sendable {
            let kind: MailboxOptions.RingKind
            let capacity: MailboxOptions.Capacity
            let point: CrashPoint
            let hit: Int
            let batch: Int
            /// Whether the message in flight when the sender died is received. (Batch 0 sends
            /// outside `Mailbox.batch`; in a batch the tail is published when the batch ends,
            /// after its sends returned.)
            let visible: Bool
            var description: String { "\(kind) \(capacity) \(point.rawValue):\(hit) batch \(batch)" }
        }

        static let senderCases: [SenderCase] = [
            SenderCase(kind: .oneToOne, capacity: 8, point: .oneToOneAfterPadding, hit: 2, batch: 1, visible: false),
            SenderCase(kind: .oneToOne, capacity: 8, point: .oneToOneAfterPadding, hit: 2, batch: 8, visible: false),
            SenderCase(kind: .oneToOne, capacity: 8, point: .oneToOneAfterPayload, hit: 37, batch: 1, visible: false),
            SenderCase(kind: .oneToOne, capacity: 8, point: .oneToOneAfterStamp, hit: 37, batch: 1, visible: true),
            SenderCase(kind: .oneToOne, capacity: 8, point: .oneToOneAfterStamp, hit: 37, batch: 8, visible: true),
            SenderCase(kind: .oneToOne, capacity: 8, point: .oneToOneAfterPublish, hit: 37, batch: 0, visible: true),
            SenderCase(kind: .oneToOne, capacity: 8, point: .oneToOneAfterPublish, hit: 37, batch: 1, visible: false),
            SenderCase(kind: .oneToOne, capacity: 8, point: .oneToOneAfterPublish, hit: 5, batch: 8, visible: false),
            SenderCase(kind: .oneToOne, capacity: 8, point: .leaseAfterAcquire, hit: 1, batch: 1, visible: false),
            SenderCase(kind: .shared, capacity: 8, point: .sharedAfterTailClaim, hit: 37, batch: 1, visible: false),
            SenderCase(kind: .shared, capacity: 8, point: .sharedAfterClaim, hit: 37, batch: 1, visible: false),
            SenderCase(kind: .shared, capacity: 8, point: .sharedAfterPayload, hit: 37, batch: 1, visible: false),
            SenderCase(kind: .shared, capacity: 8, point: .sharedAfterCommit, hit: 37, batch: 0, visible: true),
            SenderCase(kind: .shared, capacity: 8, point: .sharedAfterCommit, hit: 37, batch: 8, visible: true),
            SenderCase(kind: .shared, capacity: 8, point: .leaseAfterAcquire, hit: 1, batch: 1, visible: false),
            SenderCase(kind: .shared, capacity: .unbounded(segmentCapacity: 4), point: .sharedAfterTailClaim, hit: 37, batch: 1, visible: false),
            SenderCase(kind: .shared, capacity: .unbounded(segmentCapacity: 4), point: .sharedAfterClaim, hit: 37, batch: 1, visible: false),
            SenderCase(kind: .shared, capacity: .unbounded(segmentCapacity: 4), point: .sharedAfterCommit, hit: 37, batch: 1, visible: true),
            SenderCase(kind: .shared, capacity: .unbounded(segmentCapacity: 4), point: .chainAfterSeal, hit: 5, batch: 1, visible: false),
            SenderCase(kind: .shared, capacity: .unbounded(segmentCapacity: 4), point: .chainAfterBuild, hit: 5, batch: 1, visible: false),
            SenderCase(kind: .shared, capacity: .unbounded(segmentCapacity: 4), point: .chainAfterLink, hit: 5, batch: 1, visible: false),
        ]

        /// A sender killed at each point: its messages up to the one in flight arrive once, in
        /// order; the one in flight arrives exactly when it had become visible; a new sender's
        /// messages follow; nothing is left behind.
        @Test(arguments: senderCases)
        func senderKilled(_ walk: SenderCase) throws {
            let options = MailboxOptions(capacity: walk.capacity, maxMessageSize: Self.maxSize, kind: walk.kind)
            try withMailbox("walk-send", options) { name, box throws in
                let doomed = try Peer(["walk-send", name, "2", "400", String(Self.minSize), String(Self.maxSize), String(walk.batch)],
                                      crashAt: "\(walk.point.rawValue):\(walk.hit)")
                if walk.capacity.kind == .unbounded {
                    // An unbounded sender never waits for room: let it run into its crash point
                    // before receiving, so that the segments it links do not depend on how fast
                    // a concurrent receiver empties them (a fast one left fewer than 5 links to
                    // die at, on a busy CI machine).
                    doomed.process.waitUntilExit()
                }
                let received = try drain(box) { _ in !doomed.process.isRunning }
                let result = doomed.finish()
                #expect(result.signaled && result.status == SIGKILL, "not killed at \(walk): \(result.stderr)")
                let completed = completedSends(result.stdout)
                #expect(received.allSatisfy { $0.sender == 2 && !$0.redelivered })
                #expect(received.map(\.sequence) == (0..<UInt64(received.count)).map { $0 }, "out of order or duplicated: \(received)")
                #expect(received.count == completed + (walk.visible ? 1 : 0), "\(completed) sends completed, \(received.count) received")

                let next = try Peer(["walk-send", name, "3", "60", String(Self.minSize), String(Self.maxSize), "1"])
                let more = try drain(box) { _ in !next.process.isRunning }
                next.expectSuccess()
                #expect(more == (0..<60).map { Received(sender: 3, sequence: $0, redelivered: false) })
                #expect(box.depth == 0)
                _ = try Mailbox.removeAbandoned()
                #expect(SegmentChain.segmentNames(of: name, nonce: nil, temporaries: true) == SegmentChain.segmentNames(of: name, nonce: nil))
            }
        }

        /// A receiver that only polls now and then (`tryReceive` every 20 ms) still repairs a dead
        /// sender's claim at the head within a few polls: a non-blocking call times the stuck slot
        /// on every call, not once per `stallPollStride` polls as a blocking call's spinning does.
        /// Killed after its claim store (`claimed` at head) or before it (`tail` moved, the slot
        /// still empty: found through `tail` and skipped once its claimer is known dead); the
        /// messages after it arrive either way.
        @Test(arguments: [CrashPoint.sharedAfterClaim, .sharedAfterTailClaim])
        func slowPollerRepairsDeadSendersClaim(_ point: CrashPoint) throws {
            let options = MailboxOptions(capacity: 8, maxMessageSize: Self.maxSize, kind: .shared)
            try withMailbox("walk-slowpoll", options) { name, box throws in
                let doomed = try Peer(["walk-send", name, "2", "400", String(Self.minSize), String(Self.maxSize), "1"],
                                      crashAt: "\(point.rawValue):3")
                let result = doomed.finish()
                #expect(result.signaled && result.status == SIGKILL, "not killed at its third claim: \(result.stderr)")
                let next = try Peer(["walk-send", name, "3", "5", String(Self.minSize), String(Self.maxSize), "1"])
                next.expectSuccess()
                let (received, emptyPolls) = try pollSlowly(box, until: 7)
                let expected = (0..<2).map { Received(sender: 2, sequence: $0, redelivered: false) }
                    + (0..<5).map { Received(sender: 3, sequence: $0, redelivered: false) }
                #expect(received == expected)
                // Two polls suffice (the first times the stall, the next, 20 ms later, repairs it);
                // the stride of a blocking call would have taken more than 64.
                #expect(emptyPolls <= 10, "\(emptyPolls) polls of 20 ms before the dead claim was repaired")
                #expect(box.depth == 0)
            }
        }

        /// The same for a message whose receiver died while taking or reading it: a receiver that
        /// polls only now and then adopts it within a few polls (the orphan search's poll stride is
        /// for the spinning of a blocking call). Killed after its take store (`taken` by it) or
        /// before it (`head` moved, the slot still full: the dead receiver never saw the message);
        /// either way the message arrives after the ones behind it, so marked redelivered
        /// (unmarked messages arrive in their sender's order).
        @Test(arguments: [CrashPoint.sharedAfterTake, .sharedAfterHeadTake])
        func slowPollerAdoptsDeadReceiversMessage(_ point: CrashPoint) throws {
            try withMailbox("walk-slowadopt", MailboxOptions(capacity: 8, maxMessageSize: 64, kind: .shared)) { name, box throws in
                for sequence in 0..<3 { try box.send(TestMessages.make(sender: 1, sequence: UInt64(sequence), length: 32)) }
                let doomed = try Peer(["walk-receive", name, "1", "1"], crashAt: "\(point.rawValue):1")
                let result = doomed.finish()
                #expect(result.signaled && result.status == SIGKILL, "not killed at its first take: \(result.stderr)")
                if point == .sharedAfterHeadTake {
                    #expect(peerReceived(result.stdout).isEmpty, "the dead receiver handled a message")
                }
                let (received, emptyPolls) = try pollSlowly(box, until: 3)
                #expect(received == [Received(sender: 1, sequence: 1, redelivered: false),
                                     Received(sender: 1, sequence: 2, redelivered: false),
                                     Received(sender: 1, sequence: 0, redelivered: true)])
                #expect(emptyPolls <= 10, "\(emptyPolls) polls of 20 ms before the dead receiver's message was adopted")
            }
        }

        /// Where a receiver dies.
        struct ReceiverCase: CustomStringConvertible, Sendable {
            let kind: MailboxOptions.RingKind
            let capacity: MailboxOptions.Capacity
            let point: CrashPoint
            let hit: Int
            let batch: Int
            var description: String { "\(kind) \(capacity) \(point.rawValue):\(hit) batch \(batch)" }
        }

        static let receiverCases: [ReceiverCase] = [
            ReceiverCase(kind: .oneToOne, capacity: 8, point: .oneToOneAfterIntent, hit: 37, batch: 1),
            ReceiverCase(kind: .oneToOne, capacity: 8, point: .oneToOneBeforeRelease, hit: 37, batch: 1),
            ReceiverCase(kind: .oneToOne, capacity: 8, point: .oneToOneBeforeRelease, hit: 37, batch: 6),
            ReceiverCase(kind: .oneToOne, capacity: 8, point: .leaseAfterAcquire, hit: 1, batch: 1),
            ReceiverCase(kind: .shared, capacity: 8, point: .sharedAfterIntent, hit: 37, batch: 1),
            ReceiverCase(kind: .shared, capacity: 8, point: .sharedAfterHeadTake, hit: 37, batch: 1),
            ReceiverCase(kind: .shared, capacity: 8, point: .sharedAfterTake, hit: 37, batch: 1),
            ReceiverCase(kind: .shared, capacity: 8, point: .sharedBeforeRelease, hit: 37, batch: 1),
            ReceiverCase(kind: .shared, capacity: 8, point: .sharedBeforeRelease, hit: 37, batch: 6),
            ReceiverCase(kind: .shared, capacity: 8, point: .leaseAfterAcquire, hit: 1, batch: 1),
            ReceiverCase(kind: .shared, capacity: .unbounded(segmentCapacity: 4), point: .sharedAfterHeadTake, hit: 37, batch: 1),
            ReceiverCase(kind: .shared, capacity: .unbounded(segmentCapacity: 4), point: .sharedAfterTake, hit: 37, batch: 1),
            ReceiverCase(kind: .shared, capacity: .unbounded(segmentCapacity: 4), point: .sharedBeforeRelease, hit: 37, batch: 1),
            ReceiverCase(kind: .shared, capacity: .unbounded(segmentCapacity: 4), point: .chainAfterRaiseRead, hit: 3, batch: 1),
        ]

        /// A receiver killed at each point: every message still arrives; one the dead receiver
        /// may have handled arrives again only marked redelivered; the rest arrive in order.
        @Test(arguments: receiverCases)
        func receiverKilled(_ walk: ReceiverCase) throws {
            let options = MailboxOptions(capacity: walk.capacity, maxMessageSize: Self.maxSize, kind: walk.kind)
            try withMailbox("walk-recv", options) { name, box throws in
                let count = 300
                let sender = try Peer(["walk-send", name, "2", String(count), String(Self.minSize), String(Self.maxSize), "1"])
                let doomed = try Peer(["walk-receive", name, String(count), String(walk.batch)], crashAt: "\(walk.point.rawValue):\(walk.hit)")
                let result = doomed.finish()
                #expect(result.signaled && result.status == SIGKILL, "not killed at \(walk): \(result.stderr)")
                let handled = peerReceived(result.stdout)
                let handledSet = Set(handled.map(\.sequence))
                let received = try drain(box) { received in
                    !sender.process.isRunning && handledSet.union(received.map(\.sequence)).count == count
                }
                sender.expectSuccess()
                #expect(handledSet.union(received.map(\.sequence)) == Set((0..<UInt64(count)).map { $0 }), "lost messages")
                #expect(Set(received.map(\.sequence)).count == received.count, "a message arrived twice here: \(received)")
                for message in received where handledSet.contains(message.sequence) {
                    #expect(message.redelivered, "message \(message.sequence) was handled by the dead receiver and arrived again unmarked")
                }
                #expect(received.filter(\.redelivered).count <= walk.batch, "more redelivered than the dead receiver held")
                let fresh = received.filter { !$0.redelivered }.map(\.sequence)
                #expect(fresh == fresh.sorted(), "out of order")
                #expect(handled.map(\.sequence) == handled.map(\.sequence).sorted())
                // The mailbox goes on working.
                for round in 0..<20 {
                    let message = TestMessages.make(sender: 4, sequence: UInt64(round), length: 64)
                    try box.send(message)
                    #expect(try box.receive(timeout: .seconds(5)).bytes == message)
                }
            }
        }

        /// A receiver that adopts a dead receiver's message (its repair) and dies itself while
        /// doing so: the message is adopted again, by this process, and arrives marked.
        @Test(arguments: [CrashPoint.repairAfterAdopt, .repairAfterRedeliverMark])
        func adopterKilled(_ point: CrashPoint) throws {
            // Room for every message, so that no sender comes round to the dead receiver's slot:
            // only receivers can repair it.
            try withMailbox("walk-adopt", MailboxOptions(capacity: 64, maxMessageSize: Self.maxSize, kind: .shared)) { name, box throws in
                let count = 40
                let sender = try Peer(["walk-send", name, "2", String(count), String(Self.minSize), String(Self.maxSize), "1"])
                sender.expectSuccess()
                let first = try Peer(["walk-receive", name, String(count), "1"], crashAt: "\(CrashPoint.sharedAfterTake.rawValue):5")
                let firstResult = first.finish()
                #expect(firstResult.signaled)
                let second = try Peer(["walk-receive", name, String(count), "1"], crashAt: "\(point.rawValue):1")
                let secondResult = second.finish()
                #expect(secondResult.signaled && secondResult.status == SIGKILL, "adopter not killed at \(point): \(secondResult.stderr)")
                let handled = Set((peerReceived(firstResult.stdout) + peerReceived(secondResult.stdout)).map(\.sequence))
                let received = try drain(box) { _ in true }
                #expect(handled.union(received.map(\.sequence)) == Set((0..<UInt64(count)).map { $0 }))
                let redelivered = received.filter(\.redelivered)
                #expect(redelivered.map(\.sequence) == [4], "the message taken by both dead receivers: \(received)")
                #expect(received.allSatisfy { $0.redelivered || !handled.contains($0.sequence) })
            }
        }

        /// A sender stopped at the tail by a dead receiver's slot moves that message on (its
        /// repair) and dies while doing so: the next sender repairs it again and nothing is lost.
        @Test(arguments: [CrashPoint.repairAfterAdopt, .repairAfterRedeliverMark])
        func relabellingSenderKilled(_ point: CrashPoint) throws {
            try withMailbox("walk-relabel", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .shared)) { name, box throws in
                for sequence in 0..<4 { try box.send(TestMessages.make(sender: 1, sequence: UInt64(sequence), length: 32)) }
                let receiver = try Peer(["walk-receive", name, "1", "1"], crashAt: "\(CrashPoint.sharedAfterTake.rawValue):1")
                #expect(receiver.finish().signaled)
                let freed = try box.receive(timeout: .seconds(5))
                #expect(freed.bytes == TestMessages.make(sender: 1, sequence: 1, length: 32))
                let relabeller = try Peer(["walk-send", name, "2", "1", "32", "32", "1"], crashAt: "\(point.rawValue):1")
                let result = relabeller.finish()
                #expect(result.signaled && result.status == SIGKILL, "not killed at \(point): \(result.stderr)")
                try box.send(TestMessages.make(sender: 1, sequence: 4, length: 32), timeout: .seconds(5))
                let received = try drain(box) { _ in true }
                #expect(received.map(\.description) == ["1:2", "1:3", "1:0*", "1:4"])
            }
        }

        /// A process killed after claiming the removal of a mailbox's name, before removing it:
        /// the next remover takes the claim over and removes the name.
        @Test func removerKilledAfterClaiming() throws {
            try withName("walk-unlink") { name in
                let box = try Mailbox.create(name)
                let doomed = try Peer(["walk-delete", name], crashAt: "\(CrashPoint.unlinkAfterClaim.rawValue):1")
                let result = doomed.finish()
                #expect(result.signaled && result.status == SIGKILL)
                #expect(try Mailbox.list().contains(name), "the name went although its remover died first")
                expectError(.deleted(name)) { try box.tryReceive() }
                try Mailbox.delete(name)
                #expect(try !Mailbox.list().contains(name))
            }
        }

        /// A receiver of a synchronous send killed just before, and just after, marking it
        /// delivered: the waiting sender learns that the receiver died (the message is withdrawn),
        /// or gets its receipt, and the mailbox goes on working.
        @Test(arguments: [(CrashPoint.receiptBeforeDelivered, false), (.receiptAfterDelivered, true)])
        func receiptReceiverKilled(_ point: CrashPoint, delivered: Bool) throws {
            try withMailbox("walk-receipt", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .shared)) { name, box throws in
                let syncSender = try Peer(["walk-send-sync", name, "hello"])
                let receiver = try Peer(["walk-receive", name, "1", "1"], crashAt: "\(point.rawValue):1")
                let receiverResult = receiver.finish()
                #expect(receiverResult.signaled)
                let result = syncSender.finish()
                if delivered {
                    #expect(result.status == 0 && result.stdout.contains("delivered to \(receiver.pid)"), "\(result)")
                } else {
                    #expect(result.status == 13 && result.stdout.contains("died"), "\(result)")
                }
                #expect(try box.tryReceive() == nil)
                try box.send("after")
                #expect(try box.receive(timeout: .seconds(5)).string == "after")
            }
        }

        // MARK: Findings of the SPIN models (Models/README.md, "Findings"), kept as tests

        /// F1: a receiver killed after handing out a batch, then its successor killed while it
        /// hands the first of those out again: the third receiver gets both, both marked.
        @Test func receiverKilledTwiceKeepsTheMarks() throws {
            try withMailbox("f1", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .oneToOne)) { name, box throws in
                for sequence in 0..<2 { try box.send(TestMessages.make(sender: 1, sequence: UInt64(sequence), length: 32)) }
                let first = try Peer(["walk-receive", name, "2", "2"], crashAt: "\(CrashPoint.oneToOneBeforeRelease.rawValue):2")
                #expect(first.finish().signaled)
                let second = try Peer(["walk-receive", name, "1", "1"], crashAt: "\(CrashPoint.oneToOneAfterIntent.rawValue):1")
                #expect(second.finish().signaled)
                let received = try drain(box) { _ in true }
                #expect(received.map(\.description) == ["1:0*", "1:1*"])
            }
        }

        /// F2: senders killed one after the other between stamping a large record and
        /// publishing the tail leave the tail hint far behind the head: the receiver must not
        /// call that corruption.
        @Test func senderDeathsLeaveTheTailHintFarBehind() throws {
            try withMailbox("f2", MailboxOptions(capacity: 1, maxMessageSize: 2032, kind: .oneToOne)) { name, box throws in
                var received: [Received] = []
                for sender in 1...3 {
                    let doomed = try Peer(["walk-send", name, String(sender), "1", "2032", "2032", "0"],
                                          crashAt: "\(CrashPoint.oneToOneAfterStamp.rawValue):1")
                    #expect(doomed.finish().signaled)
                    received += try drain(box) { _ in true }
                }
                #expect(received.map(\.description) == ["1:0", "2:0", "3:0"])
                #expect(try box.tryReceive() == nil)
            }
        }

        /// F3: no death at all: two processes whose zero-copy fills throw, at the same time,
        /// give their slots back out of order; head must follow, and the mailbox keep working.
        @Test func concurrentGiveBacksDoNotStrandTheHead() throws {
            try withMailbox("f3", MailboxOptions(capacity: 2, maxMessageSize: 64, kind: .shared)) { name, box throws in
                let peers = try (0..<2).map { _ in try Peer(["fail-fills", name, "20000"]) }
                for peer in peers { #expect(peer.expectSuccess() == "refused 20000\n") }
                #expect(try box.tryReceive() == nil)
                for round in 0..<4 {
                    try box.send("round \(round)")
                    #expect(try box.receive(timeout: .seconds(1)).string == "round \(round)")
                }
            }
        }

        /// F5: a sender that moves a dead receiver's message on and dies after adopting it leaves
        /// it findable: a receiver gets it (marked) without waiting for another send.
        @Test func deadRelabellerLeavesItsMessageFindable() throws {
            try withMailbox("f5", MailboxOptions(capacity: 2, maxMessageSize: 64, kind: .shared)) { name, box throws in
                for sequence in 0..<2 { try box.send(TestMessages.make(sender: 1, sequence: UInt64(sequence), length: 32)) }
                let receiver = try Peer(["walk-receive", name, "1", "1"], crashAt: "\(CrashPoint.sharedAfterTake.rawValue):1")
                #expect(receiver.finish().signaled)
                #expect(try box.receive(timeout: .seconds(1)).bytes == TestMessages.make(sender: 1, sequence: 1, length: 32))
                let relabeller = try Peer(["walk-send", name, "2", "1", "32", "32", "0"], crashAt: "\(CrashPoint.repairAfterAdopt.rawValue):1")
                #expect(relabeller.finish().signaled)
                let (message, seconds) = try timed { try box.receive(timeout: .seconds(5)) }
                #expect(message.bytes == TestMessages.make(sender: 1, sequence: 0, length: 32) && message.isRedelivered)
                #expect(seconds < 1)
            }
        }
    }
}
