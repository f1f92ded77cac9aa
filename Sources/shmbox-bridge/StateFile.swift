#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import ShmboxCLISupport

/// A journal's file: a few pages mapped shared into memory and locked for as long as the bridge
/// runs.
///
/// A store into the mapping is in the page cache the moment the instruction retires: it survives
/// the process being killed at any point after it (not a power loss or reboot; the default state
/// directory is in /dev/shm, which a reboot empties together with the local mailboxes it speaks
/// for). So a journal entry is committed by one aligned 8-byte store and costs no system call.
///
/// The lock (`flock`, released by the kernel when the process dies) keeps two live bridges from
/// sharing a journal: each bridge direction must be the only writer of its file.
final class StateFile {
    let path: String
    private let descriptor: Int32
    private let base: UnsafeMutableRawPointer
    private let size: Int

    /// Opens or creates `path` with `size` bytes (a new file, or one of another size, is zeroed)
    /// and locks it. `magic` is the first word: a file without it is zeroed and given it.
    init(path: String, size: Int, magic: UInt64) throws(CLIFailure) {
        self.path = path
        self.size = size
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw CLIFailure("cannot open the state file \(path): \(Self.errnoText())", status: Self.creationStatus()) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let busy = errno == EWOULDBLOCK
            let text = Self.errnoText()
            close(descriptor)
            throw busy ? CLIFailure("another bridge is relaying through \(path); give this one another --state-dir", status: .temporaryFailure)
                       : CLIFailure("cannot lock the state file \(path): \(text)", status: .failure)
        }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            let text = Self.errnoText()
            close(descriptor)
            throw CLIFailure("cannot read the state file \(path): \(text)", status: .failure)
        }
        if status.st_size != size {
            // New (or not ours): all zeros is "nothing pending".
            guard ftruncate(descriptor, 0) == 0, ftruncate(descriptor, off_t(size)) == 0 else {
                let text = Self.errnoText()
                close(descriptor)
                throw CLIFailure("cannot size the state file \(path): \(text)", status: .cannotCreate)
            }
        }
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), mapped != MAP_FAILED else {
            let text = Self.errnoText()
            close(descriptor)
            throw CLIFailure("cannot map the state file \(path): \(text)", status: .cannotCreate)
        }
        base = mapped
        if word(0) != magic {
            memset(base, 0, size)
            store(magic, at: 0)
        }
    }

    deinit {
        munmap(base, size)
        close(descriptor)
    }

    /// The 8-byte word at byte `offset` (a multiple of 8).
    func word(_ offset: Int) -> UInt64 {
        base.load(fromByteOffset: offset, as: UInt64.self)
    }

    /// Stores the 8-byte word at byte `offset`, after every store made before it: the fence
    /// keeps the compiler (and a weakly ordered CPU) from letting it overtake them, so a journal
    /// entry's fields are in place before the word that commits it.
    func store(_ value: UInt64, at offset: Int) {
        atomicMemoryFence(ordering: .releasing)
        base.storeBytes(of: value, toByteOffset: offset, as: UInt64.self)
        atomicMemoryFence(ordering: .releasing)
    }

    /// The directory for the journals: created (with parents, mode 0700) if missing.
    static func prepareDirectory(_ path: String) throws(CLIFailure) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw CLIFailure("cannot create the state directory \(prefix): \(errnoText())", status: creationStatus())
            }
        }
    }

    /// A file name made of `parts` (mailbox names: `A-Z a-z 0-9 . _ -` only, so joining them with
    /// `+` is unambiguous).
    static func fileName(_ parts: String...) -> String {
        parts.joined(separator: "+") + ".journal"
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    /// The exit status for a file or directory that cannot be created, by `errno`: 77 when it
    /// is a matter of permission, else 73.
    static func creationStatus() -> ExitStatus {
        errno == EACCES || errno == EPERM || errno == EROFS ? .noPermission : .cannotCreate
    }
}
