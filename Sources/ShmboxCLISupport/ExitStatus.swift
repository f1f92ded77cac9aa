import ShmMailbox

/// The exit statuses of `shmbox` and `shmbox bridge`, after BSD `sysexits.h`. Every failure exits
/// with exactly one of these and one `shmbox: error: …` line on standard error.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    /// Anything the other cases do not cover.
    case failure = 1
    /// Bad arguments: unknown or misspelled options, bad values, invalid names or options.
    case usage = 64
    /// Bad input data (malformed hex or JSON, a message too large for the mailbox).
    case dataError = 65
    /// An input file (`--file`) cannot be opened or read.
    case noInput = 66
    /// The mailbox, endpoint or process does not exist (or is gone, or deleted).
    case unavailable = 69
    /// An internal error: a corrupted segment, a closed or inherited handle.
    case software = 70
    /// Cannot create: the name already exists, or no shared memory is left.
    case cannotCreate = 73
    /// Temporary: timed out, busy, full of participants; trying again later may work.
    case temporaryFailure = 75
    /// Permission denied, an untrusted owner or unsafe mode, or not permitted.
    case noPermission = 77
}

extension MailboxError {
    /// Which exit status this error gives: the one table from `MailboxError` to exit codes.
    public var exitStatus: ExitStatus {
        switch self {
        case .invalidName, .invalidOptions:
            return .usage
        case .messageTooLarge, .sizeMismatch, .notAMailbox, .incompatibleVersion:
            return .dataError
        case .notFound, .noSuchEndpoint, .noSuchProcess, .ownerTerminated, .deleted, .foreignPidNamespace:
            return .unavailable
        case .corrupted, .inheritedAcrossFork, .receiveInProgress, .closed:
            return .software
        case .alreadyExists, .nameTaken, .outOfSharedMemory:
            return .cannotCreate
        case .timedOut, .deliveryUnconfirmed, .receiverDied, .receiverBusy, .roleTaken,
             .tooManyLinks, .tooManyParticipants:
            return .temporaryFailure
        case .permissionDenied, .untrustedOwner, .unsafePermissions, .notPermitted:
            return .noPermission
        case .system:
            return .failure
        }
    }
}

/// A failure `shmbox` (or `shmbox bridge`) reports itself: one `shmbox: error: <message>` line and `status`.
public struct CLIFailure: Error, CustomStringConvertible {
    /// The text after `shmbox: error: ` (one line).
    public var message: String
    /// The exit status.
    public var status: ExitStatus

    /// A failure reported as `message` (made one line when printed) with `status`.
    public init(_ message: String, status: ExitStatus) {
        self.message = message
        self.status = status
    }

    /// The failure a `MailboxError` gives: its description and its mapped status.
    public init(_ error: MailboxError) {
        self.init(error.description, status: error.exitStatus)
    }

    /// The message.
    public var description: String { message }
}
