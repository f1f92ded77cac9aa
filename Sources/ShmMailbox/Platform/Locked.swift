#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex: the lock of the library's process-local state (the async
/// reactor's registrations, sleeper counts, role holders, lease acquisition, event observers),
/// all on slow paths.
///
/// Not `Synchronization.Mutex`: on Linux that is a bare futex that ThreadSanitizer cannot see,
/// so every access made under it is reported as a race and a real one would drown among them.
/// ThreadSanitizer intercepts `pthread_mutex_lock`, so with this lock its runs over the
/// multi-threaded tests check that the state is only ever touched under the lock.
final class Locked<Value>: @unchecked Sendable {
    // Unchecked: `value` is only read or written between `pthread_mutex_lock` and `unlock`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "ShmMailbox: pthread_mutex_init failed (\(rc))")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the value, holding the lock.
    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
