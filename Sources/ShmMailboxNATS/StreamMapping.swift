import ShmMailbox

/// How a remote mailbox maps onto JetStream: its stream, subject and consumer names, and the
/// mailbox's own settings, kept in the stream's description so that `open` recovers them.
///
/// - stream `SHMMB_<name>`, subject `shmmb.<name>`, work-queue retention (a message leaves the
///   stream once a receiver acknowledges it);
/// - one durable pull consumer, `receivers`, explicit acknowledgement: every receiver on every
///   host fetches from it, so each message goes to exactly one of them;
/// - description `shmmb-remote/1 capacity=… max-message-size=… policy=… ownership=… nonce=…`.
struct StreamMapping: Equatable {
    static let formatTag = "shmmb-remote/1"
    static let consumerName = "receivers"
    /// Bytes reserved for our headers (message id, sender, receipt inbox) within a message's
    /// size on the server.
    static let headerAllowance = 1024

    let name: String
    var streamName: String { "SHMMB_" + name }
    var subject: String { "shmmb." + name }

    /// Mailbox names: 1–200 characters of `A–Z a–z 0–9 _ -` (what a stream name and a subject
    /// token both accept).
    init(name: String) throws(RemoteMailboxError) {
        guard !name.isEmpty, name.utf8.count <= 200 else {
            throw .invalidName(name, reason: "must have 1 to 200 characters")
        }
        for byte in name.utf8 {
            let ok = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x5F || byte == 0x2D
            guard ok else { throw .invalidName(name, reason: "only A-Z a-z 0-9 _ - are allowed") }
        }
        self.name = name
    }

    /// The settings a mailbox keeps in its stream description.
    struct Settings: Equatable {
        var capacity: Capacity
        var maxMessageSize: Int
        var receiverPolicy: MailboxOptions.ReceiverPolicy
        var ownership: MailboxOptions.Ownership
        var nonce: String

        var encoded: String {
            let capacityText: String
            switch capacity.kind {
            case .zero: capacityText = "zero"
            case .bounded: capacityText = "bounded:\(capacity.messages)"
            case .unbounded: capacityText = "unbounded"
            }
            return "\(StreamMapping.formatTag) capacity=\(capacityText) max-message-size=\(maxMessageSize) "
                + "policy=\(receiverPolicy.rawValue) ownership=\(ownership.rawValue) nonce=\(nonce)"
        }

        /// nil when the description is not ours (another program's stream).
        init?(description: String) {
            let words = description.split(separator: " ")
            guard words.first.map(String.init) == StreamMapping.formatTag else { return nil }
            var fields: [String: String] = [:]
            for word in words.dropFirst() {
                let pair = word.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
            }
            guard let capacityText = fields["capacity"], let size = fields["max-message-size"].flatMap({ Int($0) }),
                  let policy = fields["policy"].flatMap({ MailboxOptions.ReceiverPolicy(rawValue: $0) }),
                  let ownership = fields["ownership"].flatMap({ MailboxOptions.Ownership(rawValue: $0) }),
                  let nonce = fields["nonce"]
            else { return nil }
            switch capacityText {
            case "zero": capacity = .zero
            case "unbounded": capacity = .unbounded
            default:
                guard capacityText.hasPrefix("bounded:"), let n = Int(capacityText.dropFirst(8)), n > 0 else { return nil }
                capacity = .bounded(n)
            }
            maxMessageSize = size
            receiverPolicy = policy
            self.ownership = ownership
            self.nonce = nonce
        }

        init(capacity: Capacity, maxMessageSize: Int, receiverPolicy: MailboxOptions.ReceiverPolicy,
             ownership: MailboxOptions.Ownership, nonce: String) {
            self.capacity = capacity
            self.maxMessageSize = maxMessageSize
            self.receiverPolicy = receiverPolicy
            self.ownership = ownership
            self.nonce = nonce
        }
    }
}
