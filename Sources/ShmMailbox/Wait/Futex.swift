#if canImport(Glibc)
import Glibc
#endif
import CShim
import Synchronization

/// Futex calls on a 32-bit word in shared memory (`FUTEX_WAIT` / `FUTEX_WAKE`, not the
/// process-private variants, because the word is mapped by several processes).
enum Futex {
    enum WaitResult {
        /// Woken by `FUTEX_WAKE` (or spuriously).
        case woken
        /// The word no longer held the expected value.
        case valueChanged
        case timedOut
        /// A signal interrupted the sleep.
        case interrupted
    }

    /// Sleeps while the word at `word` holds `expected`, at most `timeoutNanos`.
    /// `syscall(SYS_futex, word, FUTEX_WAIT, expected, timeout)`.
    ///
    /// - Throws: `system` for any other error (EINVAL, EFAULT, ENOSYS: not a transient state,
    ///   so the caller must not simply retry).
    @inline(__always)
    static func wait(_ word: UnsafeMutablePointer<Atomic<UInt32>>, expected: UInt32, timeoutNanos: UInt64) throws(MailboxError) -> WaitResult {
        let raw = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        let clamped = Int64(min(timeoutNanos, UInt64(Int64.max)))
        switch shim_futex_wait(raw, expected, clamped) {
        case 0: return .woken
        case EAGAIN: return .valueChanged
        case ETIMEDOUT: return .timedOut
        case EINTR: return .interrupted
        case let code: throw .system(operation: "futex wait", errno: code)
        }
    }

    /// Wakes up to `count` sleepers on `word` and returns how many it woke.
    /// `syscall(SYS_futex, word, FUTEX_WAKE, count)`.
    @inline(__always)
    @discardableResult
    static func wake(_ word: UnsafeMutablePointer<Atomic<UInt32>>, count: Int32) -> Int32 {
        let raw = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        // A failed wake (only possible for a bad address) wakes nobody; the sleepers' bounded
        // sleep slices still bring them back.
        return max(0, shim_futex_wake(raw, count))
    }
}
