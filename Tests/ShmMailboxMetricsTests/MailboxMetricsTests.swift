import Foundation
import MetricsTestKit
import ShmMailbox
import ShmMailboxMetrics
import Testing

/// `MailboxMetrics` exports `Mailbox.statistics` through a swift-metrics factory (an in-memory
/// `TestMetrics` per test: no global bootstrap).
@Suite("Mailbox statistics to swift-metrics")
struct MailboxMetricsTests {
    /// The counter `label` of mailbox `name`, as a total.
    func total(_ metrics: TestMetrics, _ label: String, _ name: String) throws -> Int64 {
        try metrics.expectCounter(label, [("mailbox", name)]).totalValue
    }

    /// The gauge `label` of mailbox `name`, its last value.
    func gauge(_ metrics: TestMetrics, _ label: String, _ name: String) throws -> Double? {
        try metrics.expectGauge(label, [("mailbox", name)]).lastValue
    }

    static let kinds: [MailboxOptions] = [
        MailboxOptions(capacity: 64, maxMessageSize: 64),
        MailboxOptions(capacity: 64, maxMessageSize: 64, kind: .oneToOne),
        MailboxOptions(capacity: .unbounded(segmentCapacity: 8), maxMessageSize: 64),
    ]

    /// The first collection reports the totals since creation, the next adds what changed; the
    /// gauges follow the mailbox.
    @Test(arguments: kinds)
    func countersAndGauges(_ options: MailboxOptions) throws {
        try withMailbox("export", options) { name, sender in
            let receiver = try Mailbox.open(name)
            defer { receiver.close() }
            for index in 0..<30 { try sender.send("\(index)") }
            for _ in 0..<12 { _ = try receiver.receive(timeout: .seconds(5)) }
            let metrics = TestMetrics()
            let exporter = MailboxMetrics(factory: metrics)
            exporter.add(try Mailbox.open(name))
            #expect(exporter.mailboxes == [name])
            exporter.collect()
            #expect(try total(metrics, "shmmailbox_messages_sent", name) == 30)
            #expect(try total(metrics, "shmmailbox_messages_received", name) == 12)
            #expect(try gauge(metrics, "shmmailbox_depth", name) == 18)
            #expect(try gauge(metrics, "shmmailbox_sleeping_receivers", name) == 0)
            #expect(try gauge(metrics, "shmmailbox_sleeping_senders", name) == 0)
            #expect(try (gauge(metrics, "shmmailbox_segments", name) ?? 0) >= 1)
            #expect(try (gauge(metrics, "shmmailbox_memory_bytes", name) ?? 0) > 0)

            for index in 0..<5 { try sender.send("more \(index)") }
            for _ in 0..<23 { _ = try receiver.receive(timeout: .seconds(5)) }
            exporter.collect()
            #expect(try total(metrics, "shmmailbox_messages_sent", name) == 35)
            #expect(try total(metrics, "shmmailbox_messages_received", name) == 35)
            #expect(try gauge(metrics, "shmmailbox_depth", name) == 0)
            exporter.collect()
            #expect(try total(metrics, "shmmailbox_messages_sent", name) == 35, "nothing new: nothing added")
            #expect(try total(metrics, "shmmailbox_repairs", name) == 0)
            #expect(try total(metrics, "shmmailbox_full_waits", name) == 0)
            exporter.remove(name)
            #expect(exporter.mailboxes.isEmpty)
        }
    }

    /// A one-to-one mailbox past its first lap has no totals; the counters go on by counting the
    /// records between collections.
    @Test func oneToOneAfterItsFirstLap() throws {
        try withMailbox("lap", MailboxOptions(capacity: 4, maxMessageSize: 16, kind: .oneToOne)) { name, sender in
            let receiver = try Mailbox.open(name)
            defer { receiver.close() }
            let metrics = TestMetrics()
            let exporter = MailboxMetrics(prefix: "box", factory: metrics)
            exporter.add(try Mailbox.open(name))
            var sent = 0
            // 32-byte records in a 4096-byte area: 128 per lap; collect every 3 messages.
            for round in 0..<100 {
                for _ in 0..<3 {
                    try sender.send("\(sent)")
                    sent += 1
                }
                // Leave 0 or 1 waiting (never more than the capacity of 4 after the next 3).
                while receiver.depth > round % 2 { _ = try receiver.receive(timeout: .seconds(5)) }
                exporter.collect()
            }
            #expect(sender.statistics.messagesSent == nil, "past the first lap")
            #expect(try total(metrics, "box_messages_sent", name) == Int64(sent))
            #expect(try total(metrics, "box_messages_received", name) == Int64(sent - receiver.depth))
        }
    }

    /// `MailboxEventMetrics` counts this process's events per mailbox and kind.
    @Test func eventsCounted() throws {
        let metrics = TestMetrics()
        let registration = MailboxEventMetrics.bootstrap(factory: metrics)
        defer { MailboxEvents.removeObserver(registration) }
        let name = uniqueName("events")
        let box = try Mailbox.create(name, options: MailboxOptions(capacity: .unbounded(segmentCapacity: 4), maxMessageSize: 64))
        for index in 0..<9 { try box.send("\(index)") }
        try Mailbox.delete(name)
        #expect(try metrics.expectCounter("shmmailbox_events", [("mailbox", name), ("event", "segment-grown")]).totalValue == 2)
        #expect(try metrics.expectCounter("shmmailbox_events", [("mailbox", name), ("event", "mailbox-gone")]).totalValue == 1)
    }

    /// Repairs and sends that waited for room are exported as counters.
    @Test func repairsAndFullWaits() throws {
        try withMailbox("repairs", MailboxOptions(capacity: 1, maxMessageSize: 128)) { name, box in
            let metrics = TestMetrics()
            let exporter = MailboxMetrics(factory: metrics)
            exporter.add(try Mailbox.open(name))
            #expect(try runPeerUntilKilled(["die-in-send", name]))
            // The dead sender's claim blocks the only slot: this send waits, then repairs it.
            try box.send("after", timeout: .seconds(5))
            exporter.collect()
            #expect(try total(metrics, "shmmailbox_repairs", name) == 1)
            #expect(try total(metrics, "shmmailbox_full_waits", name) == 1)
            #expect(try total(metrics, "shmmailbox_messages_sent", name) == 2, "the abandoned claim counts on both sides")
            #expect(try total(metrics, "shmmailbox_messages_received", name) == 1)
        }
    }

    /// `run(every:)` collects periodically until its task is cancelled.
    @Test func runsUntilCancelled() async throws {
        let name = uniqueName("run")
        let box = try Mailbox.create(name, options: MailboxOptions(capacity: 8, maxMessageSize: 64))
        defer { try? Mailbox.delete(name) }
        try await box.send("one")
        let metrics = TestMetrics()
        let task = Task {
            let exporter = MailboxMetrics(factory: metrics)
            exporter.add(try Mailbox.open(name))
            await exporter.run(every: .milliseconds(10))
        }
        let deadline = ContinuousClock.now + .seconds(10)
        var sent: Int64?
        while ContinuousClock.now < deadline {
            sent = try? metrics.expectCounter("shmmailbox_messages_sent", [("mailbox", name)]).totalValue
            if sent == 1 { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(sent == 1)
        try await box.send("two")
        while ContinuousClock.now < deadline {
            sent = try? metrics.expectCounter("shmmailbox_messages_sent", [("mailbox", name)]).totalValue
            if sent == 2 { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(sent == 2)
        task.cancel()
        try await task.value
    }
}
