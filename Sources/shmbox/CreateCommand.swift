import ArgumentParser
import ShmMailbox

/// `shmbox create NAME`: creates a mailbox.
struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a mailbox.",
        discussion: "Shared memory of about capacity × max-message-size bytes is reserved at once."
    )

    @Argument(help: "The mailbox name.")
    var name: String

    @Option(help: "The most messages that can wait (1-16777216).")
    var capacity = MailboxOptions().capacity

    @Option(help: "The largest message in bytes (1 B to 1 GiB).")
    var maxMessageSize = MailboxOptions().maxMessageSize

    @Option(help: "Permission bits in octal; must include 0600 (owner read and write).")
    var mode = OctalMode(bits: MailboxOptions().permissions)

    @Option(help: "shared: any number of senders and receivers; one-to-one: one of each, faster.")
    var kind = KindArgument.shared

    func run() throws {
        let options = MailboxOptions(capacity: capacity, maxMessageSize: maxMessageSize,
                                     kind: kind.ringKind, permissions: mode.bits)
        try reportingMailboxErrors {
            _ = try Mailbox.create(name, options: options)
        }
    }
}
