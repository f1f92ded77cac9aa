import Foundation
import PeerProcess
import MailboxTestSupport
import Synchronization
import Testing
@testable import ShmMailbox

/// The async API: across real processes, cancellation, timeouts, rendezvous, and many idle
/// receivers on a few reactor threads.
@Suite("Async API", .timeLimit(.minutes(3)))
struct AsyncTests {
    /// Creates a mailbox for an async test and deletes it afterwards.
    func withAsyncMailbox<R>(_ label: String, _ options: MailboxOptions,
                             _ body: (String, Mailbox) async throws -> R) async throws -> R {
        let name = uniqueName(label)
        let box = try Mailbox.create(name, options: options)
        defer { try? Mailbox.delete(name) }
        return try await body(name, box)
    }

    @Test("an async receiver takes every message of a blocking sender in another process, in order",
          arguments: [MailboxOptions.RingKind.oneToOne, .shared])
    func asyncReceiverSyncSender(kind: MailboxOptions.RingKind) async throws {
        try await withAsyncMailbox("async-rx-\(kind)", MailboxOptions(capacity: 8, maxMessageSize: 512, kind: kind,
                                                                     waitStrategy: .block)) { name, box in
            let count = 5_000
            let peer = try Peer(["send", name, "3", "\(count)", "1", "400"], strategy: "block")
            var expected: UInt64 = 0
            for try await message in box.messages {
                let length = TestMessages.length(sender: 3, sequence: expected, minSize: 1, maxSize: 400)
                try message.bytes.withUnsafeBytes { try TestMessages.verify($0, sender: 3, sequence: expected, length: length) }
                expected += 1
                if expected == UInt64(count) { break }
            }
            #expect(expected == UInt64(count))
            peer.expectSuccess()
        }
    }

    @Test("an async sender (zero-copy) feeds a blocking receiver in another process, every byte checked",
          arguments: [MailboxOptions.RingKind.oneToOne, .shared])
    func asyncSenderSyncReceiver(kind: MailboxOptions.RingKind) async throws {
        try await withAsyncMailbox("async-tx-\(kind)", MailboxOptions(capacity: 4, maxMessageSize: 512, kind: kind,
                                                                     waitStrategy: .block)) { name, box in
            let count = 5_000
            let peer = try Peer(["receive-sequence", name, "7", "\(count)", "1", "400"], strategy: "block")
            for sequence in 0..<UInt64(count) {
                let length = TestMessages.length(sender: 7, sequence: sequence, minSize: 1, maxSize: 400)
                try await box.send(count: length, timeout: .seconds(60)) { TestMessages.fill(&$0, sender: 7, sequence: sequence) }
            }
            #expect(peer.expectSuccess().contains("received \(count)"))
        }
    }

    @Test("batched async receive: every message once, in order")
    func batchedSequence() async throws {
        try await withAsyncMailbox("async-batches", MailboxOptions(capacity: 64, maxMessageSize: 64, waitStrategy: .block)) { name, box in
            let count = 3_000
            let peer = try Peer(["send", name, "5", "\(count)", "8", "64", "16"], strategy: "block")
            var expected: UInt64 = 0
            for try await batch in box.messages(batchedUpTo: 32) {
                #expect(!batch.isEmpty && batch.count <= 32)
                for message in batch {
                    let length = TestMessages.length(sender: 5, sequence: expected, minSize: 8, maxSize: 64)
                    try message.bytes.withUnsafeBytes { try TestMessages.verify($0, sender: 5, sequence: expected, length: length) }
                    expected += 1
                }
                if expected == UInt64(count) { break }
            }
            #expect(expected == UInt64(count))
            peer.expectSuccess()
        }
    }

