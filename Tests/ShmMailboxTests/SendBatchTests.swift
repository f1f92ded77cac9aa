import Foundation
import MailboxTestSupport
import PeerProcess
import Testing
@testable import ShmMailbox

/// `trySendBatch(messages:bytesEach:_:)`: as many messages as fit, filled in place, announced
/// together; bad input and a throwing `fill` lose nothing already sent.
@Suite("Batch sends")
struct SendBatchTests {
    struct FillFailed: Error, Equatable {
        let index: Int
    }

    /// Receives every waiting message and checks each against the sequence expected next.
    static func receiveAll(_ reader: Mailbox, sender: UInt32, from first: UInt64, length: Int) throws -> UInt64 {
        var next = first
        while try reader.tryReceive({ bytes, _ in
            try TestMessages.verify(bytes, sender: sender, sequence: next, length: length)
        }) != nil {
            next += 1
        }
        return next
    }

    /// Sends what fits (a bounded mailbox of 8 takes 8 of 20), reports 0 while full, and sends
    /// again once a receiver made room; every message arrives once, in order, byte for byte.
    @Test(arguments: MailboxOptions.RingKind.allCases)
    func sendsWhatFitsInOrder(kind: MailboxOptions.RingKind) throws {
        try withMailbox("send-batch", MailboxOptions(capacity: 8, maxMessageSize: 64, kind: kind)) { name, box throws in
            let reader = try Mailbox.open(name)
            var filled: [Int] = []
            let first = try box.trySendBatch(messages: 20, bytesEach: 40) { index, span in
                filled.append(index)
                TestMessages.fill(&span, sender: 3, sequence: UInt64(index))
            }
            #expect(first == 8)
            #expect(filled == Array(0..<8), "fill runs once per message sent, never for one that did not fit")
            #expect(try box.trySendBatch(messages: 5, bytesEach: 40) { _, _ in Issue.record("fill called on a full mailbox") } == 0)
            var next = UInt64(0)
            for _ in 0..<3 {
                try reader.receive { bytes, _ in try TestMessages.verify(bytes, sender: 3, sequence: next, length: 40) }
                next += 1
            }
            let second = try box.trySendBatch(messages: 12, bytesEach: 40) { index, span in
                TestMessages.fill(&span, sender: 3, sequence: 8 + UInt64(index))
            }
            #expect(second == 3)
            #expect(try Self.receiveAll(reader, sender: 3, from: next, length: 40) == 11)
            #expect(try box.trySendBatch(messages: 0, bytesEach: 40) { _, _ in Issue.record("fill called for no messages") } == 0)
        }
    }

