/// The little JSON `shmbox` needs: quoting a string, and reading one object per line whose
/// string members it keeps (other members are checked and skipped).
enum JSONText {
    /// `text` as a JSON string literal, quotes included; control characters are escaped.
    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let digits = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    /// The string members of the JSON object in `bytes` (surrounding whitespace allowed).
    static func stringMembers(of bytes: [UInt8]) throws(FormatError) -> [String: String] {
        var parser = Parser(bytes: bytes)
        let members = try parser.object()
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.failure("unexpected text after the object") }
        return members
    }

    /// A recursive-descent reader over UTF-8 bytes.
    private struct Parser {
        var bytes: [UInt8]
        var index = 0

        func failure(_ what: String) -> FormatError {
            FormatError("invalid JSON at column \(index + 1): \(what)")
        }

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x09, 0x0a, 0x0d].contains(bytes[index]) { index += 1 }
        }

        mutating func expect(_ character: UInt8) throws(FormatError) {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == character else {
                throw failure("expected '\(Character(Unicode.Scalar(character)))'")
            }
            index += 1
        }

        mutating func peek() -> UInt8? {
            skipWhitespace()
            return index < bytes.count ? bytes[index] : nil
        }

        /// An object; returns its string members.
        mutating func object() throws(FormatError) -> [String: String] {
            try expect(UInt8(ascii: "{"))
            var members: [String: String] = [:]
            if peek() == UInt8(ascii: "}") {
                index += 1
                return members
            }
            while true {
                guard peek() == UInt8(ascii: "\"") else { throw failure("expected a member name") }
                let key = try string()
                try expect(UInt8(ascii: ":"))
                if peek() == UInt8(ascii: "\"") {
                    members[key] = try string()
                } else {
                    try skipValue()
                }
                guard let next = peek() else { throw failure("unterminated object") }
                index += 1
                if next == UInt8(ascii: "}") { return members }
                guard next == UInt8(ascii: ",") else { throw failure("expected ',' or '}'") }
            }
        }

        /// Skips any value that is not a string member of the top object.
        mutating func skipValue() throws(FormatError) {
            guard let first = peek() else { throw failure("expected a value") }
            switch first {
            case UInt8(ascii: "\""):
                _ = try string()
            case UInt8(ascii: "{"):
                _ = try object()
            case UInt8(ascii: "["):
                index += 1
                if peek() == UInt8(ascii: "]") {
                    index += 1
                    return
                }
                while true {
                    try skipValue()
                    guard let next = peek() else { throw failure("unterminated array") }
                    index += 1
                    if next == UInt8(ascii: "]") { return }
                    guard next == UInt8(ascii: ",") else { throw failure("expected ',' or ']'") }
                }
            default:
                let start = index
                while index < bytes.count, !",]} \t\r\n".utf8.contains(bytes[index]) { index += 1 }
                let word = String(decoding: bytes[start..<index], as: UTF8.self)
                guard word == "true" || word == "false" || word == "null" || Double(word) != nil else {
                    index = start
                    throw failure("expected a value")
                }
            }
        }

        /// A string literal, escapes decoded.
        mutating func string() throws(FormatError) -> String {
            try expect(UInt8(ascii: "\""))
            var scalars = String.UnicodeScalarView()
            var pendingHigh: UInt32?
            var raw: [UInt8] = []
            func flush() -> Bool {
                defer { raw.removeAll() }
                guard let text = String(validating: raw, as: UTF8.self) else { return false }
                scalars.append(contentsOf: text.unicodeScalars)
                return true
            }
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard flush() else { throw failure("invalid UTF-8 in a string") }
                    guard pendingHigh == nil else { throw failure("unpaired surrogate") }
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    guard flush() else { throw failure("invalid UTF-8 in a string") }
                    guard index < bytes.count else { break }
                    let escape = bytes[index]
                    index += 1
                    let simple: [UInt8: Unicode.Scalar] = [
                        UInt8(ascii: "\""): "\"", UInt8(ascii: "\\"): "\\", UInt8(ascii: "/"): "/",
                        UInt8(ascii: "b"): "\u{08}", UInt8(ascii: "f"): "\u{0C}", UInt8(ascii: "n"): "\n",
                        UInt8(ascii: "r"): "\r", UInt8(ascii: "t"): "\t",
                    ]
                    if let scalar = simple[escape] {
                        guard pendingHigh == nil else { throw failure("unpaired surrogate") }
                        scalars.append(scalar)
                        continue
                    }
                    guard escape == UInt8(ascii: "u"), index + 4 <= bytes.count,
                          let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16)
                    else { throw failure("invalid escape") }
                    index += 4
                    if let high = pendingHigh {
                        guard (0xDC00...0xDFFF).contains(value),
                              let scalar = Unicode.Scalar(0x10000 + (high - 0xD800) << 10 + (value - 0xDC00))
                        else { throw failure("unpaired surrogate") }
                        scalars.append(scalar)
                        pendingHigh = nil
                    } else if (0xD800...0xDBFF).contains(value) {
                        pendingHigh = value
                    } else if let scalar = Unicode.Scalar(value) {
                        scalars.append(scalar)
                    } else {
                        throw failure("unpaired surrogate")
                    }
                default:
                    guard pendingHigh == nil else { throw failure("unpaired surrogate") }
                    guard byte >= 0x20 else { throw failure("control character in a string") }
                    raw.append(byte)
                }
            }
            throw failure("unterminated string")
        }
    }
}
