import ArgumentParser
import ShmMailbox
import ShmboxCLISupport

/// `shmbox peek NAME`: shows waiting messages without taking them.
struct PeekCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peek",
        abstract: "Show waiting messages without taking them.",
        discussion: """
            Prints the oldest waiting messages, one payload per line, as `receive` would, but \
            leaves them in the mailbox: peeking writes nothing to the mailbox and does not count \
            as a participant. Messages being sent or taken while it copies are left out, so it may \
            show fewer than the depth. With --json, one JSON object (fields in README.md).
            """
    )

    @OptionGroup var trust: TrustOptions

    @Argument(help: "The mailbox name.")
    var name: String

    @Option(help: "Show at most this many messages.")
    var count = 10

    @Flag(help: "Print one JSON object (stable field names, see README.md).")
    var json = false

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must be 0 or more.") }
    }

    func run() throws {
        try reportingMailboxErrors {
            let mailbox = try Mailbox.open(name, trust: trust.trust)
            let messages = mailbox.peek(limit: count)
            guard json else {
                for message in messages { printLine(message.string) }
                return
            }
            printLine(JSONValue.object([
                ("name", .string(mailbox.name)),
                ("depth", .int(mailbox.depth)),
                ("messages", .array(messages.map { message in
                    .object([
                        ("sender", .int(Int(message.sender.pid))),
                        ("redelivered", .bool(message.isRedelivered)),
                        ("size", .int(message.bytes.count)),
                        ("text", .string(message.string)),
                    ])
                })),
            ]).text)
        }
    }
}
