import ArgumentParser
import ShmMailbox
import ShmboxCLISupport

/// `shmbox receive NAME`: takes messages and prints each on its own line.
/// `shmbox receive --as Q [--from P]`: joins endpoint Q and receives by name.
struct ReceiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Receive messages from a mailbox, or as an endpoint, and print each on its own line.",
        discussion: """
            Waits for COUNT messages (forever, or until --timeout) and writes each in the \
            chosen format (default: its bytes and a newline). If the time runs out, writes what \
            arrived and fails. With --nonblocking, writes the messages waiting now (all, or at \
            most COUNT) and succeeds even if there are none. With --follow, receives until \
            SIGINT or SIGTERM, then exits 0 after the message in hand. With \
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

    @Option(help: "How many messages to receive (default: 1; with --nonblocking: all that are waiting).")
    var count: Int?

    @Option(help: "Wait at most this many seconds in total (default: forever).")
    var timeout: Double?

    @Flag(help: "Do not wait: take the messages waiting now (at most --count) and succeed even if there are none.")
    var nonblocking = false

    @Flag(help: "Keep receiving until SIGINT or SIGTERM, which end it (exit 0) after the message in hand.")
    var follow = false

    @Flag(help: "The output format (default: --lines).")
    var format: MessageFormat = .lines

    @Flag(help: "Create the mailbox first (it must not exist), owned as --owner says.")
    var create = false

    @Option(help: "With --create: process (this shmbox process owns it; it disappears when this command ends), system or none.")
    var owner = MailboxOptions.Ownership.process

    @Option(help: "With --create: how many messages can wait (a number, zero, unbounded or unbounded:N).")
    var capacity = MailboxOptions().capacity

    @Option(help: "With --create: the largest message in bytes.")
    var maxMessageSize = MailboxOptions().maxMessageSize

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be 1 or more.") }
        try validateTimeout(timeout)
        if nonblocking && timeout != nil {
            throw ValidationError("--nonblocking and --timeout cannot be used together.")
        }
        if follow && (nonblocking || timeout != nil || count != nil) {
            throw ValidationError("--follow receives until interrupted; it takes no --count, --timeout or --nonblocking.")
        }
        if format == .raw && endpoint != nil && from == nil {
            throw ValidationError("--raw cannot show which endpoint sent each message; add --from NAME.")
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
        if let endpoint {
            try receiveByName(as: endpoint)
            return
        }
        guard let name else { return }
        try reportingMailboxErrors {
            let mailbox = create
                ? try Mailbox.create(name, options: MailboxOptions(capacity: capacity, maxMessageSize: maxMessageSize, ownership: owner))
                : try Mailbox.open(name, trust: trust.trust)
            defer { mailbox.close() }
            if create { printLine("ready") }
            try loop(source: "mailbox \"\(name)\"") { wait in
                do {
                    let message = wait == .zero ? try mailbox.tryReceive() : try mailbox.receive(timeout: wait)
                    return message.map { ReceivedMessage(bytes: $0.bytes, sender: $0.sender.pid, redelivered: $0.isRedelivered) }
                } catch MailboxError.timedOut {
                    return nil
                }
            }.run()
        }
    }

    /// The loop this command's flags ask for, taking messages with `take`.
    func loop(source: String, take: @escaping (Duration?) throws -> ReceivedMessage?) -> ReceiveLoop {
        let mode: ReceiveLoop.Mode
        if follow {
            mode = .follow
        } else if nonblocking {
            mode = .drain(limit: count)
        } else {
            mode = .count(count ?? 1, deadline: timeout.map { ContinuousClock.now + .seconds($0) }, timeout: timeout)
        }
        return ReceiveLoop(format: format, mode: mode, source: source, take: take)
    }
}

extension ReceiveCommand {
    /// Joins endpoint `receiver` and receives from `from` only, or from anyone with the
    /// sender's name in front.
    func receiveByName(as receiver: String) throws {
        try reportingMailboxErrors {
            let endpoint = try Endpoint.join(receiver, options: Endpoint.Options(trust: trust.trust))
            defer { endpoint.close() }
            let source = from.map { "the link from endpoint \"\($0)\"" } ?? "endpoint \"\(receiver)\""
            try loop(source: source) { wait in
                do {
                    if let from {
                        let message = wait == .zero ? try endpoint.tryReceive(from: from) : try endpoint.receive(from: from, timeout: wait)
                        return message.map { ReceivedMessage(bytes: $0.bytes, sender: $0.sender.pid, redelivered: $0.isRedelivered) }
                    }
                    let message = wait == .zero ? try endpoint.tryReceive() : try endpoint.receive(timeout: wait)
                    return message.map {
                        ReceivedMessage(bytes: $0.bytes, sender: $0.message.sender.pid, redelivered: $0.message.isRedelivered, from: $0.from)
                    }
                } catch MailboxError.timedOut {
                    return nil
                }
            }.run()
        }
    }
}
