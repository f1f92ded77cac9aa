import ShmMailbox
import ShmMailboxNATS

/// Opens the bridge's mailboxes, creating missing ones when `--create` says so, and turns every
/// failure into one clear line.
struct MailboxOpener {
    let connection: NATSConnection
    let create: Bool
    let local: MailboxOptions
    let remote: RemoteMailboxOptions

    func local(_ name: String) throws(BridgeError) -> Mailbox {
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
            throw BridgeError("local mailbox \"\(name)\" does not exist; create it (shmbox create \(name)) or pass --create")
        } catch {
            throw BridgeError("local mailbox \"\(name)\": \(error)")
        }
    }

    func remote(_ name: String) throws(BridgeError) -> RemoteMailbox {
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
            throw BridgeError("remote mailbox '\(name)' does not exist on \(connection.urls.joined(separator: ", ")); pass --create to create it")
        } catch {
            throw BridgeError("remote mailbox '\(name)': \(error)")
        }
    }
}