    /// A `fill` that throws for message `index` leaves messages `0 ..< index` sent (and
    /// announced) and that one unsent; the error reaches the caller unchanged.
    @Test(arguments: MailboxOptions.RingKind.allCases)
    func throwingFillKeepsWhatWasSent(kind: MailboxOptions.RingKind) throws {
        try withMailbox("send-batch-throw", MailboxOptions(capacity: 16, maxMessageSize: 64, kind: kind)) { name, box throws in
            let reader = try Mailbox.open(name)
            #expect(throws: FillFailed(index: 3)) {
                _ = try box.trySendBatch(messages: 10, bytesEach: 24) { index, span in
                    if index == 3 { throw FillFailed(index: index) }
                    TestMessages.fill(&span, sender: 4, sequence: UInt64(index))
                }
            }
            #expect(try Self.receiveAll(reader, sender: 4, from: 0, length: 24) == 3)
            // The handle goes on as before.
            #expect(try box.trySendBatch(messages: 2, bytesEach: 24) { index, span in
                TestMessages.fill(&span, sender: 4, sequence: 3 + UInt64(index))
            } == 2)
            #expect(try Self.receiveAll(reader, sender: 4, from: 3, length: 24) == 5)
        }
    }

    /// A size the mailbox cannot take throws `messageTooLarge` before anything is sent.
    @Test(arguments: MailboxOptions.RingKind.allCases)
    func oversizedMessagesThrowFirst(kind: MailboxOptions.RingKind) throws {
        try withMailbox("send-batch-size", MailboxOptions(capacity: 4, maxMessageSize: 32, kind: kind)) { _, box throws in
            for size in [33, -1] {
                expectError(.messageTooLarge(size: size, limit: 32)) {
                    _ = try box.trySendBatch(messages: 2, bytesEach: size) { _, _ in Issue.record("fill called for size \(size)") }
                }
            }
            #expect(box.depth == 0)
        }
    }

    /// Inside `batch`, a batch send joins the batch: published when the batch ends.
    @Test(arguments: MailboxOptions.RingKind.allCases)
    func joinsAnEnclosingBatch(kind: MailboxOptions.RingKind) throws {
        try withMailbox("send-batch-nested", MailboxOptions(capacity: 8, maxMessageSize: 32, kind: kind)) { name, box throws in
            let reader = try Mailbox.open(name)
            try box.batch {
                try box.send(count: 16) { TestMessages.fill(&$0, sender: 5, sequence: 0) }
                #expect(try box.trySendBatch(messages: 2, bytesEach: 16) { index, span in
                    TestMessages.fill(&span, sender: 5, sequence: 1 + UInt64(index))
                } == 2)
            }
            #expect(try Self.receiveAll(reader, sender: 5, from: 0, length: 16) == 3)
        }
    }

    /// A batch send wakes a receiver asleep in the kernel: it bumps the message event's word
    /// (what a futex wake-up follows) before it returns, and the receiver gets the message.
    /// Five rounds, each with a receiver thread asleep for 60 ms before the send.
    @Test(arguments: MailboxOptions.RingKind.allCases)
    func wakesASleepingReceiver(kind: MailboxOptions.RingKind) throws {
        try withMailbox("send-batch-wake", MailboxOptions(capacity: 8, maxMessageSize: 32, kind: kind, waitStrategy: .block)) { name, box throws in
            let reader = try Mailbox.open(name)
            nonisolated(unsafe) let receiving = reader
            for round in 0..<5 {
                let received = DispatchSemaphore(value: 0)
                nonisolated(unsafe) var failure: (any Error)?
                Thread.detachNewThread {
                    do {
                        try receiving.receive(timeout: .seconds(10)) { bytes, _ in
                            try TestMessages.verify(bytes, sender: 8, sequence: UInt64(round), length: 16)
                        }
                    } catch {
                        failure = error
                    }
                    received.signal()
                }
                usleep(60_000)
                let before = box.messageEvent.word.pointee.load(ordering: .acquiring)
                #expect(try box.trySendBatch(messages: 1, bytesEach: 16) { _, span in
                    TestMessages.fill(&span, sender: 8, sequence: UInt64(round))
                } == 1)
                let after = box.messageEvent.word.pointee.load(ordering: .acquiring)
                #expect(after != before, "round \(round): the send did not wake the sleeping receiver")
                received.wait()
                if let failure { throw failure }
            }
        }
    }

    /// A zero-capacity mailbox takes a message only into the hands of a waiting receiver: with
    /// none waiting, a batch send sends nothing and leaves nothing behind.
    @Test func rendezvousWithoutAReceiverSendsNothing() throws {
        try withMailbox("send-batch-rendezvous", MailboxOptions(capacity: .zero, maxMessageSize: 32)) { name, box throws in
            let reader = try Mailbox.open(name)
            #expect(try box.trySendBatch(messages: 3, bytesEach: 8) { index, span in
                TestMessages.fill(&span, sender: 2, sequence: UInt64(index))
            } == 0)
            #expect(box.depth == 0)
            #expect(try reader.tryReceive() == nil)
        }
    }
}

