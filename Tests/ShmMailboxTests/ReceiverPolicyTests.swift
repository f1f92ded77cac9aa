import Foundation
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
