import Foundation
import MailboxTestSupport
import PeerProcess
import ServiceLifecycle
import ShmMailbox
import Synchronization
import Testing

/// A unique mailbox name for one test run, so parallel or repeated runs never collide.
func uniqueName(_ label: String) -> String {
    "test-svc-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

/// Creates a mailbox, runs `body`, and deletes the mailbox whatever happens.
func withMailbox<R>(_ label: String, _ options: MailboxOptions,
                    _ body: (String, Mailbox) async throws -> R) async throws -> R {
    let name = uniqueName(label)
    let box = try Mailbox.create(name, options: options)
    defer { try? Mailbox.delete(name) }
    return try await body(name, box)
}

/// Runs `group` while `body` runs (`body` triggers its shutdown) and returns how `run()` ended.
/// If `body` throws, the group is cancelled.
func whileRunning(_ group: ServiceGroup, _ body: () async throws -> Void) async throws -> Result<Void, any Error> {
    try await withThrowingTaskGroup(of: Result<Void, any Error>.self) { tasks in
        tasks.addTask {
            do {
                try await group.run()
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try await body()
        return try await tasks.next()!
    }
}

/// Waits (polling every millisecond) until `condition` holds; false if `timeout` passed first.
func eventually(_ timeout: Duration = .seconds(60), _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { return false }
        try await Task.sleep(for: .milliseconds(1))
    }
    return true
}

/// What the handlers of a test saw: each message's (sender, sequence), in the order handled by
/// each service, and any message that failed its check.
final class Handled: Sendable {
    /// One handled message.
    struct Entry: Equatable {
        var service: Int
        var sender: UInt32
        var sequence: UInt64
    }

    private let state = Mutex<(entries: [Entry], failures: [String])>(([], []))
    /// The messages' sizes, as `TestMessages.length` draws them.
    let minSize: Int
    let maxSize: Int

    init(minSize: Int = TestMessages.headerSize, maxSize: Int) {
        self.minSize = minSize
        self.maxSize = maxSize
    }

    /// Checks every byte of a self-describing test message and its length, and records it.
    func record(_ message: Mailbox.Message, service: Int = 0) {
        do {
            let (sender, sequence) = try message.bytes.withUnsafeBytes { try TestMessages.verify($0) }
            let length = TestMessages.length(sender: sender, sequence: sequence, minSize: minSize, maxSize: maxSize)
            if length != message.bytes.count {
                state.withLock { $0.failures.append("message \(sequence) has \(message.bytes.count) bytes, expected \(length)") }
            }
            state.withLock { $0.entries.append(Entry(service: service, sender: sender, sequence: sequence)) }
        } catch {
            state.withLock { $0.failures.append("\(error)") }
        }
    }

    var entries: [Entry] { state.withLock { $0.entries } }
    var count: Int { state.withLock { $0.entries.count } }
    var failures: [String] { state.withLock { $0.failures } }
}

/// A sender on a thread of its own (blocking sends), for senders in this process.
final class SenderThread: Sendable {
    private let finished = Atomic<Bool>(false)
    private let failure = Mutex<String?>(nil)

    /// Sends test messages 0..<`count` of `sender` to mailbox `name`, sizes in
    /// `minSize...maxSize`, sleeping `pause` after each.
    init(name: String, sender: UInt32, count: Int, minSize: Int = TestMessages.headerSize, maxSize: Int,
         pause: Duration = .zero) {
        let pauseMicros = UInt32(pause.components.seconds * 1_000_000 + pause.components.attoseconds / 1_000_000_000_000)
        Thread.detachNewThread { [self] in
            do {
                let box = try Mailbox.open(name, waitStrategy: .block)
                for sequence in 0..<UInt64(count) {
                    let length = TestMessages.length(sender: sender, sequence: sequence, minSize: minSize, maxSize: maxSize)
                    try box.send(count: length, timeout: .seconds(60)) { TestMessages.fill(&$0, sender: sender, sequence: sequence) }
                    if pauseMicros > 0 { usleep(pauseMicros) }
                }
                box.close()
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
            finished.store(true, ordering: .releasing)
        }
    }

    /// Waits until the thread has sent everything; fails the test if it could not.
    func expectFinished(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(try await eventually { finished.load(ordering: .acquiring) }, "sender thread did not finish",
                sourceLocation: sourceLocation)
        #expect(failure.withLock { $0 } == nil, "sender thread failed: \(failure.withLock { $0 } ?? "")",
                sourceLocation: sourceLocation)
    }
}
