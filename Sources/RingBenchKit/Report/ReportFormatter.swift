import Foundation

/// Turns a `BenchmarkReport` into text for people (`table`) or programs (`json`, `csv`), and reads
/// the JSON form back (`decode`).
public enum ReportFormatter {
    // MARK: - Table

    /// An aligned text table: machine facts first, then one section per workload (latency,
    /// throughput, fanin, then any other in the order measured), rows grouped by message size.
    ///
    /// Each row carries a ratio to the baseline row of the same workload and size: the first row
    /// whose transport is `baseline` or starts with `baseline + "/"` (so `shm/adaptive` is a
    /// baseline for `shm`, `shm-shared/spin` is not). Throughput ratios are msgs/s ÷ baseline msgs/s
    /// (higher is better); latency ratios are p50 ÷ baseline p50 (lower is better). Without a
    /// baseline row the ratio shows "–".
    public static func table(_ report: BenchmarkReport, baseline: String = "shm") -> String {
        render(report, baseline: baseline, markdown: false)
    }

    /// The `table` report as Markdown (for README tables pasted from a run, never typed): the
    /// machine facts as a list, a heading per workload, its notes as text, the table, and the
    /// mode warnings as a list.
    public static func markdown(_ report: BenchmarkReport, baseline: String = "shm") -> String {
        render(report, baseline: baseline, markdown: true)
    }

