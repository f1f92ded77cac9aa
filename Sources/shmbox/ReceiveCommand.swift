import ArgumentParser
import ShmMailbox

/// `shmbox receive NAME`: takes messages and prints each on its own line.
struct ReceiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Receive messages and print each on its own line.",
        discussion: """
            Waits for COUNT messages (forever, or until --timeout) and prints each as UTF-8. \
            If the time runs out, prints what arrived and fails. With --nonblocking, prints the \
            messages waiting now (at most COUNT) and succeeds even if there are none.
            """
    )

    @Argument(help: "The mailbox name.")
    var name: String

    @Option(help: "How many messages to receive.")
    var count = 1

    @Option(help: "Wait at most this many seconds in total (default: forever).")
    var timeout: Double?

    @Flag(help: "Do not wait: take only the messages waiting now.")
    var nonblocking = false

    @Flag(help: "Create the mailbox first (it must not exist), owned as --owner says.")
    var create = false

    @Option(help: "With --create: process (this shmbox process owns it; it disappears when this command ends), system or none.")
    var owner = MailboxOptions.Ownership.process

    @Option(help: "With --create: how many messages can wait (a number, zero, unbounded or unbounded:N).")
    var capacity = MailboxOptions().capacity

    @Option(help: "With --create: the largest message in bytes.")
    var maxMessageSize = MailboxOptions().maxMessageSize

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be 1 or more.") }
        try validateTimeout(timeout)
        if nonblocking && timeout != nil {
            throw ValidationError("--nonblocking and --timeout cannot be used together.")
        }
    }

    func run() throws {
        let deadline = timeout.map { ContinuousClock.now + .seconds($0) }
        try reportingMailboxErrors {
            let mailbox = create
                ? try Mailbox.create(name, options: MailboxOptions(capacity: capacity, maxMessageSize: maxMessageSize, ownership: owner))
                : try Mailbox.open(name)
            defer { mailbox.close() }
            if create { printLine("ready") }
            for _ in 0..<count {
                let message: Message
                if nonblocking {
                    guard let waiting = try mailbox.tryReceive() else { return }
                    message = waiting
                } else {
                    message = try mailbox.receive(timeout: deadline.map { $0 - ContinuousClock.now })
                }
                printLine(message.string)
            }
        }
    }
}
