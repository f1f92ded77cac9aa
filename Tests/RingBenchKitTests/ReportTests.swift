import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import RingBenchKit

// MARK: - Sample reports

private let sampleMachine = MachineFacts(cpuModel: "Example CPU @ 3.00GHz", cores: 2, kernel: "Linux 6.1.0-test",
                                         date: "2025-06-01T12:00:00Z", loadAverage: 0.42)

private func throughputRow(_ transport: String, size: Int, msgsPerSec: Double, runs: Int = 1,
                           note: String = "") -> BenchmarkResult {
    let messages = 1_000_000
    return BenchmarkResult(
        transport: transport, workload: "throughput", size: size, runs: runs, messages: messages,
        seconds: Double(messages) / msgsPerSec, msgsPerSec: msgsPerSec, bytesPerSec: msgsPerSec * Double(size),
        cpuSenderS: 0.25, cpuReceiverS: 0.5, verified: "sequence", note: note,
        minOverRuns: runs > 1 ? msgsPerSec * 0.95 : nil, maxOverRuns: runs > 1 ? msgsPerSec * 1.04 : nil)
}

private func latencyRow(_ transport: String, size: Int, p50: Double, note: String = "") -> BenchmarkResult {
    BenchmarkResult(
        transport: transport, workload: "latency", size: size, runs: 1, messages: 100_000, seconds: 0.5,
        msgsPerSec: 1e9 / p50, bytesPerSec: 1e9 / p50 * Double(size),
        p50Ns: p50, p90Ns: p50 * 1.3, p99Ns: p50 * 2.5, p999Ns: p50 * 6, maxNs: p50 * 40, meanNs: p50 * 1.1,
        cpuSenderS: 0.5, cpuReceiverS: 0.5, verified: "checksum", note: note)
}

/// A report shaped like a real run: three sizes, five transports, both workloads.
private func exampleReport() -> BenchmarkReport {
    var rows: [BenchmarkResult] = []
    for transport in ["shm/adaptive", "shm-shared/adaptive", "uds-stream", "pipe", "tcp"] {
        rows.append(latencyRow(transport, size: 64, p50: [
            "shm/adaptive": 180, "shm-shared/adaptive": 260, "uds-stream": 6_800, "pipe": 7_900, "tcp": 14_500,
        ][transport]!))
    }
    let scale: [String: Double] = ["shm/adaptive": 1, "shm-shared/adaptive": 0.55, "uds-stream": 0.06,
                                   "pipe": 0.08, "tcp": 0.035, "mqueue": 0.07]
    for size in [8, 64, 1024, 16 << 10, 64 << 10, 1 << 20] {
        // Small messages are message-bound, large ones copy-bound.
        let shmRate = min(30e6, 9e9 / Double(size))
        for transport in ["shm/adaptive", "shm-shared/adaptive", "uds-stream", "pipe", "mqueue", "tcp"] {
            if transport == "mqueue" && size > 8192 { continue }
            let factor = size >= 64 << 10 ? min(1, scale[transport]! * 6) : scale[transport]!
            rows.append(throughputRow(transport, size: size, msgsPerSec: shmRate * factor, runs: 3,
                                      note: transport == "mqueue" && size == 1024 ? "msgsize_max raised" : ""))
        }
    }
    return BenchmarkReport(machine: sampleMachine, results: rows)
}

/// Splits RFC 4180 CSV text into records of fields.
private func parseCSV(_ text: String) -> [[String]] {
    var records: [[String]] = []
    var record: [String] = []
    var field = ""
    var quoted = false
    var characters = Array(text)[...]
    while let c = characters.popFirst() {
        if quoted {
            if c == "\"" {
                if characters.first == "\"" { field.append("\""); characters.removeFirst() } else { quoted = false }
            } else {
                field.append(c)
            }
        } else if c == "\"" {
            quoted = true
        } else if c == "," {
            record.append(field); field = ""
        } else if c == "\n" {
            record.append(field); field = ""
            records.append(record); record = []
        } else {
            field.append(c)
        }
    }
    if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
    return records
}

/// Counts elements by name while checking the document is well-formed XML.
private final class ElementCounter: NSObject, XMLParserDelegate {
    var counts: [String: Int] = [:]
    var text = ""

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        counts[elementName, default: 0] += 1
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
    }

    /// Parses `svg`; nil when it is not well-formed.
    static func parse(_ svg: String) -> ElementCounter? {
        let counter = ElementCounter()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = counter
        return parser.parse() ? counter : nil
    }
}

