import ArgumentParser
import ShmMailbox

/// `shmbox delete NAME`: ends a mailbox.
struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a mailbox: remove its name and end it for everyone.",
        discussion: """
            Processes blocked in it wake up with "deleted"; from then on their sends fail, and \
            receives fail once they have taken what is left in it. Use `shmbox unlink` to remove \
            only the name.
            """
    )

    @Argument(help: "The mailbox name.")
    var name: String

    func run() throws {
        try reportingMailboxErrors {
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
