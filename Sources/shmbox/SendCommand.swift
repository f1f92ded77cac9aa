import ArgumentParser
import ShmMailbox

/// `shmbox send NAME [TEXT]`: sends one message, or one message per line of standard input.
struct SendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a message.",
        discussion: """
            Sends TEXT as one message. Without TEXT, sends each line of standard input \
            (without its newline) as one message.
            """
    )

    @Argument(help: "The mailbox name.")
    var name: String

    @Argument(help: "The message; read lines from standard input when absent.")
    var text: String?

    @Option(help: "Wait at most this many seconds for space for each message (default: forever).")
    var timeout: Double?

    @Flag(help: "Return only once a receiver has taken each message, and print which process did.")
    var waitReceived = false

    func validate() throws {
        try validateTimeout(timeout)
    }

    func run() throws {
        let timeout = timeout.map { Duration.seconds($0) }
        try reportingMailboxErrors {
            let mailbox = try Mailbox.open(name)
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
