import ShmMailbox

/// `receive`'s side of a `MessageFormat`: the bytes written for one received message.
extension MessageFormat {
    /// What `receive` writes for a message of `bytes` from `sender`: the message and its
    /// separator (`--lines`: newline, `--null`: NUL, `--raw`: nothing), or its hex line, or
    /// its JSON line.
    func output(for bytes: [UInt8], sender: Int32, redelivered: Bool) -> [UInt8] {
        switch self {
        case .lines: return bytes + [UInt8(ascii: "\n")]
        case .null: return bytes + [0]
        case .raw: return bytes
        case .hex: return Hex.encode(bytes) + [UInt8(ascii: "\n")]
        case .json:
            var line = "{\"sender\":\(sender),\"size\":\(bytes.count),\"redelivered\":\(redelivered),"
            if let text = Self.plainText(bytes) {
                line += "\"text\":\(JSONText.quote(text))}\n"
            } else {
                line += "\"base64\":\"\(Base64.encode(bytes))\"}\n"
            }
            return Array(line.utf8)
        }
    }

    /// `bytes` as a string if they are valid UTF-8 without control characters (C0, DEL, C1),
    /// else nil.
    static func plainText(_ bytes: [UInt8]) -> String? {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let hasControl = text.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) }
        return hasControl ? nil : text
    }
}
