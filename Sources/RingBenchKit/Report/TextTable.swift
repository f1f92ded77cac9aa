import Foundation

/// A plain-text table with aligned columns, for terminal output.
///
/// Widths count characters (grapheme clusters), which matches terminal columns for the text a report
/// prints ("µ", "×", "–" are one column each). The last column is not padded, so lines carry no
/// trailing blanks.
struct TextTable {
    enum Alignment { case left, right }

    struct Column {
        var title: String
        var alignment: Alignment
        init(_ title: String, _ alignment: Alignment) {
            self.title = title
            self.alignment = alignment
        }
    }

    var columns: [Column]
    /// Cells by row; `nil` is a blank separator line between groups.
    private(set) var rows: [[String]?] = []

    init(columns: [Column]) {
        self.columns = columns
    }

    mutating func append(_ cells: [String]) {
        precondition(cells.count == columns.count, "row has \(cells.count) cells for \(columns.count) columns")
        rows.append(cells.map(Self.singleLine))
    }

    mutating func appendSeparator() {
        rows.append(nil)
    }

    /// The header, a rule under it, and the rows; lines joined with "\n", no final newline.
    func render(indent: String = "", gap: String = "  ") -> String {
        var widths = columns.map { $0.title.count }
        for case let cells? in rows {
            for (index, cell) in cells.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (index, cell) in cells.enumerated() {
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                let isLast = index == cells.count - 1
                switch columns[index].alignment {
                case .left: parts.append(isLast ? cell : cell + padding)
                case .right: parts.append(padding + cell)
                }
            }
            var text = indent + parts.joined(separator: gap)
            while text.last == " " { text.removeLast() }
            return text
        }
        var lines = [line(columns.map(\.title))]
        lines.append(indent + widths.map { String(repeating: "-", count: $0) }.joined(separator: gap))
        for row in rows {
            lines.append(row.map(line) ?? "")
        }
        return lines.joined(separator: "\n")
    }

    /// The same table as GitHub-flavoured Markdown: a header row, an alignment row, then the
    /// rows (group separators are left out); "|" in a cell is escaped.
    func renderMarkdown() -> String {
        func line(_ cells: [String]) -> String {
            "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |"
        }
        var lines = [line(columns.map(\.title))]
        lines.append("|" + columns.map { $0.alignment == .right ? "---:|" : "---|" }.joined())
        for case let cells? in rows { lines.append(line(cells)) }
        return lines.joined(separator: "\n")
    }

    /// Table cells are one line: newlines and tabs become spaces.
    private static func singleLine(_ text: String) -> String {
        String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 })
    }
}
