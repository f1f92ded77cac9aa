import ShmMailbox

/// What `inspect` (and `list --json`) report about one mailbox, read once from an open handle.
/// The JSON field names are documented in README.md (`shmbox inspect --json`) and are kept
/// stable: fields may be added, never renamed or removed.
struct MailboxReport {
    var mailbox: Mailbox

    /// `bounded`, `zero` or `unbounded`.
    var buffering: String {
        switch mailbox.capacity.kind {
        case .zero: return "zero"
        case .bounded: return "bounded"
        case .unbounded: return "unbounded"
        }
    }

    /// The short form `list` prints and `list --json` holds per mailbox.
    var summary: JSONValue { .object(summaryMembers) }

    /// The members of `summary`, which `details` begins with.
    private var summaryMembers: [(String, JSONValue)] {
        [
            ("name", .string(mailbox.name)),
            ("kind", .string(mailbox.kind.argumentName)),
            ("buffering", .string(buffering)),
            ("capacity", .int(mailbox.capacity.messages)),
            ("maxMessageSize", .int(mailbox.maxMessageSize)),
            ("depth", .int(mailbox.depth)),
        ]
    }

    /// Everything `inspect --json` prints.
    var details: JSONValue {
        let participants = mailbox.participants
        let live = participants.filter(\.isAlive)
        let sleepers = mailbox.sleepers
        let creator = mailbox.creator
        let totals = mailbox.messageTotals
        let statistics = mailbox.statistics
        return .object(summaryMembers + [
            ("segments", .int(mailbox.segmentCount)),
            ("memoryBytes", .int(mailbox.memoryUsed)),
            ("mode", .string(octal(mailbox.permissions))),
            ("uid", .int(Int(mailbox.ownerUID))),
            ("ownership", .string(mailbox.ownership.rawValue)),
            ("owner", .optional(mailbox.owner) { owner in
                .object([("pid", .int(Int(owner.pid))), ("alive", .bool(owner.isAlive))])
            }),
            ("receiverPolicy", .string(mailbox.receiverPolicy.rawValue)),
            ("creator", .object([("pid", .int(Int(creator.pid))), ("alive", .bool(creator.isAlive))])),
            ("createdAt", .optional(iso8601(unixNanos: mailbox.createdAtUnixNanos)) { .string($0) }),
            ("createdAtUnixNanos", .int(Int(clamping: mailbox.createdAtUnixNanos))),
            ("deleted", .bool(mailbox.isDeleted)),
            ("sentTotal", .optional(totals?.sent) { .int(Int(clamping: $0)) }),
            ("receivedTotal", .optional(totals?.received) { .int(Int(clamping: $0)) }),
            ("repairs", .int(Int(clamping: statistics.repairs))),
            ("fullWaits", .int(Int(clamping: statistics.fullWaits))),
            ("sleepingReceivers", .int(sleepers.receivers)),
            ("sleepingSenders", .int(sleepers.senders)),
            ("participants", .array(live.map { participant in
                .object([
                    ("pid", .int(Int(participant.process.pid))),
                    ("roles", .array(Self.roles(of: participant).map { .string($0) })),
                ])
            })),
            ("deadParticipants", .int(participants.count - live.count)),
        ])
    }

    /// `sent` and/or `received`.
    static func roles(of participant: Mailbox.Participant) -> [String] {
        var roles: [String] = []
        if participant.hasSent { roles.append("sent") }
        if participant.hasReceived { roles.append("received") }
        return roles
    }
}
