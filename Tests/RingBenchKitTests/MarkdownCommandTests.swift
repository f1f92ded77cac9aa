import Foundation
import Testing

/// `ringbench --format markdown` end to end: the real executable, a tiny workload, and the
/// report's table parsed as a Markdown pipe table (a header, a separator row, then one row per
/// transport, each with as many cells as the header).
@Suite(.serialized)
struct MarkdownCommandTests {
    /// A pipe table's rows: the cells of each line that starts with `|`, in order.
    static func tableRows(_ text: String) -> [[String]] {
        text.split(separator: "\n").filter { $0.hasPrefix("|") }.map { line in
            var cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            // The leading and trailing pipes leave an empty cell at each end.
            if cells.first == "" { cells.removeFirst() }
            if cells.last == "" { cells.removeLast() }
            return cells
        }
    }

    /// `---`, `---:`, `:---` or `:---:`.
    static func isSeparator(_ cell: String) -> Bool {
        var dashes = Substring(cell)
        if dashes.hasPrefix(":") { dashes.removeFirst() }
        if dashes.hasSuffix(":") { dashes.removeLast() }
        return dashes.count >= 3 && dashes.allSatisfy { $0 == "-" }
    }

    @Test(arguments: ["throughput", "latency"])
    func markdownTableParses(workload: String) throws {
        let transports = ["shm", "pipe", "uds-stream"]
        let outcome = try RingbenchProcess.run([workload, "--size", "64", "--count", "200", "--warmup", "0", "--runs", "1",
                                                "--format", "markdown"] + transports.flatMap { ["--transport", $0] })
        try #require(outcome.status == 0, "ringbench failed: \(outcome.stderr)")
        let text = outcome.stdout
        #expect(text.split(separator: "\n").contains { $0.hasPrefix("### \(workload)") }, "a heading per workload: \(text)")

        let rows = Self.tableRows(text)
        try #require(rows.count == 2 + transports.count, "header, separator and one row per transport: \(text)")
        let header = rows[0]
        #expect(header.first == "transport", "\(header)")
        #expect(header.contains("size") && header.contains("verified"), "\(header)")
        #expect(rows[1].count == header.count && rows[1].allSatisfy(Self.isSeparator), "separator row: \(rows[1])")

        let body = rows.dropFirst(2)
        #expect(body.allSatisfy { $0.count == header.count }, "every row as wide as the header: \(body)")
        let names = body.map { $0[0] }
        for transport in transports {
            #expect(names.filter { $0 == transport || $0.hasPrefix(transport + "/") }.count == 1, "one row for \(transport): \(names)")
        }
        let size = try #require(header.firstIndex(of: "size"))
        let verified = try #require(header.firstIndex(of: "verified"))
        #expect(body.allSatisfy { $0[size] == "64 B" }, "\(body)")
        #expect(body.allSatisfy { !$0[verified].isEmpty && $0[verified] != "-" }, "every message verified: \(body)")
    }
}
