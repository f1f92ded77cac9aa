import Foundation
import MailboxTestSupport
import NATSTestSupport
import ShmMailboxNATS
import Testing

/// Whether these suites can run: they start real nats-server processes.
let natsInstalled = NATSServer.isInstalled

/// A mailbox name no other test (or earlier run) uses.
func uniqueRemoteName(_ label: String) -> String {
    "\(label)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
}

/// The directory holding the test bundle and the package's executables.
let buildDirectory: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return (exe as NSString).deletingLastPathComponent
}()

/// Starts `NATSTestPeer` with `arguments`, its output in a temp file.
func startPeer(_ arguments: [String]) throws -> SpawnedProcess {
    let output = NSTemporaryDirectory() + "natspeer-\(getpid())-\(UInt32.random(in: 0 ... .max)).log"
    return try SpawnedProcess(executable: buildDirectory + "/NATSTestPeer", arguments: arguments,
                              standardOutputPath: output, standardErrorPath: output)
}

/// Waits until the peer's output contains `text` (true) or `timeout` passes (false).
func waitForOutput(_ peer: SpawnedProcess, _ text: String, timeout: Duration = .seconds(20)) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if peer.standardOutput().contains(text) { return true }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return false
}

/// The `GOT sender sequence redelivered` lines of a receiving peer's output.
func receivedRecords(_ output: String) -> [(sender: UInt32, sequence: UInt64, redelivered: Bool)] {
    output.split(separator: "\n").compactMap { line in
        let words = line.split(separator: " ")
        guard words.count == 4, words[0] == "GOT", let sender = UInt32(words[1]), let sequence = UInt64(words[2]) else { return nil }
        return (sender, sequence, words[3] == "1")
    }
}

/// Sends `count` self-checking messages from `sender` (sequence 0..<count).
func sendTestMessages(_ box: RemoteMailbox, sender: UInt32, count: Int, minSize: Int = 24, maxSize: Int = 300) throws {
    for sequence in 0..<UInt64(count) {
        let length = TestMessages.length(sender: sender, sequence: sequence, minSize: minSize, maxSize: maxSize)
        try box.send(TestMessages.make(sender: sender, sequence: sequence, length: length))
    }
}

/// Expects `body` to throw a `RemoteMailboxError` satisfying `predicate`.
func expectRemoteError<R>(sourceLocation: SourceLocation = #_sourceLocation, _ predicate: (RemoteMailboxError) -> Bool,
                          _ body: () throws -> R) {
    do {
        _ = try body()
        Issue.record("expected an error, got none", sourceLocation: sourceLocation)
    } catch let error as RemoteMailboxError {
        #expect(predicate(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected a RemoteMailboxError, got \(error)", sourceLocation: sourceLocation)
    }
}

/// Runs `body` on another thread; `join` waits for it and returns its result or rethrows.
final class Background<R: Sendable>: @unchecked Sendable {
    private var result: Result<R, any Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws -> R) {
        Thread.detachNewThread { [self] in
            result = Result { try body() }
            done.signal()
        }
    }

    func join(timeout: Duration = .seconds(60)) throws -> R {
        let (seconds, atto) = timeout.components
        guard done.wait(timeout: .now() + .nanoseconds(Int(seconds) * 1_000_000_000 + Int(atto / 1_000_000_000))) == .success else {
            throw RemoteMailboxError.timedOut
        }
        return try result!.get()
    }
}

/// Hands a value that is used by one thread at a time (a mailbox handle) to another thread.
struct Handoff<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
