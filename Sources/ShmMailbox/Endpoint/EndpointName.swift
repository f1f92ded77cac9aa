/// Endpoint names and the derived segment names behind them.
///
/// An endpoint name follows the mailbox naming rules (`A–Z a–z 0–9 . _ -`, not starting with
/// `.`) but has at most 100 characters, so that a link's object name `/shmmb.@P>Q` stays well
/// under `NAME_MAX` (255). The segments are named with characters (`@`, `>`) that mailbox names
/// never contain, so they never collide with a mailbox and `Mailbox.list()` leaves them out.
enum EndpointName {
    static let maxLength = 100

    /// Checks `name` against the endpoint naming rules.
    static func validate(_ name: String) throws(MailboxError) {
        _ = try MailboxName(name)
        let length = name.utf8.count
        guard length <= maxLength else {
            throw .invalidName(name, reason: "it has \(length) characters, but an endpoint name has at most \(maxLength)")
        }
    }

    /// The segment of endpoint `name` (`/shmmb.@name`): holder, doorbell, incoming-link table.
    static func segment(_ name: String) -> MailboxName {
        MailboxName(derived: "@" + name)
    }

    /// The one-to-one mailbox carrying messages from `sender` to `receiver` (`/shmmb.@sender>receiver`).
    static func link(from sender: String, to receiver: String) -> MailboxName {
        MailboxName(derived: "@" + sender + ">" + receiver)
    }

    /// What a derived object name (without `shmmb.`) stands for: an endpoint, a link, or neither.
    enum Object: Equatable {
        case endpoint(String)
        case link(from: String, to: String)
    }

    static func parse(objectName: String) -> Object? {
        guard objectName.hasPrefix("@") else { return nil }
        let rest = objectName.dropFirst()
        let parts = rest.split(separator: ">", omittingEmptySubsequences: false)
        switch parts.count {
        case 1 where isValid(String(parts[0])):
            return .endpoint(String(parts[0]))
        case 2 where isValid(String(parts[0])) && isValid(String(parts[1])):
            return .link(from: String(parts[0]), to: String(parts[1]))
        default:
            return nil
        }
    }

    static func isValid(_ name: String) -> Bool {
        (try? validate(name)) != nil
    }
}
