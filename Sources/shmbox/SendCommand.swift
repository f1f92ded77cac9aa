import ArgumentParser
import ShmMailbox
import ShmboxCLISupport

/// `shmbox send NAME [TEXT]`: sends one message, or one message per record of standard input
/// (or `--file`), in the chosen `MessageFormat`.
/// `shmbox send --as P --to Q TEXT...`: joins endpoint P and sends each TEXT to endpoint Q.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a message to a mailbox, or by name to an endpoint.",
        discussion: """
            Sends TEXT as one message to MAILBOX. Without TEXT, sends each line of standard \
            input (or of --file) as one message, the newline not included; -0 splits at NUL \
            bytes instead, --raw sends all of the input as one message byte for byte, --hex \
            reads hexadecimal lines and --json reads lines {"text": "..."} or {"base64": "..."}. \
            A record that fails stops the send with an error naming its number and how many \
            messages were sent before it; --keep-going skips records with bad data instead and \
            fails at the end. With --as P --to Q there is no MAILBOX: the command joins endpoint \
            P (the name must be free), sends each TEXT (or each input record) to endpoint Q over \
            the link P>Q, and gives P up when it ends.
            """
    )

    @OptionGroup var trust: TrustOptions

    @Argument(help: ArgumentHelp("The mailbox name (not with --to).", valueName: "mailbox"))
    var name: String?

    @Argument(help: "The message (with --to: the messages), in the chosen format; read from standard input when absent.")
    var text: [String] = []

    @Flag(help: "The input format (default: --lines).")
    var format: MessageFormat = .lines

    @Option(help: ArgumentHelp("Read the messages from this file instead of standard input.", valueName: "path"))
    var file: String?

    @Flag(help: "Skip input records with bad data (reporting each), and fail at the end if any were skipped.")
    var keepGoing = false

    @Option(name: .customLong("as"), help: ArgumentHelp("With --to: the endpoint name to send as.", valueName: "name"))
    var endpoint: String?

    @Option(help: ArgumentHelp("The endpoint to send to (direct naming; needs --as).", valueName: "name"))
    var to: String?

    @Option(help: "Wait at most this many seconds for space for each message (default: forever).")
    var timeout: Double?

    @Flag(help: "Return only once a receiver has taken each message, and print which process did.")
    var waitReceived = false

    func validate() throws {
        try validateTimeout(timeout)
        if to != nil || endpoint != nil {
            guard endpoint != nil else { throw ValidationError("--to needs --as NAME (the endpoint name to send as).") }
            guard to != nil else { throw ValidationError("--as needs --to NAME (the endpoint to send to).") }
            if waitReceived { throw ValidationError("--wait-received works with mailboxes only, not with --to.") }
        } else {
            guard name != nil else {
                throw ValidationError("give the MAILBOX to send to, or --as NAME --to NAME to send to an endpoint.")
            }
            guard text.count <= 1 else {
                throw ValidationError("a mailbox send takes one TEXT (quote it), or none to read standard input.")
            }
        }
        if file != nil && (!text.isEmpty || (endpoint != nil && name != nil)) {
            throw ValidationError("--file reads the messages from a file; give no TEXT with it.")
        }
    }

    func run() throws {
        if let endpoint, let to {
            // Without a MAILBOX, the first word is a message too.
            try sendByName(as: endpoint, to: to, texts: (name.map { [$0] } ?? []) + text)
            return
        }
        guard let name else { return }
        try reportingMailboxErrors {
            let mailbox = try Mailbox.open(name, trust: trust.trust)
            defer { mailbox.close() }
            let limit = timeout.map { Duration.seconds($0) }
            let deliver = { (bytes: [UInt8]) throws in
                do {
                    if waitReceived {
                        if let delivery = try mailbox.send(bytes, timeout: limit, until: .received) {
                            printLine("delivered to \(delivery.receiver.pid)")
                        }
                    } else {
                        try mailbox.send(bytes, timeout: limit)
                    }
                } catch MailboxError.timedOut {
                    throw TimeoutCause.send(mailbox: mailbox, timeout: timeout, synchronous: waitReceived)
                }
            }
            try send(texts: text, deliver: deliver)
        }
    }

    /// Sends each of `texts` (decoded in the chosen format), or, if there are none, every
    /// record of the input.
    func send(texts: [String], deliver: @escaping ([UInt8]) throws -> Void) throws {
        guard texts.isEmpty else {
            for text in texts {
                do {
                    try deliver(try format.message(from: Array(text.utf8)))
                } catch let error as FormatError {
                    throw CLIFailure("TEXT: \(error.description)", status: .dataError)
                }
            }
            return
        }
        let input = try SendLoop.openInput(file)
        try SendLoop(format: format, keepGoing: keepGoing, deliver: deliver).run(reading: input)
    }
}

extension SendCommand {
    /// Joins endpoint `sender` and sends each text (or each input record) to `receiver`.
    func sendByName(as sender: String, to receiver: String, texts: [String]) throws {
        try reportingMailboxErrors {
            let endpoint = try Endpoint.join(sender, options: Endpoint.Options(trust: trust.trust))
            defer { endpoint.close() }
            let limit = timeout.map { Duration.seconds($0) }
            try send(texts: texts) { bytes in
                do {
                    try endpoint.send(to: receiver, bytes, timeout: limit)
                } catch MailboxError.timedOut {
                    throw TimeoutCause.send(toEndpoint: receiver, timeout: timeout)
                }
            }
        }
    }
}
