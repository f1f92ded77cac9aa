/// `send`'s side of a `MessageFormat`: the message bytes one input record (or TEXT) stands for.
extension MessageFormat {
    /// The message `record` encodes in this format. `--lines`, `--null` and `--raw` take the
    /// bytes as they are; `--hex` and `--json` decode them.
    func message(from record: [UInt8]) throws(FormatError) -> [UInt8] {
        switch self {
        case .lines, .null, .raw:
            return record
        case .hex:
            return try Hex.decode(record)
        case .json:
            let members = try JSONText.stringMembers(of: record)
            switch (members["text"], members["base64"]) {
            case (let text?, nil): return Array(text.utf8)
            case (nil, let base64?): return try Base64.decode(base64)
            case (.some, .some): throw FormatError("give either \"text\" or \"base64\", not both")
            case (nil, nil): throw FormatError("a JSON message needs a \"text\" or \"base64\" string member")
            }
        }
    }
}
