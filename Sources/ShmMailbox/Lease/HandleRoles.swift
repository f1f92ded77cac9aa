#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Which handle of this process holds each exclusive role word.
///
/// A role word in shared memory names a *process* (a packed identity has no room for more). Two
/// handles of one process that both claimed, say, a one-to-one sender role would both find their
/// own identity there and both send into a ring that allows one sender, and closing either would
/// free the role under the other. So within a process, each role word is held by one handle,
/// recorded here; the shared word records the process.
enum HandleRoles {
    /// A role word: the segment incarnation (its nonce) and the word's offset.
    struct Key: Hashable {
        let nonce: UInt64
        let offset: Int
    }

    /// The holding handle and the pid that recorded it (entries inherited across `fork` name the
    /// parent's pid and are void in the child).
    private static let holders = Locked<[Key: (handle: ObjectIdentifier, pid: Int32)]>([:])

    /// Records `handle` as this process's holder of `key`, unless another live handle holds it.
    /// Returns whether `handle` holds it now.
    static func claim(_ key: Key, by handle: ObjectIdentifier) -> Bool {
        let pid = getpid()
        return holders.withLock { table in
            if let current = table[key], current.pid == pid, current.handle != handle { return false }
            table[key] = (handle, pid)
            return true
        }
    }

    /// Whether `handle` is this process's holder of `key`.
    static func holds(_ key: Key, _ handle: ObjectIdentifier) -> Bool {
        let pid = getpid()
        return holders.withLock { table in
            table[key].map { $0.handle == handle && $0.pid == pid } ?? false
        }
    }

    /// Forgets `handle` as the holder of `key` (no effect if another handle holds it).
    static func release(_ key: Key, by handle: ObjectIdentifier) {
        holders.withLock { table in
            if table[key]?.handle == handle { table[key] = nil }
        }
    }
}
