import Foundation
import Logging
import ShmMailbox
import Synchronization

/// A name no other test uses.
func uniqueName(_ label: String) -> String {
    "metrics-\(label)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
}

/// Creates mailbox `label` (a unique name) with `options`, runs `body`, deletes it.
func withMailbox<R>(_ label: String, _ options: MailboxOptions, _ body: (String, Mailbox) throws -> R) throws -> R {
    let name = uniqueName(label)
    let box = try Mailbox.create(name, options: options)
    defer { try? Mailbox.delete(name) }
    return try body(name, box)
}

/// Starts `MailboxTestPeer` (built next to the test bundle) with `arguments`.
func startPeer(_ arguments: [String]) throws -> Process {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // The bundle's executable may sit inside ShmMailboxPackageTests.xctest.
    while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("MailboxTestPeer").path),
          directory.path != "/" {
        directory.deleteLastPathComponent()
    }
    let process = Process()
    process.executableURL = directory.appendingPathComponent("MailboxTestPeer")
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    return process
}

/// Waits up to 30 s for `process` to end (then kills it); returns whether it ended by SIGKILL.
func killedBySIGKILL(_ process: Process) -> Bool {
    let deadline = ContinuousClock.now + .seconds(30)
    while process.isRunning && ContinuousClock.now < deadline { usleep(2_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    return process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
}

/// Runs `MailboxTestPeer` with `arguments` (a command that kills itself) and waits for it to
/// end; returns whether it ended by SIGKILL.
func runPeerUntilKilled(_ arguments: [String]) throws -> Bool {
    killedBySIGKILL(try startPeer(arguments))
}

/// What a `CapturingLogHandler` received.
final class CapturedLogs: Sendable {
    /// One log call.
    struct Record: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: Logger.Metadata
    }

    private let records = Mutex<[Record]>([])

    func append(_ record: Record) { records.withLock { $0.append(record) } }

    /// The records whose `mailbox` metadata is `name` (other tests' mailboxes log too).
    func records(of name: String) -> [Record] {
        records.withLock { $0.filter { $0.metadata["mailbox"] == .string(name) } }
    }

    /// A logger that writes here.
    func logger() -> Logger {
        Logger(label: "shmmailbox-test") { _ in CapturingLogHandler(logs: self) }
    }
}

/// A swift-log handler that keeps every record in memory (no global bootstrap).
struct CapturingLogHandler: LogHandler {
    let logs: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        logs.append(.init(level: event.level, message: "\(event.message)",
                          metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
    }
}
