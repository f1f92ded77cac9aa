import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

extension MultiProcess {
    @Suite("Synchronous send, receipts and zero capacity")
    struct SynchronousSend {
        /// Zero capacity: a plain `send` returns only after another process took the message.
        @Test func zeroCapacityIsARendezvous() throws {
            try withMailbox("rendezvous", MailboxOptions(capacity: 0, maxMessageSize: 64)) { name, box throws in
                #expect(box.capacity == 0)
                let receiver = try Peer(["sleep-then-receive", name, "300", "1"])
                let (_, seconds) = try timed { try box.send("hello") }
                #expect(seconds >= 0.25, "send returned after \(seconds) s, before the receiver took the message")
                #expect(receiver.expectSuccess() == "hello\n")
                #expect(box.depth == 0)
                // Nobody receiving: a non-blocking send refuses, a timed one times out; nothing waits.
                #expect(try box.trySend("nobody") == false)
                expectError(.timedOut) { try box.send("still nobody", timeout: .milliseconds(100)) }
                // The message taken back stays as a cancelled slot until a receiver passes it.
                #expect(try Mailbox.open(name).tryReceive() == nil)
                #expect(box.depth == 0)
            }
        }

        /// `until: .received` names the receiving process, for both ring kinds.
        @Test(arguments: MailboxOptions.RingKind.allCases)
        func receiptNamesTheReceiver(kind: MailboxOptions.RingKind) throws {
            try withMailbox("receipt-\(kind)", MailboxOptions(capacity: 8, maxMessageSize: 64, kind: kind)) { name, box throws in
                let receiver = try Peer(["sleep-then-receive", name, "200", "1"])
                let (delivery, seconds) = try timed { try box.send("signed for", until: .received) }
                #expect(delivery?.receiver.pid == receiver.pid)
                #expect(seconds >= 0.15)
                #expect(receiver.expectSuccess() == "signed for\n")
                #expect(try box.send("queued", until: .queued) == nil)
            }
        }

        /// With three competing receivers, every receipt names the process that really got the
        /// message: the receipts per receiver match what each receiver wrote down.
        @Test func receiptsWithCompetingReceivers() throws {
            try withMailbox("receipts", MailboxOptions(capacity: 4, maxMessageSize: 64)) { name, box throws in
                let directory = FileManager.default.temporaryDirectory.path
                let outputs = (0..<3).map { "\(directory)/\(name)-\($0).txt" }
                defer { for path in outputs { try? FileManager.default.removeItem(atPath: path) } }
                let receivers = try outputs.map { try Peer(["receive", name, "-1", $0]) }
                var receipts: [Int32: Int] = [:]
                for sequence in 0..<60 {
                    let delivery = try box.send(TestMessages.make(sender: 1, sequence: UInt64(sequence), length: 32),
                                                timeout: .seconds(30), until: .received)
                    receipts[try #require(delivery).receiver.pid, default: 0] += 1
                }
                let stop = TestMessages.make(sender: TestMessages.stopSender, sequence: 0, length: TestMessages.headerSize)
                for _ in receivers { try box.send(stop) }
                var written: [Int32: Int] = [:]
                for (index, receiver) in receivers.enumerated() {
                    receiver.expectSuccess()
                    let lines = try String(contentsOfFile: outputs[index], encoding: .utf8).split(separator: "\n")
                    written[receiver.pid] = lines.count
                }
                #expect(receipts.values.reduce(0, +) == 60)
                for (pid, count) in receipts { #expect(written[pid] == count, "receiver \(pid): \(count) receipts, \(written[pid] ?? 0) written down") }
                #expect(Set(receipts.keys).isSubset(of: Set(receivers.map(\.pid))))
            }
        }

        /// A receiver that dies while reading a message a synchronous sender waits on: the send
        /// fails with `receiverDied` within a bounded time and the mailbox keeps working.
        @Test func receiverDyingWhileReadingFailsTheSyncSend() throws {
            try withMailbox("receipt-death", MailboxOptions(capacity: 4, maxMessageSize: 64)) { name, box throws in
                let doomed = try Peer(["die-in-receive", name])
                let (_, seconds) = timed {
                    expectError({ if case .receiverDied(let pid) = $0 { pid == doomed.pid } else { false } }) {
                        try box.send("fatal", timeout: .seconds(20), until: .received)
                    }
                }
                #expect(seconds < 5)
                #expect(doomed.finish().signaled)
                for index in 0..<10 {
                    try box.send("after \(index)", timeout: .seconds(5))
                    #expect(try box.receive(timeout: .seconds(5)).string == "after \(index)")
                }
            }
        }

        /// `shmbox send --wait-received` waits for a receiver and names it.
        @Test func shmboxSendWaitsForTheReceiver() throws {
            try withMailbox("cli-sync", MailboxOptions(capacity: 2, maxMessageSize: 64)) { name, box throws in
                let sender = try Peer(["send", name, "hand it over", "--wait-received"], executable: "shmbox")
                usleep(200_000)
                #expect(sender.process.isRunning, "shmbox send --wait-received must wait for a receiver")
                #expect(try box.receive(timeout: .seconds(10)).string == "hand it over")
                #expect(sender.expectSuccess() == "delivered to \(getpid())\n")
            }
        }

        /// A synchronous sender in another process waits for this process's receive.
        @Test func remoteSynchronousSender() throws {
            try withMailbox("remote-sync", MailboxOptions(capacity: 2, maxMessageSize: 64)) { name, box throws in
                let sender = try Peer(["send-sync", name, "waiting for you"])
                usleep(200_000)
                #expect(sender.process.isRunning, "the synchronous sender must wait for a receiver")
                #expect(try box.receive(timeout: .seconds(10)).string == "waiting for you")
                #expect(sender.expectSuccess() == "delivered to \(getpid())\n")
            }
        }
    }
}
