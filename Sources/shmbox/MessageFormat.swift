import ArgumentParser

/// How `send` reads messages and `receive` writes them: `--lines` (the default), `-0`/`--null`,
/// `--raw`, `--hex` or `--json`. At most one may be given.
enum MessageFormat: String, EnumerableFlag, Sendable {
    /// One message per line; the newline is not part of it (a message cannot contain one).
    case lines
    /// Messages separated by NUL bytes (`find -print0`, `xargs -0`): any bytes but NUL.
    case null
    /// One message that is exactly the bytes given (all of the input); receive writes each
    /// message's bytes exactly, with nothing between them.
    case raw
    /// One message per line, written as hexadecimal digits (two per byte).
    case hex
    /// One JSON object per line: `{"text": …}` or `{"base64": …}` (receive adds `sender`,
    /// `size` and `redelivered`).
    case json

    static func name(for value: MessageFormat) -> NameSpecification {
        switch value {
        case .null: return [.customShort("0"), .long]
        default: return .long
        }
    }

    static func help(for value: MessageFormat) -> ArgumentHelp? {
        switch value {
        case .lines: return "One message per line (the default); the newline is not part of it."
        case .null: return "Messages separated by NUL bytes instead of newlines (any other bytes allowed)."
        case .raw: return "send: all of standard input (or --file) is one message, byte for byte; receive: write each message's exact bytes, nothing between them."
        case .hex: return "Hexadecimal, one message per line (send: whitespace within a line is ignored)."
        case .json: return "One JSON object per line: {\"text\": …} or {\"base64\": …}; receive adds sender, size and redelivered."
        }
    }

    /// The byte that ends a record in this format, or nil for `--raw` (the whole input).
    var separator: UInt8? {
        switch self {
        case .lines, .hex, .json: return UInt8(ascii: "\n")
        case .null: return 0
        case .raw: return nil
        }
    }

    /// What one input record is called in error messages ("line 3", "record 3").
    var recordName: String {
        self == .null ? "record" : "line"
    }
}
