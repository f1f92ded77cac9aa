import Metrics
import ShmMailbox

/// Counts the slow-path events this process reports (`MailboxEvent`) as a swift-metrics
/// counter, `shmmailbox_events` by default, with the dimensions `mailbox` (its name) and `event`
/// (`MailboxEvent.name`: `slot-repaired`, `role-taken-over`, `segment-grown`,
/// `segments-given-back`, `mailbox-gone`).
///
/// Events are reported by the process that acted, so each process counts its own repairs,
/// takeovers and so on; add up the processes' counters for a mailbox's whole story.
public enum MailboxEventMetrics {
    /// Counts every event reported from now on through `factory` (by default the one
    /// `MetricsSystem` was bootstrapped with), under the label `"\(prefix)_events"`.
    ///
    /// - Returns: The registration of the observer; `MailboxEvents.removeObserver` stops it.
    @discardableResult
    public static func bootstrap(prefix: String = "shmmailbox",
                                 factory: any MetricsFactory = MetricsSystem.factory) -> MailboxEvents.Registration {
        let label = "\(prefix)_events"
        return MailboxEvents.addObserver { event in
            Counter(label: label, dimensions: [("mailbox", event.mailbox), ("event", event.name)], factory: factory).increment()
        }
    }
}
