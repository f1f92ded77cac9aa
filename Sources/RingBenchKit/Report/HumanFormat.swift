import Foundation

/// Human-readable numbers for reports: sizes, rates, durations, ratios.
///
/// Every function is total: a non-finite or missing value prints as `HumanFormat.dash`.
enum HumanFormat {
    /// What a missing or meaningless figure prints as.
    static let dash = "–"

    /// `value` with `digits` significant figures, in fixed notation ("12.3", "0.0512", "1234").
    static func significant(_ value: Double, _ digits: Int = 3) -> String {
        guard value.isFinite else { return dash }
        let rounded = roundedToSignificant(value, digits)
        if rounded == 0 { return "0" }
        // The magnitude after rounding, so 0.99996 prints as "1.00", not "1.000".
        let magnitude = Int(floor(log10(abs(rounded))))
        let decimals = max(0, min(9, digits - 1 - magnitude))
        return String(format: "%.\(decimals)f", rounded)
    }

    /// `value` rounded to `digits` significant figures, so the unit is chosen from what will print.
    static func roundedToSignificant(_ value: Double, _ digits: Int = 3) -> Double {
        guard value.isFinite, value != 0 else { return value }
        let magnitude = floor(log10(abs(value)))
        let step = pow(10, magnitude - Double(digits - 1))
        return (value / step).rounded() * step
    }

    /// Drops trailing zeros after a decimal point: "1.50" → "1.5", "2.00" → "2".
    static func trimmingZeros(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var result = Substring(text)
        while result.hasSuffix("0") { result = result.dropLast() }
        if result.hasSuffix(".") { result = result.dropLast() }
        return String(result)
    }

    /// `value` scaled to the largest unit it reaches (after rounding), e.g. 12_345_678 → "12.3 M".
    /// `units` lists (factor, suffix) in any order; the suffix is appended after a space unless empty.
    static func scaled(_ value: Double, units: [(Double, String)], trim: Bool = false) -> String {
        guard value.isFinite else { return dash }
        let ordered = units.sorted { $0.0 > $1.0 }
        let rounded = abs(roundedToSignificant(value))
        let unit = ordered.first { rounded >= $0.0 } ?? ordered.last ?? (1, "")
        var number = significant(value / unit.0)
        if trim { number = trimmingZeros(number) }
        return unit.1.isEmpty ? number : "\(number) \(unit.1)"
    }

    /// Message size in binary units: "8 B", "64 B", "1 KiB", "1.5 KiB", "16 KiB", "1 MiB".
    static func size(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        guard bytes >= 1024 else { return "\(bytes) B" }
        var value = Double(bytes)
        var index = 0
        while value >= 1024, index < units.count - 1 {
            value /= 1024
            index += 1
        }
        if value == value.rounded() { return "\(Int(value)) \(units[index])" }
        return "\(trimmingZeros(significant(value))) \(units[index])"
    }

    /// Messages (or round trips) per second: "12.3 M", "456 k", "789".
    static func rate(_ perSecond: Double) -> String {
        scaled(perSecond, units: [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")])
    }

    /// Payload bytes per second in decimal units: "2.41 GB/s", "512 MB/s".
    static func byteRate(_ bytesPerSecond: Double, trim: Bool = false) -> String {
        scaled(bytesPerSecond, units: [(1e12, "TB/s"), (1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s"), (1, "B/s")],
               trim: trim)
    }

    /// A duration given in nanoseconds: "850 ns", "12.3 µs", "1.20 ms", "2.00 s".
    static func duration(ns: Double?) -> String {
        guard let ns, ns.isFinite else { return dash }
        return scaled(ns, units: [(1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1, "ns")])
    }

    /// A ratio with two decimals and a multiplication sign: "1.00×", "0.03×", "31.52×".
    /// Ratios below 0.01 keep two significant figures ("0.0034×") rather than printing as zero.
    static func ratio(_ value: Double?) -> String {
        guard let value, value.isFinite, value >= 0 else { return dash }
        if value == 0 || value >= 0.01 { return String(format: "%.2f×", value) }
        return significant(value, 2) + "×"
    }

    /// A plain figure such as CPU seconds per million messages: "0.412", "12.3", "1234".
    static func plain(_ value: Double?) -> String {
        guard let value, value.isFinite else { return dash }
        return significant(value)
    }
}
