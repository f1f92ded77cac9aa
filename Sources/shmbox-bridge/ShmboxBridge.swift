import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox
import ShmMailboxNATS
import ShmboxCLISupport

/// `shmbox bridge` (this executable, run by `shmbox bridge`): relays local mailboxes to remote
/// ones on NATS JetStream and back, so that unchanged local programs talk across hosts.
@main
struct ShmboxBridge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shmbox bridge",
        abstract: "Relay local mailboxes to remote ones (NATS JetStream) and back.",
        discussion: """
            --export drains a local mailbox into a remote one; each message is released locally \
            only once the server stored it. --import feeds a remote mailbox into a local one; \
            each message is acknowledged to the server only once it is in the local mailbox, so \
            a full local mailbox holds the remote senders back. A journal per direction in \
            --state-dir keeps a bridge killed at any moment and started again from losing or \
            doubling messages (see the README for the one short window that can double one). \
            SIGINT or SIGTERM: finish the message in hand, then exit 0.
            """
    )

    @Option(name: .customLong("nats"), help: ArgumentHelp(
        "A NATS server URL, nats://[user:password@]host:port (repeatable: servers of one cluster).", valueName: "url"))
    var urls: [String] = []

    @Option(name: .customLong("export"), help: ArgumentHelp(
        "Drain local mailbox NAME into remote mailbox NAME, or LOCAL into REMOTE (repeatable).", valueName: "name|local:remote"))
    var exports: [String] = []

    @Option(name: .customLong("import"), help: ArgumentHelp(
        "Feed remote mailbox NAME into local mailbox NAME, or REMOTE into LOCAL (repeatable).", valueName: "name|remote:local"))
    var imports: [String] = []

    @Flag(help: "Create missing mailboxes (local and remote) with --capacity and --max-message-size, instead of failing.")
    var create = false

    @Option(help: "With --create: how many messages can wait (a number, zero or unbounded).")
    var capacity = "1024"

    @Option(help: "With --create: the largest message in bytes.")
    var maxMessageSize = MailboxOptions().maxMessageSize

    @Option(help: "With --create: seconds before the server hands a message a receiver took but never finished to another receiver (a killed bridge's batch waits this long).")
    var redeliveryDelay: Double = 30

    @Option(help: "With --create: seconds the server remembers message ids to drop a resent copy (a killed exporting bridge must be back within it).")
    var duplicateWindow: Double = 120

    @Option(help: "With --create: copies a cluster keeps (1, 3 or 5).")
    var replicas = 1

    @Option(help: "With --create: where the server keeps messages (file or memory).")
    var storage = "file"

    @Option(help: "Most remote messages fetched (and acknowledged) together by an import (1-\(ImportJournal.capacity)).")
    var batch = 64

    @Option(help: "Write a status line to standard error every this many seconds (messages each way, rates, lag as remote/local depth).")
    var statusInterval: Double?

    @Option(help: "The directory for the journals (one file per direction and mailbox pair).")
    var stateDir = "/dev/shm/shmbox-bridge"

    @Option(help: "User name for the NATS server (or in the URL).")
    var user: String?

    @Option(help: "Password for the NATS server (or in the URL).")
    var password: String?

    @Option(help: "Token for the NATS server (or in the URL).")
    var token: String?

    func validate() throws {
        if urls.isEmpty { throw ValidationError("give at least one --nats URL.") }
        if exports.isEmpty && imports.isEmpty { throw ValidationError("give at least one --export or --import.") }
        for spec in exports + imports where Route(spec) == nil {
            throw ValidationError("'\(spec)' is not NAME or SOURCE:DESTINATION.")
        }
        if parsedCapacity == nil { throw ValidationError("--capacity must be a number, zero or unbounded.") }
        if !(1...ImportJournal.capacity).contains(batch) { throw ValidationError("--batch must be 1-\(ImportJournal.capacity).") }
        for (name, value) in [("--redelivery-delay", redeliveryDelay), ("--duplicate-window", duplicateWindow)] where !(value.isFinite && value > 0) {
            throw ValidationError("\(name) must be a positive number of seconds.")
        }
        if let statusInterval, !(statusInterval.isFinite && statusInterval > 0) {
            throw ValidationError("--status-interval must be a positive number of seconds.")
        }
        if RemoteMailboxOptions.Storage(rawValue: storage) == nil { throw ValidationError("--storage must be file or memory.") }
        if password != nil && user == nil { throw ValidationError("--password needs --user.") }
        if token != nil && user != nil { throw ValidationError("give --user or --token, not both.") }
    }

    /// The entry point: every failure becomes one `shmbox: error: …` line and a sysexits-style
    /// status, as in `shmbox` (see `runReportingFailures` and `RemoteMailboxError.exitStatus`).
    static func main() {
        runReportingFailures()
    }

    func run() throws {
        Shutdown.install()
        try bridge()
    }

    /// Connects, opens (or creates) every mailbox and journal, starts a thread per relay, and
    /// waits for a stop request and the relays to end.
    private func bridge() throws(CLIFailure) {
        try StateFile.prepareDirectory(stateDir)
        let connection: NATSConnection
        do {
            var options = NATSConnection.Options(name: "shmbox-bridge", user: user, password: password, token: token)
            options.connectTimeout = .seconds(2)
            connection = try NATSConnection(urls, options: options)
        } catch {
            throw CLIFailure(error.description, status: error.exitStatus)
        }
        let opener = MailboxOpener(connection: connection, create: create, local: localOptions, remote: remoteOptions)

        var exportRelays: [ExportRelay] = []
        for spec in exports {
            let route = Route(spec)!
            let local = try opener.local(route.source)
            let remote = try opener.remote(route.destination)
            let journal = try ExportJournal(path: "\(stateDir)/" + StateFile.fileName("export", route.source, route.destination))
            exportRelays.append(ExportRelay(local: local, remote: remote, journal: journal))
        }
        var importRelays: [ImportRelay] = []
        for spec in imports {
            let route = Route(spec)!
            let remote = try opener.remote(route.source)
            let local = try opener.local(route.destination)
            let journal = try ImportJournal(path: "\(stateDir)/" + StateFile.fileName("import", route.source, route.destination))
            let relay = ImportRelay(remote: remote, local: local, journal: journal, batch: batch)
            try relay.recover()
            importRelays.append(relay)
        }

        for relay in exportRelays { RelayThread.start { relay.run() } }
        for relay in importRelays { RelayThread.start { relay.run() } }
        let progress = exportRelays.map(\.progress) + importRelays.map(\.progress)
        if let statusInterval {
            let named = exportRelays.map { ($0.progress, local: $0.local.name, remote: $0.remote.name) }
                + importRelays.map { ($0.progress, local: $0.local.name, remote: $0.remote.name) }
            let reporter = StatusReporter(relays: named, connection: connection, interval: .milliseconds(Int64(statusInterval * 1000)))
            RelayThread.start { reporter.run() }
        }

        // Every relay runs until a stop request; then each finishes (or parks) on its own.
        while progress.contains(where: { $0.state == .running }) {
            var request = timespec(tv_sec: 0, tv_nsec: 50_000_000)
            _ = nanosleep(&request, nil)
        }
        if progress.contains(where: { $0.state == .parked }) {
            // A parked relay holds a message it must not finish: end without any clean-up.
            terminate(status: 0)
        }
        connection.close()
    }

    private var parsedCapacity: MailboxOptions.Capacity? {
        switch capacity {
        case "zero": return .zero
        case "unbounded": return .unbounded
        default: return Int(capacity).flatMap { $0 >= 1 ? .bounded($0) : nil }
        }
    }

    private var localOptions: MailboxOptions {
        MailboxOptions(capacity: parsedCapacity ?? .bounded(1024), maxMessageSize: maxMessageSize)
    }

    private var remoteOptions: RemoteMailboxOptions {
        RemoteMailboxOptions(capacity: parsedCapacity ?? .bounded(1024), maxMessageSize: maxMessageSize, replicas: replicas,
                             storage: RemoteMailboxOptions.Storage(rawValue: storage) ?? .file,
                             redeliveryDelay: .milliseconds(Int64(redeliveryDelay * 1000)),
                             duplicateWindow: .milliseconds(Int64(duplicateWindow * 1000)))
    }
}

/// `NAME` or `SOURCE:DESTINATION` of `--export` and `--import`.
struct Route: Equatable {
    var source: String
    var destination: String

    init?(_ spec: String) {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), !parts.contains(where: \.isEmpty) else { return nil }
        source = parts[0]
        destination = parts.last!
    }
}
