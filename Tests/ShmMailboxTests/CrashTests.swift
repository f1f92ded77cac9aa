import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

extension MultiProcess {
    @Suite("Processes killed with SIGKILL")
    struct Crashes {
        /// A sender killed between claiming a slot and committing it: receivers skip the abandoned
        /// claim within a bounded time and every other message arrives.
        @Test func senderKilledBetweenClaimAndCommit() throws {
            try withMailbox("die-send", MailboxOptions(capacity: 8, maxMessageSize: 128, kind: .shared)) { name, box throws in
                try box.send("before")
                let doomed = try Peer(["die-in-send", name])
                let result = doomed.finish(timeout: .seconds(30))
                #expect(result.signaled && result.status == SIGKILL, "peer should have killed itself: \(result)")
                #expect(result.stdout.contains("claiming"))
                try box.send("after")
                #expect(try box.receive(timeout: .seconds(5)).string == "before")
                let (message, seconds) = try timed { try box.receive(timeout: .seconds(5)) }
                #expect(message.string == "after")
                #expect(seconds < 1, "skipping the dead claim took \(seconds) s")
                // The ring keeps working across many laps after the repair.
                for round in 0..<100 {
                    try box.send("round \(round)")
                    #expect(try box.receive(timeout: .seconds(5)).string == "round \(round)")
                }
            }
        }

        /// A receiver killed between taking a message and releasing its slot: the message is not
        /// lost. A receiver that finds the mailbox empty adopts it (after the dead receiver's
        /// slot stayed the same for a moment) and gets it marked as redelivered.
        @Test func receiverKilledBetweenTakeAndReleaseIsRedelivered() throws {
            try withMailbox("die-recv", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .shared)) { name, box throws in
                for index in 0..<4 { try box.send("m\(index)") }
                let doomed = try Peer(["die-in-receive", name])
                let result = doomed.finish(timeout: .seconds(30))
                #expect(result.signaled && result.status == SIGKILL, "peer should have killed itself: \(result)")
                for index in 1...3 {
                    let message = try box.receive(timeout: .seconds(5))
                    #expect(message.string == "m\(index)" && !message.isRedelivered)
                }
                let (message, seconds) = try timed { try box.receive(timeout: .seconds(5)) }
                #expect(message.string == "m0" && message.isRedelivered)
                #expect(seconds < 1, "redelivering the dead receiver's message took \(seconds) s")
                #expect(try box.tryReceive() == nil)
                for round in 0..<20 {
                    try box.send("round \(round)")
                    #expect(try box.receive(timeout: .seconds(5)).string == "round \(round)")
                }
            }
        }

        /// The same death, found by a sender a lap later: the slot the dead receiver holds stops
        /// the sender at the tail, and the sender turns the message into the newest one (marked
        /// redelivered) instead of dropping it.
        @Test func senderStoppedByADeadReceiversSlotRedeliversIt() throws {
            try withMailbox("die-recv-lap", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .shared)) { name, box throws in
                for index in 0..<4 { try box.send("m\(index)") }
                let doomed = try Peer(["die-in-receive", name])
                #expect(doomed.finish(timeout: .seconds(30)).signaled)
                #expect(try box.receive(timeout: .seconds(5)).string == "m1")
                let (_, seconds) = try timed { try box.send("m4", timeout: .seconds(5)) }
                #expect(seconds < 1, "getting past the dead receiver's slot took \(seconds) s")
                var received: [String] = []
                while let message = try box.tryReceive() {
                    received.append(message.string + (message.isRedelivered ? "*" : ""))
                }
                #expect(received == ["m2", "m3", "m0*", "m4"])
            }
        }

        /// What a creator killed while building a mailbox leaves: only its temporary object
        /// (`NAME~PID.X`, made here by hand for a helper process that has exited; a real kill -9
        /// mid-build is in `senderKilledWhileTheChainGrows`). The mailbox's name does not exist
        /// (so `create` can be retried at once), `list` does not show it, and `removeAbandoned`
        /// (`shmbox gc`) removes it once PID is gone.
        @Test func creatorKilledWhileBuildingLeavesNothingBehind() throws {
            try withName("half-built") { name in
                let gone = try Peer(["sleep-then-receive", "no-such-mailbox-\(name)", "0", "0"])
                gone.finish()
                let temporary = "/shmmb.\(name)~\(gone.pid).1"
                let fd = shm_open(temporary, O_RDWR | O_CREAT | O_EXCL, 0o600)
                #expect(fd >= 0)
                ftruncate(fd, 4096)
                close(fd)
                expectError(.notFound(name)) { try Mailbox.open(name) }
                #expect(try !Mailbox.list().contains { $0.hasPrefix(name) })
                let box = try Mailbox.create(name)
                try box.send("fine")
                #expect(try box.receive().string == "fine")
                #expect(try collectedByRemoveAbandoned("\(name)~\(gone.pid).1"))
                #expect(shm_open(temporary, O_RDWR, 0) < 0 && errno == ENOENT)
            }
        }

        /// A sender SIGKILLed at an arbitrary point mid-stream leaves the mailbox usable: its
        /// messages so far arrive intact and in order, and a new sender's messages follow.
        @Test(arguments: MailboxOptions.RingKind.allCases)
        func senderKilledMidStream(kind: MailboxOptions.RingKind) throws {
            let minSize = TestMessages.headerSize
            try withMailbox("kill-stream-\(kind)", MailboxOptions(capacity: 64, maxMessageSize: 256, kind: kind)) { name, box throws in
                let first = try Peer(["send", name, "1", "-1", String(minSize), "256"])
                var next: [UInt32: UInt64] = [1: 0, 2: 0]
                func receiveOne() throws -> UInt32 {
                    try box.receive(timeout: .seconds(30)) { bytes, _ in
                        let (sender, sequence) = try TestMessages.verify(bytes)
                        #expect(sequence == next[sender], "sender \(sender): got \(sequence), expected \(next[sender] ?? 0)")
                        next[sender] = sequence + 1
                        return sender
                    }
                }
                for _ in 0..<2_000 { _ = try receiveOne() }
                first.kill9()
                let result = first.finish(timeout: .seconds(10))
                #expect(result.signaled)
                // A second sender takes over (on a one-to-one mailbox: takes over the dead role).
                let second = try Peer(["send", name, "2", "500", String(minSize), "256"])
                while next[2]! < 500 { _ = try receiveOne() }
                second.expectSuccess()
                #expect(try box.tryReceive() == nil)
                #expect(next[1]! >= 2_000)
            }
        }
    }
}
