/// The one error type of ShmMailboxNATS: every failure of a remote mailbox or its connection.
///
/// Each `description` says what happened and, where it helps, what to do. Calls that take a
/// closure also rethrow what the closure throws.
///
/// `@nonexhaustive` (SE-0487), like `MailboxError`: a `switch` over it outside this library needs
/// an `@unknown default`, so new cases break no client.
@nonexhaustive
public enum RemoteMailboxError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The mailbox name breaks the naming rules (1–200 characters of `A–Z a–z 0–9 _ -`).
    case invalidName(String, reason: String)
    /// The options are out of range.
    case invalidOptions(String)
    /// No NATS server answered at any of these URLs when connecting.
    case unreachable(urls: [String], reason: String)
    /// The server refused the credentials (user and password, or token).
    case authenticationFailed(urls: [String])
    /// The server runs without JetStream (start it with `-js`), or this account has none.
    case jetStreamUnavailable(String)
    /// `RemoteMailbox.create` found a mailbox with this name.
    case alreadyExists(String)
    /// No mailbox with this name exists on the server.
    case notFound(String)
    /// A JetStream stream with this name exists but was not created by ShmMailboxNATS.
    case notAMailbox(String)
    /// A message is larger than the mailbox's `maxMessageSize` or than the server's
    /// `max_payload` (`limit` is the smaller). Nothing was sent.
    case messageTooLarge(size: Int, limit: Int)
    /// An unbounded mailbox reached its byte limit (`RemoteMailboxOptions.maxBytes`): nothing was
    /// sent; receivers must drain it first.
    case outOfSpace(String)
    /// A timed call ran out of time. A timed-out send sent nothing.
    case timedOut
    /// The server did not acknowledge a send before its deadline (connection lost, a cluster
    /// electing a new leader): the message may or may not be stored. Sending it again under the
    /// same `messageID` stores it at most once.
    case sendUnconfirmed(String)
    /// A synchronous send ran out of time after a receiver took the message: it was delivered
    /// (and may be being handled), but no receipt came in time.
    case deliveryUnconfirmed
    /// The process that owned this process-owned mailbox closed it or lost its connection; the
    /// mailbox is gone.
    case ownerTerminated(String)
    /// The mailbox was deleted while this handle used it.
    case deleted(String)
    /// The receive turn of an exclusive mailbox (or the role of a pair) is held by another live
    /// process, named by its sender identity.
    case receiverBusy(String)
    /// `RemoteEndpoint.join` found the name held by another live process (named).
    case nameTaken(String, holder: String)
    /// No live process holds this endpoint name (on any host): it never joined, left, or died.
    case noSuchEndpoint(String)
    /// The send role of a `.pair` mailbox is held by another live process (named).
    case roleTaken(String, holder: String)
    /// This handle may not do that here: receive from a process-owned mailbox it does not own.
    case notPermitted(String)
    /// This part of the local model has no faithful remote counterpart (the text says which and
    /// why): it is refused rather than silently weakened.
    case unsupported(String)
    /// A received message does not have the size of the type it was loaded as.
    case sizeMismatch(expected: Int, actual: Int)
    /// A message in the mailbox could not be read (a pack whose records do not add up, published
    /// by something other than ShmMailboxNATS or damaged): it was removed from the mailbox so
    /// that the messages after it still flow.
    case malformedMessage(String, sequence: UInt64, reason: String)
    /// The handle or its connection was closed.
    case closed
    /// JetStream refused a request: its error code (`err_code`) and text.
    case server(code: Int, description: String)
    /// libnats failed in a way none of the cases above describes: its status and text.
    case nats(status: String, detail: String)

    /// What happened, in one line.
    public var description: String {
        switch self {
        case .invalidName(let name, let reason): return "invalid mailbox name '\(name)': \(reason)"
        case .invalidOptions(let text): return "invalid options: \(text)"
        case .unreachable(let urls, let reason):
            return "no NATS server reachable at \(urls.joined(separator: ", ")): \(reason)"
        case .authenticationFailed(let urls):
            return "the NATS server at \(urls.joined(separator: ", ")) refused the credentials"
        case .jetStreamUnavailable(let text):
            return "JetStream is not available (start nats-server with -js): \(text)"
        case .alreadyExists(let name): return "a remote mailbox named '\(name)' already exists"
        case .notFound(let name): return "no remote mailbox named '\(name)'"
        case .notAMailbox(let name): return "the stream for '\(name)' exists but is not a ShmMailbox mailbox"
        case .messageTooLarge(let size, let limit): return "message of \(size) bytes exceeds the limit of \(limit) bytes"
        case .outOfSpace(let name): return "remote mailbox '\(name)' reached its byte limit"
        case .timedOut: return "timed out"
        case .sendUnconfirmed(let name): return "the server did not confirm the send to '\(name)' in time; it may be stored (resend under the same messageID)"
        case .deliveryUnconfirmed: return "a receiver took the message but no receipt came in time"
        case .ownerTerminated(let name): return "the owner of remote mailbox '\(name)' is gone; the mailbox was deleted"
        case .deleted(let name): return "remote mailbox '\(name)' was deleted"
        case .receiverBusy(let holder): return "the receive turn is held by \(holder)"
        case .nameTaken(let name, let holder): return "endpoint name '\(name)' is held by \(holder)"
        case .noSuchEndpoint(let name): return "no endpoint named '\(name)' is joined on any host"
        case .roleTaken(let role, let holder): return "the \(role) role is held by \(holder)"
        case .notPermitted(let text): return "not permitted: \(text)"
        case .unsupported(let text): return "not supported across machines: \(text)"
        case .sizeMismatch(let expected, let actual): return "message has \(actual) bytes, expected \(expected)"
        case .malformedMessage(let name, let sequence, let reason):
            return "message \(sequence) of remote mailbox '\(name)' was malformed and has been removed: \(reason)"
        case .closed: return "the remote mailbox handle or its connection is closed"
        case .server(let code, let text): return "JetStream error \(code): \(text)"
        case .nats(let status, let detail): return "NATS: \(status)\(detail.isEmpty ? "" : ": \(detail)")"
        }
    }
}
