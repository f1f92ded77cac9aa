import Synchronization

/// A futex-backed event in shared memory: a 32-bit sequence word that notifiers bump, and a
/// count of sleepers so that a notifier makes no system call when nobody sleeps.
///
/// The protocol is Dekker's: the waiter announces itself (`waiters += 1`) and then re-checks its
/// condition; the notifier publishes its change and then looks at `waiters`. Sequentially
/// consistent fences on both sides guarantee that at least one of them sees the other, so a
/// wake-up is never lost. The futex compare on the sequence word closes the remaining window
/// between the re-check and going to sleep.
struct EventCount {
    let word: UnsafeMutablePointer<Atomic<UInt32>>
    let waiters: UnsafeMutablePointer<Atomic<UInt32>>

    init(base: UnsafeMutableRawPointer, offset: Int) {
        word = base.atomicUInt32(at: offset)
        waiters = base.atomicUInt32(at: offset + 4)
    }

    /// Announces a sleeper and returns the sequence value to sleep on. The caller must re-check
    /// its condition after this and then either `sleep` or `cancel`.
    @inline(__always)
    func prepareToWait() -> UInt32 {
        // Relaxed RMW + seq_cst fence: the fence orders the announcement before the caller's
        // re-check of the ring (the store→load order Dekker's protocol needs).
        waiters.pointee.wrappingAdd(1, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        // Acquire: if a notifier's bump is already visible, so is the change it published.
        return word.pointee.load(ordering: .acquiring)
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
        // seq_cst fence: orders the caller's publishing store before the load of `waiters`
        // (Dekker's store→load order; pairs with the fence in `prepareToWait`).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        // Relaxed load: the fence above already placed it after the publish.
        if waiters.pointee.load(ordering: .relaxed) != 0 {
            // Release: a sleeper that sees the new sequence value also sees the published change.
            word.pointee.wrappingAdd(1, ordering: .releasing)
            Futex.wakeAll(word)
        }
    }
}
