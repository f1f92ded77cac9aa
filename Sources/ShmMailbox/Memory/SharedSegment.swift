#if canImport(Glibc)
import Glibc
#endif
import CShim
import Synchronization

/// A POSIX shared-memory object mapped read-write into this process.
///
/// Wraps `shm_open`, `ftruncate`, `posix_fallocate`, `fchmod`, `fstat`, `mmap`, `munmap` and
/// `shm_unlink`. The mapping is released when the segment is deinitialised; the object itself
/// lives on until `unlink(_:)`.
///
/// The file behind the mapping is treated as hostile: `open` checks its owner and permissions
/// (`SegmentTrust`), and every mapping is registered with the SIGBUS guard (`shim_guard_register`),
/// so a segment truncated under us turns into private zero pages and `isDamaged` instead of
/// killing the process.
final class SharedSegment: @unchecked Sendable {
    /// The mapped bytes. Valid until deinit.
    let base: UnsafeMutableRawPointer
    /// Bytes mapped (the object's size at open).
    let size: Int
    private(set) var name: MailboxName
    /// The device and inode of the object that was mapped (`fstat` of the descriptor mapped), which
    /// identify it whatever name it is reached under later.
    let device: UInt64
    let inode: UInt64
    /// The owner of the object when it was mapped.
    let uid: UInt32
    /// This mapping's slot in the SIGBUS guard's table.
    private let guardSlot: Int32

    private init(base: UnsafeMutableRawPointer, size: Int, name: MailboxName, file: stat, guardSlot: Int32) {
        self.base = base
        self.size = size
        self.name = name
        self.device = UInt64(file.st_dev)
        self.inode = UInt64(file.st_ino)
        self.uid = file.st_uid
        self.guardSlot = guardSlot
    }

    deinit {
        // Unregister first: the guard must never map zero pages over an address range that was
        // given back and may be reused.
        shim_guard_unregister(guardSlot)
        munmap(base, size)
    }

    /// Whether the object was truncated under us (by anyone with write access to it) and an access
    /// hit a page it no longer backs. The SIGBUS guard then replaced the whole mapping by private
    /// zero pages: the access was retried and read or wrote zeros, nothing other processes write
    /// reaches us any more, and nothing we write reaches them. Treat the segment as gone. One
    /// relaxed load (`shim_guard_damaged`, inline).
    @inline(__always)
    var isDamaged: Bool {
        shim_guard_damaged(guardSlot) != 0
    }

    /// Creates a new object of `size` bytes with exactly `mode` permissions (the umask is
    /// overridden), reserves all of its pages so a full `/dev/shm` fails here rather than with a
    /// SIGBUS on first touch, and maps it. The memory is zero-filled.
    static func create(_ name: MailboxName, size: Int, mode: mode_t) throws(MailboxError) -> SharedSegment {
        let fd = shm_open(name.objectName, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw openError(errno, name: name, operation: "shm_open(create)") }
        defer { close(fd) }
        do throws(MailboxError) {
            // shm_open's mode is filtered by the umask; set the permissions the caller asked for.
            guard fchmod(fd, mode) == 0 else { throw systemError(errno, "fchmod") }
            var code: Int32
            repeat {
                code = ftruncate(fd, off_t(size)) == 0 ? 0 : errno
            } while code == EINTR  // A signal arrived: try again.
            guard code == 0 else {
                throw code == ENOSPC || code == EFBIG ? MailboxError.outOfSharedMemory(requested: size)
                                                      : systemError(code, "ftruncate")
            }
            try reserve(fd, size: size)
            return try map(fd, size: size, name: name, file: fileStatus(fd))
        } catch {
            shm_unlink(name.objectName)
            throw error
        }
    }

