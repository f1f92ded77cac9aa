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

    func validate() throws {
        try validateTimeout(timeout)
    }

    func run() throws {
        let timeout = timeout.map { Duration.seconds($0) }
        try reportingMailboxErrors {
            let mailbox = try Mailbox.open(name)
            if let text {
                try mailbox.send(text, timeout: timeout)
                return
            }
            while let line = readLine(strippingNewline: true) {
                try mailbox.send(line, timeout: timeout)
            }
        }
    }
}
