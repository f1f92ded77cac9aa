import Foundation
import PeerProcess
import MailboxTestSupport
import ServiceLifecycle
import ShmMailbox
import ShmMailboxService
import Synchronization
import Testing

/// MailboxService under a real ServiceGroup: every message handled, graceful shutdown mid-stream
/// with nothing lost or duplicated, a slow message finishing, a throwing handler, draining.
@Suite("MailboxService", .timeLimit(.minutes(2)))
struct MailboxServiceTests {
    /// Where the messages of a test come from.
    enum Source: String, CustomTestStringConvertible {
        case process, thread
        var testDescription: String { rawValue }
    }

    @Test("a ServiceGroup's MailboxService handles every message of another process or thread, in order, every byte checked",
          arguments: [MailboxOptions.RingKind.oneToOne, .shared], [Source.process, .thread])
    func handlesEveryMessage(kind: MailboxOptions.RingKind, source: Source) async throws {
        let options = MailboxOptions(capacity: 16, maxMessageSize: 400, kind: kind, waitStrategy: .block)
        try await withMailbox("every-\(kind)-\(source)", options) { name, box in
            let count = 3_000
            let handled = Handled(maxSize: 400)
            let service = MailboxService(name, waitStrategy: .block) { handled.record($0) }
            let group = ServiceGroup(services: [service])
            var peer: Peer?
            var thread: SenderThread?
            let result = try await whileRunning(group) {
                switch source {
                case .process: peer = try Peer(["send", name, "3", "\(count)", "\(TestMessages.headerSize)", "400"], strategy: "block")
                case .thread: thread = SenderThread(name: name, sender: 3, count: count, maxSize: 400)
                }
                #expect(try await eventually { handled.count >= count }, "handled \(handled.count) of \(count)")
                await group.triggerGracefulShutdown()
            }
            #expect(throws: Never.self) { try result.get() }
            peer?.expectSuccess()
            try await thread?.expectFinished()
            #expect(handled.failures == [])
            #expect(handled.entries.map(\.sequence) == Array(0..<UInt64(count)))
            #expect(handled.entries.allSatisfy { $0.sender == 3 })
            #expect(box.depth == 0)
        }
    }

    @Test("graceful shutdown mid-stream: each message sent was handled once or is still in the mailbox, in order",
          arguments: [(MailboxOptions.RingKind.oneToOne, 1, false), (.shared, 1, false), (.shared, 2, false),
                      (.oneToOne, 1, true), (.shared, 2, true)])
    func shutdownMidStream(kind: MailboxOptions.RingKind, services: Int, paced: Bool) async throws {
        let options = MailboxOptions(capacity: 64, maxMessageSize: 200, kind: kind, waitStrategy: .block)
        try await withMailbox("midstream-\(kind)-\(services)-\(paced)", options) { name, box in
            // Unpaced, a peer process keeps the mailbox full (blocked while it is), so the service
            // mostly takes messages already waiting; paced, a thread sends one every 100 µs, so the
            // shutdown mostly finds the service waiting in a receive as a message arrives.
            let count = paced ? 4_000 : 20_000
            let handled = Handled(maxSize: 200)
            let group = ServiceGroup(services: (0..<services).map { index in
                MailboxService(name, waitStrategy: .block) { message in
                    handled.record(message, service: index)
                    // Now and then let other tasks in, so the shutdown meets the service in every state.
                    if message.bytes[4] % 8 == 0 { await Task.yield() }
                }
            })
            // The sender keeps sending through the shutdown.
            let peer = paced ? nil : try Peer(["send", name, "5", "\(count)", "\(TestMessages.headerSize)", "200"], strategy: "block")
            let thread = paced ? SenderThread(name: name, sender: 5, count: count, maxSize: 200, pause: .microseconds(100)) : nil
            let result = try await whileRunning(group) {
                let started = try await eventually { handled.count >= count / 10 }
                #expect(started)
                await group.triggerGracefulShutdown()
            }
            #expect(throws: Never.self) { try result.get() }
            let entries = handled.entries
            #expect(handled.failures == [])
            #expect(entries.count < count, "the shutdown came after the last message: the test proves nothing")
            // The messages handled are exactly the first ones sent, each once; each service
            // handled its share in order.
            #expect(entries.map(\.sequence).sorted() == Array(0..<UInt64(entries.count)))
            for index in 0..<services {
                let mine = entries.filter { $0.service == index }.map(\.sequence)
                #expect(mine == mine.sorted())
            }
            // The others are all still there (the peer sends them as room is made), in order,
            // every byte checked.
            let rest = Handled(maxSize: 200)
            let receiver = try Mailbox.open(name, waitStrategy: .block)
            for _ in entries.count..<count {
                rest.record(try await receiver.receive(timeout: .seconds(30)))
            }
            peer?.expectSuccess()
            try await thread?.expectFinished()
            #expect(rest.failures == [])
            #expect(rest.entries.map(\.sequence) == Array(UInt64(entries.count)..<UInt64(count)))
            #expect(try receiver.tryReceive() == nil)
            #expect(box.depth == 0)
        }
    }