/// The table line of `transport` in the section titled with `workload`.
private func tableLine(_ table: String, workload: String, transport: String, size: String) -> String? {
    let sections = table.components(separatedBy: "\n== ")
    guard let section = sections.first(where: { $0.hasPrefix(workload) }) else { return nil }
    return section.split(separator: "\n").map(String.init).first {
        $0.hasPrefix(transport + " ") && $0.contains(" \(size) ")
    }
}

// MARK: - Tests

@Suite("Report formatting")
struct ReportTests {
    // MARK: JSON

    @Test func jsonRoundTrips() throws {
        let report = BenchmarkReport(machine: sampleMachine, results: [
            throughputRow("shm/adaptive", size: 64, msgsPerSec: 30e6, runs: 3, note: "batch 32, \"fast\""),
            latencyRow("uds-stream", size: 8, p50: 6_500),
            throughputRow("tcp", size: 1 << 20, msgsPerSec: 1_000),
        ])
        #expect(report.results[2].p50Ns == nil && report.results[2].minOverRuns == nil)
        let json = try ReportFormatter.json(report)
        #expect(try ReportFormatter.decode(json: json) == report)
    }

    @Test func jsonUsesSnakeCaseNamesAndSortedKeys() throws {
        let report = BenchmarkReport(machine: sampleMachine, results: [
            latencyRow("shm/spin", size: 64, p50: 200), throughputRow("pipe", size: 64, msgsPerSec: 2e6),
        ])
        let json = try ReportFormatter.json(report)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["machine", "results"])
        let machine = try #require(object["machine"] as? [String: Any])
        #expect(Set(machine.keys) == ["cpu_model", "cores", "kernel", "date", "load_average"])
        let results = try #require(object["results"] as? [[String: Any]])
        #expect(results.count == 2)
        let expected: Set<String> = [
            "transport", "workload", "size", "runs", "messages", "seconds", "msgs_per_sec", "bytes_per_sec",
            "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "mean_ns", "cpu_sender_s", "cpu_receiver_s",
            "verified", "note", "min_over_runs", "max_over_runs", "probe_ns", "probe_after_ns", "ratio", "mode_warning",
        ]
        for result in results { #expect(Set(result.keys) == expected) }
        #expect(results[0]["p999_ns"] as? Double == 1200)
        #expect(results[0]["cpu_sender_s"] as? Double == 0.5)
        #expect(results[1]["msgs_per_sec"] as? Double == 2e6)
        // Missing figures are explicit nulls, so every row has the same fields.
        #expect(results[1]["p50_ns"] is NSNull)
        #expect(!json.contains("msgsPerSec") && !json.contains("cpuModel"))
        // Pretty-printed with sorted keys.
        #expect(json.contains("\n  \"machine\""))
        let bytes = try #require(json.range(of: "\"bytes_per_sec\""))
        let cpu = try #require(json.range(of: "\"cpu_receiver_s\""))
        let workload = try #require(json.range(of: "\"workload\""))
        #expect(bytes.lowerBound < cpu.lowerBound && cpu.lowerBound < workload.lowerBound)
    }

    @Test func jsonSanitizesNonFiniteNumbers() throws {
        var row = latencyRow("shm", size: 8, p50: 150)
        row.msgsPerSec = .infinity
        row.seconds = .nan
        row.p99Ns = .nan
        row.maxNs = -.infinity
        row.minOverRuns = .infinity
        var report = BenchmarkReport(machine: sampleMachine, results: [row])
        report.machine.loadAverage = .nan
        let decoded = try ReportFormatter.decode(json: try ReportFormatter.json(report))
        let back = try #require(decoded.results.first)
        #expect(back.msgsPerSec == 0 && back.seconds == 0)
        #expect(back.p99Ns == nil && back.maxNs == nil && back.minOverRuns == nil)
        #expect(back.p50Ns == 150 && back.p999Ns == 900)
        #expect(decoded.machine.loadAverage == 0)
    }

    @Test func decodeRejectsGarbage() {
        #expect(throws: (any Error).self) { try ReportFormatter.decode(json: "{\"results\": []}") }
        #expect(throws: (any Error).self) { try ReportFormatter.decode(json: "not json") }
    }

    // MARK: CSV

