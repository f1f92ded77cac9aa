import ArgumentParser
import ShmMailbox

/// `shmbox send NAME [TEXT]`: sends one message, or one message per line of standard input.
/// `shmbox send --as P --to Q TEXT...`: joins endpoint P and sends each TEXT to endpoint Q.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a message to a mailbox, or by name to an endpoint.",
        discussion: """
            Sends TEXT as one message to MAILBOX. Without TEXT, sends each line of standard \
            input (without its newline) as one message. With --as P --to Q there is no MAILBOX: \
            the command joins endpoint P (the name must be free), sends each TEXT (or each line \
            of standard input) to endpoint Q over the link P>Q, and gives P up when it ends.
            """
    )

    @OptionGroup var trust: TrustOptions

    @Argument(help: ArgumentHelp("The mailbox name (not with --to).", valueName: "mailbox"))
    var name: String?

    @Argument(help: "The message (with --to: the messages); read lines from standard input when absent.")
    var text: [String] = []

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
                throw ValidationError("a mailbox send takes one TEXT (quote it), or none to read lines from standard input.")
            }
        }
    }

    func run() throws {
        let timeout = timeout.map { Duration.seconds($0) }
        if let endpoint, let to {
            // Without a MAILBOX, the first word is a message too.
            try sendByName(as: endpoint, to: to, texts: (name.map { [$0] } ?? []) + text, timeout: timeout)
            return
        }
        guard let name else { return }
        let text = text.first
        try reportingMailboxErrors {
            let mailbox = try Mailbox.open(name, trust: trust.trust)
            func send(_ message: String) throws(MailboxError) {
                guard waitReceived else {
                    try mailbox.send(message, timeout: timeout)
                    return
                }
                if let delivery = try mailbox.send(message, timeout: timeout, until: .received) {
                    printLine("delivered to \(delivery.receiver.pid)")
                }
            }
            if let text {
                try send(text)
                return
            }
            while let line = readLine(strippingNewline: true) {
                try send(line)
            }
        }
    }
}

extension SendCommand {
    /// Joins endpoint `sender` and sends each text (or each line of standard input) to `receiver`.
    func sendByName(as sender: String, to receiver: String, texts: [String], timeout: Duration?) throws {
        try reportingMailboxErrors {
            let endpoint = try Endpoint.join(sender, options: Endpoint.Options(trust: trust.trust))
            defer { endpoint.close() }
            if !texts.isEmpty {
                for text in texts { try endpoint.send(to: receiver, text, timeout: timeout) }
                return
            }
            while let line = readLine(strippingNewline: true) {
                try endpoint.send(to: receiver, line, timeout: timeout)
            }
        }
    }
}
