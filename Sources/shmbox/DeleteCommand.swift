import ArgumentParser
import ShmMailbox
import ShmboxCLISupport

/// `shmbox delete NAME`: ends a mailbox.
struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a mailbox: remove its name and end it for everyone.",
        discussion: """
            Refused while live processes receive from it (exit 75) unless --force. Processes \
            blocked in it wake up with "deleted"; from then on their sends fail, and receives fail \
            once they have taken what is left in it. Use `shmbox unlink` to remove only the name.
            """
    )

    @Argument(help: "The mailbox name.")
    var name: String

    @Flag(help: "Delete it even while live processes receive from it (they get \"deleted\").")
    var force = false

    func run() throws {
        try reportingMailboxErrors {
            // Live receivers: those that received and still run, and those asleep in a receive
            // now (a blocked receiver may not have received anything yet).
            let mailbox = try Mailbox.open(name)
            let receivers = mailbox.participants.filter { $0.hasReceived && $0.isAlive }.map(\.process.pid)
            let asleep = mailbox.sleepers.receivers
            mailbox.close()
            if !receivers.isEmpty || asleep > 0 {
                var who = receivers.isEmpty ? [] : ["pids \(receivers.map(String.init).joined(separator: ", "))"]
                if asleep > 0 { who.append("\(asleep) waiting in receive") }
                let description = "mailbox \"\(name)\" has live receivers (\(who.joined(separator: "; ")))"
                guard force else {
                    throw CLIFailure("\(description); they would get \"deleted\": add --force to delete it anyway",
                                     status: .temporaryFailure)
                }
                printDiagnostic("shmbox: \(description); deleting it anyway: they get \"deleted\"")
            }
            try Mailbox.delete(name)
        }
    }
}

/// `shmbox unlink NAME`: removes a mailbox's name only.
struct UnlinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlink",
        abstract: "Remove a mailbox's name only.",
        discussion: "Processes that have it open go on using it; the memory is freed when the last of them closes it."
    )

    @Argument(help: "The mailbox name.")
    var name: String

    func run() throws {
        try reportingMailboxErrors {
            try Mailbox.unlink(name)
        }
    }
}
