#if canImport(Glibc)
import Glibc
#endif

/// Whose shared-memory objects a process is willing to open.
///
/// POSIX shared-memory names live in one directory (`/dev/shm`) that every user can write to, and
/// whoever creates a name owns the object and chooses its permissions. Two threats follow:
///
/// - Another user can create a name before its rightful creator does, with mode `0666`. Victims
///   that open the name then send their messages into an object the attacker owns and can read
///   (and can answer in the receiver's place).
/// - Anyone with write access to an object can change it under its users, and can `ftruncate` it:
///   every process that has it mapped would then die of SIGBUS on its next access (the library
///   catches that and reports `corrupted`, but the mailbox is lost).
///
/// So by default (`sameUser`) `open` accepts only objects owned by the calling process's effective
/// user and not writable by others (`mode & 0o002 == 0`). Group write permission is the owner's
/// choice to share with a group and is accepted.
public struct SegmentTrust: Sendable, Equatable {
    /// Owners accepted besides the caller's effective uid; nil accepts any owner and any mode.
    private let otherOwners: [UInt32]?

    private init(otherOwners: [UInt32]?) {
        self.otherOwners = otherOwners
    }

    /// The default: the object must be owned by this process's effective user (`geteuid()`) and
    /// must not be writable by others.
    public static let sameUser = SegmentTrust(otherOwners: [])

    /// The object may be owned by any of `uids` or by this process's effective user; it still must
    /// not be writable by others. For mailboxes shared with a known service account.
    public static func users(_ uids: [UInt32]) -> SegmentTrust {
        SegmentTrust(otherOwners: uids)
    }

    /// No owner or permission check: the caller accepts that the object's owner, and anyone the
    /// mode lets write, can read, change or truncate what goes through it.
    public static let anyUser = SegmentTrust(otherOwners: nil)

    /// Throws unless an object owned by `owner` with permission bits `mode` is acceptable.
    /// `name` is the mailbox (or derived) name for the error.
    func check(owner: uid_t, mode: mode_t, name: String) throws(MailboxError) {
        guard let otherOwners else { return }
        guard owner == geteuid() || otherOwners.contains(owner) else {
            throw .untrustedOwner(name, uid: owner)
        }
        guard mode & 0o002 == 0 else {
            throw .unsafePermissions(name, mode: mode & 0o7777)
        }
    }
}
