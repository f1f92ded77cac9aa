#if canImport(Glibc)
import Glibc
#endif

/// The one error type of ShmMailbox.
///
/// Every failure of the library is one of these cases; each `description` says what happened and
/// what to do about it. Operations that take a closure (`send(count:_:)`, `receive(_:)`) also
/// rethrow whatever the closure throws.
///
/// The type can grow: it is `@nonexhaustive` (SE-0487), so a `switch` over it outside this
/// library needs an `@unknown default`, and a new case in a later version breaks no client.
@nonexhaustive
public enum MailboxError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Which side of a one-to-one mailbox a process holds.
    public enum Role: String, Sendable {
        /// The sending side.
        case sender
        /// The receiving side.
        case receiver
    }

    /// The mailbox name breaks the naming rules (1–200 characters of `A–Z a–z 0–9 . _ -`,
    /// not starting with `.`), or an endpoint name does (the same rules, at most 100 characters).
    case invalidName(String, reason: String)
    /// The options passed to `Mailbox.create` are out of range.
    case invalidOptions(String)
    /// `Mailbox.create` found a mailbox (or another shared-memory object) with this name.
    case alreadyExists(String)
    /// No mailbox with this name exists.
    case notFound(String)
    /// The segment exists but its permissions do not let this process open it.
    case permissionDenied(String)
    /// The shared-memory object is owned by another user (its uid) than this process's effective
    /// user and those the caller trusts (see `SegmentTrust`): someone else may have created the
    /// name to read or answer what is sent to it.
    case untrustedOwner(String, uid: UInt32)
    /// The shared-memory object is writable by every user (its permission bits), so anyone could
    /// change or truncate it under its users (see `SegmentTrust`).
    case unsafePermissions(String, mode: UInt32)
    /// The shared-memory object exists but was not created by ShmMailbox.
    case notAMailbox(String)
    /// The segment was written by an incompatible version of ShmMailbox.
    case incompatibleVersion(found: UInt32, supported: UInt32)
    /// The segment's contents break the layout's rules (a truncated file, a position or a record
    /// length out of bounds). Nothing was read outside the mapping.
    case corrupted(reason: String)
    /// A message is larger than the mailbox's `maxMessageSize`.
    case messageTooLarge(size: Int, limit: Int)
    /// A one-to-one mailbox already has a live process in this role.
    case roleTaken(Role, pid: Int32)
    /// The receiver that took a message a synchronous send waited on died before it finished
    /// reading it; the message may be lost.
    case receiverDied(pid: Int32)
    /// An exclusive mailbox's receive turn is held by another live process.
    case receiverBusy(pid: Int32)
    /// A received message does not have the size of the type it was loaded as.
    case sizeMismatch(expected: Int, actual: Int)
    /// The process that owned this process-owned mailbox closed it, exited or died; the mailbox
    /// is gone.
    case ownerTerminated(String)
    /// This process may not do that here: receive from a mailbox it has no receive right to, or
    /// grant or transfer rights it does not own.
    case notPermitted(String)
    /// No running process has this pid.
    case noSuchProcess(Int32)
    /// `Endpoint.join` found the endpoint name held by another live process (its pid).
    case nameTaken(String, pid: Int32)
    /// No live process holds this endpoint name: it never joined, gave the name up, or died.
    case noSuchEndpoint(String)
    /// The endpoint's table of incoming links is full: it already has links from `limit`
    /// different senders.
    case tooManyLinks(String, limit: Int)
    /// Every entry of the mailbox's lease table belongs to a live process: at most `limit`
    /// processes can send to or receive from one mailbox at a time.
    case tooManyParticipants(limit: Int)
    /// The mailbox was created in another pid namespace (another container): pids there name
    /// other processes here, so liveness checks and crash repair would be wrong.
    case foreignPidNamespace(String)
    /// The mailbox was deleted (`Mailbox.delete`): calls that find it empty (receive) or any
    /// send fail, and so do calls that were blocked in it.
    case deleted(String)
    /// A synchronous send ran out of time after a receiver (`pid`, 0 if unknown) took the
    /// message but before it finished with it (or, on a one-to-one mailbox, while the message was
    /// still queued): the message was sent and will be received, but no receipt came in time.
    case deliveryUnconfirmed(pid: Int32)
    /// The handle was opened before this process forked: only the process that opened it may use
    /// it. Open the mailbox again in the child.
    case inheritedAcrossFork
    /// A receive was called from inside the closure of another receive on the same handle (or,
    /// for an endpoint, on the same link): the message in hand is consumed only when that
    /// closure returns, so reading on would hand it over again. Receive after the closure
    /// returns, or on another handle.
    case receiveInProgress
    /// The mailbox handle was closed.
    case closed
    /// A timed `send` or `receive` ran out of time.
    case timedOut
    /// `/dev/shm` has no room for the segment.
    case outOfSharedMemory(requested: Int)
    /// A system call failed in a way none of the cases above describes.
    case system(operation: String, errno: Int32)

    /// What happened and what to do about it, in one line.
    public var description: String {
        switch self {
        case .invalidName(let name, let reason):
            return "invalid mailbox name \"\(name)\": \(reason); use 1-200 characters (endpoint names: 1-100) of A-Z a-z 0-9 . _ - not starting with '.'"
        case .invalidOptions(let why):
            return "invalid mailbox options: \(why)"
        case .alreadyExists(let name):
            return "mailbox \"\(name)\" already exists; open it, or delete it first (shmbox delete \(name))"
        case .notFound(let name):
            return "mailbox \"\(name)\" does not exist; create it first (shmbox create \(name))"
        case .permissionDenied(let name):
            return "permission denied for mailbox \"\(name)\"; run as its owner or create it with a wider mode (--mode 0660)"
        case .untrustedOwner(let name, let uid):
            return "mailbox \"\(name)\" is owned by uid \(uid), not by this user (uid \(geteuid())), so that user could read or answer what is sent to it; if you trust that user, open it with trust: .users([\(uid)]), otherwise have /dev/shm/shmmb.\(name) removed and create the mailbox yourself"
        case .unsafePermissions(let name, let mode):
            return "mailbox \"\(name)\" has mode 0\(String(mode, radix: 8)), writable by every user, so anyone could change or truncate it; have its owner remove that permission (chmod o-w /dev/shm/shmmb.\(name)) or recreate it with a narrower mode (e.g. --mode 0660), or open it with trust: .anyUser to accept the risk"
        case .notAMailbox(let name):
            return "shared-memory object for \"\(name)\" was not created by ShmMailbox; pick another name or remove /dev/shm/shmmb.\(name)"
        case .incompatibleVersion(let found, let supported):
            return "mailbox layout version \(found) is not supported (this build reads version \(supported)); recreate the mailbox with this version"
        case .corrupted(let reason):
            return "mailbox segment is corrupted: \(reason); delete and recreate the mailbox"
        case .messageTooLarge(let size, let limit):
            return "message of \(size) bytes exceeds the mailbox's maxMessageSize of \(limit) bytes; split it or create the mailbox with a larger maxMessageSize"
        case .roleTaken(let role, let pid):
            return "this one-to-one mailbox already has a \(role.rawValue) (process \(pid)); use a shared mailbox for several \(role.rawValue)s"
        case .receiverDied(let pid):
            return "receiver \(pid) took the message but died before finishing it; send it again if it matters"
        case .receiverBusy(let pid):
            return "process \(pid) holds this exclusive mailbox's receive turn; wait until it closes the mailbox (whenReceiverBusy = .wait) or use a competing mailbox"
        case .sizeMismatch(let expected, let actual):
            return "message has \(actual) bytes but the requested type needs \(expected)"
        case .ownerTerminated(let name):
            return "the process that owned mailbox \"\(name)\" has gone, and the mailbox with it; create a new one"
        case .notPermitted(let what):
            return "not permitted: \(what)"
        case .noSuchProcess(let pid):
            return "no process \(pid) is running"
        case .nameTaken(let name, let pid):
            return "endpoint name \"\(name)\" is held by process \(pid); pick another name, or join once that process has closed its endpoint or exited"
        case .noSuchEndpoint(let name):
            return "no process holds endpoint \"\(name)\" (it never joined, closed its endpoint, or died); start it first (Endpoint.join or shmbox receive --as \(name))"
        case .tooManyLinks(let name, let limit):
            return "endpoint \"\(name)\" already has links from \(limit) senders, the most its table holds; remove its segments with shmbox gc once it has stopped, and let fewer processes send to it"
        case .tooManyParticipants(let limit):
            return "the mailbox already has \(limit) live processes sending or receiving, the most it can track; close it in processes that no longer use it, or spread the load over several mailboxes"
        case .foreignPidNamespace(let name):
            return "mailbox \"\(name)\" was created in another pid namespace (container), where pids name other processes; share mailboxes only within one pid namespace"
        case .deleted(let name):
            return "mailbox \"\(name)\" was deleted; create it again to go on"
        case .deliveryUnconfirmed(let pid):
            return "the message was sent\(pid > 0 ? " and taken by process \(pid)" : ""), but no receipt came before the timeout; it will still be received, so do not send it again unless duplicates are harmless"
        case .inheritedAcrossFork:
            return "this mailbox handle was opened before fork(); open the mailbox again in the child process"
        case .receiveInProgress:
            return "a receive was called from inside the closure of another receive on the same handle; receive again after that closure returns"
        case .closed:
            return "the mailbox handle is closed"
        case .timedOut:
            return "timed out waiting for a message (receive) or for room in a full mailbox (send); nothing was sent or taken"
        case .outOfSharedMemory(let requested):
            return "not enough shared memory for \(requested) bytes; free space in /dev/shm or use a smaller capacity or maxMessageSize"
        case .system(let operation, let code):
            return "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}
