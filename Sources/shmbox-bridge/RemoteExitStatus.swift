import ShmboxCLISupport
import ShmMailboxNATS

extension RemoteMailboxError {
    /// Which exit status this error gives `shmbox bridge`: the one table from
    /// `RemoteMailboxError` to exit codes, in the same classes as `MailboxError.exitStatus`.
    var exitStatus: ExitStatus {
        switch self {
        case .invalidName, .invalidOptions:
            return .usage
        case .messageTooLarge, .sizeMismatch, .notAMailbox, .malformedMessage:
            return .dataError
        case .unreachable, .jetStreamUnavailable, .notFound, .noSuchEndpoint, .ownerTerminated, .deleted, .unsupported:
            return .unavailable
        case .closed:
            return .software
        case .alreadyExists, .nameTaken, .outOfSpace:
            return .cannotCreate
        case .timedOut, .sendUnconfirmed, .deliveryUnconfirmed, .receiverBusy, .roleTaken:
            return .temporaryFailure
        case .authenticationFailed, .notPermitted:
            return .noPermission
        case .server, .nats:
            return .failure
        }
    }
}