    /// Creates a new object like `create`, but makes it appear under `name` only once
    /// `initialize` has run: it is built under a temporary name (`name~PID.XXXX`, `XXXX` random
    /// hex) and then hard-linked to `name` (`link(2)` fails if `name` exists, so exactly one
    /// creator wins). Nobody can open a half-built segment, and a creator killed midway leaves
    /// only a temporary object behind (`removeAbandoned` removes those whose process is gone).
    /// Relies on POSIX shared memory being the tmpfs at /dev/shm, as it is with glibc on Linux.
    ///
    /// - Throws: `alreadyExists` if another creator won, `system(EEXIST)` if `temporaryAttempts`
    ///   temporary names drawn were all taken, or what `create` throws.
    static func createInitialized(_ name: MailboxName, size: Int, mode: mode_t,
                                  _ initialize: (UnsafeMutableRawPointer) -> Void) throws(MailboxError) -> SharedSegment {
        try createInitialized(name, size: size, mode: mode, temporaryRandom: { UInt16.random(in: .min ... .max) }, initialize)
    }

    /// `createInitialized(_:size:mode:_:)` with the random part of the temporary name drawn from
    /// `temporaryRandom` (for tests).
    ///
    /// The random part is 4 hex digits (16 bits), always all 4, so the temporary suffix
    /// `~PID.XXXX` has at most 1 + 10 + 1 + 4 = 16 bytes. The longest name the library derives is
    /// an unbounded mailbox's further segment, `NAME#g`: 200 + 1 + 20 = 221 bytes; with the suffix
    /// that is 237, within `MailboxName(derived:)`'s 250, and its file `shmmb.` + 237 = 243 bytes
    /// stays under NAME_MAX (255) with room to spare for longer derived names. 16 bits suffice:
    /// the pid is part of the name, so in normal use only this process's own concurrent builds of
    /// the same name (or a leftover of a dead process that had our pid) can hold a temporary name
    /// we draw; a name that is taken (O_EXCL fails with EEXIST on the temporary) is drawn again,
    /// up to `temporaryAttempts` times. A user who pre-creates most of the 65536 names of a given
    /// name and pid can make creation fail (a denial of service, like taking the final name
    /// itself), but never make us use an object we did not create: O_EXCL opens nothing that exists.
    static func createInitialized(_ name: MailboxName, size: Int, mode: mode_t, temporaryRandom: () -> UInt16,
                                  _ initialize: (UnsafeMutableRawPointer) -> Void) throws(MailboxError) -> SharedSegment {
        var attempts = 0
        while true {
            let random = String(temporaryRandom(), radix: 16)
            let temporary = MailboxName(derived: name.name + temporaryMarker + "\(getpid())."
                                        + String(repeating: "0", count: 4 - random.utf8.count) + random)
            let segment: SharedSegment
            do {
                segment = try create(temporary, size: size, mode: mode)
            } catch .alreadyExists where attempts + 1 < temporaryAttempts {
                // The temporary name is taken, not `name`: draw another.
                attempts += 1
                continue
            } catch .alreadyExists {
                throw .system(operation: "shm_open(create \(temporary.objectName)) after \(temporaryAttempts) names taken", errno: EEXIST)
            }
            defer { shm_unlink(temporary.objectName) }
            initialize(segment.base)
            guard link(directory + temporary.objectName, directory + name.objectName) == 0 else {
                throw openError(errno, name: name, operation: "link")
            }
            segment.name = name
            return segment
        }
    }

    /// How many temporary names `createInitialized` draws before it gives up.
    static let temporaryAttempts = 64

    /// Separates a final name from the creator's pid in the temporary name of `createInitialized`.
    static let temporaryMarker = "~"

    /// For an object name `createInitialized` builds under (`NAME~PID.X`): the final name and
    /// the builder's pid (nil if unreadable); nil for any other name.
    static func temporary(_ object: String) -> (finalName: Substring, builder: Int32?)? {
        guard let marker = object.lastIndex(of: Character(temporaryMarker)) else { return nil }
        let builder = object[object.index(after: marker)...].prefix { $0 != "." }
        return (object[..<marker], Int32(builder))
    }