    private static func render(_ report: BenchmarkReport, baseline: String, markdown: Bool) -> String {
        var lines = machineLines(report.machine)
        if markdown {
            let machine = report.machine
            lines = ["- cpu: \(machine.cpuModel), \(machine.cores) cores; kernel: \(machine.kernel)",
                     "- date: \(machine.date); load average \(loadText(machine.loadAverage)) (1-minute, when measuring started)"]
        }
        if report.results.isEmpty {
            lines += ["", "(no results)"]
        }
        for workload in workloadOrder(report.results) {
            let rows = report.results.filter { $0.workload == workload }
            lines.append("")
            var section = workload == "latency" ? latencySection(rows, baseline: baseline, markdown: markdown)
                                                : rateSection(workload, rows, baseline: baseline, markdown: markdown)
            if markdown, let title = section.first {
                section[0] = "### " + title.trimmingCharacters(in: CharacterSet(charactersIn: "= "))
                // The notes under the title, one list item each (up to the blank line before the table).
                if let blank = section.firstIndex(of: "") {
                    for index in 1..<blank { section[index] = "- " + section[index] }
                    section.insert("", at: 1)
                }
            }
            lines += section
        }
        if let warning = loadWarning(report.machine) {
            lines += ["", (markdown ? "- " : "") + warning]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Whether `transport` counts as the baseline `baseline`: equal, or `baseline` followed by "/".
    static func isBaseline(_ transport: String, baseline: String) -> Bool {
        transport == baseline || transport.hasPrefix(baseline + "/")
    }

    private static func machineLines(_ machine: MachineFacts) -> [String] {
        [
            "ringbench report",
            "cpu:       \(machine.cpuModel)",
            "cores:     \(machine.cores)",
            "kernel:    \(machine.kernel)",
            "date:      \(machine.date)",
            "load avg:  \(loadText(machine.loadAverage)) (1-minute, when measuring started)",
        ]
    }

    private static func loadText(_ load: Double) -> String {
        load.isFinite ? String(format: "%.2f", load) : HumanFormat.dash
    }

    /// latency, throughput, fanin first (those present), then any other workload in first-seen order.
    static func workloadOrder(_ results: [BenchmarkResult]) -> [String] {
        var seen: [String] = []
        for result in results where !seen.contains(result.workload) { seen.append(result.workload) }
        let known = ["latency", "throughput", "fanin"].filter(seen.contains)
        return known + seen.filter { !known.contains($0) }
    }

    /// Sizes ascending; rows of one size in the order measured.
    private static func groupedBySize(_ rows: [BenchmarkResult]) -> [(size: Int, rows: [BenchmarkResult])] {
        let sizes = Set(rows.map(\.size)).sorted()
        return sizes.map { size in (size, rows.filter { $0.size == size }) }
    }

    private static func sectionTitle(_ workload: String) -> String {
        switch workload {
        case "latency": return "== latency: round-trip time =="
        case "throughput": return "== throughput: messages per second =="
        case "fanin": return "== fanin: messages per second, all senders together =="
        default: return "== \(workload) =="
        }
    }

    private static func rateSection(_ workload: String, _ rows: [BenchmarkResult], baseline: String, markdown: Bool) -> [String] {
        let showRange = rows.contains { $0.runs > 1 }
        var columns: [TextTable.Column] = [
            .init("transport", .left), .init("size", .right), .init("msgs/s", .right), .init("payload", .right),
            .init("snd CPU s/M", .right), .init("rcv CPU s/M", .right), .init("vs \(baseline)", .right),
        ]
        let runs = uniformRuns(rows)
        if runs == nil { columns.append(.init("runs", .right)) }
        columns.append(.init("probe", .right))
        if showRange { columns.append(.init("min – max msgs/s", .right)) }
        let notes = SharedNotes(rows)
        columns.append(.init("verified", .left))
        if notes.perRowColumn { columns.append(.init("note", .left)) }

        let (table, baselinesUsed) = sizeGroupedTable(rows, columns: columns, baseline: baseline) { row, base in
            var ratio = row.ratio
            if ratio == nil, let base, base.msgsPerSec.isFinite, base.msgsPerSec > 0 { ratio = row.msgsPerSec / base.msgsPerSec }
            var cells = [
                row.transport, HumanFormat.size(row.size), HumanFormat.rate(row.msgsPerSec),
                HumanFormat.byteRate(row.bytesPerSec),
                HumanFormat.plain(perMillion(row.cpuSenderS, row.messages)),
                HumanFormat.plain(perMillion(row.cpuReceiverS, row.messages)),
                HumanFormat.ratio(ratio),
            ]
            if runs == nil { cells.append("\(row.runs)") }
            cells.append(probe(row))
            if showRange { cells.append(range(row, HumanFormat.rate)) }
            return cells + [row.verified] + (notes.perRowColumn ? [notes.rest(row)] : [])
        }
        var lines = [sectionTitle(workload)]
        lines.append("vs \(baseline): msgs/s ÷ msgs/s of the \(baseline) row at the same size, higher is better"
                     + baselineSuffix(baselinesUsed, baseline: baseline))
        lines.append("CPU s/M: CPU seconds (user + system) per million messages, sending and receiving side")
        if showRange { lines.append("figures are those of the median run; min – max of msgs/s over the runs") }
        lines += probeLines(rows)
        lines.append("")
        lines.append(markdown ? table.renderMarkdown() : table.render())
        lines += notes.lines(markdown: markdown)
        lines += runsLines(runs, markdown: markdown)
        lines += warningLines(rows, markdown: markdown)
        return lines
    }

    private static func latencySection(_ rows: [BenchmarkResult], baseline: String, markdown: Bool) -> [String] {
        let showRange = rows.contains { $0.runs > 1 }
        var columns: [TextTable.Column] = [
            .init("transport", .left), .init("size", .right), .init("p50", .right), .init("p90", .right),
            .init("p99", .right), .init("p99.9", .right), .init("max", .right), .init("mean", .right),
            .init("p50 vs \(baseline)", .right),
        ]
        let runs = uniformRuns(rows)
        if runs == nil { columns.append(.init("runs", .right)) }
        columns.append(.init("probe", .right))
        if showRange { columns.append(.init("min – max p50", .right)) }
        let notes = SharedNotes(rows)
        columns.append(.init("verified", .left))
        if notes.perRowColumn { columns.append(.init("note", .left)) }

        let (table, baselinesUsed) = sizeGroupedTable(rows, columns: columns, baseline: baseline) { row, base in
            var ratio = row.ratio
            if ratio == nil, let baseP50 = base?.p50Ns, baseP50.isFinite, baseP50 > 0, let p50 = row.p50Ns {
                ratio = p50 / baseP50
            }
            var cells = [
                row.transport, HumanFormat.size(row.size),
                HumanFormat.duration(ns: row.p50Ns), HumanFormat.duration(ns: row.p90Ns),
                HumanFormat.duration(ns: row.p99Ns), HumanFormat.duration(ns: row.p999Ns),
                HumanFormat.duration(ns: row.maxNs), HumanFormat.duration(ns: row.meanNs),
                HumanFormat.ratio(ratio),
            ]
            if runs == nil { cells.append("\(row.runs)") }
            cells.append(probe(row))
            if showRange { cells.append(range(row) { HumanFormat.duration(ns: $0) }) }
            return cells + [row.verified] + (notes.perRowColumn ? [notes.rest(row)] : [])
        }
        var lines = [sectionTitle("latency")]
        lines.append("p50 vs \(baseline): p50 ÷ p50 of the \(baseline) row at the same size, lower is better"
                     + baselineSuffix(baselinesUsed, baseline: baseline))
        if showRange { lines.append("figures are those of the median run; min – max of p50 over the runs") }
        lines += probeLines(rows)
        lines.append("")
        lines.append(markdown ? table.renderMarkdown() : table.render())
        lines += notes.lines(markdown: markdown)
        lines += runsLines(runs, markdown: markdown)
        lines += warningLines(rows, markdown: markdown)
        return lines
    }

    /// The probe column: the host-mode probe before the reported run, "!" when the row has a
    /// mode warning.
    private static func probe(_ row: BenchmarkResult) -> String {
        HumanFormat.duration(ns: row.probeNs) + (row.modeWarning == nil ? "" : " !")
    }

    private static func probeLines(_ rows: [BenchmarkResult]) -> [String] {
        var lines = ["probe: cross-core spin round trip just before the run (the host's mode: runs compare fairly when their probes agree within \(HostProbe.sameModeFactor)×)"]
        if rows.contains(where: { $0.runs > 1 }) {
            lines.append("runs are interleaved (every cell's k-th run in round k); a ratio is the median of per-round ratios over rounds in one host mode")
        }
        return lines
    }

    /// The runs every row of a table had, or nil when they differ (the table then has a runs column).
    static func uniformRuns(_ rows: [BenchmarkResult]) -> Int? {
        let counts = Set(rows.map(\.runs))
        return counts.count == 1 ? counts.first : nil
    }

    /// Under the table, when every row had the same number of runs: how many, and for one run
    /// that a single run can mislead.
    static func runsLines(_ runs: Int?, markdown: Bool) -> [String] {
        guard let runs else { return [] }
        let text = runs == 1
            ? "! one run per cell (--runs 1): a single noisy run can mislead; --runs 3 or more reports the median run"
            : "runs: \(runs) per cell, the median run reported"
        return (markdown ? ["", "- " + text] : ["", text])
    }

    /// The warning under the report when the 1-minute load average, before or during the run,
    /// exceeded the online cores: other work competed for the CPUs. Nil otherwise.
    public static func loadWarning(_ machine: MachineFacts) -> String? {
        let highest = max(machine.loadAverage.isFinite ? machine.loadAverage : 0, machine.loadAverageMax ?? 0)
        guard highest > Double(machine.cores) else { return nil }
        return "! load average \(loadText(highest)) (1-minute, highest seen before and during the run) exceeds the "
            + "\(machine.cores) cores: other work competed for the CPUs, so figures may be noisy and ratios unfair"
    }

    /// One line per row with a mode warning, under the table.
    private static func warningLines(_ rows: [BenchmarkResult], markdown: Bool = false) -> [String] {
        let flagged = rows.filter { $0.modeWarning != nil }
        guard !flagged.isEmpty else { return [] }
        return [""] + flagged.map { "\(markdown ? "- " : "")! \($0.transport) \(HumanFormat.size($0.size)): \($0.modeWarning!)" }
    }

    /// A table of `rows` grouped by size, with a separator between sizes; `cells` makes each
    /// row's cells, given the baseline row of its size (if any). Also returns the baseline
    /// transports that were used.
    private static func sizeGroupedTable(_ rows: [BenchmarkResult], columns: [TextTable.Column], baseline: String,
                                         _ cells: (BenchmarkResult, BenchmarkResult?) -> [String]) -> (TextTable, [String]) {
        var table = TextTable(columns: columns)
        var baselinesUsed: [String] = []
        for (index, group) in groupedBySize(rows).enumerated() {
            if index > 0 { table.appendSeparator() }
            let base = group.rows.first { isBaseline($0.transport, baseline: baseline) }
            if let base, !baselinesUsed.contains(base.transport) { baselinesUsed.append(base.transport) }
            for row in group.rows { table.append(cells(row, base)) }
        }
        return (table, baselinesUsed)
    }

    private static func baselineSuffix(_ used: [String], baseline: String) -> String {
        if used.isEmpty { return " (no \(baseline) row: ratios show \(HumanFormat.dash))" }
        if used == [baseline] { return "" }
        return " (baseline: \(used.joined(separator: ", ")))"
    }

    /// CPU seconds per million messages, or nil when there were no messages.
    private static func perMillion(_ cpuSeconds: Double, _ messages: Int) -> Double? {
        guard messages > 0, cpuSeconds.isFinite else { return nil }
        return cpuSeconds / Double(messages) * 1e6
    }

    /// "min – max" of the main figure when there was more than one run, else empty.
    private static func range(_ row: BenchmarkResult, _ format: (Double) -> String) -> String {
        guard row.runs > 1 else { return "" }
        guard let low = row.minOverRuns, let high = row.maxOverRuns else { return HumanFormat.dash }
        return "\(format(low)) – \(format(high))"
    }

    // MARK: - Idle

    /// The `idle` report for people: machine facts, then one line per figure.
    public static func table(idle report: IdleReport) -> String {
        var lines = machineLines(report.machine)
        lines += [
            "",
            "== idle: \(report.mailboxes) mailboxes held open, a receiver waiting on \(report.links) links ==",
            "mailboxes:        \(report.mailboxShape)",
            "waited:           \(String(format: "%.2f", report.seconds)) s in a blocking receive from anyone, nothing sent",
            "CPU:              \(String(format: "%.3f", report.cpuSeconds)) s = \(String(format: "%.3f", report.cpuPercent)) % of one core (whole process, every thread)",
            "wake-ups:         \(report.wakeups) (\(String(format: "%.1f", Double(report.wakeups) / max(report.seconds, 1e-9))) per second)",
            "shared memory:    \(HumanFormat.size(Int(report.sharedBytesPerMailbox.rounded()))) per mailbox (allocated blocks of its /dev/shm object)",
            "resident memory:  \(HumanFormat.size(Int(report.residentBytesPerMailbox.rounded()))) per mailbox (this process's growth while creating them)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `idle` report as pretty-printed JSON with sorted, snake_case keys.
    public static func json(idle report: IdleReport) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }

    // MARK: - JSON

    /// The whole report as pretty-printed JSON with sorted keys and the snake_case field names of
    /// `BenchmarkResult` and `MachineFacts`. Every field is present; missing figures are `null`.
    /// Non-finite numbers, which JSON cannot hold, become `null` (optional fields) or 0 (others).
    public static func json(_ report: BenchmarkReport) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(ReportDocument(report.sanitizedForJSON()))
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads back what `json` wrote.
    public static func decode(json: String) throws -> BenchmarkReport {
        try JSONDecoder().decode(BenchmarkReport.self, from: Data(json.utf8))
    }

    // MARK: - CSV

    /// The results' fields, in this order, named as in the JSON form.
    static let csvFields: [BenchmarkResult.CodingKeys] = [
        .transport, .workload, .size, .runs, .messages, .seconds, .msgsPerSec, .bytesPerSec,
        .p50Ns, .p90Ns, .p99Ns, .p999Ns, .maxNs, .meanNs, .cpuSenderS, .cpuReceiverS,
        .verified, .note, .minOverRuns, .maxOverRuns, .probeNs, .probeAfterNs, .ratio, .modeWarning,
    ]

    /// One header line with the JSON field names, then one record per result in the order measured.
    /// Fields holding a comma, a double quote or a line break are quoted as RFC 4180 says (quotes
    /// doubled). Missing or non-finite figures are empty fields. Lines end in "\n". The machine
    /// facts are not part of the CSV form.
    public static func csv(_ report: BenchmarkReport) -> String {
        var lines = [csvFields.map(\.stringValue).joined(separator: ",")]
        for row in report.results {
            lines.append(csvFields.map { csvEscape(csvValue(row, $0)) }.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func csvValue(_ row: BenchmarkResult, _ field: BenchmarkResult.CodingKeys) -> String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "" }
            return "\(value)"
        }
        switch field {
        case .transport: return row.transport
        case .workload: return row.workload
        case .size: return "\(row.size)"
        case .runs: return "\(row.runs)"
        case .messages: return "\(row.messages)"
        case .seconds: return number(row.seconds)
        case .msgsPerSec: return number(row.msgsPerSec)
        case .bytesPerSec: return number(row.bytesPerSec)
        case .p50Ns: return number(row.p50Ns)
        case .p90Ns: return number(row.p90Ns)
        case .p99Ns: return number(row.p99Ns)
        case .p999Ns: return number(row.p999Ns)
        case .maxNs: return number(row.maxNs)
        case .meanNs: return number(row.meanNs)
        case .cpuSenderS: return number(row.cpuSenderS)
        case .cpuReceiverS: return number(row.cpuReceiverS)
        case .verified: return row.verified
        case .note: return row.note
        case .minOverRuns: return number(row.minOverRuns)
        case .maxOverRuns: return number(row.maxOverRuns)
        case .probeNs: return number(row.probeNs)
        case .probeAfterNs: return number(row.probeAfterNs)
        case .ratio: return number(row.ratio)
        case .modeWarning: return row.modeWarning ?? ""
        }
    }

    static func csvEscape(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

// MARK: - JSON document

/// The JSON shape of a report: `{"machine": {…}, "results": [{…}, …]}`, keys as `BenchmarkReport`'s.
private struct ReportDocument: Encodable {
    var machine: MachineFacts
    var results: [ResultDocument]

    init(_ report: BenchmarkReport) {
        machine = report.machine
        results = report.results.map(ResultDocument.init)
    }
}

/// A result encoded with every key present (nil figures as `null`), so every row has the same
/// fields; `BenchmarkResult`'s own decoder reads it back.
private struct ResultDocument: Encodable {
    var result: BenchmarkResult

    func encode(to encoder: any Encoder) throws {
        typealias Key = BenchmarkResult.CodingKeys
        var container = encoder.container(keyedBy: Key.self)
        let r = result
        try container.encode(r.transport, forKey: .transport)
        try container.encode(r.workload, forKey: .workload)
        try container.encode(r.size, forKey: .size)
        try container.encode(r.runs, forKey: .runs)
        try container.encode(r.messages, forKey: .messages)
        try container.encode(r.seconds, forKey: .seconds)
        try container.encode(r.msgsPerSec, forKey: .msgsPerSec)
        try container.encode(r.bytesPerSec, forKey: .bytesPerSec)
        try container.encode(r.p50Ns, forKey: .p50Ns)
        try container.encode(r.p90Ns, forKey: .p90Ns)
        try container.encode(r.p99Ns, forKey: .p99Ns)
        try container.encode(r.p999Ns, forKey: .p999Ns)
        try container.encode(r.maxNs, forKey: .maxNs)
        try container.encode(r.meanNs, forKey: .meanNs)
        try container.encode(r.cpuSenderS, forKey: .cpuSenderS)
        try container.encode(r.cpuReceiverS, forKey: .cpuReceiverS)
        try container.encode(r.verified, forKey: .verified)
        try container.encode(r.note, forKey: .note)
        try container.encode(r.minOverRuns, forKey: .minOverRuns)
        try container.encode(r.maxOverRuns, forKey: .maxOverRuns)
        try container.encode(r.probeNs, forKey: .probeNs)
        try container.encode(r.probeAfterNs, forKey: .probeAfterNs)
        try container.encode(r.ratio, forKey: .ratio)
        try container.encode(r.modeWarning, forKey: .modeWarning)
    }
}

extension BenchmarkReport {
    /// The report with every non-finite number replaced: nil for optional figures, 0 for the others.
    func sanitizedForJSON() -> BenchmarkReport {
        var copy = self
        if !copy.machine.loadAverage.isFinite { copy.machine.loadAverage = 0 }
        if let max = copy.machine.loadAverageMax, !max.isFinite { copy.machine.loadAverageMax = nil }
        copy.results = results.map { $0.sanitizedForJSON() }
        return copy
    }
}

extension BenchmarkResult {
    /// This row with every non-finite number replaced: nil for optional figures, 0 for the others.
    func sanitizedForJSON() -> BenchmarkResult {
        func finite(_ value: Double) -> Double { value.isFinite ? value : 0 }
        func finite(_ value: Double?) -> Double? { value.flatMap { $0.isFinite ? $0 : nil } }
        var r = self
        r.seconds = finite(r.seconds)
        r.msgsPerSec = finite(r.msgsPerSec)
        r.bytesPerSec = finite(r.bytesPerSec)
        r.p50Ns = finite(r.p50Ns)
        r.p90Ns = finite(r.p90Ns)
        r.p99Ns = finite(r.p99Ns)
        r.p999Ns = finite(r.p999Ns)
        r.maxNs = finite(r.maxNs)
        r.meanNs = finite(r.meanNs)
        r.cpuSenderS = finite(r.cpuSenderS)
        r.cpuReceiverS = finite(r.cpuReceiverS)
        r.minOverRuns = finite(r.minOverRuns)
        r.maxOverRuns = finite(r.maxOverRuns)
        r.probeNs = finite(r.probeNs)
        r.probeAfterNs = finite(r.probeAfterNs)
        r.ratio = finite(r.ratio)
        return r
    }
}

// MARK: - Shared notes

/// The parts of the rows' notes ("; "-separated) that every row of a table has: printed once
/// under the table instead of in every row. The note column shows what is left per row, and
/// goes when nothing is.
struct SharedNotes {
    /// Parts every row's note has, in the order of the first row.
    let shared: [String]
    /// Whether any row has a part of its own (the table keeps its note column).
    let perRowColumn: Bool

    init(_ rows: [BenchmarkResult]) {
        let parts = rows.map { Self.parts($0.note) }
        // A single row's note stays in its row: nothing is repeated.
        if rows.count > 1, let first = parts.first {
            shared = first.filter { part in parts.allSatisfy { $0.contains(part) } }
        } else {
            shared = []
        }
        let shared = self.shared
        perRowColumn = parts.contains { $0.contains { !shared.contains($0) } }
    }

    /// `row`'s note without the shared parts.
    func rest(_ row: BenchmarkResult) -> String {
        Self.parts(row.note).filter { !shared.contains($0) }.joined(separator: "; ")
    }

    /// The lines under the table: a blank line and "note (every row): …" per shared part.
    func lines(markdown: Bool) -> [String] {
        guard !shared.isEmpty else { return [] }
        return [""] + shared.map { (markdown ? "- " : "") + "note (every row): " + $0 }
    }

    static func parts(_ note: String) -> [String] {
        note.components(separatedBy: "; ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
