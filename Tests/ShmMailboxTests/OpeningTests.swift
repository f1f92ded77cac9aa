import Foundation
import PeerProcess
import Synchronization
import MailboxTestSupport
import Testing
@testable import ShmMailbox

/// `open(_:waitingUpTo:)` and `openOrCreate`: programs that work in either start order.
@Suite("Opening in either start order", .timeLimit(.minutes(3)))
struct OpeningTests {
    @Test("open(waitingUpTo:) waits for a mailbox created later, and says notFound when none comes")
    func openWaitsForTheCreator() throws {
        try withName("open-wait") { name in
            let creator = Thread {
                usleep(150_000)
                _ = try? Mailbox.create(name, options: MailboxOptions(capacity: 4, maxMessageSize: 64))
            }
            creator.start()
            let (box, waited) = try timed { try Mailbox.open(name, waitingUpTo: .seconds(10)) }
            #expect(waited >= 0.1, "opened after \(waited) s, before the mailbox was created")
            try box.send("hello")
            #expect(try box.tryReceive()?.string == "hello")
        }
        withName("open-wait-none") { name in
            let (_, waited) = timed { expectError(.notFound(name)) { try Mailbox.open(name, waitingUpTo: .milliseconds(80)) } }
            #expect(waited >= 0.08 && waited < 5, "gave up after \(waited) s")
        }
    }

    @Test("the async open(waitingUpTo:) waits without a thread, and a cancelled one ends at once")
    func asyncOpen() async throws {
        let name = uniqueName("open-async")
        defer { try? Mailbox.delete(name) }
        let waiting = Task { () async throws -> Int in
            let box = try await Mailbox.open(name, waitingUpTo: .seconds(10))
            return box.maxMessageSize
        }
        try await Task.sleep(for: .milliseconds(100))
        _ = try Mailbox.create(name, options: MailboxOptions(capacity: 4, maxMessageSize: 96))
        #expect(try await waiting.value == 96)

        let never = Task { try await Mailbox.open(uniqueName("open-never"), waitingUpTo: .seconds(60)).capacity }
        try await Task.sleep(for: .milliseconds(50))
        let start = ContinuousClock.now
        never.cancel()
        await #expect(throws: CancellationError.self) { _ = try await never.value }
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test("openOrCreate creates once and opens afterwards; other options are a clear error")
    func openOrCreateInOneProcess() throws {
        try withName("ooc") { name in
            let options = MailboxOptions(capacity: 16, maxMessageSize: 128, kind: .oneToOne)
            let first = try Mailbox.openOrCreate(name, options: options)
            let second = try Mailbox.openOrCreate(name, options: options)
            try first.send("through the first handle")
            #expect(try second.tryReceive()?.string == "through the first handle")

            for other in [MailboxOptions(capacity: 32, maxMessageSize: 128, kind: .oneToOne),
                          MailboxOptions(capacity: 16, maxMessageSize: 256, kind: .oneToOne),
                          MailboxOptions(capacity: 16, maxMessageSize: 128, kind: .shared)] {
                expectError({ error in
                    guard case .invalidOptions(let text) = error else { return false }
                    return text.contains(name) && text.contains("exists with")
                }) { try Mailbox.openOrCreate(name, options: other) }
            }
        }
    }

    @Test("threads racing to openOrCreate one name all end up on one mailbox")
    func racingCreators() throws {
        for round in 0..<20 {
            try withName("ooc-race-\(round)") { name in
                let options = MailboxOptions(capacity: 8, maxMessageSize: 64)
                let failures = Mutex<[String]>([])
                let go = DispatchSemaphore(value: 0)
                let done = DispatchGroup()
                for index in 0..<4 {
                    done.enter()
                    Thread {
                        go.wait()
                        do {
                            // Each thread sends through its own handle: if two had created
                            // mailboxes, one message would be missing from the one left.
                            try Mailbox.openOrCreate(name, options: options).send("from \(index)")
                        } catch {
                            failures.withLock { $0.append("\(error)") }
                        }
                        done.leave()
                    }.start()
                }
                for _ in 0..<4 { go.signal() }
                done.wait()
                #expect(failures.withLock { $0 } == [])
                let box = try Mailbox.open(name)
                var received: [String] = []
                while let message = try box.tryReceive() { received.append(message.string) }
                #expect(received.sorted() == (0..<4).map { "from \($0)" })
            }
        }
    }

    @Test("a sender started first and a receiver started first both work", arguments: [true, false])
    func eitherStartOrder(senderFirst: Bool) throws {
        try withName("ooc-order") { name in
            var peer: Peer?
            if senderFirst {
                peer = try Peer(["open-or-create-send", name, "3", "40"])
                // Let it create the mailbox and fill it (capacity 8): it waits for us.
                #expect(try Mailbox.open(name, waitingUpTo: .seconds(30)).capacity == 8)
            }
            let box = try Mailbox.openOrCreate(name, options: MailboxOptions(capacity: 8, maxMessageSize: 64))
            if !senderFirst { peer = try Peer(["open-or-create-send", name, "3", "40"]) }
            for sequence in 0..<UInt64(40) {
                let length = TestMessages.length(sender: 3, sequence: sequence, minSize: 8, maxSize: 64)
                try box.receive(timeout: .seconds(30)) { bytes, _ in
                    try TestMessages.verify(bytes, sender: 3, sequence: sequence, length: length)
                }
            }
            #expect(peer?.expectSuccess().contains("sent 40") == true)
        }
    }
}