    /// Opens and maps an existing object. `minimumSize` bytes must be present (a shorter object is
    /// `corrupted`); `waitForSize` gives a creator that has not sized the object yet a moment.
    ///
    /// - Parameter trust: whose objects to accept (default `.sameUser`: owned by this process's
    ///   effective user and not writable by others); checked on the descriptor before anything is
    ///   mapped.
    /// - Throws: `untrustedOwner` or `unsafePermissions` when `trust` refuses the object, `notFound`,
    ///   `permissionDenied`, `corrupted`, or a system error.
    static func open(_ name: MailboxName, minimumSize: Int, waitForSize: Duration,
                     trust: SegmentTrust = .sameUser) throws(MailboxError) -> SharedSegment {
        let fd = shm_open(name.objectName, O_RDWR | O_CLOEXEC, 0)
        guard fd >= 0 else { throw openError(errno, name: name, operation: "shm_open") }
        defer { close(fd) }
        var info = try fileStatus(fd)
        try trust.check(owner: info.st_uid, mode: info.st_mode, name: name.name)
        let deadline = MonotonicClock.deadline(after: waitForSize)
        while Int(info.st_size) < minimumSize {
            if MonotonicClock.now() >= deadline {
                let size = Int(info.st_size)
                throw size == 0 && minimumSize > 0
                    ? .corrupted(reason: "the shared-memory object is empty (its creator died before sizing it?)")
                    : .corrupted(reason: "the shared-memory object has \(size) bytes, fewer than the \(minimumSize) of a mailbox header")
            }
            usleep(1000)
            info = try fileStatus(fd)
        }
        return try map(fd, size: Int(info.st_size), name: name, file: info)
    }