    @Test func csvHasHeaderAndQuotedNotes() throws {
        let note = "split into 4 KiB writes, \"raised\" limit"
        let report = BenchmarkReport(machine: sampleMachine, results: [
            throughputRow("shm/adaptive", size: 64, msgsPerSec: 30e6, note: note),
            latencyRow("uds-stream", size: 8, p50: 6_500),
            throughputRow("pipe", size: 1024, msgsPerSec: 1.5e6, note: "plain"),
        ])
        let csv = ReportFormatter.csv(report)
        let lines = csv.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 5 && lines.last == "")  // header, 3 rows, final newline
        #expect(lines[0] == "transport,workload,size,runs,messages,seconds,msgs_per_sec,bytes_per_sec,p50_ns,"
            + "p90_ns,p99_ns,p999_ns,max_ns,mean_ns,cpu_sender_s,cpu_receiver_s,verified,note,min_over_runs,"
            + "max_over_runs,probe_ns,probe_after_ns,ratio,mode_warning")
        #expect(lines[1].contains(",\"split into 4 KiB writes, \"\"raised\"\" limit\","))
        #expect(lines[3].contains(",plain,"))

        let records = parseCSV(csv)
        #expect(records.count == 4)
        for record in records { #expect(record.count == 24) }
        #expect(records[1][0] == "shm/adaptive" && records[1][17] == note)
        #expect(records[1][6] == "30000000.0" && records[1][8] == "")  // msgs_per_sec; p50_ns missing
        #expect(records[2][11] == "39000.0")  // p999_ns
    }

    // MARK: Table

    @Test func tableShowsBaselineRatios() throws {
        let report = BenchmarkReport(machine: sampleMachine, results: [
            latencyRow("shm/adaptive", size: 64, p50: 200),
            latencyRow("uds-stream", size: 64, p50: 6_000),
            throughputRow("shm-shared/spin", size: 64, msgsPerSec: 15e6),
            throughputRow("shm/adaptive", size: 64, msgsPerSec: 30e6),
            throughputRow("uds-stream", size: 64, msgsPerSec: 1e6),
            throughputRow("shm/adaptive", size: 1024, msgsPerSec: 8e6),
            throughputRow("uds-stream", size: 1024, msgsPerSec: 0.8e6),
            BenchmarkResult(transport: "shm-shared/adaptive", workload: "fanin", size: 64, runs: 1, messages: 4_000_000,
                            seconds: 1, msgsPerSec: 4e6, bytesPerSec: 256e6, cpuSenderS: 2, cpuReceiverS: 1,
                            verified: "sequence", note: "4 senders"),
        ])
        let table = ReportFormatter.table(report)

        let shm64 = try #require(tableLine(table, workload: "throughput", transport: "shm/adaptive", size: "64 B"))
        let uds64 = try #require(tableLine(table, workload: "throughput", transport: "uds-stream", size: "64 B"))
        let shared64 = try #require(tableLine(table, workload: "throughput", transport: "shm-shared/spin",
                                              size: "64 B"))
        let uds1k = try #require(tableLine(table, workload: "throughput", transport: "uds-stream", size: "1 KiB"))
        #expect(shm64.contains("1.00×"))
        #expect(uds64.contains("0.03×"))
        #expect(shared64.contains("0.50×"))  // shm-shared is compared with shm, not taken as the baseline
        #expect(uds1k.contains("0.10×"))
        #expect(shm64.contains("30.0 M") && shm64.contains("1.92 GB/s"))
        #expect(shm64.contains("0.250") && shm64.contains("0.500"))  // CPU s per million messages

        let shmLatency = try #require(tableLine(table, workload: "latency", transport: "shm/adaptive", size: "64 B"))
        let udsLatency = try #require(tableLine(table, workload: "latency", transport: "uds-stream", size: "64 B"))
        #expect(shmLatency.contains("1.00×") && shmLatency.contains("200 ns") && shmLatency.contains("1.20 µs"))
        #expect(udsLatency.contains("30.00×") && udsLatency.contains("6.00 µs") && udsLatency.contains("240 µs"))
        #expect(table.contains("p50 vs shm"))
        #expect(table.contains("lower is better") && table.contains("higher is better"))

        // Latency first, then throughput; sizes ascending within a section.
        let latencyAt = try #require(table.range(of: "== latency"))
        let throughputAt = try #require(table.range(of: "== throughput"))
        let faninAt = try #require(table.range(of: "== fanin"))
        #expect(latencyAt.lowerBound < throughputAt.lowerBound && throughputAt.lowerBound < faninAt.lowerBound)
        // Fan-in has no shm row of its own: no ratio, rather than one against another workload's row.
        let fanin = try #require(tableLine(table, workload: "fanin", transport: "shm-shared/adaptive", size: "64 B"))
        #expect(fanin.contains("4.00 M") && fanin.contains(" – ") && fanin.contains("4 senders"))
        #expect(fanin.contains("0.500") && fanin.contains("0.250"))  // 2 s and 1 s CPU over 4 M messages
        let throughputLines = table[throughputAt.upperBound...].split(separator: "\n").map(String.init)
        let at64 = try #require(throughputLines.firstIndex(of: uds64))
        let at1k = try #require(throughputLines.firstIndex(of: uds1k))
        #expect(at64 < at1k)
    }

    @Test func tableWithoutBaselineShowsDash() throws {
        let report = BenchmarkReport(machine: sampleMachine, results: [
            throughputRow("shm-shared/spin", size: 8, msgsPerSec: 15e6),
            throughputRow("uds-stream", size: 8, msgsPerSec: 1e6),
        ])
        let table = ReportFormatter.table(report)
        #expect(!table.contains("1.00×"))
        let shared = try #require(tableLine(table, workload: "throughput", transport: "shm-shared/spin", size: "8 B"))
        #expect(shared.contains(" – "))
        #expect(table.contains("no shm row"))
        // Another baseline can be chosen.
        let byUDS = ReportFormatter.table(report, baseline: "uds-stream")
        let sharedVsUDS = try #require(tableLine(byUDS, workload: "throughput", transport: "shm-shared/spin",
                                                 size: "8 B"))
        #expect(sharedVsUDS.contains("15.00×") && byUDS.contains("vs uds-stream"))
    }

    @Test func tableShowsProbesTheInterleavedRatioAndModeWarnings() throws {
        var base = throughputRow("shm/adaptive", size: 64, msgsPerSec: 10e6)
        base.probeNs = 100
        var pipe = throughputRow("pipe", size: 64, msgsPerSec: 1e6)
        pipe.probeNs = 310
        pipe.ratio = 0.25   // the runner's per-round median wins over the quotient of the rows (0.10)
        pipe.modeWarning = "probe 310 ns, the baseline's 100 ns: another host mode"
        let table = ReportFormatter.table(BenchmarkReport(machine: sampleMachine, results: [base, pipe]))
        let line = try #require(tableLine(table, workload: "throughput", transport: "pipe", size: "64 B"))
        #expect(line.contains("0.25×") && line.contains("310 ns !"))
        #expect(try #require(tableLine(table, workload: "throughput", transport: "shm/adaptive", size: "64 B")).contains("100 ns"))
        #expect(table.contains("! pipe 64 B: probe 310 ns, the baseline's 100 ns: another host mode"))
    }

    @Test func markdownHasAHeadingAPipeTableAndTheSameFigures() throws {
        var pipe = throughputRow("pipe", size: 64, msgsPerSec: 1e6, note: "a|b")
        pipe.modeWarning = "another host mode"
        let report = BenchmarkReport(machine: sampleMachine, results: [
            throughputRow("shm/adaptive", size: 64, msgsPerSec: 10e6), pipe,
            latencyRow("shm/spin", size: 64, p50: 700),
        ])
        let text = ReportFormatter.markdown(report)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first?.hasPrefix("- cpu: ") == true)
        #expect(lines.contains("### throughput: messages per second") && lines.contains("### latency: round-trip time"))
        let headerIndex = try #require(lines.firstIndex { $0.hasPrefix("| transport | size | msgs/s |") })
        let columns = lines[headerIndex].split(separator: "|").count
        #expect(lines[headerIndex + 1].hasPrefix("|---|---:|"))
        #expect(lines[headerIndex + 1].split(separator: "|").count == columns)
        let row = try #require(lines.first { $0.hasPrefix("| pipe |") })
        #expect(row.contains("| 1.00 M |") && row.contains("| 0.10× |") && row.contains("a\\|b"))
        #expect(lines.contains("- ! pipe 64 B: another host mode"))
        #expect(lines.contains { $0.hasPrefix("| shm/spin | 64 B | 700 ns |") })
    }

    @Test func tableStartsWithMachineFactsAndAlignsColumns() throws {
        let table = ReportFormatter.table(exampleReport())
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[1] == "cpu:       Example CPU @ 3.00GHz")
        #expect(lines[2] == "cores:     2")
        #expect(lines[3] == "kernel:    Linux 6.1.0-test")
        #expect(lines[4] == "date:      2025-06-01T12:00:00Z")
        #expect(lines[5].hasPrefix("load avg:  0.42"))
        #expect(!lines.contains { $0.hasSuffix(" ") })
        // Every line of a table has its "msgs/s" column ending at the same place as the header's.
        let header = try #require(lines.first { $0.hasPrefix("transport") && $0.contains("msgs/s") })
        let end = try #require(header.range(of: "msgs/s")).upperBound
        let column = header.distance(from: header.startIndex, to: end)
        let section = lines.drop { $0 != header }.dropFirst(2).prefix { !$0.hasPrefix("==") && !$0.isEmpty }
        #expect(section.count == 6)
        for line in section {
            let prefix = line.prefix(column)
            #expect(prefix.hasSuffix(" M") || prefix.hasSuffix(" k"), "\(line)")
        }
        #expect(table.contains("min – max msgs/s") && table.contains("28.5 M – 31.2 M"))
        #expect(table.contains("msgsize_max raised"))
        #expect(ReportFormatter.table(BenchmarkReport(machine: sampleMachine, results: [])).contains("(no results)"))
    }

    @Test func humanUnits() {
        #expect([8, 64, 1024, 16 << 10, 64 << 10, 1 << 20, 1536, 1000].map(HumanFormat.size)
            == ["8 B", "64 B", "1 KiB", "16 KiB", "64 KiB", "1 MiB", "1.5 KiB", "1000 B"])
        #expect(HumanFormat.rate(12_345_678) == "12.3 M")
        #expect(HumanFormat.rate(999_960) == "1.00 M")
        #expect(HumanFormat.significant(9.996) == "10.0" && HumanFormat.significant(0.0512) == "0.0512")
        #expect(HumanFormat.rate(456_000) == "456 k")
        #expect(HumanFormat.rate(789) == "789")
        #expect(HumanFormat.byteRate(2.41e9) == "2.41 GB/s")
        #expect(HumanFormat.byteRate(512e6) == "512 MB/s")
        #expect(HumanFormat.byteRate(1e9, trim: true) == "1 GB/s")
        #expect(HumanFormat.duration(ns: 850) == "850 ns")
        #expect(HumanFormat.duration(ns: 12_345) == "12.3 µs")
        #expect(HumanFormat.duration(ns: 1_200_000) == "1.20 ms")
        #expect(HumanFormat.duration(ns: nil) == "–")
        #expect(HumanFormat.duration(ns: .nan) == "–")
        #expect(HumanFormat.ratio(1.0 / 30) == "0.03×")
        #expect(HumanFormat.ratio(0.0034) == "0.0034×")
        #expect(HumanFormat.ratio(.infinity) == "–")
        #expect(ReportFormatter.isBaseline("shm", baseline: "shm"))
        #expect(ReportFormatter.isBaseline("shm/spin", baseline: "shm"))
        #expect(!ReportFormatter.isBaseline("shm-shared/spin", baseline: "shm"))
        #expect(!ReportFormatter.isBaseline("shmem", baseline: "shm"))
    }

    // MARK: SVG

    @Test func svgIsXMLWithOnePolylinePerTransport() throws {
        let report = exampleReport()
        let svg = SVGChart.render(report)
        let counter = try #require(ElementCounter.parse(svg), "SVG is not well-formed XML")
        #expect(counter.counts["svg"] == 1)
        let transports = Set(report.results.filter { $0.workload == "throughput" }.map(\.transport))
        #expect(transports.count == 6)
        #expect(counter.counts["polyline"] == transports.count)
        for transport in transports { #expect(counter.text.contains(transport)) }
        #expect(counter.text.contains("at 64 B"))  // latency panel names its size
        #expect(counter.text.contains("8 B") && counter.text.contains("1 MiB"))
        #expect(counter.text.contains("p99.9"))
        #expect(counter.counts["rect", default: 0] >= 5 * 4)  // latency bars
    }

    @Test func svgEscapesTextAndPicksSmallestLatencySize() throws {
        let report = BenchmarkReport(
            machine: MachineFacts(cpuModel: "CPU <\"fast\"> & 'cheap'", cores: 1, kernel: "Linux\u{1}",
                                  date: "now", loadAverage: .nan),
            results: [
                throughputRow("a<b>&\"c\"", size: 64, msgsPerSec: 1e6),
                latencyRow("shm", size: 1024, p50: 300),
                latencyRow("uds-stream", size: 256, p50: 5000),
                latencyRow("pipe", size: 256, p50: 7000),
            ])
        let svg = SVGChart.render(report)
        let counter = try #require(ElementCounter.parse(svg), "SVG is not well-formed XML")
        #expect(counter.counts["polyline"] == 1)
        #expect(counter.text.contains("a<b>&\"c\""))
        #expect(counter.text.contains("CPU <\"fast\"> & 'cheap'"))
        #expect(counter.text.contains("at 256 B"))
        #expect(counter.text.contains("1 other size"))
    }

    @Test func svgOmitsEmptyPanelsWithANote() throws {
        let empty = SVGChart.render(BenchmarkReport(machine: sampleMachine, results: []))
        let emptyCounter = try #require(ElementCounter.parse(empty))
        #expect(emptyCounter.counts["polyline"] == nil)
        #expect(emptyCounter.text.contains("No throughput rows"))
        #expect(emptyCounter.text.contains("No latency rows"))

        let latencyOnly = SVGChart.render(BenchmarkReport(machine: sampleMachine, results: [
            latencyRow("shm", size: 8, p50: 150),
        ]))
        let latencyCounter = try #require(ElementCounter.parse(latencyOnly))
        #expect(latencyCounter.counts["polyline"] == nil)
        #expect(latencyCounter.text.contains("No throughput rows"))
        #expect(!latencyCounter.text.contains("No latency rows"))

        let zeroRates = SVGChart.render(BenchmarkReport(machine: sampleMachine, results: [
            throughputRow("shm", size: 8, msgsPerSec: 0), throughputRow("pipe", size: 8, msgsPerSec: .nan),
        ]))
        let zeroCounter = try #require(ElementCounter.parse(zeroRates))
        #expect(zeroCounter.counts["polyline"] == nil)
        #expect(zeroCounter.text.contains("No positive throughput figures"))
        #expect(zeroCounter.text.contains("No latency rows"))
    }

    /// Writes the example chart and table for a person to look at (not checked further).
    @Test func writesExampleFiles() throws {
        let report = exampleReport()
        let directory = URL(fileURLWithPath: NSTemporaryDirectory())
        try SVGChart.render(report).write(to: directory.appendingPathComponent("ringbench-example.svg"),
                                          atomically: true, encoding: .utf8)
        try ReportFormatter.table(report).write(to: directory.appendingPathComponent("ringbench-example.txt"),
                                                atomically: true, encoding: .utf8)

        // A crowded one: more transports than colours, long names, rotated latency labels.
        var rows: [BenchmarkResult] = []
        for index in 0..<12 {
            let name = index == 0 ? "shm/adaptive" : "transport-with-a-long-name-\(index)/spin"
            rows.append(latencyRow(name, size: 8, p50: 150 * Double(index + 1)))
            for size in [8, 256, 4096] {
                let rate = 20e6 / Double(index + 1) / Double(size).squareRoot()
                rows.append(throughputRow(name, size: size, msgsPerSec: rate))
            }
        }
        let crowded = SVGChart.render(BenchmarkReport(machine: sampleMachine, results: rows))
        #expect(ElementCounter.parse(crowded)?.counts["polyline"] == 12)
        try crowded.write(to: directory.appendingPathComponent("ringbench-crowded.svg"), atomically: true,
                          encoding: .utf8)
    }

    // MARK: Machine facts

    @Test func currentMachineFacts() throws {
        let facts = MachineFacts.current()
        #expect(facts.cores >= 1)
        #expect(!facts.kernel.isEmpty)
        #expect(!facts.cpuModel.isEmpty)
        #expect(facts.loadAverage >= 0 && facts.loadAverage.isFinite)
        #expect(facts.date.hasSuffix("Z") && facts.date.count == 20, "\(facts.date)")
        #expect(MachineFacts.isoDate(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(MachineFacts.cpuModel(fromCPUInfo: "processor\t: 0\nmodel name\t: Some  CPU @ 2GHz\n")
            == "Some CPU @ 2GHz")
        #if os(Linux)
        #expect(facts.kernel.hasPrefix("Linux "))
        #endif
    }
}
