import ShmMailbox
import ShmMailboxNATS
import ShmboxCLISupport

/// Opens the bridge's mailboxes, creating missing ones when `--create` says so, and turns every
/// failure into one clear line.
struct MailboxOpener {
    let connection: NATSConnection
    let create: Bool
    let local: MailboxOptions
    let remote: RemoteMailboxOptions

    func local(_ name: String) throws(CLIFailure) -> Mailbox {
        do {
            do {
                return try Mailbox.open(name)
            } catch .notFound where create {
                do {
                    return try Mailbox.create(name, options: local)
                } catch .alreadyExists {
                    // Another process created it meanwhile.
                    return try Mailbox.open(name)
                }
            }
        } catch .notFound {
            throw CLIFailure("local mailbox \"\(name)\" does not exist; create it (shmbox create \(name)) or pass --create", status: .unavailable)
        } catch {
            throw CLIFailure("local mailbox \"\(name)\": \(error)", status: error.exitStatus)
        }
    }

    func remote(_ name: String) throws(CLIFailure) -> RemoteMailbox {
        do {
            do {
                return try RemoteMailbox.open(name, on: connection)
            } catch .notFound where create {
                do {
                    return try RemoteMailbox.create(name, on: connection, options: remote)
                } catch .alreadyExists {
                    return try RemoteMailbox.open(name, on: connection)
                }
            }
        } catch .notFound {
            throw CLIFailure("remote mailbox '\(name)' does not exist on \(connection.urls.joined(separator: ", ")); pass --create to create it", status: .unavailable)
        } catch {
            throw CLIFailure("remote mailbox '\(name)': \(error)", status: error.exitStatus)
        }
    }
}
