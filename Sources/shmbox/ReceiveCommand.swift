import ArgumentParser
import ShmMailbox

/// `shmbox receive NAME`: takes messages and prints each on its own line.
/// `shmbox receive --as Q [--from P]`: joins endpoint Q and receives by name.
struct ReceiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Receive messages from a mailbox, or as an endpoint, and print each on its own line.",
        discussion: """
            Waits for COUNT messages (forever, or until --timeout) and prints each as UTF-8. \
            If the time runs out, prints what arrived and fails. With --nonblocking, prints the \
            messages waiting now (at most COUNT) and succeeds even if there are none. With \
            --as Q there is no MAILBOX: the command joins endpoint Q (the name must be free) and \
            receives from endpoint P (--from P, printing each text) or from anyone (printing \
            `SENDER: text`), and gives Q up when it ends.
            """
    )

    @OptionGroup var trust: TrustOptions

    @Argument(help: ArgumentHelp("The mailbox name (not with --as).", valueName: "mailbox"))
    var name: String?

    @Option(name: .customLong("as"), help: ArgumentHelp("Receive as this endpoint (direct naming) instead of from a mailbox.", valueName: "name"))
    var endpoint: String?

    @Option(help: ArgumentHelp("With --as: receive only from this endpoint (default: from anyone, printing the sender's name).", valueName: "name"))
    var from: String?

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
        if endpoint != nil {
            if name != nil { throw ValidationError("give either a MAILBOX or --as NAME, not both.") }
            if create { throw ValidationError("--create makes a mailbox; --as joins an endpoint.") }
        } else {
            if from != nil { throw ValidationError("--from needs --as NAME (the endpoint to receive as).") }
            if name == nil { throw ValidationError("give the MAILBOX to receive from, or --as NAME to receive as an endpoint.") }
        }
    }

    func run() throws {
        let deadline = timeout.map { ContinuousClock.now + .seconds($0) }
        if let endpoint {
            try receiveByName(as: endpoint, deadline: deadline)
            return
        }
        guard let name else { return }
        try reportingMailboxErrors {
            let mailbox = create
                ? try Mailbox.create(name, options: MailboxOptions(capacity: capacity, maxMessageSize: maxMessageSize, ownership: owner))
                : try Mailbox.open(name, trust: trust.trust)
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

extension ReceiveCommand {
    /// Joins endpoint `receiver` and prints up to `count` messages: from `from` only, or from
    /// anyone with the sender's name in front.
    func receiveByName(as receiver: String, deadline: ContinuousClock.Instant?) throws {
        try reportingMailboxErrors {
            let endpoint = try Endpoint.join(receiver, options: Endpoint.Options(trust: trust.trust))
            defer { endpoint.close() }
            for _ in 0..<count {
                let remaining = deadline.map { $0 - ContinuousClock.now }
                if let from {
                    let message = nonblocking ? try endpoint.tryReceive(from: from)
                                              : try endpoint.receive(from: from, timeout: remaining)
                    guard let message else { return }
                    printLine(message.string)
                } else {
                    let message = nonblocking ? try endpoint.tryReceive() : try endpoint.receive(timeout: remaining)
                    guard let message else { return }
                    printLine("\(message.from): \(message.string)")
                }
            }
        }
    }
}
