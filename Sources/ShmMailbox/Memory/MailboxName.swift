/// A validated mailbox name and the POSIX shared-memory object name behind it.
///
/// Names are 1–200 characters of `A–Z a–z 0–9 . _ -` and do not start with `.`; the object is
/// `/shmmb.<name>`, which lives in `/dev/shm/shmmb.<name>` on Linux.
struct MailboxName: Sendable, Equatable {
    /// The object-name prefix every ShmMailbox segment carries (without the leading `/`).
    static let objectPrefix = "shmmb."
    static let maxLength = 200

    /// The name as the user gave it.
    let name: String
    /// The name passed to `shm_open` (`/shmmb.<name>`).
    var objectName: String { "/" + Self.objectPrefix + name }

    init(_ name: String) throws(MailboxError) {
        let utf8 = name.utf8
        guard !utf8.isEmpty else { throw .invalidName(name, reason: "it is empty") }
        guard utf8.count <= Self.maxLength else {
            throw .invalidName(name, reason: "it has \(utf8.count) characters, more than \(Self.maxLength)")
        }
        guard utf8.first != UInt8(ascii: ".") else { throw .invalidName(name, reason: "it starts with '.'") }
        for byte in utf8 where !Self.isAllowed(byte) {
            throw .invalidName(name, reason: "it contains the character \"\(Unicode.Scalar(byte).escaped(asASCII: true))\"")
        }
        self.name = name
    }

    /// A name for a segment the library derives from user names (an unbounded mailbox's further
    /// segments, an endpoint, a link between endpoints). Derived names contain a character that
    /// valid names never do (`#`, `@` or `>`), so they cannot collide with a mailbox, and
    /// `Mailbox.list()` leaves them out.
    init(derived name: String) {
        precondition(!name.utf8.contains(UInt8(ascii: "/")) && name.utf8.count <= 250, "bad derived name \(name)")
        self.name = name
    }

    /// Whether `name` is a valid user-given mailbox name (not a derived one).
    static func isValid(_ name: String) -> Bool {
        (try? MailboxName(name)) != nil
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
