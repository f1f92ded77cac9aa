import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

/// All tests that spawn processes run one at a time: the machine has two CPUs, and parallel
/// multi-process tests would mostly measure the scheduler.
@Suite(.serialized)
struct MultiProcess {}

extension MultiProcess {
    @Suite("Streams between processes")
    struct Streams {
        /// 200,000 messages of random sizes 1 B...maxMessageSize from a helper process; the test
        /// process regenerates each expected message (length and every byte) and compares.
        @Test(arguments: MailboxOptions.RingKind.allCases)
        func oneSenderOneReceiver(kind: MailboxOptions.RingKind) throws {
            let maxSize = 1024
            let count = 200_000
            try withMailbox("stream-\(kind)", MailboxOptions(capacity: 256, maxMessageSize: maxSize, kind: kind)) { name, box throws in
                let sender = try Peer(["send", name, "7", String(count), "1", String(maxSize)])
                var checked = 0
                var bytesChecked = 0
                for sequence in 0..<UInt64(count) {
                    let length = TestMessages.length(sender: 7, sequence: sequence, minSize: 1, maxSize: maxSize)
                    try box.receive(timeout: .seconds(60)) { bytes, from in
                        #expect(from.pid == sender.pid)
                        try TestMessages.verify(bytes, sender: 7, sequence: sequence, length: length)
                        bytesChecked += bytes.byteCount
                    }
                    checked += 1
                }
                #expect(sender.expectSuccess().contains("sent \(count)"))
                #expect(checked == count)
                #expect(bytesChecked > count * 100)
                #expect(box.depth == 0)
                #expect(try box.tryReceive() == nil)
            }
        }

        /// Four sending processes, two receiving processes on one shared mailbox: every message
        /// arrives exactly once, intact, and each sender's messages arrive in order.
        @Test func fourSendersTwoReceivers() throws {
            try Self.manyToMany(senders: 4, receivers: 2, perSender: 20_000, capacity: 128)
        }

        /// Six processes on two CPUs around a 4-slot ring: processes are preempted mid-operation
        /// all the time and the ring laps while they sleep, which exercises the stale-position paths.
        @Test func oversubscribedTinyRing() throws {
            try Self.manyToMany(senders: 3, receivers: 3, perSender: 10_000, capacity: 4)
        }

        /// `senderCount` processes send `perSender` messages each to `receiverCount` processes;
        /// checks that every message arrived once, intact and in its sender's order.
        static func manyToMany(senders senderCount: Int, receivers receiverCount: Int, perSender: Int, capacity: MailboxOptions.Capacity) throws {
            let senders = (1...senderCount).map { UInt32($0) }
            try withMailbox("fanin", MailboxOptions(capacity: capacity, maxMessageSize: 512, kind: .shared)) { name, box throws in
                let directory = FileManager.default.temporaryDirectory.path
                let outputs = (0..<receiverCount).map { "\(directory)/\(name)-receiver\($0).txt" }
                defer { for path in outputs { try? FileManager.default.removeItem(atPath: path) } }
                let receivers = try outputs.map { try Peer(["receive", name, "-1", $0]) }
                let sending = try senders.map {
                    try Peer(["send", name, String($0), String(perSender), String(TestMessages.headerSize), "512"])
                }
                for peer in sending { peer.expectSuccess() }
                // One stop message per receiver: each stops after taking exactly one.
                let stop = TestMessages.make(sender: TestMessages.stopSender, sequence: 0, length: TestMessages.headerSize)
                for _ in receivers { try box.send(stop) }
                var seen: [UInt32: [UInt64: Int]] = [:]
                var perReceiver: [Int] = []
                for (index, peer) in receivers.enumerated() {
                    #expect(peer.expectSuccess().hasPrefix("received"))
                    let lines = try String(contentsOfFile: outputs[index], encoding: .utf8).split(separator: "\n")
                    perReceiver.append(lines.count)
                    for line in lines {
                        let parts = line.split(separator: " ")
                        let sender = UInt32(parts[0])!, sequence = UInt64(parts[1])!
                        seen[sender, default: [:]][sequence, default: 0] += 1
                    }
                }
                #expect(perReceiver.reduce(0, +) == perSender * senders.count)
                for sender in senders {
                    let counts = seen[sender] ?? [:]
                    #expect(counts.count == perSender, "sender \(sender): \(counts.count) distinct messages")
                    #expect(counts.values.allSatisfy { $0 == 1 }, "sender \(sender): duplicates")
                    #expect(Set(counts.keys) == Set(0..<UInt64(perSender)), "sender \(sender): missing messages")
                }
                #expect(box.depth == 0)
            }
        }

        /// Batched sends from another process (batches larger than the mailbox, so a batch must
        /// publish part of itself to make progress) received with `receiveBatch`: every message
        /// arrives once, in order, intact.
        /// The second case streams batches many times larger than the whole ring while the
        /// receiver keeps up, so a batch's unpublished tail could fall far behind the head.
        @Test(arguments: MailboxOptions.RingKind.allCases, [(16, 256, 50_000), (2, 4096, 20_000)])
        func batchedSendAndReceive(kind: MailboxOptions.RingKind, shape: (capacity: Int, maxSize: Int, count: Int)) throws {
            let count = shape.count
            let options = MailboxOptions(capacity: .bounded(shape.capacity), maxMessageSize: shape.maxSize, kind: kind)
            try withMailbox("batch-\(kind)", options) { name, box throws in
                let sender = try Peer(["send", name, "9", String(count), "1", String(shape.maxSize), "100"])
                var next: UInt64 = 0
                var largestBatch = 0
                while next < UInt64(count) {
                    let taken = try box.receiveBatch(limit: 10, timeout: .seconds(60)) { bytes, from in
                        let length = TestMessages.length(sender: 9, sequence: next, minSize: 1, maxSize: shape.maxSize)
                        try TestMessages.verify(bytes, sender: 9, sequence: next, length: length)
                        #expect(from.pid == sender.pid)
                        next += 1
                    }
                    #expect(taken >= 1 && taken <= 10)
                    largestBatch = max(largestBatch, taken)
                }
                #expect(sender.expectSuccess().contains("sent \(count)"))
                #expect(next == UInt64(count))
                #expect(try box.tryReceiveBatch { _, _ in Issue.record("nothing should be left") } == 0)
            }
        }

        /// Many messages through a small one-to-one ring force the wrap-around padding path on
        /// every lap; sizes vary so records land at every offset.
        @Test func wrapAroundInOneProcess() throws {
            try withMailbox("wrap", MailboxOptions(capacity: 4, maxMessageSize: 300, kind: .oneToOne)) { _, box throws in
                for sequence in 0..<UInt64(5_000) {
                    let length = TestMessages.length(sender: 3, sequence: sequence, minSize: 0, maxSize: 300)
                    try box.send(TestMessages.make(sender: 3, sequence: sequence, length: length))
                    let message = try #require(try box.tryReceive())
                    try message.bytes.withUnsafeBytes {
                        try TestMessages.verify($0, sender: 3, sequence: sequence, length: length)
                    }
                }
            }
        }
    }
}
