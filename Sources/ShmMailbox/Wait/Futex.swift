#if canImport(Glibc)
import Glibc
#endif
import CShim
import Synchronization

/// Futex calls on a 32-bit word in shared memory (`FUTEX_WAIT` / `FUTEX_WAKE`, not the
/// process-private variants, because the word is mapped by several processes).
enum Futex {
    enum WaitResult {
        case woken
        case valueChanged
        case timedOut
        case interrupted
    }

    /// Sleeps while the word at `word` holds `expected`, at most `timeoutNanos`.
    /// `syscall(SYS_futex, word, FUTEX_WAIT, expected, timeout)`.
    @inline(__always)
    static func wait(_ word: UnsafeMutablePointer<Atomic<UInt32>>, expected: UInt32, timeoutNanos: UInt64) -> WaitResult {
        let raw = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        let clamped = Int64(min(timeoutNanos, UInt64(Int64.max)))
        switch shim_futex_wait(raw, expected, clamped) {
        case 0: return .woken
        case EAGAIN: return .valueChanged
        case ETIMEDOUT: return .timedOut
        default: return .interrupted
        }
    }

    /// Wakes every sleeper on `word`. `syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX)`.
    @inline(__always)
    static func wakeAll(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        let raw = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        _ = shim_futex_wake(raw, Int32.max)
    }
}
