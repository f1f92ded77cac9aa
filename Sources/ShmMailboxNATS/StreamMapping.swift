import ShmMailbox

/// How a remote mailbox or endpoint maps onto JetStream: its stream, the subject sends publish
/// to, the consumer receives fetch from, and the settings kept in the stream's description so
/// that `open` recovers them.
///
/// A mailbox `NAME`: stream `SHMMB_NAME` on subject `shmmb.NAME`, work-queue retention (a message
/// leaves the stream once a receiver acknowledges it), one durable pull consumer `receivers`
/// with explicit acknowledgement that every receiver on every host fetches from, so each message
/// goes to exactly one of them.
///
/// An endpoint `Q`: stream `SHMMB_EP_Q` on subjects `shmmb-ep.Q.*`; endpoint `P` sends to
/// `shmmb-ep.Q.P` (its link to Q). Limits retention with at most `linkCapacity` messages per
/// subject (discard new per subject: a full link blocks its sender only), so that two durable
/// consumers may overlap: `any` (all links, for receive-from-anyone) and `from-P` (one link, for
/// `receive(from: "P")`). A handled message is deleted from the stream, then acknowledged:
/// the delete is the commit point, and the other consumer skips deleted messages.
///
/// The description: `shmmb-remote/1 capacity=… max-message-size=… policy=… ownership=… nonce=…`.
struct StreamMapping: Equatable {
    static let formatTag = "shmmb-remote/1"
    /// Bytes reserved for our headers (message id, sender, receipt inbox) within a message's
    /// size on the server.
    static let headerAllowance = 1024

    /// The mailbox's or the receiving endpoint's name.
    let name: String
    let streamName: String
    /// What the stream listens to.
    let streamSubjects: String
    /// Where sends publish.
    let subject: String
    /// The durable consumer receives fetch from, and what it filters.
    let consumerName: String
    let consumerFilter: String
    /// Endpoint streams: one link per sending endpoint, bounded per subject; a handled message
    /// is deleted from the stream (see above).
    let isEndpoint: Bool

    /// A mailbox.
    init(name: String) throws(RemoteMailboxError) {
        try Self.validate(name)
        self.name = name
        streamName = "SHMMB_" + name
        streamSubjects = "shmmb." + name
        subject = streamSubjects
        consumerName = "receivers"
        consumerFilter = subject
        isEndpoint = false
    }

    /// Endpoint `receiver`'s stream, seen by `sender` (sends go to its link) or, with `sender`
    /// nil, by the receiver itself receiving from anyone; `from` picks one sender's link.
    init(endpoint receiver: String, sender: String?, from: String? = nil) throws(RemoteMailboxError) {
        try Self.validate(receiver)
        if let sender { try Self.validate(sender) }
        if let from { try Self.validate(from) }
        name = receiver
        streamName = "SHMMB_EP_" + receiver
        streamSubjects = "shmmb-ep.\(receiver).*"
        subject = "shmmb-ep.\(receiver).\(sender ?? "_")"
        consumerName = from.map { "from-" + $0 } ?? "any"
        consumerFilter = from.map { "shmmb-ep.\(receiver).\($0)" } ?? streamSubjects
        isEndpoint = true
    }

    /// Names: 1–200 characters of `A–Z a–z 0–9 _ -` (what a stream name, a consumer name, a
    /// subject token and a lease key all accept).
    static func validate(_ name: String) throws(RemoteMailboxError) {
        guard !name.isEmpty, name.utf8.count <= 200 else {
            throw .invalidName(name, reason: "must have 1 to 200 characters")
        }
        for byte in name.utf8 {
            let ok = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x5F || byte == 0x2D
            guard ok else { throw .invalidName(name, reason: "only A-Z a-z 0-9 _ - are allowed") }
        }
    }

    /// The settings a mailbox keeps in its stream description.
    struct Settings: Equatable {
        var capacity: MailboxOptions.Capacity
        var maxMessageSize: Int
        var receiverPolicy: MailboxOptions.ReceiverPolicy
        var ownership: MailboxOptions.Ownership
        var nonce: String
        /// The consumers' redelivery delay (their `ack_wait`), for consumers made later.
        var redeliveryDelay: Duration = .seconds(30)
        /// The largest message the stream stores, less the header allowance (not in the
        /// description: the stream's own `max_msg_size`); nil: `maxMessageSize`.
        var storedSize: Int? = nil

        /// The largest pack a batch may send (see `Pack`): up to `Pack.maxBody`, within what the
        /// stream stores.
        var packLimit: Int { min(storedSize ?? maxMessageSize, Pack.maxBody) }

        var encoded: String {
            let capacityText: String
            switch capacity.kind {
            case .zero: capacityText = "zero"
            case .bounded: capacityText = "bounded:\(capacity.messages)"
            case .unbounded: capacityText = "unbounded"
            }
            return "\(StreamMapping.formatTag) capacity=\(capacityText) max-message-size=\(maxMessageSize) "
                + "policy=\(receiverPolicy.rawValue) ownership=\(ownership.rawValue) nonce=\(nonce) "
                + "redelivery-ms=\(redeliveryDelay.milliseconds)"
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
            if let milliseconds = fields["redelivery-ms"].flatMap({ Int64($0) }) { redeliveryDelay = .milliseconds(milliseconds) }
        }

        init(capacity: MailboxOptions.Capacity, maxMessageSize: Int, receiverPolicy: MailboxOptions.ReceiverPolicy,
             ownership: MailboxOptions.Ownership, nonce: String, redeliveryDelay: Duration) {
            self.redeliveryDelay = redeliveryDelay
            self.capacity = capacity
            self.maxMessageSize = maxMessageSize
            self.receiverPolicy = receiverPolicy
            self.ownership = ownership
            self.nonce = nonce
        }
    }
}