    /// Removes the object's name, but only if the name still leads to the object this segment
    /// mapped: it opens the name again (read-only; we could read and write it when we mapped it),
    /// and unlinks it only if the device and inode equal the ones recorded at mapping. Returns
    /// whether it unlinked. A name that is gone, leads to another object (removed and created
    /// anew by someone else) or cannot be opened is left alone.
    ///
    /// A race remains: between the check and `shm_unlink`, another process may remove the name
    /// and create a new object under it, whose name this call then removes. Closing it needs
    /// cooperation through the segment itself (a claim flag in the header the layer above sets
    /// before it unlinks); this is only the primitive.
    func unlinkIfSame() -> Bool {
        // O_NONBLOCK: a FIFO someone put under the name would otherwise block this open until a
        // writer came; regular files ignore the flag.
        let fd = shm_open(name.objectName, O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard let current = try? Self.fileStatus(fd),
              UInt64(current.st_dev) == device, UInt64(current.st_ino) == inode else { return false }
        return shm_unlink(name.objectName) == 0
    }

    /// Removes the object's name; processes that have it mapped keep their mapping.
    static func unlink(_ name: MailboxName) throws(MailboxError) {
        guard shm_unlink(name.objectName) == 0 else {
            throw openError(errno, name: name, operation: "shm_unlink")
        }
    }

    /// Where Linux keeps POSIX shared-memory objects.
    static let directory = "/dev/shm"

    /// The mailbox names of all `shmmb.*` objects (`opendir`/`readdir` on /dev/shm), sorted.
    /// Segments with derived names (see `MailboxName(derived:)`) are left out.
    static func mailboxNames() throws(MailboxError) -> [String] {
        try objectNames().filter(MailboxName.isValid)
    }

    /// The names (without the `shmmb.` prefix) of all `shmmb.*` objects, derived ones included, sorted.
    static func objectNames() throws(MailboxError) -> [String] {
        guard let stream = opendir(directory) else {
            throw .system(operation: "opendir(\(directory))", errno: errno)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let fileName = Self.fileName(of: entry)
            if fileName.hasPrefix(MailboxName.objectPrefix) {
                names.append(String(fileName.dropFirst(MailboxName.objectPrefix.count)))
            }
        }
        return names.sorted()
    }

    /// The name in a directory entry, read up to its NUL in place. The kernel's records are only
    /// as long as their name (`d_reclen`), so the last one in `readdir`'s buffer can end before
    /// `d_name`'s declared 256 bytes: copying the field whole (`withUnsafeBytes(of:)`) reads past
    /// the buffer (found by the fuzzer under AddressSanitizer, Fuzz/README.md, finding 3).
    static func fileName(of entry: UnsafeMutablePointer<dirent>) -> String {
        let offset = MemoryLayout<dirent>.offset(of: \.d_name)!
        return String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
    }

    /// `posix_fallocate(fd, 0, size)`, retried when a signal interrupts it (EINTR).
    ///
    /// On some kernels tmpfs's fallocate checks for any pending signal before each page and, when
    /// it finds one, gives back every page that call reserved (recent kernels stop only for fatal
    /// signals, which end the process anyway). Retrying the whole range could then go on forever
    /// in a process that gets signals more often than the call takes (an interval timer, a
    /// profiler). So after each EINTR the rest is reserved in pieces of half the size (at least a
    /// page); a piece that completes stays reserved, and the pieces soon fit between two signals.
    /// Tests take this path without a signal through `ReservationInterrupts`.
    private static func reserve(_ fd: Int32, size: Int) throws(MailboxError) {
        var offset = 0
        var piece = size
        while offset < size {
            let length = min(piece, size - offset)
            // posix_fallocate returns the error code instead of setting errno.
            let code = Self.interruptedForTest(size) ? EINTR : posix_fallocate(fd, off_t(offset), off_t(length))
            switch code {
            case 0:
                offset += length
            case EINTR:
                piece = max(piece / 2, Int(getpagesize()))
            case ENOSPC, EFBIG:
                throw .outOfSharedMemory(requested: size)
            default:
                throw systemError(code, "posix_fallocate")
            }
        }
    }

    /// Maps `size` bytes of `fd` (the object `file` describes) and registers the mapping with the
    /// SIGBUS guard before anyone can touch it.
    private static func map(_ fd: Int32, size: Int, name: MailboxName, file: stat) throws(MailboxError) -> SharedSegment {
        let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let address, address != MAP_FAILED else {
            let code = errno
            throw code == ENOMEM ? .outOfSharedMemory(requested: size) : systemError(code, "mmap")
        }
        let slot = shim_guard_register(address, size)
        guard slot >= 0 else {
            munmap(address, size)
            throw .system(operation: "registering the mapping with the SIGBUS guard (\(SHIM_GUARD_SLOTS) segments are mapped already)",
                          errno: EMFILE)
        }
        return SharedSegment(base: address, size: size, name: name, file: file, guardSlot: slot)
    }

    /// `fstat(fd)`.
    private static func fileStatus(_ fd: Int32) throws(MailboxError) -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw systemError(errno, "fstat") }
        return info
    }

    private static func openError(_ code: Int32, name: MailboxName, operation: String) -> MailboxError {
        switch code {
        case EEXIST: return .alreadyExists(name.name)
        case ENOENT: return .notFound(name.name)
        case EACCES, EPERM: return .permissionDenied(name.name)
        case ENOSPC: return .outOfSharedMemory(requested: 0)
        case ENAMETOOLONG, EINVAL: return .invalidName(name.name, reason: "the system rejected it")
        default: return systemError(code, operation)
        }
    }

    private static func systemError(_ code: Int32, _ operation: String) -> MailboxError {
        .system(operation: operation, errno: code)
    }
}

/// Tests (debug builds): makes the next `count` reservation calls for a segment of exactly `size`
/// bytes report EINTR without running, as a signal arriving during `posix_fallocate` would, so
/// that the retry path runs deterministically. Other sizes are left alone, so tests creating
/// mailboxes at the same time are not affected. Release builds never interrupt.
enum ReservationInterrupts {
    static let size = Atomic<Int>(0)
    static let remaining = Atomic<Int>(0)

    static func arm(size bytes: Int, count: Int) {
        // Relaxed: the test arms before the creation it then makes on the same thread.
        remaining.store(count, ordering: .relaxed)
        size.store(bytes, ordering: .relaxed)
    }
}

extension SharedSegment {
    /// Whether this reservation call for a segment of `size` bytes should report EINTR (tests).
    @inline(__always)
    static func interruptedForTest(_ size: Int) -> Bool {
        #if DEBUG
        // Relaxed: a test counter; a lost decrement race only changes how many EINTRs are seen.
        guard ReservationInterrupts.size.load(ordering: .relaxed) == size else { return false }
        return ReservationInterrupts.remaining.wrappingSubtract(1, ordering: .relaxed).oldValue > 0
        #else
        return false
        #endif
    }
}