    @Test("a graceful shutdown while the handler is in the middle of a slow message lets it finish, uncancelled, and takes no other")
    func shutdownDuringSlowMessage() async throws {
        let options = MailboxOptions(capacity: 4, maxMessageSize: 64, waitStrategy: .block)
        try await withMailbox("slow", options) { name, box in
            let log = Mutex<[String]>([])
            let service = MailboxService(name, waitStrategy: .block) { message in
                log.withLock { $0.append("start \(message.string)") }
                // Throws CancellationError (failing the group) if the shutdown cancelled the handler.
                try await Task.sleep(for: .milliseconds(400))
                log.withLock { $0.append("end \(message.string)") }
            }
            let group = ServiceGroup(services: [service])
            let result = try await whileRunning(group) {
                try await box.send("slow")
                #expect(try await eventually { log.withLock { $0 } == ["start slow"] })
                try await box.send("next")
                await group.triggerGracefulShutdown()
            }
            #expect(throws: Never.self) { try result.get() }
            // The run ended only once the slow message was done (its handler runs in the service's task).
            #expect(log.withLock { $0 } == ["start slow", "end slow"])
            #expect(try box.tryReceive()?.string == "next")
            #expect(try box.tryReceive() == nil)
        }
    }

    @Test("a graceful shutdown while the service waits for a message returns promptly and takes nothing")
    func shutdownWhileWaiting() async throws {
        let options = MailboxOptions(capacity: 4, maxMessageSize: 64, waitStrategy: .block)
        try await withMailbox("idle", options) { name, box in
            let handled = Mutex<[String]>([])
            let service = MailboxService(name, waitStrategy: .block) { message in
                handled.withLock { $0.append(message.string) }
            }
            let group = ServiceGroup(services: [service])
            var triggered = ContinuousClock.now
            let result = try await whileRunning(group) {
                try await box.send("first")
                #expect(try await eventually { handled.withLock { $0 } == ["first"] })
                // Let it park in its receive.
                try await Task.sleep(for: .milliseconds(50))
                triggered = ContinuousClock.now
                await group.triggerGracefulShutdown()
            }
            let elapsed = ContinuousClock.now - triggered
            #expect(throws: Never.self) { try result.get() }
            // Typically well under a millisecond; the bound leaves room for a loaded machine.
            #expect(elapsed < .seconds(2), "shutdown took \(elapsed)")
            // The cancelled receive took nothing: a message sent now stays for the next receiver.
            try await box.send("after")
            #expect(try box.tryReceive()?.string == "after")
            #expect(handled.withLock { $0 } == ["first"])
        }
    }

    /// The handler's error in `handlerThrows`.
    struct Refused: Error, Equatable {
        var sequence: UInt64
    }

    @Test("a handler that throws ends the service with its error; the group rethrows it; later messages stay")
    func handlerThrows() async throws {
        let options = MailboxOptions(capacity: 8, maxMessageSize: 64, waitStrategy: .block)
        try await withMailbox("throws", options) { name, box in
            let handled = Handled(maxSize: 64)
            let service = MailboxService(name, waitStrategy: .block) { message in
                handled.record(message)
                if handled.entries.last?.sequence == 2 { throw Refused(sequence: 2) }
            }
            for sequence in 0..<UInt64(5) {
                try await box.send(TestMessages.make(sender: 1, sequence: sequence,
                                                     length: TestMessages.length(sender: 1, sequence: sequence,
                                                                                 minSize: TestMessages.headerSize, maxSize: 64)))
            }
            // Nobody triggers a shutdown: the handler's error ends the group.
            let result = try await whileRunning(ServiceGroup(services: [service])) {}
            #expect(throws: Refused(sequence: 2)) { try result.get() }
            #expect(handled.failures == [])
            #expect(handled.entries.map(\.sequence) == [0, 1, 2])
            // Message 2 was taken (the handler had it); 3 and 4 are still there.
            let left = try [box.tryReceive(), box.tryReceive(), box.tryReceive()]
            #expect(left.map { $0.map { try? $0.bytes.withUnsafeBytes { try TestMessages.verify($0).sequence } } } == [3, 4, nil])
        }
    }

