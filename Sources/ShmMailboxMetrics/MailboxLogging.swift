#if canImport(Glibc)
import Glibc
#endif
import Logging
import ShmMailbox

/// Routes the slow-path events of ShmMailbox (`MailboxEvent`: a dead process's slot repaired, a
/// role taken over, a segment grown or given back, a mailbox gone) to a swift-log `Logger`.
///
/// ```swift
/// var logger = Logger(label: "shmmailbox")
/// logger.logLevel = .info
/// MailboxLogging.bootstrap(logger: logger)
/// ```
///
/// Nothing is logged on the send or receive path: ShmMailbox reports events only where it
/// repairs, takes over, grows, gives back or removes something, and checks for an observer with
/// one load there.
public enum MailboxLogging {
    /// Logs every event this process reports from now on to `logger`, each as one line (the
    /// event's `description`) at `level(for:)`, with `metadata(for:)` (mailbox name, pid, event
    /// and its details). Call it again to add another logger; stop one with `stop(_:)`.
    ///
    /// - Returns: The registration of the observer, for `stop(_:)`.
    @discardableResult
    public static func bootstrap(logger: Logger) -> MailboxEvents.Registration {
        MailboxEvents.addObserver { event in
            logger.log(level: level(for: event), "\(event.description)", metadata: metadata(for: event))
        }
    }

    /// Stops logging through the observer `registration` names.
    public static func stop(_ registration: MailboxEvents.Registration) {
        MailboxEvents.removeObserver(registration)
    }

    /// The level an event is logged at: `.warning` for what a dead process left behind (a
    /// repair, a role taken over, an owner that died), `.notice` for a mailbox deleted or closed
    /// by its owner, `.info` for an unbounded mailbox growing or giving memory back.
    public static func level(for event: MailboxEvent) -> Logger.Level {
        switch event.kind {
        case .slotRepaired, .roleTakenOver, .mailboxGone(.ownerDied): .warning
        case .mailboxGone: .notice
        case .segmentGrown, .segmentsGivenBack: .info
        }
    }

    /// The metadata logged with an event: `mailbox` (its name), `pid` (this process, which
    /// acted), `event` (`MailboxEvent.name`) and the event's details (`repair` and `position`;
    /// `role` and `previousHolder`; `generation`; `generations`; `ending`).
    public static func metadata(for event: MailboxEvent) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "mailbox": "\(event.mailbox)",
            "pid": "\(getpid())",
            "event": "\(event.name)",
        ]
        switch event.kind {
        case .slotRepaired(let repair, let position):
            metadata["repair"] = "\(repair.rawValue)"
            metadata["position"] = "\(position)"
        case .roleTakenOver(let role, let previous):
            metadata["role"] = "\(role.rawValue)"
            metadata["previousHolder"] = "\(previous.pid)"
        case .segmentGrown(let generation):
            metadata["generation"] = "\(generation)"
        case .segmentsGivenBack(let generations):
            metadata["generations"] = "\(generations.lowerBound)..<\(generations.upperBound)"
        case .mailboxGone(let ending):
            metadata["ending"] = "\(ending.rawValue)"
        }
        return metadata
    }
}
