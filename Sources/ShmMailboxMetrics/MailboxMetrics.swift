import Metrics
import ShmMailbox

/// Exports the counters of mailboxes (`Mailbox.statistics`) through swift-metrics, on demand
/// (`collect()`) or periodically (`run(every:)`).
///
/// ```swift
/// let metrics = MailboxMetrics()
/// metrics.add(try Mailbox.open("jobs"))
/// await metrics.run(every: .seconds(10))        // until the task is cancelled
/// ```
///
/// Each mailbox's metrics carry the dimension `mailbox` (its name). With the default `prefix`:
///
/// | Metric | Type | Value |
/// |---|---|---|
/// | `shmmailbox_messages_sent` | counter | messages sent into the mailbox |
/// | `shmmailbox_messages_received` | counter | messages taken out of it |
/// | `shmmailbox_repairs` | counter | slots repaired after their holder died (by any process) |
/// | `shmmailbox_full_waits` | counter | sends that found it full and waited for room |
/// | `shmmailbox_depth` | gauge | messages waiting |
/// | `shmmailbox_segments` | gauge | shared-memory segments it occupies |
/// | `shmmailbox_memory_bytes` | gauge | bytes of shared memory it occupies |
/// | `shmmailbox_sleeping_receivers` | gauge | processes asleep waiting for a message |
/// | `shmmailbox_sleeping_senders` | gauge | processes asleep waiting for space |
///
/// The first collection adds the totals since the mailbox was created where the segment tells
/// them (`Mailbox.messageTotals`); later ones add what changed. A one-to-one mailbox past its
/// first lap has no totals: the counters then add the messages between two collections,
/// counted by `TrafficMeter` (collect often enough that the ring does not lap between two).
///
/// Reading costs a few loads per mailbox (see `Mailbox.statistics`); nothing is written to the
/// segments. Not `Sendable`, like the handles it reads: use one exporter from one task.
public final class MailboxMetrics {
    /// One mailbox's handle, metrics and previous sample.
    private final class Entry {
        let mailbox: Mailbox
        let meter: TrafficMeter
        let sent: Counter
        let received: Counter
        let repairs: Counter
        let fullWaits: Counter
        let depth: Gauge
        let segments: Gauge
        let memory: Gauge
        let sleepingReceivers: Gauge
        let sleepingSenders: Gauge
        /// The totals at the previous collection, when they were known.
        var lastTotals: (sent: UInt64, received: UInt64)?
        /// Whether the mailbox has been collected before.
        var collected = false
        /// `repairs` and `fullWaits` at the previous collection (0 before the first).
        var lastRepairs: UInt64 = 0
        var lastFullWaits: UInt64 = 0

        init(_ mailbox: Mailbox, prefix: String, factory: any MetricsFactory) {
            self.mailbox = mailbox
            meter = TrafficMeter(mailbox)
            let dimensions = [("mailbox", mailbox.name)]
            sent = Counter(label: "\(prefix)_messages_sent", dimensions: dimensions, factory: factory)
            received = Counter(label: "\(prefix)_messages_received", dimensions: dimensions, factory: factory)
            repairs = Counter(label: "\(prefix)_repairs", dimensions: dimensions, factory: factory)
            fullWaits = Counter(label: "\(prefix)_full_waits", dimensions: dimensions, factory: factory)
            depth = Gauge(label: "\(prefix)_depth", dimensions: dimensions, factory: factory)
            segments = Gauge(label: "\(prefix)_segments", dimensions: dimensions, factory: factory)
            memory = Gauge(label: "\(prefix)_memory_bytes", dimensions: dimensions, factory: factory)
            sleepingReceivers = Gauge(label: "\(prefix)_sleeping_receivers", dimensions: dimensions, factory: factory)
            sleepingSenders = Gauge(label: "\(prefix)_sleeping_senders", dimensions: dimensions, factory: factory)
        }
    }

    /// The first part of every metric's label (`shmmailbox` by default).
    public let prefix: String
    private let factory: any MetricsFactory
    private var entries: [Entry] = []

    /// An exporter that reports through `factory` (by default the one `MetricsSystem` was
    /// bootstrapped with), under labels starting with `prefix`.
    public init(prefix: String = "shmmailbox", factory: any MetricsFactory = MetricsSystem.factory) {
        self.prefix = prefix
        self.factory = factory
    }

    /// The names of the mailboxes exported, in the order added.
    public var mailboxes: [String] { entries.map(\.mailbox.name) }

    /// Exports `mailbox` from the next collection on. The exporter keeps the handle (it only
    /// reads through it); close it after `remove(_:)`.
    public func add(_ mailbox: Mailbox) {
        entries.append(Entry(mailbox, prefix: prefix, factory: factory))
    }

    /// Stops exporting the mailbox named `name` and destroys its metrics.
    public func remove(_ name: String) {
        for entry in entries where entry.mailbox.name == name {
            for counter in [entry.sent, entry.received, entry.repairs, entry.fullWaits] { counter.destroy() }
            for gauge in [entry.depth, entry.segments, entry.memory, entry.sleepingReceivers, entry.sleepingSenders] {
                gauge.destroy()
            }
        }
        entries.removeAll { $0.mailbox.name == name }
    }

    /// Reads every exported mailbox's statistics now and reports them.
    public func collect() {
        for entry in entries { collect(entry) }
    }

    /// Collects every `interval` until the calling task is cancelled (then returns).
    public func run(every interval: Duration) async {
        while !Task.isCancelled {
            collect()
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
        }
    }

    private func collect(_ entry: Entry) {
        let stats = entry.mailbox.statistics
        var sent: UInt64 = 0
        var received: UInt64 = 0
        if let totalSent = stats.messagesSent, let totalReceived = stats.messagesReceived {
            // Totals only grow; a smaller value (a garbage position) adds nothing.
            let last = entry.lastTotals ?? (entry.collected ? (totalSent, totalReceived) : (0, 0))
            sent = totalSent > last.sent ? totalSent - last.sent : 0
            received = totalReceived > last.received ? totalReceived - last.received : 0
            entry.lastTotals = (max(totalSent, last.sent), max(totalReceived, last.received))
        } else {
            entry.lastTotals = nil
        }
        // A mailbox without totals now, or that may lose them (one-to-one), keeps its meter's
        // baseline current, and counts by it when the totals are gone.
        if stats.kind == .oneToOne || stats.messagesSent == nil {
            let counts = entry.meter.sample()
            if stats.messagesSent == nil {
                sent = UInt64(max(0, counts.sent ?? 0))
                received = UInt64(max(0, counts.received ?? 0))
            }
        }
        entry.collected = true
        if sent > 0 { entry.sent.increment(by: Int64(clamping: sent)) }
        if received > 0 { entry.received.increment(by: Int64(clamping: received)) }
        // Counters only grow; a smaller value (garbage in the segment) adds nothing.
        if stats.repairs > entry.lastRepairs {
            entry.repairs.increment(by: Int64(clamping: stats.repairs - entry.lastRepairs))
            entry.lastRepairs = stats.repairs
        }
        if stats.fullWaits > entry.lastFullWaits {
            entry.fullWaits.increment(by: Int64(clamping: stats.fullWaits - entry.lastFullWaits))
            entry.lastFullWaits = stats.fullWaits
        }
        entry.depth.record(stats.depth)
        entry.segments.record(stats.segments)
        entry.memory.record(stats.memoryUsed)
        entry.sleepingReceivers.record(stats.sleepingReceivers)
        entry.sleepingSenders.record(stats.sleepingSenders)
    }
}
