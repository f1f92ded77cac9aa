import PeerProcess
import Testing
@testable import ShmMailbox

/// `Mailbox.statistics` (and `messageTotals`): totals derived from the segment are exact.
@Suite("Mailbox statistics")
struct StatisticsTests {
    /// A mailbox configuration and the traffic sent through it.
    struct Case: Sendable, CustomTestStringConvertible {
        let label: String
        let options: MailboxOptions
        let sends: Int
        let receives: Int
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "shared", options: MailboxOptions(capacity: 64, maxMessageSize: 64), sends: 50, receives: 37),
        // 200 sends through 64 slots: the positions lap the ring three times.
        Case(label: "shared-lapping", options: MailboxOptions(capacity: 64, maxMessageSize: 64), sends: 200, receives: 190),
        Case(label: "one-to-one", options: MailboxOptions(capacity: 64, maxMessageSize: 64, kind: .oneToOne), sends: 50, receives: 37),
        // 16 per segment: 10 generations grown, the first 7 drained and given back.
        Case(label: "unbounded", options: MailboxOptions(capacity: .unbounded(segmentCapacity: 16), maxMessageSize: 64),
             sends: 160, receives: 119),
    ]

    /// N sends then M receives (interleaved in rounds where the ring is bounded): the totals are
    /// exactly N and M, the depth N − M; after draining, N and N.
    @Test(arguments: cases)
    func totalsAreExact(_ test: Case) throws {
        try withMailbox("stats-\(test.label)", test.options) { name, sender in
            let receiver = try Mailbox.open(name)
            let before = sender.statistics
            #expect(before.messagesSent == 0 && before.messagesReceived == 0 && before.depth == 0)
            // Sends, receiving only to make room in a bounded ring (at most sends − capacity
            // receives, never more than asked for), then the rest of the receives.
            var sent = 0
            var received = 0
            let bound = test.options.capacity.limit ?? .max
            while sent < test.sends {
                if sent - received < bound {
                    try sender.send("message \(sent)")
                    sent += 1
                } else {
                    _ = try receiver.receive()
                    received += 1
                }
            }
            while received < test.receives {
                _ = try receiver.receive()
                received += 1
            }
            let stats = receiver.statistics
            #expect(stats.name == name)
            #expect(stats.kind == test.options.kind)
            #expect(stats.messagesSent == UInt64(test.sends))
            #expect(stats.messagesReceived == UInt64(test.receives))
            #expect(stats.depth == test.sends - test.receives)
            #expect(!stats.isDeleted)
            #expect(stats.sleepingReceivers == 0 && stats.sleepingSenders == 0)
            #expect(stats.memoryUsed > 0 && stats.segments >= 1)
            while try receiver.tryReceive() != nil {}
            let drained = sender.statistics
            #expect(drained.messagesSent == UInt64(test.sends))
            #expect(drained.messagesReceived == UInt64(test.sends))
            #expect(drained.depth == 0)
            receiver.close()
        }
    }

    /// A one-to-one ring's totals are counted from its records, so they are known only until the
    /// sender's second lap over the data area overwrites the first record: then nil, never wrong.
    @Test func oneToOneTotalsAreUnknownAfterTheFirstLap() throws {
        try withMailbox("stats-lap", MailboxOptions(capacity: 4, maxMessageSize: 16, kind: .oneToOne)) { name, sender in
            let receiver = try Mailbox.open(name)
            // 4096 bytes of 32-byte records: the 129th record starts the second lap.
            for index in 0..<128 {
                try sender.send("\(index)")
                _ = try receiver.receive()
            }
            #expect(sender.messageTotals?.sent == 128)
            #expect(sender.messageTotals?.received == 128)
            try sender.send("lap two")
            #expect(sender.messageTotals == nil)
            #expect(sender.statistics.messagesSent == nil && sender.statistics.depth == 1)
            receiver.close()
        }
    }

    /// Statistics of an unbounded mailbox count the messages of generations already given back
    /// (each generation records the messages before it), also for a handle opened afterwards.
    @Test func unboundedTotalsSurviveGivenBackGenerations() throws {
        try withMailbox("stats-chain", MailboxOptions(capacity: .unbounded(segmentCapacity: 8), maxMessageSize: 64)) { name, sender in
            for index in 0..<80 { try sender.send("\(index)") }
            let receiver = try Mailbox.open(name)
            for _ in 0..<75 { _ = try receiver.receive() }
            let late = try Mailbox.open(name)
            let stats = late.statistics
            #expect(stats.messagesSent == 80)
            #expect(stats.messagesReceived == 75)
            #expect(stats.depth == 5)
            #expect(stats.segments < 10, "drained generations were given back: \(stats.segments)")
            late.close()
            receiver.close()
        }
    }

    /// A send that finds the mailbox full and waits counts once in `fullWaits`; a `trySend` that
    /// finds it full does not.
    @Test func fullWaitsCountSendsThatWaited() throws {
        try withMailbox("stats-full", MailboxOptions(capacity: 2, maxMessageSize: 64)) { name, sender in
            try sender.send("a")
            try sender.send("b")
            #expect(try !sender.trySend("c"))
            #expect(sender.statistics.fullWaits == 0)
            // A receiver in another process takes one message 100 ms from now.
            let taker = try Peer(["sleep-then-receive", name, "100", "1"])
            try sender.send("c", timeout: .seconds(10))
            #expect(taker.finish(timeout: .seconds(30)).status == 0)
            #expect(sender.statistics.fullWaits == 1)
            #expect(sender.statistics.repairs == 0)
        }
    }

    /// A slot repaired after its holder died counts in `repairs`, seen by every process.
    @Test func repairsCountSlotsRepaired() throws {
        try withMailbox("stats-repair", MailboxOptions(capacity: 8, maxMessageSize: 128)) { name, box in
            try box.send("before")
            let doomed = try Peer(["die-in-send", name])
            #expect(doomed.finish(timeout: .seconds(30)).signaled)
            try box.send("after")
            #expect(try box.receive(timeout: .seconds(5)).string == "before")
            #expect(try box.receive(timeout: .seconds(5)).string == "after")
            let other = try Mailbox.open(name)
            defer { other.close() }
            #expect(other.statistics.repairs == 1)
        }
    }
}
