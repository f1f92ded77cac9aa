import ArgumentParser
import ShmMailbox
import ShmboxCLISupport

/// `shmbox create NAME`: creates a mailbox.
struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a mailbox.",
        discussion: "Shared memory of about capacity × max-message-size bytes is reserved at once (per segment when unbounded)."
    )

    @Argument(help: "The mailbox name.")
    var name: String

    @Option(help: """
        How many messages can wait: a number (1-16777216); zero (every send waits for a \
        receiver; shared only); unbounded or unbounded:N (senders never wait: the mailbox grows \
        by segments of N messages, default 1024, and gives them back when drained; shared only).
        """)
    var capacity = MailboxOptions().capacity

    @Option(help: "The largest message in bytes (1 B to 1 GiB).")
    var maxMessageSize = MailboxOptions().maxMessageSize

    @Option(help: "Permission bits in octal; must include 0600 (owner read and write).")
    var mode = OctalMode(bits: MailboxOptions().permissions)

    @Option(help: "shared: any number of senders and receivers; one-to-one: one of each, faster.")
    var kind = KindArgument.shared

    @Option(help: """
        none: anyone may receive; system: owned by --owner-pid (or this command), which grants \
        receive rights. For a process-owned mailbox use `shmbox receive NAME --create`.
        """)
    var owner = MailboxOptions.Ownership.none

    @Option(help: "With --owner system: the process to hand ownership to right away.")
    var ownerPid: Int32?

    @Option(help: "Who may receive: pair (one sender, one receiver), exclusive (one receiver at a time) or competing (default for shared).")
    var policy: MailboxOptions.ReceiverPolicy?

    func validate() throws {
        if owner == .process {
            throw ValidationError("a process-owned mailbox would vanish when this command ends; use `shmbox receive NAME --create --owner process`.")
        }
        if ownerPid != nil && owner != .system {
            throw ValidationError("--owner-pid needs --owner system.")
        }
    }

    func run() throws {
        let options = MailboxOptions(capacity: capacity, maxMessageSize: maxMessageSize,
                                     kind: kind.ringKind, permissions: mode.bits, ownership: owner,
                                     receiverPolicy: policy)
        try reportingMailboxErrors {
            let mailbox = try Mailbox.create(name, options: options)
            if let ownerPid {
                // This command ends at once; a system-owned mailbox keeps living, so hand it on.
                try mailbox.transferOwnership(to: ownerPid)
            }
        }
    }
}
