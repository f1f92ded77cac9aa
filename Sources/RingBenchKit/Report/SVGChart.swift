import Foundation

/// A self-contained SVG picture of a report, 1000 × 800:
///
/// 1. top: payload throughput (bytes/s) against message size, both axes logarithmic, one line with
///    markers per transport (rows of the `throughput` workload), legend on the right;
/// 2. bottom: round-trip latency percentiles (p50, p90, p99, p99.9) per transport at the smallest
///    message size that has `latency` rows, as grouped bars on a logarithmic µs axis.
///
/// A panel without data is replaced by a line saying so. Each transport keeps one colour and
/// marker shape, assigned in the order transports first appear in the report.
public enum SVGChart {
    static let width = 1000.0
    static let height = 800.0
    static let fontFamily = "DejaVu Sans, Helvetica, Arial, sans-serif"
    /// Transport colours (Tableau 10), in order of first appearance; after ten they repeat dashed.
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                          "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
    /// p50, p90, p99, p99.9: light to dark blue.
    static let percentileColours = ["#9ecae1", "#4292c6", "#2166ac", "#08306b"]
    static let percentileNames = ["p50", "p90", "p99", "p99.9"]

    public static func render(_ report: BenchmarkReport) -> String {
        var svg = SVGWriter()
        let styles = transportStyles(report.results)
        svg.raw("<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"#ffffff\"/>")
        svg.text("ringbench: throughput and latency by transport", x: width / 2, y: 32, size: 20,
                 anchor: "middle", weight: "bold")
        let machine = report.machine
        let load = machine.loadAverage.isFinite ? String(format: "%.2f", machine.loadAverage) : HumanFormat.dash
        let facts = [machine.cpuModel, "\(machine.cores) cores", machine.kernel, machine.date, "load \(load)"]
            .joined(separator: " · ")
        svg.text(facts,
                 x: width / 2, y: 54, size: 12, anchor: "middle", fill: "#555555")

        throughputPanel(&svg, report.results, styles: styles)
        latencyPanel(&svg, report.results, styles: styles)

        svg.text("Payload bytes/s = messages/s × message size. Figures are from the median run of each row.",
                 x: width / 2, y: 788, size: 11, anchor: "middle", fill: "#777777")
        return svg.document(width: width, height: height)
    }

    // MARK: - Styles

    struct SeriesStyle {
        var colour: String
        var marker: Int
        var dashed: Bool
    }

    /// Colour and marker per transport, in order of first appearance in the whole report.
    static func transportStyles(_ results: [BenchmarkResult]) -> [String: SeriesStyle] {
        var styles: [String: SeriesStyle] = [:]
        for result in results where styles[result.transport] == nil {
            let index = styles.count
            styles[result.transport] = SeriesStyle(colour: palette[index % palette.count], marker: index % 4,
                                                   dashed: index >= palette.count)
        }
        return styles
    }

    // MARK: - Throughput panel

    private static let top = (left: 90.0, right: 750.0, top: 110.0, bottom: 370.0)

    private static func throughputPanel(_ svg: inout SVGWriter, _ results: [BenchmarkResult],
                                        styles: [String: SeriesStyle]) {
        let plot = top
        svg.text("Throughput vs message size: payload bytes/s, log–log (throughput workload)",
                 x: plot.left, y: 92, size: 15, weight: "bold")
        let rows = results.filter { $0.workload == "throughput" }
        let points = rows.filter { $0.size > 0 && $0.bytesPerSec.isFinite && $0.bytesPerSec > 0 }
        guard !points.isEmpty else {
            let note = rows.isEmpty ? "No throughput rows in this report: panel omitted."
                                    : "No positive throughput figures in this report: panel omitted."
            svg.text(note, x: (plot.left + plot.right) / 2, y: (plot.top + plot.bottom) / 2, size: 14,
                     anchor: "middle", fill: "#777777", italic: true)
            return
        }

        // Scales: x by message size (log), y by payload bytes/s (log, whole decades).
        let sizes = Set(points.map(\.size)).sorted()
        let halfOctave = log10(2.0) / 2
        let x = LogScale(low: log10(Double(sizes.first!)) - halfOctave, high: log10(Double(sizes.last!)) + halfOctave,
                         from: plot.left, to: plot.right)
        let values = points.map(\.bytesPerSec)
        let y = LogScale.decades(min: values.min()!, max: values.max()!, from: plot.bottom, to: plot.top)

        // Grid and y ticks at powers of ten.
        let decades = Int(y.low.rounded())...Int(y.high.rounded())
        let labelStep = decades.count > 9 ? 2 : 1
        for decade in decades {
            let py = y.map(pow(10, Double(decade)))
            svg.line(plot.left, py, plot.right, py, stroke: "#e4e4e4")
            svg.line(plot.left - 6, py, plot.left, py, stroke: "#333333")
            if (decade - decades.lowerBound) % labelStep == 0 {
                svg.text(HumanFormat.byteRate(pow(10, Double(decade)), trim: true), x: plot.left - 9, y: py + 4,
                         size: 11, anchor: "end")
            }
            for multiple in 2...9 where decade < decades.upperBound {
                let pm = y.map(Double(multiple) * pow(10, Double(decade)))
                svg.line(plot.left - 3, pm, plot.left, pm, stroke: "#333333")
            }
        }
        // Minor x ticks at powers of two; labelled ticks and grid at the measured sizes.
        var power = 1.0
        while power <= pow(10, x.high) {
            if log10(power) >= x.low {
                svg.line(x.map(power), plot.bottom, x.map(power), plot.bottom + 3, stroke: "#333333")
            }
            power *= 2
        }
        var lastLabel = -Double.infinity
        for size in sizes {
            let px = x.map(Double(size))
            svg.line(px, plot.top, px, plot.bottom, stroke: "#eeeeee")
            svg.line(px, plot.bottom, px, plot.bottom + 6, stroke: "#333333")
            if px - lastLabel >= 40 {
                svg.text(HumanFormat.size(size), x: px, y: plot.bottom + 19, size: 11, anchor: "middle")
                lastLabel = px
            }
        }
        axes(&svg, left: plot.left, right: plot.right, top: plot.top, bottom: plot.bottom)
        svg.text("message size (log scale)", x: (plot.left + plot.right) / 2, y: plot.bottom + 38, size: 12,
                 anchor: "middle")
        svg.text("payload throughput (bytes/s, log scale)", x: 26, y: (plot.top + plot.bottom) / 2, size: 12,
                 anchor: "middle", rotate: -90)

        // One line with markers per transport.
        var transports: [String] = []
        for row in points where !transports.contains(row.transport) { transports.append(row.transport) }
        for transport in transports {
            let style = styles[transport] ?? SeriesStyle(colour: "#000000", marker: 0, dashed: false)
            let series = points.filter { $0.transport == transport }.sorted { $0.size < $1.size }
            svg.raw("<g>")
            svg.polyline(series.map { (x.map(Double($0.size)), y.map($0.bytesPerSec)) }, stroke: style.colour,
                         dashed: style.dashed)
            for row in series {
                let tip = "\(row.transport), \(HumanFormat.size(row.size)): "
                    + "\(HumanFormat.rate(row.msgsPerSec)) msgs/s, \(HumanFormat.byteRate(row.bytesPerSec))"
                svg.marker(style.marker, x: x.map(Double(row.size)), y: y.map(row.bytesPerSec), fill: style.colour,
                           title: tip)
            }
            svg.raw("</g>")
        }

        // Legend.
        let legendX = plot.right + 25
        svg.text("transport", x: legendX, y: plot.top + 4, size: 12, weight: "bold")
        let spacing = min(20, (plot.bottom - plot.top - 20) / Double(max(transports.count, 1)))
        for (index, transport) in transports.enumerated() {
            let style = styles[transport] ?? SeriesStyle(colour: "#000000", marker: 0, dashed: false)
            let ly = plot.top + 24 + Double(index) * spacing
            svg.line(legendX, ly, legendX + 24, ly, stroke: style.colour, width: 2, dashed: style.dashed)
            svg.marker(style.marker, x: legendX + 12, y: ly, fill: style.colour, title: nil)
            svg.text(truncated(transport, 26), x: legendX + 32, y: ly + 4, size: 12)
        }
    }

    // MARK: - Latency panel

    private static let bottom = (left: 90.0, right: 750.0, top: 480.0, bottom: 680.0)

    private static func latencyPanel(_ svg: inout SVGWriter, _ results: [BenchmarkResult],
                                     styles: [String: SeriesStyle]) {
        let plot = bottom
        let latency = results.filter { $0.workload == "latency" }
        guard let size = latency.map(\.size).min() else {
            svg.text("Round-trip latency percentiles", x: plot.left, y: plot.top - 18, size: 15, weight: "bold")
            svg.text("No latency rows in this report: panel omitted.", x: (plot.left + plot.right) / 2,
                     y: (plot.top + plot.bottom) / 2, size: 14, anchor: "middle", fill: "#777777", italic: true)
            return
        }
        let sizeText = HumanFormat.size(size)
        svg.text("Round-trip latency percentiles at \(sizeText) (smallest size with latency rows), µs, log scale",
                 x: plot.left, y: plot.top - 18, size: 15, weight: "bold")
        let rows = latency.filter { $0.size == size }
        func micros(_ row: BenchmarkResult) -> [Double?] {
            [row.p50Ns, row.p90Ns, row.p99Ns, row.p999Ns].map { ns in
                guard let ns, ns.isFinite, ns > 0 else { return nil }
                return ns / 1000
            }
        }
        let values = rows.flatMap { micros($0).compactMap { $0 } }
        guard let lowest = values.min(), let highest = values.max() else {
            svg.text("No latency percentiles at \(sizeText) in this report: panel omitted.",
                     x: (plot.left + plot.right) / 2, y: (plot.top + plot.bottom) / 2, size: 14, anchor: "middle",
                     fill: "#777777", italic: true)
            return
        }
        let y = LogScale.decades(min: lowest, max: highest, from: plot.bottom, to: plot.top)

        let decades = Int(y.low.rounded())...Int(y.high.rounded())
        let labelStep = decades.count > 7 ? 2 : 1
        for decade in decades {
            let value = pow(10, Double(decade))
            let py = y.map(value)
            svg.line(plot.left, py, plot.right, py, stroke: "#e4e4e4")
            svg.line(plot.left - 6, py, plot.left, py, stroke: "#333333")
            if (decade - decades.lowerBound) % labelStep == 0 {
                let label = decade >= 0 ? String(format: "%.0f", value) : String(format: "%.\(-decade)f", value)
                svg.text("\(label) µs", x: plot.left - 9, y: py + 4, size: 11, anchor: "end")
            }
            for multiple in 2...9 where decade < decades.upperBound {
                let pm = y.map(Double(multiple) * value)
                svg.line(plot.left - 3, pm, plot.left, pm, stroke: "#333333")
            }
        }
        svg.text("round-trip time (µs, log scale)", x: 26, y: (plot.top + plot.bottom) / 2, size: 12,
                 anchor: "middle", rotate: -90)

        // Grouped bars: one group per row (transport), one bar per percentile.
        let groupWidth = (plot.right - plot.left) / Double(rows.count)
        let barWidth = min(22, groupWidth * 0.8 / 4)
        let rotateLabels = rows.contains { Double(truncated($0.transport, 22).count) * 6.6 > groupWidth - 6 }
        for (index, row) in rows.enumerated() {
            let centre = plot.left + groupWidth * (Double(index) + 0.5)
            let style = styles[row.transport] ?? SeriesStyle(colour: "#000000", marker: 0, dashed: false)
            svg.raw("<g>")
            for (p, value) in micros(row).enumerated() {
                guard let value else { continue }
                let left = centre - 2 * barWidth + Double(p) * barWidth
                let py = y.map(value)
                let tip = "\(row.transport), \(sizeText), \(percentileNames[p]): "
                    + HumanFormat.duration(ns: value * 1000)
                svg.rect(x: left, y: py, width: barWidth, height: plot.bottom - py, fill: percentileColours[p],
                         title: tip)
            }
            // A stripe in the transport's colour ties the group to the throughput legend.
            svg.line(centre - 2 * barWidth, plot.bottom + 3, centre + 2 * barWidth, plot.bottom + 3,
                     stroke: style.colour, width: 4)
            let name = truncated(row.transport, 22)
            let p50 = "p50 " + HumanFormat.duration(ns: row.p50Ns)
            if rotateLabels {
                // Too narrow for two lines: the name alone, slanted (the p50 is in the bars' tooltips).
                svg.text(truncated(row.transport, 18), x: centre + 3, y: plot.bottom + 16, size: 11, anchor: "end",
                         rotate: -30)
            } else {
                svg.text(name, x: centre, y: plot.bottom + 20, size: 12, anchor: "middle")
                svg.text(p50, x: centre, y: plot.bottom + 35, size: 11, anchor: "middle", fill: "#555555")
            }
            svg.raw("</g>")
        }
        axes(&svg, left: plot.left, right: plot.right, top: plot.top, bottom: plot.bottom)

        // Legend.
        let legendX = plot.right + 25
        svg.text("percentile", x: legendX, y: plot.top + 4, size: 12, weight: "bold")
        for (p, name) in percentileNames.enumerated() {
            let ly = plot.top + 24 + Double(p) * 20
            svg.rect(x: legendX, y: ly - 7, width: 14, height: 14, fill: percentileColours[p], title: nil)
            svg.text(p == 0 ? "p50 (median)" : name, x: legendX + 22, y: ly + 4, size: 12)
        }
        let otherSizes = Set(latency.map(\.size)).count - 1
        var noteY = plot.top + 24 + 4 * 20 + 8
        svg.text("round trips of \(sizeText)", x: legendX, y: noteY, size: 11, fill: "#555555")
        if otherSizes > 0 {
            noteY += 16
            svg.text("\(otherSizes) other size\(otherSizes == 1 ? "" : "s"): see the table", x: legendX, y: noteY,
                     size: 11, fill: "#555555")
        }
    }

    // MARK: - Helpers

    private static func axes(_ svg: inout SVGWriter, left: Double, right: Double, top: Double, bottom: Double) {
        svg.line(left, top, left, bottom, stroke: "#333333")
        svg.line(left, bottom, right, bottom, stroke: "#333333")
    }

    static func truncated(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    /// A coordinate with one decimal.
    static func n(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        return String(format: "%.1f", value)
    }
}

/// A logarithmic (base 10) mapping from values to pixels.
struct LogScale {
    /// log10 of the values at either end.
    var low: Double
    var high: Double
    var from: Double
    var to: Double

    init(low: Double, high: Double, from: Double, to: Double) {
        self.low = low
        self.high = high > low ? high : low + 1
        self.from = from
        self.to = to
    }

    /// A scale over whole decades that holds `min` … `max` (both > 0).
    static func decades(min: Double, max: Double, from: Double, to: Double) -> LogScale {
        let low = floor(log10(min))
        var high = ceil(log10(max))
        if high <= low { high = low + 1 }
        return LogScale(low: low, high: high, from: from, to: to)
    }

    func map(_ value: Double) -> Double {
        let position = (log10(value) - low) / (high - low)
        return from + (to - from) * position
    }
}

/// Builds SVG text; all text content and attribute values that come from data are escaped.
struct SVGWriter {
    private var body: [String] = []

    mutating func raw(_ element: String) {
        body.append(element)
    }

    func document(width: Double, height: Double) -> String {
        let w = SVGChart.n(width), h = SVGChart.n(height)
        var lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>"]
        lines.append("<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(w)\" height=\"\(h)\" "
                     + "viewBox=\"0 0 \(w) \(h)\" font-family=\"\(Self.escape(SVGChart.fontFamily))\">")
        lines += body
        lines.append("</svg>")
        return lines.joined(separator: "\n") + "\n"
    }

    mutating func text(_ content: String, x: Double, y: Double, size: Double, anchor: String = "start",
                       weight: String = "normal", fill: String = "#222222", italic: Bool = false,
                       rotate: Double? = nil) {
        var attributes = "x=\"\(SVGChart.n(x))\" y=\"\(SVGChart.n(y))\" font-size=\"\(SVGChart.n(size))\""
        if anchor != "start" { attributes += " text-anchor=\"\(anchor)\"" }
        if weight != "normal" { attributes += " font-weight=\"\(weight)\"" }
        if italic { attributes += " font-style=\"italic\"" }
        attributes += " fill=\"\(fill)\""
        if let rotate {
            attributes += " transform=\"rotate(\(SVGChart.n(rotate)) \(SVGChart.n(x)) \(SVGChart.n(y)))\""
        }
        body.append("<text \(attributes)>\(Self.escape(content))</text>")
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1,
                       dashed: Bool = false) {
        let dash = dashed ? " stroke-dasharray=\"6 3\"" : ""
        body.append("<line x1=\"\(SVGChart.n(x1))\" y1=\"\(SVGChart.n(y1))\" x2=\"\(SVGChart.n(x2))\" "
                    + "y2=\"\(SVGChart.n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(SVGChart.n(width))\"\(dash)/>")
    }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String, title: String?) {
        let open = "<rect x=\"\(SVGChart.n(x))\" y=\"\(SVGChart.n(y))\" width=\"\(SVGChart.n(width))\" "
            + "height=\"\(SVGChart.n(max(0, height)))\" fill=\"\(fill)\" stroke=\"#ffffff\" stroke-width=\"0.5\""
        body.append(Self.element(open, closing: "rect", title: title))
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, dashed: Bool) {
        let list = points.map { "\(SVGChart.n($0.0)),\(SVGChart.n($0.1))" }.joined(separator: " ")
        let dash = dashed ? " stroke-dasharray=\"6 3\"" : ""
        body.append("<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"2.2\" "
                    + "stroke-linejoin=\"round\"\(dash)/>")
    }

    /// Marker shapes: 0 circle, 1 square, 2 triangle, 3 diamond.
    mutating func marker(_ shape: Int, x: Double, y: Double, fill: String, title: String?) {
        let r = 4.5
        let common = "fill=\"\(fill)\" stroke=\"#ffffff\" stroke-width=\"1\""
        switch shape % 4 {
        case 1:
            body.append(Self.element("<rect x=\"\(SVGChart.n(x - r))\" y=\"\(SVGChart.n(y - r))\" "
                                     + "width=\"\(SVGChart.n(2 * r))\" height=\"\(SVGChart.n(2 * r))\" \(common)",
                                     closing: "rect", title: title))
        case 2:
            let points = [(x, y - r * 1.2), (x + r * 1.1, y + r * 0.8), (x - r * 1.1, y + r * 0.8)]
            body.append(Self.element("<polygon points=\"\(Self.pointList(points))\" \(common)",
                                     closing: "polygon", title: title))
        case 3:
            let points = [(x, y - r * 1.3), (x + r * 1.3, y), (x, y + r * 1.3), (x - r * 1.3, y)]
            body.append(Self.element("<polygon points=\"\(Self.pointList(points))\" \(common)",
                                     closing: "polygon", title: title))
        default:
            body.append(Self.element("<circle cx=\"\(SVGChart.n(x))\" cy=\"\(SVGChart.n(y))\" r=\"\(SVGChart.n(r))\" "
                                     + common, closing: "circle", title: title))
        }
    }

    private static func pointList(_ points: [(Double, Double)]) -> String {
        points.map { "\(SVGChart.n($0.0)),\(SVGChart.n($0.1))" }.joined(separator: " ")
    }

    /// `open` (an unterminated start tag) closed either empty or around a `<title>` tooltip.
    private static func element(_ open: String, closing name: String, title: String?) -> String {
        guard let title else { return open + "/>" }
        return open + "><title>\(escape(title))</title></\(name)>"
    }

    /// Escapes XML's special characters and drops characters XML 1.0 cannot hold.
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            case "\t", "\n", "\r": result += " "
            default:
                let value = scalar.value
                if value < 0x20 || value == 0xFFFE || value == 0xFFFF {
                    result += "\u{FFFD}"
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }
}