    @Test("a cancelled receive throws CancellationError promptly and takes nothing")
    func cancelledReceive() async throws {
        try await withAsyncMailbox("async-cancel", MailboxOptions(capacity: 4, maxMessageSize: 64, waitStrategy: .block)) { name, _ in
            // A receive parked without a deadline wakes on its own only after a sleep slice (1 s):
            // ending well before that means cancellation itself resumed it. The task runs on a
            // thread of its own and notes when it ended, so the figure leaves out the wait for a
            // cooperative thread (other suites' blocking tests can hold the pool's threads for
            // most of a second); the fastest of three tries counts, against scheduling noise.
            var fastest = Duration.seconds(60)
            for _ in 0..<3 where fastest >= .milliseconds(100) {
                let receiver = try Mailbox.open(name, waitStrategy: .block)
                let parked = Flag()
                let task = Task(executorPreference: ThreadExecutor.shared) { () async -> (String, ContinuousClock.Instant) in
                    parked.count.add(1, ordering: .relaxed)
                    do {
                        let message = try await receiver.receive()
                        return ("received \(message.string)", .now)
                    } catch is CancellationError {
                        return ("cancelled", .now)
                    } catch {
                        return ("\(error)", .now)
                    }
                }
                while parked.count.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(1)) }
                // Let it park in the reactor.
                try await Task.sleep(for: .milliseconds(50))
                let start = ContinuousClock.now
                task.cancel()
                let (outcome, ended) = await task.value
                #expect(outcome == "cancelled")
                fastest = min(fastest, ended - start)
            }
            // Typically ~0.05 ms.
            #expect(fastest < .milliseconds(100), "cancellation took \(fastest) at best")
            // The message sent afterwards is still there: the cancelled receive took nothing.
            let sender = try Mailbox.open(name)
            #expect(try sender.trySend("after"))
            #expect(try sender.tryReceive()?.string == "after")
        }
    }

    @Test("a cancelled synchronous send takes its message back when nobody took it")
    func cancelledSynchronousSend() async throws {
        try await withAsyncMailbox("async-cancel-sync", MailboxOptions(capacity: 4, maxMessageSize: 64, waitStrategy: .block)) { name, box in
            let sender = try Mailbox.open(name, waitStrategy: .block)
            let task = Task { try await sender.send("never taken", until: .received) }
            try await Task.sleep(for: .milliseconds(50))
            #expect(box.depth == 1)
            task.cancel()
            let result = await task.result
            #expect(throws: CancellationError.self) { try result.get() }
            #expect(box.depth == 0)
            #expect(try box.tryReceive() == nil)
        }
    }

    @Test("timeouts, and an async synchronous send answered by a receiver in another process")
    func timeoutsAndReceipts() async throws {
        try await withAsyncMailbox("async-timeouts", MailboxOptions(capacity: 1, maxMessageSize: 64, waitStrategy: .block)) { name, box in
            await #expect(throws: MailboxError.timedOut) { try await box.receive(timeout: .milliseconds(20)) }
            try await box.send("fills it")
            await #expect(throws: MailboxError.timedOut) { try await box.send("no room", timeout: .milliseconds(20)) }
            #expect(try box.tryReceive()?.string == "fills it")
            let peer = try Peer(["sleep-then-receive", name, "100", "1"])
            let delivery = try await box.send("take me", timeout: .seconds(30), until: .received)
            #expect(delivery?.receiver.pid == peer.pid)
            #expect(peer.expectSuccess().contains("take me"))
        }
    }

    @Test("zero capacity: an async receive is the rendezvous a blocking synchronous sender meets")
    func rendezvous() async throws {
        try await withAsyncMailbox("async-rendezvous", MailboxOptions(capacity: 0, maxMessageSize: 64, waitStrategy: .block)) { name, box in
            let peer = try Peer(["send-sync", name, "hello"])
            let message = try await box.receive(timeout: .seconds(30))
            #expect(message.string == "hello")
            #expect(message.sender.pid == peer.pid)
            #expect(peer.expectSuccess().contains("delivered to \(getpid())"))
        }
    }

    @Test("the polling fallback (no futex_waitv) still delivers")
    func pollingFallback() async throws {
        WaitReactor.vectoredWaitAvailable.store(false, ordering: .relaxed)
        defer { WaitReactor.vectoredWaitAvailable.store(true, ordering: .relaxed) }
        try await withAsyncMailbox("async-poll", MailboxOptions(capacity: 2, maxMessageSize: 512, waitStrategy: .block)) { name, box in
            let peer = try Peer(["send", name, "9", "300", "1", "400"], strategy: "block")
            for sequence in 0..<UInt64(300) {
                let length = TestMessages.length(sender: 9, sequence: sequence, minSize: 1, maxSize: 400)
                try await box.receive(timeout: .seconds(30)) { bytes, _, _ in
                    try TestMessages.verify(bytes, sender: 9, sequence: sequence, length: length)
                }
            }
            peer.expectSuccess()
        }
    }

    @Test("an idle async receiver in another process uses under 1 % of a core")
    func idleReceiverCost() async throws {
        try await withAsyncMailbox("async-idle", MailboxOptions(capacity: 4, maxMessageSize: 64)) { name, _ in
            // Parked for 3 s: the reactor thread sleeps in futex_waitv and wakes once per sleep
            // slice (1 s) to look at the peers, so the process's CPU time stays near zero.
            let peer = try Peer(["idle-async-receive", name, "3"])
            let output = peer.expectSuccess()
            let micros = try #require(Int(output.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""),
                                      "peer said \(output)")
            #expect(micros < 30_000, "an idle async receive cost \(micros) µs of CPU in 3 s")
        }
    }

    @Test("1,000 idle async receivers wait on a few reactor threads, and each gets its message")
    func manyIdleReceivers() async throws {
        let count = 1_000
        let names = (0..<count).map { uniqueName("idle-\($0)") }
        defer { for name in names { try? Mailbox.delete(name) } }
        var boxes: [Mailbox] = []
        for name in names {
            boxes.append(try Mailbox.create(name, options: MailboxOptions(capacity: 1, maxMessageSize: 16, waitStrategy: .block)))
        }
        let threadsBefore = Self.threadCount()
        let parked = Flag()
        try await withThrowingTaskGroup(of: String.self) { group in
            for (index, name) in names.enumerated() {
                let receiver = try Mailbox.open(name, waitStrategy: .block)
                group.addTask {
                    parked.count.add(1, ordering: .relaxed)
                    let message = try await receiver.receive(timeout: .seconds(60))
                    return "\(index) \(message.string)"
                }
            }
            while parked.count.load(ordering: .relaxed) < count { try await Task.sleep(for: .milliseconds(5)) }
            try await Task.sleep(for: .milliseconds(200))
            // 1,000 waits on ceil(1000 / 127) = 8 watcher threads, a few more if other tests
            // wait at the same time. The process's thread count is only bounded loosely: tests
            // running alongside start threads of their own (peers' pipes, senders).
            #expect(WaitReactor.shared.watcherCount <= 16, "\(WaitReactor.shared.watcherCount) watcher threads")
            let added = Self.threadCount() - threadsBefore
            #expect(added < 100, "\(added) threads for \(count) receivers")
            for (index, box) in boxes.enumerated() { try await box.send("m\(index)") }
            var seen = Set<String>()
            for try await line in group { seen.insert(line) }
            #expect(seen == Set((0..<count).map { "\($0) m\($0)" }))
        }
    }

    @Test("an async endpoint receives from anyone (senders joining while it waits) and from one sender")
    func endpointAsync() async throws {
        let names = ["async-ep-rx", "async-ep-1", "async-ep-2", "async-ep-echo"].map { "ep-\($0)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }
        defer { removeEndpointObjects(names) }
        let receiver = try Endpoint.join(names[0], options: Endpoint.Options(linkCapacity: 8, maxMessageSize: 512, waitStrategy: .block))
        let count = 1_000
        // The senders join 100 ms after this process parks on its doorbell.
        let senders = try [1, 2].map { index in
            try Peer(["ep-send", names[index], names[0], String(index), String(count), "100", index == 2 ? "50" : "1"])
        }
        var next = [names[1]: UInt64(0), names[2]: UInt64(0)]
        var received = 0
        // Timed receives (not `messages`): a peer that failed must fail the test, not hang it.
        while received < 2 * count {
            let message = try await receiver.receive(timeout: .seconds(60))
            guard let expected = next[message.from] else {
                Issue.record("message from unknown sender \(message.from)")
                break
            }
            expectEndpointMessage(message.bytes, id: message.from == names[1] ? 1 : 2, sequence: expected)
            next[message.from] = expected + 1
            received += 1
        }
        for sender in senders { #expect(sender.expectSuccess().contains("sent \(count)")) }
        #expect(next[names[1]] == UInt64(count) && next[names[2]] == UInt64(count))
        // Symmetric naming: an echo peer answers each async send; receive(from:) names it.
        let echo = try Peer(["ep-echo", names[3], names[0], "200"])
        // Until the peer has joined, a send to its name finds nobody.
        let joinBy = ContinuousClock.now + .seconds(20)
        while !(try Endpoint.list().contains(names[3])), ContinuousClock.now < joinBy { try await Task.sleep(for: .milliseconds(5)) }
        for sequence in 0..<UInt64(200) {
            let bytes = TestMessages.make(sender: 4, sequence: sequence, length: 16 + Int(sequence % 200))
            try await receiver.send(to: names[3], bytes, timeout: .seconds(30))
            let answer = try await receiver.receive(from: names[3], timeout: .seconds(30))
            #expect(answer.bytes == bytes)
        }
        #expect(echo.expectSuccess().contains("echoed 200"))
    }

    @Test("an endpoint's messages sequence yields what was sent to it, in order, with the sender's name")
    func endpointMessagesSequence() async throws {
        let names = ["ep-seq-rx", "ep-seq-tx"].map { "ep-\($0)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }
        defer { removeEndpointObjects(names) }
        let receiver = try Endpoint.join(names[0], options: Endpoint.Options(linkCapacity: 8, maxMessageSize: 64))
        let sender = try Endpoint.join(names[1], options: Endpoint.Options(linkCapacity: 8, maxMessageSize: 64))
        for index in 0..<5 { try await sender.send(to: names[0], Array("m\(index)".utf8)) }
        var seen: [String] = []
        for try await message in receiver.messages {
            seen.append("\(message.from) \(String(decoding: message.bytes, as: UTF8.self))")
            if seen.count == 5 { break }
        }
        #expect(seen == (0..<5).map { "\(names[1]) m\($0)" })
    }

    static func threadCount() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? ""
        return Int(line.split(separator: "\t").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
    }
}

/// A counter tasks share.
private final class Flag: Sendable {
    let count = Atomic<Int>(0)
}
