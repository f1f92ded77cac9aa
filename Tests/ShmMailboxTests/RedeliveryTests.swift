import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

extension MultiProcess {
    /// At least once, but never again once finished: a message whose receive call returned (its
    /// body returned and its slot was released) is never handed to anyone again, however often
    /// receivers are killed (mid-read, blocked on an empty mailbox, or right after a killed
    /// receiver's message was redelivered to them). The receivers are `relay-receive` peers:
    /// they log each message only after its receive call returned, so a logged message is a
    /// finished one, and a logged message seen again is a duplicate, not a redelivery.
    @Suite("Redelivery after kill -9: never a finished message", .serialized)
    struct Redelivery {
        /// A record of a `relay-receive` log: a message handed to the body ("taken"), or one whose
        /// receive call returned ("finished").
        struct Record {
            let message: Received
            let finished: Bool
            var key: UInt64 { UInt64(message.sender) << 48 | message.sequence }
        }

        /// Every record of a `relay-receive` log, in order.
        static func records(in log: String) -> [Record] {
            guard let data = FileManager.default.contents(atPath: log) else { return [] }
            return data.withUnsafeBytes { raw in
                let words = raw.bindMemory(to: UInt64.self)
                return stride(from: 0, to: words.count - 1, by: 2).map { index in
                    Record(message: Received(sender: UInt32(truncatingIfNeeded: words[index]), sequence: words[index + 1] & ~(1 << 63),
                                             redelivered: words[index + 1] >> 63 == 1),
                           finished: words[index] >> 32 & 1 == 1)
                }
            }
        }

        /// The messages a `relay-receive` peer finished (its receive call returned), in order.
        static func finished(in log: String) -> [Received] {
            records(in: log).filter(\.finished).map(\.message)
        }

        /// Checks the receivers' logs, in the order the receivers ran, then what was drained at
        /// the end: no message finished by a receiver is handed to anyone again (a duplicate, not a
        /// redelivery), and every message sent was handed out (a receiver killed between a
        /// receive call's return and its log line released a message it did not log as finished;
        /// its "taken" record, written in the body, still counts).
        static func expectNoFinishedMessageAgain(logs: [String], drained: [Received], senders: [UInt32: UInt64],
                                                 sourceLocation: SourceLocation = #_sourceLocation) -> (finished: Int, redelivered: Int) {
            var finishedBy: [UInt64: Int] = [:]
            var taken: Set<UInt64> = []
            var duplicates: [String] = []
            var redelivered = 0
            let streams = logs.map(records(in:)) + [drained.flatMap { [Record(message: $0, finished: false), Record(message: $0, finished: true)] }]
            for (run, stream) in streams.enumerated() {
                for record in stream {
                    if let earlier = finishedBy[record.key] {
                        duplicates.append("\(record.message) (finished by receiver \(earlier), \(record.finished ? "finished" : "handed out") again by \(run == logs.count ? "the drain" : "receiver \(run)"))")
                    }
                    if record.finished {
                        finishedBy[record.key] = run
                    } else {
                        taken.insert(record.key)
                        if record.message.redelivered { redelivered += 1 }
                    }
                }
            }
            #expect(duplicates.isEmpty, "\(duplicates.count) finished messages handed out again: \(duplicates.prefix(8))", sourceLocation: sourceLocation)
            var lost: [String] = []
            for (sender, count) in senders {
                for sequence in 0..<count where !taken.contains(UInt64(sender) << 48 | sequence) { lost.append("\(sender):\(sequence)") }
            }
            #expect(lost.isEmpty, "\(lost.count) messages never handed out: \(lost.prefix(8))", sourceLocation: sourceLocation)
            return (finishedBy.count, redelivered)
        }

        /// A scratch directory for receiver logs, removed afterwards.
        static func withLogDirectory<R>(_ body: (String) throws -> R) throws -> R {
            let directory = NSTemporaryDirectory() + "shmmb-redeliver-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            return try body(directory)
        }

        /// Lets `receiver` block on the (empty) mailbox, then kills it there; whether it died of
        /// the signal.
        static func killBlocked(_ receiver: Peer) -> Bool {
            usleep(300_000)
            receiver.kill9()
            return receiver.finish().signaled
        }

