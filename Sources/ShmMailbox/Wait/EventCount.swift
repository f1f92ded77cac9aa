import CShim
import Synchronization

/// A futex-backed event in shared memory: a 32-bit sequence word that notifiers bump, and a
/// count of sleepers so that a notifier makes no system call when nobody sleeps.
///
/// The protocol is Dekker's: the waiter announces itself (`waiters += 1`) and then re-checks its
/// condition; the notifier publishes its change and then looks at `waiters`. Each side needs its
/// store ordered before its load, or both could miss each other and the waiter would sleep
/// through a message. The futex compare on the sequence word closes the remaining window between
/// the re-check and going to sleep.
///
/// The store→load order is made asymmetric, because notifying is the hot path and waiting is
/// not: the notifier uses only a compiler barrier, and the waiter, before it re-checks, runs
/// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, which executes a full barrier on every CPU
/// running a thread of a registered process — so either the notifier's store is visible to the
/// waiter's re-check, or the notifier's load comes after that barrier and sees the waiter. Every
/// process registers when it opens a mailbox. Where `membarrier` is unavailable, notifiers use a
/// sequentially consistent fence instead, and a waiter whose barrier call fails sleeps in short
/// slices so that a missed wake-up costs at most one slice.
struct EventCount {
    let word: UnsafeMutablePointer<Atomic<UInt32>>
    let waiters: UnsafeMutablePointer<Atomic<UInt32>>
    /// Whether this process's notifications may rely on waiters' global barriers.
    private let lightNotify: Bool

    init(base: UnsafeMutableRawPointer, offset: Int) {
        word = base.atomicUInt32(at: offset)
        waiters = base.atomicUInt32(at: offset + 4)
        lightNotify = MemoryBarriers.registered
    }

    /// Announces a sleeper and returns the sequence value to sleep on, and whether the global
    /// barrier worked (if not, the caller must keep its sleeps short). The caller must re-check
    /// its condition after this and then either `sleep` or `cancel`.
    @inline(__always)
    func prepareToWait() -> (key: UInt32, reliable: Bool) {
        // Relaxed RMW + seq_cst fence: orders the announcement before this thread's re-check.
        waiters.pointee.wrappingAdd(1, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        // The heavy side of the asymmetric barrier: notifiers that use only a compiler barrier
        // are forced through a full barrier here.
        let reliable = MemoryBarriers.global()
        // Acquire: if a notifier's bump is already visible, so is the change it published.
        return (word.pointee.load(ordering: .acquiring), reliable)
    }

    /// Sleeps until notified, the word moves past `key`, or `timeoutNanos` pass; then withdraws
    /// the announcement made by `prepareToWait`.
    @inline(__always)
    func sleep(key: UInt32, timeoutNanos: UInt64) {
        _ = Futex.wait(word, expected: key, timeoutNanos: timeoutNanos)
        cancel()
    }

    /// Withdraws the announcement made by `prepareToWait` without sleeping.
    @inline(__always)
    func cancel() {
        // Relaxed: the count is only a hint for notifiers; a stale high value costs one
        // spurious wake syscall, never a lost wake-up.
        waiters.pointee.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Wakes sleepers, if any, after the caller has published a change with a release store.
    @inline(__always)
    func notify() {
        if lightNotify {
            // Compiler barrier only: the waiter's global barrier supplies the CPU-level order
            // between our publishing store and the load below.
            shim_compiler_barrier()
        } else {
            // seq_cst fence: orders the publishing store before the load of `waiters`.
            atomicMemoryFence(ordering: .sequentiallyConsistent)
        }
        // Relaxed load: ordered after the publish by the barrier above.
        if waiters.pointee.load(ordering: .relaxed) != 0 {
            // Release: a sleeper that sees the new sequence value also sees the published change.
            word.pointee.wrappingAdd(1, ordering: .releasing)
            Futex.wakeAll(word)
        }
    }
}

extension EventCount {
    /// The sleeping half of a blocking call: announces a sleeper, re-checks `attempt`, and sleeps
    /// until a notification, then re-checks again, until `attempt` succeeds; throws `timedOut`
    /// once `deadline` passes. Each sleep lasts at most `slice()` nanoseconds (2 ms when the
    /// global barrier is unavailable, so that a missed wake-up costs at most that), and
    /// `afterWake` runs after each one. The announcement is withdrawn on every way out, also when
    /// `attempt` throws.
    func sleep(until deadline: UInt64, slice: () -> UInt64, afterWake: () throws -> Void = {},
               _ attempt: () throws -> Bool) throws {
        while true {
            let (key, reliable) = prepareToWait()
            let done: Bool
            do {
                done = try attempt()
            } catch {
                cancel()
                throw error
            }
            if done {
                cancel()
                return
            }
            let now = MonotonicClock.now()
            guard now < deadline else {
                cancel()
                throw MailboxError.timedOut
            }
            sleep(key: key, timeoutNanos: min(deadline - now, reliable ? slice() : 2_000_000))
            try afterWake()
            if try attempt() { return }
        }
    }

    /// Wakes every sleeper whether or not the count says someone sleeps (used when a mailbox
    /// goes away, so that nobody keeps waiting for it).
    func wakeEveryone() {
        // Release: sleepers that see the new value also see the state change that caused it.
        word.pointee.wrappingAdd(1, ordering: .releasing)
        Futex.wakeAll(word)
    }
}

/// `membarrier(2)` for the asymmetric Dekker barrier of `EventCount`.
enum MemoryBarriers {
    /// Whether this process is registered for global expedited barriers (tried once).
    static let registered: Bool = shim_membarrier_register_global() == 0

    /// Runs a full barrier on every CPU that runs a registered process; false if unavailable.
    @inline(__always)
    static func global() -> Bool {
        shim_membarrier_global() == 0
    }
}
