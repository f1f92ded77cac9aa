import Foundation
import PeerProcess
import Testing
@testable import ShmMailbox

extension MultiProcess {
    @Suite("Blocking, timed and non-blocking calls")
    struct Waiting {
        static let strategies: [WaitStrategy] = [.block, .spin, .default]

        /// A receiver blocked on an empty mailbox wakes when another process sends.
        @Test(arguments: strategies)
        func blockedReceiverWakesOnSend(strategy: WaitStrategy) throws {
            try withMailbox("wake-recv", MailboxOptions(capacity: 4, maxMessageSize: 64, waitStrategy: strategy)) { name, box throws in
                let peer = try Peer(["sleep-then-send", name, "300", "wake up"])
                let (message, seconds) = try timed { try box.receive(timeout: .seconds(20)) }
                #expect(message.string == "wake up")
                #expect(message.sender.pid == peer.pid)
                #expect(seconds >= 0.2, "returned after \(seconds) s, before the peer sent")
                #expect(seconds < 15)
                peer.expectSuccess()
            }
        }

        /// A sender blocked on a full mailbox wakes when another process frees space.
        @Test(arguments: strategies)
        func blockedSenderWakesWhenSpaceFrees(strategy: WaitStrategy) throws {
            try withMailbox("wake-send", MailboxOptions(capacity: 1, maxMessageSize: 64, waitStrategy: strategy)) { name, box throws in
                try box.send("first")
                #expect(try box.trySend("refused") == false)
                let peer = try Peer(["sleep-then-receive", name, "300", "2"])
                let (_, seconds) = try timed { try box.send("second", timeout: .seconds(20)) }
                #expect(seconds >= 0.2, "send returned after \(seconds) s, before the peer made room")
                #expect(peer.expectSuccess() == "first\nsecond\n")
            }
        }

        /// Timed calls give up with `timedOut` after about their timeout, in every strategy.
        @Test(arguments: strategies)
        func timeoutsFire(strategy: WaitStrategy) throws {
            try withMailbox("timeout", MailboxOptions(capacity: 1, maxMessageSize: 16, waitStrategy: strategy)) { _, box throws in
                let (_, receiveSeconds) = timed { expectError(.timedOut) { try box.receive(timeout: .milliseconds(150)) } }
                #expect(receiveSeconds >= 0.14 && receiveSeconds < 5)
                try box.send("x")
                let (_, sendSeconds) = timed { expectError(.timedOut) { try box.send("y", timeout: .milliseconds(150)) } }
                #expect(sendSeconds >= 0.14 && sendSeconds < 5)
                // Nothing accepted was lost by the failed send.
                #expect(try box.receive(timeout: .zero).string == "x")
            }
        }

        /// Non-blocking calls return at once and leave the mailbox as it was.
        @Test(arguments: MailboxOptions.RingKind.allCases)
        func nonBlockingCallsReturnAtOnce(kind: MailboxOptions.RingKind) throws {
            try withMailbox("nonblocking", MailboxOptions(capacity: 2, maxMessageSize: 16, kind: kind)) { _, box throws in
                let (empty, emptySeconds) = try timed { try box.tryReceive() }
                #expect(empty == nil)
                #expect(emptySeconds < 0.05)
                #expect(try box.trySend("a"))
                #expect(try box.trySend("b"))
                let (accepted, fullSeconds) = try timed { try box.trySend("c") }
                #expect(accepted == false)
                #expect(fullSeconds < 0.05)
                #expect(try box.trySend(count: 4) { _ in Issue.record("fill must not run when full") } == false)
                #expect(box.depth == 2)
                #expect(try box.tryReceive()?.string == "a")
                #expect(try box.tryReceive()?.string == "b")
                #expect(try box.tryReceive() == nil)
            }
        }
    }
}