@Suite("Endpoint batch sends")
struct EndpointSendBatchTests {
    /// To its own name (a link like any other): what fits is sent, in order, byte for byte and
    /// named as from this endpoint; a throwing `fill` keeps what came before it; bad sizes,
    /// unknown receivers and a closed endpoint throw before anything is sent.
    @Test func sendsWhatFitsAndKeepsWhatWasSent() throws {
        try withEndpointNames(["batch-self"]) { names in
            let endpoint = try Endpoint.join(names[0], options: Endpoint.Options(linkCapacity: 8, maxMessageSize: 64))
            #expect(try endpoint.trySendBatch(to: names[0], messages: 20, bytesEach: 40) { index, span in
                TestMessages.fill(&span, sender: 9, sequence: UInt64(index))
            } == 8)
            #expect(try endpoint.trySendBatch(to: names[0], messages: 5, bytesEach: 40) { _, _ in
                Issue.record("fill called on a full link")
            } == 0)
            var next = UInt64(0)
            var senders: Set<String> = []
            let taken = try endpoint.tryReceiveBatch { bytes, _, from in
                senders.insert(from)
                try TestMessages.verify(bytes, sender: 9, sequence: next, length: 40)
                next += 1
            }
            #expect(taken == 8)
            #expect(senders == [names[0]])
            #expect(throws: SendBatchTests.FillFailed(index: 2)) {
                _ = try endpoint.trySendBatch(to: names[0], messages: 5, bytesEach: 40) { index, span in
                    if index == 2 { throw SendBatchTests.FillFailed(index: index) }
                    TestMessages.fill(&span, sender: 9, sequence: 8 + UInt64(index))
                }
            }
            #expect(try endpoint.tryReceiveBatch { bytes, _, _ in
                try TestMessages.verify(bytes, sender: 9, sequence: next, length: 40)
                next += 1
            } == 2)
            expectError(.messageTooLarge(size: 65, limit: 64)) {
                _ = try endpoint.trySendBatch(to: names[0], messages: 1, bytesEach: 65) { _, _ in Issue.record("fill called for an oversized message") }
            }
            expectError(.noSuchEndpoint(names[0] + "-nobody")) {
                _ = try endpoint.trySendBatch(to: names[0] + "-nobody", messages: 1, bytesEach: 8) { _, _ in Issue.record("fill called for nobody") }
            }
            endpoint.close()
            expectError(.closed) {
                _ = try endpoint.trySendBatch(to: names[0], messages: 1, bytesEach: 8) { _, _ in Issue.record("fill called when closed") }
            }
        }
    }
}

extension EndpointSendBatchTests {
    /// A batch send rings the receiver's doorbell while it sleeps in a receive from anyone: the
    /// doorbell's word moves before the call returns (also when all of it fit, so no waiting
    /// `send` rang it), and the receiver gets every message. Three rounds, each with the
    /// receiving endpoint's thread asleep for 60 ms first.
    @Test func ringsASleepingReceiversDoorbell() throws {
        try withEndpointNames(["ring-rx", "ring-tx"]) { names in
            let receiver = try Endpoint.join(names[0], options: Endpoint.Options(linkCapacity: 16, maxMessageSize: 32, waitStrategy: .block))
            let sender = try Endpoint.join(names[1], options: Endpoint.Options(linkCapacity: 16, maxMessageSize: 32))
            nonisolated(unsafe) let receiving = receiver
            let doorbell = receiver.home.doorbell.word
            for round in 0..<3 {
                let received = DispatchSemaphore(value: 0)
                nonisolated(unsafe) var failure: (any Error)?
                Thread.detachNewThread {
                    do {
                        for index in 0..<4 {
                            try receiving.receive(timeout: .seconds(10)) { bytes, _, from in
                                guard from == names[1] else { throw SendBatchTests.FillFailed(index: -1) }
                                try TestMessages.verify(bytes, sender: 10, sequence: UInt64(round * 4 + index), length: 24)
                            }
                        }
                    } catch {
                        failure = error
                    }
                    received.signal()
                }
                usleep(60_000)
                let before = doorbell.pointee.load(ordering: .acquiring)
                #expect(try sender.trySendBatch(to: names[0], messages: 4, bytesEach: 24) { index, span in
                    TestMessages.fill(&span, sender: 10, sequence: UInt64(round * 4 + index))
                } == 4)
                let after = doorbell.pointee.load(ordering: .acquiring)
                #expect(after != before, "round \(round): the batch did not ring the sleeping receiver's doorbell")
                received.wait()
                if let failure { throw failure }
            }
        }
    }
}

