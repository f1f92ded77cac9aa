import ArgumentParser
import ShmMailbox

/// `shmbox list`: lists the mailboxes in /dev/shm.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the mailboxes in /dev/shm.",
        discussion: """
            Prints one line per mailbox: its name, then its kind, capacity and depth, or the \
            error met opening it.
            """
    )

    @OptionGroup var trust: TrustOptions

    func run() throws {
        try reportingMailboxErrors {
            for name in try Mailbox.list() {
                do {
                    let mailbox = try Mailbox.open(name, trust: trust.trust)
                    printLine("\(name) kind=\(mailbox.kind.argumentName) capacity=\(mailbox.capacity) depth=\(mailbox.depth)")
                } catch {
                    printLine("\(name) error: \(error)")
                }
            }
        }
    }
}