        /// Waits (at most `limit`) until `log` holds at least `count` records; returns them.
        @discardableResult
        static func waitForRecords(_ log: String, count: Int, limit: Duration = .seconds(20),
                                   sourceLocation: SourceLocation = #_sourceLocation) -> [Received] {
            let deadline = ContinuousClock.now + limit
            var records = finished(in: log)
            while records.count < count && ContinuousClock.now < deadline {
                usleep(5_000)
                records = finished(in: log)
            }
            #expect(records.count >= count, "only \(records.count) of \(count) messages finished in \(limit)", sourceLocation: sourceLocation)
            return records
        }

        /// What a `relay-receive` peer that killed itself was holding ("holding S Q R").
        static func holding(_ output: String) -> Received? {
            guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("holding ") }) else { return nil }
            let words = line.split(separator: " ")
            guard words.count == 4, let sender = UInt32(words[1]), let sequence = UInt64(words[2]) else { return nil }
            return Received(sender: sender, sequence: sequence, redelivered: words[3] == "1")
        }

        /// Sends messages `range` of `sender` from this process.
        static func send(_ box: Mailbox, sender: UInt32, _ range: Range<UInt64>) throws {
            for sequence in range {
                let length = TestMessages.length(sender: sender, sequence: sequence, minSize: TestMessages.headerSize, maxSize: 1024)
                try box.send(count: length) { TestMessages.fill(&$0, sender: sender, sequence: sequence) }
            }
        }

        /// The relay's report, step by step: a receiver killed mid-read while 63 more messages
        /// wait behind its slot (capacity 64, a sender blocked on the full mailbox); the next
        /// receiver gets those 63, then the killed one's message marked redelivered (the sender
        /// stopped at the dead slot made it the newest), then the rest; it is killed while
        /// blocked on the empty mailbox, and so are two more; none of them gets a message any
        /// earlier receiver finished.
        @Test func killedMidReadWithAFullMailboxThenWhileBlocked() throws {
            try withMailbox("redeliver-full", MailboxOptions(capacity: 64, maxMessageSize: 1024, kind: .shared)) { name, box throws in
                try Self.withLogDirectory { directory in
                    let total: UInt64 = 200
                    let sender = try Peer(["send", name, "1", String(total), String(TestMessages.headerSize), "1024"])
                    while box.depth < 64 { usleep(1_000) }
                    // A: finishes 0...4, dies holding 5.
                    let logs = (0..<5).map { "\(directory)/\($0).log" }
                    let first = try Peer(["relay-receive", name, logs[0], "0", "5"])
                    let firstResult = first.finish()
                    #expect(firstResult.signaled)
                    let held = Self.holding(firstResult.stdout)
                    #expect(held == Received(sender: 1, sequence: 5, redelivered: false), "\(firstResult.stdout)")
                    #expect(Self.finished(in: logs[0]).map(\.sequence) == Array(0..<5))
                    // The sender, stopped a lap later by the dead receiver's slot, makes its
                    // message the newest: 63 wait before it.
                    while box.depth < 64 { usleep(1_000) }
                    // B: gets the 63 behind it, then 5 redelivered, then the rest.
                    let second = try Peer(["relay-receive", name, logs[1], "0"])
                    let records = Self.waitForRecords(logs[1], count: Int(total) - 5)
                    sender.expectSuccess()
                    #expect(records.prefix(63).map(\.sequence) == Array(6..<69))
                    #expect(records.prefix(63).allSatisfy { !$0.redelivered })
                    #expect(records.dropFirst(63).first == Received(sender: 1, sequence: 5, redelivered: true))
                    // Killed while blocked on the empty mailbox; then two more receivers,
                    // each killed while blocked: none gets anything.
                    #expect(Self.killBlocked(second))
                    for log in logs[2...3] {
                        #expect(try Self.killBlocked(Peer(["relay-receive", name, log, "0"])))
                        #expect(Self.records(in: log).isEmpty, "\(Self.records(in: log).map(\.message))")
                    }
                    // A last one gets new messages only.
                    let last = try Peer(["relay-receive", name, logs[4], "0"])
                    try Self.send(box, sender: 2, 0..<10)
                    Self.waitForRecords(logs[4], count: 10)
                    usleep(100_000)
                    last.kill9()
                    last.finish()
                    let drained = try drain(box) { _ in true }
                    _ = Self.expectNoFinishedMessageAgain(logs: logs, drained: drained, senders: [1: total, 2: 10])
                    #expect(Self.finished(in: logs[4]) == (0..<10).map { Received(sender: 2, sequence: $0, redelivered: false) })
                    #expect(box.depth == 0)
                }
            }
        }

        /// The same with no sender left: the killed receiver's message waits in its slot; the
        /// next receiver takes the 63 others, finds the mailbox empty and adopts it (marked
        /// redelivered), then is killed while blocked; the one after gets nothing.
        @Test func killedMidReadThenAdoptedByABlockedReceiver() throws {
            try withMailbox("redeliver-adopt", MailboxOptions(capacity: 64, maxMessageSize: 1024, kind: .shared)) { name, box throws in
                try Self.withLogDirectory { directory in
                    try Self.send(box, sender: 1, 0..<64)
                    let logs = (0..<4).map { "\(directory)/\($0).log" }
                    let first = try Peer(["relay-receive", name, logs[0], "0", "0"])
                    let firstResult = first.finish()
                    #expect(Self.holding(firstResult.stdout) == Received(sender: 1, sequence: 0, redelivered: false))
                    let second = try Peer(["relay-receive", name, logs[1], "0"])
                    let records = Self.waitForRecords(logs[1], count: 64)
                    #expect(records.prefix(63).map(\.sequence) == Array(1..<64))
                    #expect(records.last == Received(sender: 1, sequence: 0, redelivered: true))
                    #expect(Self.killBlocked(second))
                    for log in logs[2...3] {
                        #expect(try Self.killBlocked(Peer(["relay-receive", name, log, "0"])))
                    }
                    let drained = try drain(box) { _ in true }
                    _ = Self.expectNoFinishedMessageAgain(logs: logs, drained: drained, senders: [1: 64])
                    #expect(box.depth == 0)
                }
            }
        }

        /// The relay's situation, randomised: two senders keep a 64-slot shared mailbox full; one
        /// relay-like receiver at a time (holding each message a moment, as a publish would) is
        /// killed at random moments and restarted.
        @Test func randomKillsNeverRedeliverAFinishedMessage() throws {
            try withMailbox("redeliver-random", MailboxOptions(capacity: 64, maxMessageSize: 1024, kind: .shared)) { name, box throws in
                let directory = NSTemporaryDirectory() + "shmmb-redeliver-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let perSender = 4_000
                let senders = try [1, 2].map { id in
                    try Peer(["send", name, String(id), String(perSender), String(TestMessages.headerSize), "1024"])
                }
                var logs: [String] = []
                var kills = 0
                while kills < 40 {
                    let log = "\(directory)/\(logs.count).log"
                    logs.append(log)
                    let receiver = try Peer(["relay-receive", name, log, String(Int.random(in: 200...1_500))])
                    usleep(UInt32.random(in: 30_000...200_000))
                    receiver.kill9()
                    #expect(receiver.finish().signaled)
                    kills += 1
                }
                let log = "\(directory)/\(logs.count).log"
                logs.append(log)
                let last = try Peer(["relay-receive", name, log, "0"])
                for sender in senders { sender.expectSuccess() }
                // Let the last receiver drain the mailbox, then take what is left here.
                let settle = ContinuousClock.now + .seconds(20)
                func handedOut() -> Int { Set(logs.flatMap { Self.records(in: $0).map(\.key) }).count }
                while ContinuousClock.now < settle && handedOut() < 2 * perSender { usleep(50_000) }
                usleep(300_000)
                last.kill9()
                last.finish()
                let drained = try drain(box) { _ in true }
                let (finished, redelivered) = Self.expectNoFinishedMessageAgain(logs: logs, drained: drained, senders: [1: UInt64(perSender), 2: UInt64(perSender)])
                print("redelivery (random): \(kills) kills, \(finished) messages logged finished, \(redelivered) handed out marked redelivered")
                #expect(box.depth == 0)
            }
        }
    }
}
