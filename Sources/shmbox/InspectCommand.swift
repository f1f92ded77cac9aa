import ArgumentParser
import ShmMailbox
import ShmboxCLISupport

/// `shmbox inspect NAME`: prints a mailbox's settings, depth and participants.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a mailbox's settings, depth and participants.",
        discussion: """
            Prints `key: value` lines; one `participant:` line per process recorded as having \
            sent or received: its pid, its roles, and whether it still runs. With --json, one \
            JSON object instead (fields in README.md), in which dead participants are only counted.
            """
    )

    @OptionGroup var trust: TrustOptions

    @Argument(help: "The mailbox name.")
    var name: String

    @Flag(help: "Print one JSON object (stable field names, see README.md).")
    var json = false

    func run() throws {
        try reportingMailboxErrors {
            let mailbox = try Mailbox.open(name, trust: trust.trust)
            if json {
                printLine(MailboxReport(mailbox: mailbox).details.text)
                return
            }
            printLine("name: \(mailbox.name)")
            printLine("kind: \(mailbox.kind.argumentName)")
            printLine("capacity: \(mailbox.capacity)")
            printLine("depth: \(mailbox.depth)")
            if mailbox.capacity.kind == .unbounded { printLine("segments: \(mailbox.segmentCount)") }
            printLine("max message size: \(mailbox.maxMessageSize)")
            printLine("mode: \(octal(mailbox.permissions))")
            printLine("ownership: \(mailbox.ownership.rawValue)")
            printLine("receiver policy: \(mailbox.receiverPolicy.rawValue)")
            if let owner = mailbox.owner {
                printLine("owner: \(owner.pid) \(owner.isAlive ? "alive" : "dead")")
            }
            printLine("uid: \(mailbox.ownerUID)")
            printLine("memory: \(mailbox.memoryUsed) bytes")
            let creator = mailbox.creator
            printLine("creator: \(creator.pid) \(creator.isAlive ? "alive" : "dead")")
            if let created = iso8601(unixNanos: mailbox.createdAtUnixNanos) { printLine("created: \(created)") }
            if let totals = mailbox.messageTotals {
                printLine("totals: \(totals.sent) sent, \(totals.received) received")
            } else {
                printLine("totals: unknown (the ring no longer holds them, see README.md)")
            }
            let statistics = mailbox.statistics
            printLine("repairs: \(statistics.repairs), sends that waited for room: \(statistics.fullWaits)")
            let sleepers = mailbox.sleepers
            printLine("sleeping: \(sleepers.receivers) receivers, \(sleepers.senders) senders")
            for participant in mailbox.participants {
                var roles: [String] = []
                if participant.hasSent { roles.append("sent") }
                if participant.hasReceived { roles.append("received") }
                let state = participant.isAlive ? "alive" : "dead"
                printLine("participant: \(participant.process.pid) \(roles.joined(separator: ",")) \(state)")
            }
        }
    }
}
