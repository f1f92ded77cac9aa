import Foundation
import PeerProcess
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

/// Waits up to 30 s for `peer` to end (then kills it); returns whether it ended by SIGKILL.
func killedBySIGKILL(_ peer: Peer) -> Bool {
    let result = peer.finish(timeout: .seconds(30))
    return result.signaled && result.status == SIGKILL
}

/// Runs `MailboxTestPeer` with `arguments` (a command that kills itself) and waits for it to
/// end; returns whether it ended by SIGKILL.
func runPeerUntilKilled(_ arguments: [String]) throws -> Bool {
    killedBySIGKILL(try Peer(arguments))
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
