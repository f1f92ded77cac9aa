/// Hexadecimal text for bytes, and back.
enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// `bytes` as lowercase hexadecimal digits, two per byte.
    static func encode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [UInt8] {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return text
    }

    /// The bytes that the hexadecimal digits in `text` spell (either case); spaces and tabs
    /// are ignored. Throws a description of the first problem.
    static func decode<Bytes: Collection<UInt8>>(_ text: Bytes) throws(FormatError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count / 2)
        var high: UInt8?
        for (offset, character) in text.enumerated() {
            if character == UInt8(ascii: " ") || character == UInt8(ascii: "\t") || character == UInt8(ascii: "\r") { continue }
            guard let value = value(of: character) else {
                throw FormatError("not a hexadecimal digit at column \(offset + 1): \(describe(character))")
            }
            if let pending = high {
                bytes.append(pending << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        guard high == nil else { throw FormatError("odd number of hexadecimal digits") }
        return bytes
    }

    private static func value(of character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// A byte as an error message shows it: `'x'` if printable ASCII, else `0xNN`.
    static func describe(_ byte: UInt8) -> String {
        (0x21...0x7e).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x\(String(decoding: encode([byte]), as: UTF8.self))"
    }
}

/// Input that does not follow the chosen format (exit status 65).
struct FormatError: Error, CustomStringConvertible {
    /// What is wrong, for the error line.
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