    @Test("after a graceful shutdown, .drainWaiting handles the messages already waiting; .finishInFlight leaves them",
          arguments: [MailboxService.ShutdownDrain.finishInFlight, .drainWaiting])
    func drainWaiting(drain: MailboxService.ShutdownDrain) async throws {
        let options = MailboxOptions(capacity: 64, maxMessageSize: 100, waitStrategy: .block)
        try await withMailbox("drain-\(drain)", options) { name, box in
            let count = 50
            for sequence in 0..<UInt64(count) {
                let length = TestMessages.length(sender: 2, sequence: sequence, minSize: TestMessages.headerSize, maxSize: 100)
                try await box.send(count: length) { TestMessages.fill(&$0, sender: 2, sequence: sequence) }
            }
            let handled = Handled(maxSize: 100)
            let service = MailboxService(name, waitStrategy: .block, whenShuttingDown: drain) { message in
                // The first message is in flight until the shutdown has begun.
                if handled.count == 0 {
                    let deadline = ContinuousClock.now + .seconds(30)
                    while !Task.isShuttingDownGracefully && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
                handled.record(message)
            }
            let group = ServiceGroup(services: [service])
            let result = try await whileRunning(group) {
                let inFlight = try await eventually { box.depth == count - 1 }
                #expect(inFlight)
                await group.triggerGracefulShutdown()
            }
            #expect(throws: Never.self) { try result.get() }
            #expect(handled.failures == [])
            switch drain {
            case .finishInFlight:
                #expect(handled.entries.map(\.sequence) == [0])
                #expect(box.depth == count - 1)
            case .drainWaiting:
                #expect(handled.entries.map(\.sequence) == Array(0..<UInt64(count)))
                #expect(box.depth == 0)
            }
        }
    }

    @Test("a mailbox deleted under the service: the messages still in it are handled, then the group ends with .deleted")
    func mailboxDeleted() async throws {
        let options = MailboxOptions(capacity: 8, maxMessageSize: 64, waitStrategy: .block)
        try await withMailbox("deleted", options) { name, box in
            let handled = Handled(maxSize: 64)
            let deleted = Atomic<Bool>(false)
            let service = MailboxService(name, waitStrategy: .block) { message in
                // The first message is in flight until the mailbox has been deleted.
                if handled.count == 0 {
                    let deadline = ContinuousClock.now + .seconds(30)
                    while !deleted.load(ordering: .acquiring) && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
                handled.record(message)
            }
            func send(_ sequence: UInt64) async throws {
                let length = TestMessages.length(sender: 4, sequence: sequence, minSize: TestMessages.headerSize, maxSize: 64)
                try await box.send(count: length) { TestMessages.fill(&$0, sender: 4, sequence: sequence) }
            }
            let result = try await whileRunning(ServiceGroup(services: [service])) {
                try await send(0)
                let taken = try await eventually { box.depth == 0 }
                #expect(taken)
                for sequence in 1..<UInt64(5) { try await send(sequence) }
                try Mailbox.delete(name)
                deleted.store(true, ordering: .releasing)
            }
            #expect(throws: MailboxError.deleted(name)) { try result.get() }
            #expect(handled.failures == [])
            #expect(handled.entries.map(\.sequence) == Array(0..<UInt64(5)))
        }
    }

    @Test("run() throws when the mailbox cannot be opened")
    func openFails() async throws {
        let service = MailboxService(uniqueName("missing")) { _ in }
        await #expect(throws: MailboxError.self) { try await service.run() }
        #expect(service.description.hasPrefix("MailboxService(test-svc-missing-"))
    }

    @Test("outside a ServiceGroup the service runs until its task is cancelled, which it rethrows")
    func cancelledOutsideGroup() async throws {
        let options = MailboxOptions(capacity: 4, maxMessageSize: 64, waitStrategy: .block)
        try await withMailbox("cancel", options) { name, box in
            let handled = Mutex<[String]>([])
            let service = MailboxService(name, opening: { try Mailbox.open(name, waitStrategy: .block) }) { message in
                handled.withLock { $0.append(message.string) }
            }
            let task = Task { try await service.run() }
            try await box.send("one")
            #expect(try await eventually { handled.withLock { $0 } == ["one"] })
            try await Task.sleep(for: .milliseconds(50))
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            try await box.send("two")
            #expect(try box.tryReceive()?.string == "two")
        }
    }
}
