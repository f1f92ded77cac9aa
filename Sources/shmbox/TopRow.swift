#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

/// One mailbox's line in a `shmbox top` sample.
struct TopRow {
    var name: String
    var kind: String
    var depth: Int
    var capacity: Int
    /// Messages counted in and out during the interval; nil when not known (first sample).
    var sent: Int?
    var received: Int?
    var elapsed: Double
    var senders: Int
    var receivers: Int
    var sleepingReceivers: Int
    var sleepingSenders: Int

    init(meter: TrafficMeter, counts: TrafficMeter.Counts, elapsed: Double, fresh: Bool) {
        let mailbox = meter.mailbox
        name = mailbox.name
        kind = mailbox.kind.argumentName
        depth = counts.depth
        capacity = mailbox.capacity.messages
        sent = fresh ? nil : counts.sent
        received = fresh ? nil : counts.received
        self.elapsed = elapsed
        let live = mailbox.participants.filter(\.isAlive)
        senders = live.filter(\.hasSent).count
        receivers = live.filter(\.hasReceived).count
        let sleepers = mailbox.sleepers
        sleepingReceivers = sleepers.receivers
        sleepingSenders = sleepers.senders
    }

    /// Messages per second in and out over the interval.
    var rates: (in: Double?, out: Double?) {
        guard elapsed > 0 else { return (nil, nil) }
        return (sent.map { Double($0) / elapsed }, received.map { Double($0) / elapsed })
    }

    var json: JSONValue {
        let rates = rates
        return .object([
            ("name", .string(name)),
            ("kind", .string(kind)),
            ("depth", .int(depth)),
            ("capacity", .int(capacity)),
            ("sent", .optional(sent) { .int($0) }),
            ("received", .optional(received) { .int($0) }),
            ("inPerSecond", .optional(rates.in) { .double(Self.rounded($0)) }),
            ("outPerSecond", .optional(rates.out) { .double(Self.rounded($0)) }),
            ("senders", .int(senders)),
            ("receivers", .int(receivers)),
            ("sleepingReceivers", .int(sleepingReceivers)),
            ("sleepingSenders", .int(sleepingSenders)),
        ])
    }

    /// `value` to one decimal place.
    static func rounded(_ value: Double) -> Double { (value * 10).rounded() / 10 }

    /// One `top --json` sample.
    static func json(_ rows: [TopRow], failures: [String: String], elapsed: Double) -> JSONValue {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nanos = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
        return .object([
            ("time", .optional(iso8601(unixNanos: nanos)) { .string($0) }),
            ("intervalSeconds", .double((elapsed * 1000).rounded() / 1000)),
            ("mailboxes", .array(rows.map(\.json))),
            ("errors", .array(failures.keys.sorted().map { name in
                .object([("name", .string(name)), ("error", .string(failures[name]!))])
            })),
        ])
    }

    /// One `top` sample as a table (after clearing the screen when `clear`).
    static func printTable(_ rows: [TopRow], failures: [String: String], clear: Bool) {
        var lines: [String] = []
        let header = ["NAME", "KIND", "DEPTH", "IN/S", "OUT/S", "SENDERS", "RECEIVERS", "SLEEPING R/S"]
        var table = [header]
        for row in rows {
            let rates = row.rates
            table.append([row.name, row.kind, "\(row.depth)/\(row.capacity)",
                          rates.in.map { format($0) } ?? "-", rates.out.map { format($0) } ?? "-",
                          "\(row.senders)", "\(row.receivers)", "\(row.sleepingReceivers)/\(row.sleepingSenders)"])
        }
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        for cells in table {
            lines.append(cells.indices.map { column in
                let cell = cells[column]
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 || column == 1 ? cell + padding : padding + cell
            }.joined(separator: "  "))
        }
        for name in failures.keys.sorted() { lines.append("\(name) error: \(failures[name]!)") }
        if clear { print("\u{1B}[H\u{1B}[2J", terminator: "") }
        printLine(lines.joined(separator: "\n") + (clear ? "" : "\n"))
    }

    /// A rate with one decimal place.
    static func format(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
