import ArgumentParser
import ShmMailbox

/// `shmbox inspect NAME`: prints a mailbox's settings, depth and participants.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a mailbox's settings, depth and participants.",
        discussion: """
            Prints `key: value` lines; one `participant:` line per process recorded as having \
            sent or received: its pid, its roles, and whether it still runs.
            """
    )

    @OptionGroup var trust: TrustOptions

    @Argument(help: "The mailbox name.")
    var name: String

    func run() throws {
        try reportingMailboxErrors {
            let mailbox = try Mailbox.open(name, trust: trust.trust)
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
