import ArgumentParser
import ShmMailbox
import ShmboxCLISupport

/// `shmbox list`: lists the mailboxes in /dev/shm (with `--all`, also endpoints and their links).
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the mailboxes in /dev/shm.",
        discussion: """
            Prints one line per mailbox: its name, then its kind, capacity and depth, or the \
            error met opening it. With --all, then one line per endpoint (`endpoint NAME`) and \
            per link between endpoints with the messages waiting in it (`link FROM>TO depth=N`, or \
            the error met opening it). With --json, one JSON object instead \
            (fields in README.md).
            """
    )

    @OptionGroup var trust: TrustOptions

    @Flag(help: "Also list endpoints (/dev/shm/shmmb.@NAME) and their links (shmmb.@FROM>TO) with their depths.")
    var all = false

    @Flag(help: "Print one JSON object (stable field names, see README.md).")
    var json = false

    func run() throws {
        try reportingMailboxErrors {
            var mailboxes: [JSONValue] = []
            for name in try Mailbox.list() {
                do {
                    let mailbox = try Mailbox.open(name, trust: trust.trust)
                    if json {
                        mailboxes.append(MailboxReport(mailbox: mailbox).summary)
                    } else {
                        printLine("\(name) kind=\(mailbox.kind.argumentName) capacity=\(mailbox.capacity) depth=\(mailbox.depth)")
                    }
                } catch {
                    if json {
                        mailboxes.append(.object([("name", .string(name)), ("error", .string("\(error)"))]))
                    } else {
                        printLine("\(name) error: \(error)")
                    }
                }
            }
            var members: [(String, JSONValue)] = [("mailboxes", .array(mailboxes))]
            if all {
                let endpoints = try Endpoint.list()
                let links = try Endpoint.links()
                if json {
                    members.append(("endpoints", .array(endpoints.map { .object([("name", .string($0))]) })))
                    members.append(("links", .array(links.map { link in
                        var fields: [(String, JSONValue)] = [
                            ("from", .string(link.from)), ("to", .string(link.to)),
                            ("object", .string("shmmb.@\(link.from)>\(link.to)")),
                        ]
                        do {
                            fields.append(("depth", .int(try link.depth(trust: trust.trust))))
                        } catch {
                            fields.append(("error", .string("\(error)")))
                        }
                        return .object(fields)
                    })))
                } else {
                    for endpoint in endpoints { printLine("endpoint \(endpoint)") }
                    for link in links {
                        do {
                            printLine("link \(link.from)>\(link.to) depth=\(try link.depth(trust: trust.trust))")
                        } catch {
                            printLine("link \(link.from)>\(link.to) error: \(error)")
                        }
                    }
                }
            }
            if json { printLine(JSONValue.object(members).text) }
        }
    }
}
