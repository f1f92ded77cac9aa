import CShim
import Synchronization

/// A futex-backed event in shared memory (an event line, see `EventLayout`): a 32-bit word that
/// notifiers bump, and a bitmap of the lease entries whose processes sleep on it, so that a
/// notifier makes no system call when nobody sleeps.
///
/// The protocol is Dekker's: a waiter announces itself (sets its bit) and then re-checks its
/// condition; a notifier publishes its change and then reads the bitmap. Each side needs its
/// store ordered before its load, or both could miss each other and the waiter would sleep
/// through the change. The futex compare on the word closes the remaining window between the
/// waiter's re-check and its sleep: a notifier that saw the bit bumps the word before waking.
///
/// The store→load order is asymmetric, because notifying is the hot path and waiting is not:
/// a notifier uses only a compiler barrier, and a waiter, after announcing itself and before
/// re-checking, runs `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, which executes a full barrier
/// on every CPU running a thread of a registered process (and on its own). So either the
/// notifier's store is visible to the waiter's re-check, or the notifier's load runs after that
/// barrier and sees the bit. Every process registers when it opens a segment. A process whose
/// registration failed notifies with a sequentially consistent fence instead; a waiter whose
/// barrier call fails falls back to a fence and sleeps in short slices, so that a missed wake-up
/// (from a light notifier) costs at most one slice.
///
/// Announcements are attributable: bit i belongs to lease entry i. A process killed while it
/// sleeps leaves its bit set, which only costs notifiers a wake-up system call each; whoever
/// notices (a wake that woke nobody, then a liveness check) clears it (`withdraw(deadSleeper:)`).
/// Threads of one process share one entry, so a process-wide count of its sleepers decides when
/// its bit is set and cleared.
struct EventCount {
    let word: UnsafeMutablePointer<Atomic<UInt32>>
    private let line: UnsafeMutableRawPointer
    private let bitmapWords: Int
    /// Identifies this event among all segments, for this process's count of its sleepers.
    private let key: Sleepers.Key
    /// Whether this process's notifications may rely on waiters' global barriers.
    private let lightNotify: Bool

    /// The event line at `offset` of a segment whose incarnation is `nonce`; `bitmapWords`
    /// 64-bit words of sleeper bits.
    init(base: UnsafeMutableRawPointer, offset: Int, nonce: UInt64, bitmapWords: Int = EventLayout.bitmapWords) {
        line = base + offset
        word = line.atomicUInt32(at: EventLayout.word)
        self.bitmapWords = bitmapWords
        key = Sleepers.Key(nonce: nonce, offset: offset)
        lightNotify = MemoryBarriers.registered
    }

    @inline(__always)
    private func sleepers(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        line.atomicUInt64(at: EventLayout.sleepers + index * 8)
    }

    @inline(__always)
    private func waitingWord(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        line.atomicUInt64(at: EventLayout.waiting + index * 8)
    }

    // MARK: Waiting

    /// Announces a sleeper of lease entry `sleeper` and returns the word value to sleep on, and
    /// whether the global barrier worked (if not, the caller must keep its sleeps short). The
    /// caller must re-check its condition after this, then `sleep` or not, then `finishWait`.
    func prepareToWait(as sleeper: Int) -> (key: UInt32, reliable: Bool) {
        Sleepers.announce(key, bit: sleeper) {
            // Relaxed RMW: the barrier below orders the announcement before the re-check.
            sleepers(sleeper / 64).pointee.bitwiseOr(1 << UInt64(sleeper % 64), ordering: .relaxed)
        }
        // The heavy side of the asymmetric barrier (see the type's documentation).
        let reliable = MemoryBarriers.global()
        if !reliable {
            // Orders the announcement before the re-check on this CPU at least.
            atomicMemoryFence(ordering: .sequentiallyConsistent)
        }
        // Acquire: if a notifier's bump is already visible, so is the change it published.
        return (word.pointee.load(ordering: .acquiring), reliable)
    }

    /// Sleeps until notified, the word moves past `key`, or `timeoutNanos` pass.
    func sleep(key: UInt32, timeoutNanos: UInt64) throws(MailboxError) -> Futex.WaitResult {
        try Futex.wait(word, expected: key, timeoutNanos: timeoutNanos)
    }

    /// Withdraws the announcement made by `prepareToWait`.
    func finishWait(as sleeper: Int) {
        Sleepers.withdraw(key, bit: sleeper) {
            // Relaxed: a stale bit costs a notifier one needless wake-up, never a lost one.
            sleepers(sleeper / 64).pointee.bitwiseAnd(~(1 << UInt64(sleeper % 64)), ordering: .relaxed)
        }
    }

    // MARK: Notifying

