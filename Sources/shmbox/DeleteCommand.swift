import ArgumentParser
import ShmMailbox

/// `shmbox delete NAME`: removes a mailbox's name.
struct DeleteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a mailbox.",
        discussion: "Processes that have it open keep using it until they close it."
    )

    @Argument(help: "The mailbox name.")
    var name: String

    func run() throws {
        try reportingMailboxErrors {
            try Mailbox.delete(name)
        }
    }
}
