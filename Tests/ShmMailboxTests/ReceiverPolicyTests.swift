import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

extension MultiProcess {
    @Suite("Receiver policies")
    struct ReceiverPolicies {
        /// `.pair` on a shared ring: one sending and one receiving process; a third process is
        /// refused in either role, and nothing already sent is lost.
        @Test func pairRefusesAThirdProcess() throws {
            let options = MailboxOptions(capacity: 4, maxMessageSize: 64, receiverPolicy: .pair)
            try withMailbox("pair", options) { name, box throws in
                #expect(box.receiverPolicy == .pair)
                try box.send("mine")
                let secondSender = try Peer(["send", name, "5", "1", "1", "8"]).finish()
                #expect(secondSender.status == 1 && secondSender.stderr.contains("already has a sender"), "\(secondSender.stderr)")
                let receiver = try Peer(["receive-one", name]).finish()
                #expect(receiver.status == 0 && receiver.stdout == "mine\n")
                try box.send("for the receiver only")
                // The receiver role now belongs to the dead helper's pid: it is taken over...
                #expect(try box.receive(timeout: .seconds(5)).string == "for the receiver only")
                // ...and while this process holds it, another receiver is refused.
                try box.send("kept")
                let third = try Peer(["receive-one", name]).finish()
                #expect(third.status == 8, "third process: \(third.stdout)")
                #expect(try box.receive().string == "kept")
            }
        }

        /// `.exclusive`: many senders, one receiving process at a time. A second receiver gets
        /// `receiverBusy`, or with `.wait` takes over once the holder closes its handle.
        @Test func exclusiveHasOneReceiverAtATime() throws {
            let options = MailboxOptions(capacity: 8, maxMessageSize: 64, receiverPolicy: .exclusive)
            try withMailbox("exclusive", options) { name, box throws in
                let senders = try (1...3).map { try Peer(["send", name, String($0), "2", "20", "64"]) }
                for sender in senders { sender.expectSuccess() }
                _ = try box.receive()                      // this process takes the turn
                let busy = try Peer(["receive-one", name]).finish()
                #expect(busy.status == 7, "second receiver: \(busy.stdout)")
                #expect(box.depth == 5, "the refused receiver took nothing")

                let waiting = try Peer(["receive-one", name, "wait"])
                usleep(300_000)
                #expect(waiting.process.isRunning, "the waiting receiver must still wait for the turn")
                box.close()                                // gives the turn up
                let result = waiting.finish(timeout: .seconds(20))
                #expect(result.status == 0 && !result.stdout.isEmpty, "waiting receiver: \(result)")
            }
        }

        /// The turn of an `.exclusive` receiver that died is taken over.
        @Test func exclusiveTurnOfADeadReceiverIsTakenOver() throws {
            let options = MailboxOptions(capacity: 4, maxMessageSize: 64, receiverPolicy: .exclusive)
            try withMailbox("exclusive-dead", options) { name, box throws in
                try box.send("first")
                let holder = try Peer(["die-in-receive", name])
                #expect(holder.finish().signaled)
                try box.send("second")
                #expect(try box.receive(timeout: .seconds(5)).string == "second")
            }
        }

        @Test func oneToOneIsAlwaysAPair() {
            withName("o2o-policy") { name in
                expectError({ $0.isInvalidOptions }) {
                    try Mailbox.create(name, options: MailboxOptions(kind: .oneToOne, receiverPolicy: .competing))
                }
            }
        }
    }
}

extension MultiProcess.ReceiverPolicies {
    /// Reads what a `receive` helper wrote down: the sequence numbers it got from sender 1.
    static func sequences(in path: String) throws -> [UInt64] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            return parts.count == 2 && parts[0] == "1" ? UInt64(parts[1]) : nil
        }
    }

    /// `.roundRobin`: three receiving processes take turns, so each gets every third message;
    /// after one of them is killed, the other two take turns.
    @Test func roundRobinTakesTurnsAndSkipsTheDead() throws {
        let options = MailboxOptions(capacity: 8, maxMessageSize: 64, receiverPolicy: .roundRobin)
        try withMailbox("round-robin", options) { name, box throws in
            let directory = FileManager.default.temporaryDirectory.path
            let outputs = (0..<3).map { "\(directory)/\(name)-\($0).txt" }
            defer { for path in outputs { try? FileManager.default.removeItem(atPath: path) } }
            var receivers = try outputs.map { try Peer(["receive", name, "-1", $0]) }
            usleep(400_000)   // all three register at their first receive
            for sequence in 0..<30 {
                try box.send(TestMessages.make(sender: 1, sequence: UInt64(sequence), length: 24), timeout: .seconds(20))
            }
            // Kill one receiver; the turn skips it from now on.
            let victim = receivers.remove(at: 1)
            usleep(200_000)
            victim.kill9()
            victim.finish()
            for sequence in 30..<50 {
                try box.send(TestMessages.make(sender: 1, sequence: UInt64(sequence), length: 24), timeout: .seconds(20))
            }
            let stop = TestMessages.make(sender: TestMessages.stopSender, sequence: 0, length: TestMessages.headerSize)
            for _ in receivers { try box.send(stop, timeout: .seconds(20)) }
            for receiver in receivers { receiver.expectSuccess() }
            let survivors = try [outputs[0], outputs[2]].map(Self.sequences(in:))
            for got in survivors {
                let first = got.filter { $0 < 30 }
                let later = got.filter { $0 >= 30 }
                #expect(first.count == 10, "before the kill each of three receivers gets every third message: \(first)")
                #expect(zip(first, first.dropFirst()).allSatisfy { $1 - $0 == 3 }, "turns of three: \(first)")
                #expect(later.count == 10, "after the kill each of the two gets every second message: \(later)")
                #expect(zip(later, later.dropFirst()).allSatisfy { $1 - $0 == 2 }, "turns of two: \(later)")
            }
            #expect(Set(survivors.joined()).count == survivors.joined().count, "no message twice")
        }
    }
}