    /// Wakes sleepers, if any are announced, after the caller published a change with a release
    /// store: one of them, or with `all` every one (when they wait for different things). Returns
    /// how many it woke, or nil if nobody was announced (no system call).
    @inline(__always)
    @discardableResult
    func notify(all: Bool = false) -> Int32? {
        if lightNotify {
            // Compiler barrier only: the waiter's global barrier supplies the CPU-level order
            // between our publishing store and the loads below.
            shim_compiler_barrier()
        } else {
            // Orders the publishing store before the loads below.
            atomicMemoryFence(ordering: .sequentiallyConsistent)
        }
        var announced: UInt64 = 0
        for index in 0..<bitmapWords {
            // Relaxed: ordered after the publication by the barrier above.
            announced |= sleepers(index).pointee.load(ordering: .relaxed)
        }
        guard announced != 0 else { return nil }
        return wake(all: all)
    }

    @inline(never)
    private func wake(all: Bool) -> Int32 {
        // Release: a sleeper that sees the new value also sees the change published before it.
        word.pointee.wrappingAdd(1, ordering: .releasing)
        return Futex.wake(word, count: all ? Int32.max : 1)
    }

    /// Wakes every sleeper whether or not any is announced (a mailbox going away).
    func wakeEveryone() {
        _ = wake(all: true)
    }

    // MARK: Announcements of the dead

    /// The lease entries announced as sleeping (a snapshot).
    func announcedSleepers() -> [Int] {
        bits { sleepers($0) }
    }

    /// Clears the bit of `sleeper`, whose process has died while it slept.
    func withdraw(deadSleeper sleeper: Int) {
        // Relaxed: see `finishWait`.
        sleepers(sleeper / 64).pointee.bitwiseAnd(~(1 << UInt64(sleeper % 64)), ordering: .relaxed)
        waitingWord(sleeper / 64).pointee.bitwiseAnd(~(1 << UInt64(sleeper % 64)), ordering: .relaxed)
    }

    // MARK: Receivers inside a blocking call (zero capacity)

    /// Marks lease entry `waiter` as inside a blocking call on this event (spinning or asleep),
    /// for a zero-capacity mailbox, whose non-blocking senders hand a message over only to a
    /// receiver that waits. Always paired with `leaveWaiting`.
    func enterWaiting(as waiter: Int) {
        Sleepers.announce(waitingKey, bit: waiter) {
            // Relaxed RMW, then the fence below: a sender publishes its message, fences, and
            // looks for waiters (`waitingEntries`); a waiter marks itself, fences, and looks for
            // messages. Either the sender sees the mark or the waiter sees the message.
            _ = waitingWord(waiter / 64).pointee.bitwiseOr(1 << UInt64(waiter % 64), ordering: .relaxed)
        }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// Clears the mark of `enterWaiting`.
    func leaveWaiting(as waiter: Int) {
        Sleepers.withdraw(waitingKey, bit: waiter) {
            // Relaxed: a stale mark only makes a sender wait for a taker a little longer.
            _ = waitingWord(waiter / 64).pointee.bitwiseAnd(~(1 << UInt64(waiter % 64)), ordering: .relaxed)
        }
    }

    /// The lease entries marked as waiting (a snapshot), for a sender that has just published
    /// its message.
    func waitingEntries() -> [Int] {
        // The sender's half of the handshake in `enterWaiting`: its publication before this load.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        return bits { waitingWord($0) }
    }

    private var waitingKey: Sleepers.Key {
        Sleepers.Key(nonce: key.nonce, offset: key.offset + EventLayout.waiting)
    }

    private func bits(_ word: (Int) -> UnsafeMutablePointer<Atomic<UInt64>>) -> [Int] {
        var result: [Int] = []
        for index in 0..<bitmapWords {
            // Relaxed: a snapshot; callers that need order fence before calling.
            var value = word(index).pointee.load(ordering: .relaxed)
            while value != 0 {
                let bit = value.trailingZeroBitCount
                result.append(index * 64 + bit)
                value &= value - 1
            }
        }
        return result
    }
}

/// This process's sleepers per event: threads of one process share a lease entry, so its bit is
/// set while at least one of them sleeps, and cleared by the last one to wake.
enum Sleepers {
    struct Key: Hashable {
        let nonce: UInt64
        let offset: Int
    }

    private struct Bit: Hashable {
        let key: Key
        let bit: Int
    }

    private static let counts = Locked<[Bit: Int]>([:])

    /// Counts one more sleeper; `set` runs (under the lock) when it is the first.
    static func announce(_ key: Key, bit: Int, set: () -> Void) {
        counts.withLock { counts in
            let entry = Bit(key: key, bit: bit)
            let count = counts[entry, default: 0]
            // Set again even if counted: an entry inherited across fork, or a bit cleared by
            // someone who thought this process dead, must not stay cleared.
            set()
            counts[entry] = count + 1
        }
    }

    /// Counts one sleeper less; `clear` runs (under the lock) when it was the last.
    static func withdraw(_ key: Key, bit: Int, clear: () -> Void) {
        counts.withLock { counts in
            let entry = Bit(key: key, bit: bit)
            let count = counts[entry, default: 1] - 1
            if count <= 0 {
                counts[entry] = nil
                clear()
            } else {
                counts[entry] = count
            }
        }
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