extension MultiProcess {
    @Suite("Batch sends between processes")
    struct BatchSends {
        /// A helper process streams 40,000 messages in batch sends of up to 64 into a ring of 16
        /// (so most calls send part of their batch and the sender then waits for room), both
        /// sides sleeping in the kernel while they wait. The test regenerates and compares every
        /// message; a batch send that failed to wake the sleeping receiver would cost a sleep slice
        /// (50 ms) each time, far beyond the time bound.
        @Test(arguments: MailboxOptions.RingKind.allCases)
        func everyMessageOnceInOrder(kind: MailboxOptions.RingKind) throws {
            let count = 40_000
            let size = 64
            try withMailbox("batch-stream-\(kind)", MailboxOptions(capacity: 16, maxMessageSize: size, kind: kind, waitStrategy: .block)) { name, box throws in
                let started = Date()
                let sender = try Peer(["send", name, "6", String(count), String(size), String(size), "64", "many"], strategy: "block")
                for sequence in 0..<UInt64(count) {
                    try box.receive(timeout: .seconds(60)) { bytes, from in
                        #expect(from.pid == sender.pid)
                        try TestMessages.verify(bytes, sender: 6, sequence: sequence, length: size)
                    }
                }
                #expect(sender.expectSuccess().contains("sent \(count)"))
                #expect(try box.tryReceive() == nil)
                let seconds = Date().timeIntervalSince(started)
                #expect(seconds < 30, "\(count) messages took \(seconds) s: wake-ups missed?")
            }
        }

        /// Two processes stream 20,000 messages each in endpoint batch sends of up to 64 into links
        /// of 8, while this process, with `.block`, sleeps on its doorbell between messages: every
        /// message arrives once, intact, in its sender's order, and the doorbell rings for each
        /// batch (a missed ring costs a 50 ms sleep slice, far beyond the time bound).
        @Test func endpointBatchesReachASleepingReceiver() throws {
            try withEndpointNames(["many-rx", "many-1", "many-2"]) { names in
                let receiver = try Endpoint.join(names[0], options: Endpoint.Options(linkCapacity: 8, maxMessageSize: 64, waitStrategy: .block))
                let count = 20_000
                let started = Date()
                let senders = try [1, 2].map { index in
                    try Peer(["ep-send", names[index], names[0], String(index), String(count), "0", "64", "many"])
                }
                var next = [names[1]: UInt64(0), names[2]: UInt64(0)]
                for _ in 0..<(2 * count) {
                    try receiver.receive(timeout: .seconds(30)) { bytes, _, from in
                        guard let expected = next[from] else {
                            Issue.record("message from unknown sender \(from)")
                            return
                        }
                        try TestMessages.verify(bytes, sender: from == names[1] ? 1 : 2, sequence: expected, length: 64)
                        next[from] = expected + 1
                    }
                }
                for sender in senders { #expect(sender.expectSuccess().contains("sent \(count)")) }
                #expect(next[names[1]] == UInt64(count) && next[names[2]] == UInt64(count))
                #expect(try receiver.tryReceive() == nil)
                let seconds = Date().timeIntervalSince(started)
                #expect(seconds < 30, "\(2 * count) messages took \(seconds) s: doorbell rings missed?")
            }
        }
    }
}
