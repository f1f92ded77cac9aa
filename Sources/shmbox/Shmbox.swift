import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

/// `shmbox`: create, inspect and use ShmMailbox mailboxes from the shell.
@main
struct Shmbox: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shmbox",
        abstract: "Create, inspect and use shared-memory mailboxes.",
        discussion: """
            Mailboxes live in /dev/shm as shmmb.<name>. Names are 1-200 characters of \
            A-Z a-z 0-9 . _ - and do not start with '.'.
            """,
        version: shmboxVersion,
        subcommands: [
            CreateCommand.self, SendCommand.self, ReceiveCommand.self,
            ListCommand.self, InspectCommand.self, DeleteCommand.self, UnlinkCommand.self,
            GrantCommand.self, TransferCommand.self, ReclaimCommand.self, GCCommand.self,
            BridgeCommand.self,
            PeekCommand.self, TopCommand.self,
        ]
    )
}

/// Prints `line` to standard output and flushes it at once, so readers of a pipe see each line
/// as soon as it is printed.
func printLine(_ line: String) {
    print(line)
    fflush(nil)
}

extension MailboxOptions.Ownership: ExpressibleByArgument {}
extension MailboxOptions.ReceiverPolicy: ExpressibleByArgument {}

/// The `--kind` values.
enum KindArgument: String, ExpressibleByArgument, CaseIterable {
    case shared
    case oneToOne = "one-to-one"

    var ringKind: MailboxOptions.RingKind {
        switch self {
        case .shared: return .shared
        case .oneToOne: return .oneToOne
        }
    }
}

extension MailboxOptions.RingKind {
    /// The kind as `--kind` spells it.
    var argumentName: String {
        switch self {
        case .shared: return KindArgument.shared.rawValue
        case .oneToOne: return KindArgument.oneToOne.rawValue
        }
    }
}

/// `--capacity` values: `zero` (or 0), a number of messages, `unbounded`, or `unbounded:N`
/// (segments of N messages).
extension MailboxOptions.Capacity: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "zero": self = .zero
        case "unbounded": self = .unbounded
        default:
            if argument.hasPrefix("unbounded:") {
                guard let segment = Int(argument.dropFirst("unbounded:".count)), segment > 0 else { return nil }
                self = .unbounded(segmentCapacity: segment)
            } else {
                guard let messages = Int(argument), messages >= 0 else { return nil }
                self = .bounded(messages)
            }
        }
    }

    public var defaultValueDescription: String {
        switch kind {
        case .zero: return "zero"
        case .bounded: return "\(messages)"
        case .unbounded: return "unbounded:\(messages)"
        }
    }
}

/// Permission bits given in octal (`0600`, `660`, `0o640`).
struct OctalMode: ExpressibleByArgument {
    var bits: UInt32

    init(bits: UInt32) {
        self.bits = bits
    }

    init?(argument: String) {
        let digits = argument.hasPrefix("0o") ? argument.dropFirst(2) : Substring(argument)
        guard !digits.isEmpty, digits.allSatisfy({ ("0"..."7").contains($0) }),
              let bits = UInt32(digits, radix: 8) else { return nil }
        self.bits = bits
    }

    var defaultValueDescription: String { octal(bits) }
}

/// `bits` in octal with a leading zero, as `chmod` shows them (`0600`).
func octal(_ bits: UInt32) -> String {
    let digits = String(bits, radix: 8)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

/// Rejects negative, infinite and NaN timeouts.
func validateTimeout(_ seconds: Double?) throws {
    if let seconds, !(seconds.isFinite && seconds >= 0) {
        throw ValidationError("--timeout must be a number of seconds, 0 or more.")
    }
}

/// `--trust-user UID` and `--trust-any-user`: whose segments a command accepts (`SegmentTrust`).
struct TrustOptions: ParsableArguments {
    @Option(name: .customLong("trust-user"), help: ArgumentHelp(
        "Also accept mailboxes owned by this user id (repeatable). By default only your own, not writable by others, are opened.",
        valueName: "uid"))
    var users: [UInt32] = []

    @Flag(name: .customLong("trust-any-user"), help: "Accept mailboxes of any owner and mode (their owner, and anyone the mode lets write, can read, change or truncate them).")
    var anyUser = false

    var trust: SegmentTrust {
        anyUser ? .anyUser : users.isEmpty ? .sameUser : .users(users)
    }
}
