#if canImport(Glibc)
import Glibc
#endif
import CShim
import Synchronization

/// Why an asynchronous wait (`WaitReactor.wait`) ended.
enum AsyncWaitOutcome: Sendable, Equatable {
    /// The word no longer holds the value the waiter saw (a notifier bumped it), or was woken.
    case changed
    /// The wait's deadline passed with the word unchanged.
    case timedOut
    /// The waiting task was cancelled.
    case cancelled
}

/// The waiting side of the async API: a few process-wide threads that sleep in `futex_waitv`
/// over the event words of every mailbox that has suspended tasks, and resume a task's
/// continuation when its word moves, its deadline passes or the task is cancelled. No cooperative
/// thread ever sleeps in the kernel: a task announces itself on an event (as a blocking call
/// would), re-checks its condition, then parks here instead of calling `FUTEX_WAIT`.
///
/// Each watcher thread watches its own control word (index 0 of its vector: a registration or a
/// cancellation bumps it to make the thread rebuild its vector) and up to 127 event words
/// (`futex_waitv` takes at most 128), so 1,000 waiting tasks take 8 threads. Threads are created
/// when all existing ones are full and live as long as the process; an idle one sleeps on its
/// control word only and uses no CPU.
///
/// A kernel without `futex_waitv` (before Linux 5.16; `ENOSYS`) makes the threads poll their
/// words every millisecond instead, sleeping on the control word between polls.
///
/// Every wait has a deadline (callers pass their sleep slice), so a peer that dies without
/// notifying strands nobody: the task wakes, runs its checks and waits again.
final class WaitReactor: Sendable {
    /// The one reactor of this process.
    static let shared = WaitReactor()

    /// Event words one watcher thread watches, besides its control word.
    static let wordsPerWatcher = Int(SHIM_FUTEX_WAITV_MAX) - 1

    /// How often watchers poll their words when the kernel has no `futex_waitv`.
    static let pollNanos: UInt64 = 1_000_000

    /// Whether `futex_waitv` works here (cleared on the first `ENOSYS`; tests clear it to
    /// exercise the polling fallback).
    static let vectoredWaitAvailable = Atomic<Bool>(true)

    /// A registered wait. Addresses are kept as integers: the words live in shared mappings
    /// that `keepAlive` holds mapped until the entry is gone.
    private struct Entry {
        let word: UInt
        let expected: UInt32
        let deadline: UInt64
        let keepAlive: KeepAlive
        let continuation: CheckedContinuation<AsyncWaitOutcome, Never>
    }

    /// Keeps the mapping that holds a watched word alive while the reactor may read it.
    /// Unchecked: the reactor only holds the reference and never uses the object, so no state
    /// of it is shared between threads.
    struct KeepAlive: @unchecked Sendable {
        let object: AnyObject?
    }

    private struct Watcher {
        /// The thread's control word (process memory, never freed), as an address.
        let control: UInt
        var entries: [UInt64: Entry] = [:]
    }

    private struct State {
        var watchers: [Watcher] = []
        var nextID: UInt64 = 0
        /// Which watcher holds each registered wait.
        var owners: [UInt64: Int] = [:]
        /// Waits begun and not yet resumed.
        var live: Set<UInt64> = []
        /// Waits cancelled before they were registered.
        var cancelledEarly: Set<UInt64> = []
    }

    private let state = Locked(State())

    private init() {}

    /// The number of watcher threads started so far.
    var watcherCount: Int { state.withLock { $0.watchers.count } }

    /// Suspends the calling task until the shared 32-bit word at `word` no longer holds
    /// `expected` (or is woken), until `deadline` (monotonic ns), or until the task is cancelled.
    /// `keepAlive` must keep the word's mapping alive (the segment that holds it).
    nonisolated(nonsending)
    func wait(on word: UnsafeMutablePointer<Atomic<UInt32>>, expected: UInt32, deadline: UInt64,
              keepAlive: KeepAlive) async -> AsyncWaitOutcome {
        let id = state.withLock { state -> UInt64 in
            state.nextID &+= 1
            state.live.insert(state.nextID)
            return state.nextID
        }
        let address = UInt(bitPattern: word)
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<AsyncWaitOutcome, Never>) in
                let entry = Entry(word: address, expected: expected, deadline: deadline, keepAlive: keepAlive,
                                  continuation: continuation)
                register(id, entry)
            }
        } onCancel: {
            cancel(id)
        }
    }

    private func register(_ id: UInt64, _ entry: Entry) {
        let placed = state.withLock { state -> (control: UInt, newWatcher: Int?)? in
            if state.cancelledEarly.remove(id) != nil {
                state.live.remove(id)
                return nil
            }
            let index: Int
            var newWatcher: Int?
            if let free = state.watchers.firstIndex(where: { $0.entries.count < Self.wordsPerWatcher }) {
                index = free
            } else {
                let control = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: 1)
                control.initialize(to: Atomic(0))
                state.watchers.append(Watcher(control: UInt(bitPattern: control)))
                index = state.watchers.count - 1
                newWatcher = index
            }
            state.watchers[index].entries[id] = entry
            state.owners[id] = index
            return (state.watchers[index].control, newWatcher)
        }
        guard let placed else {
            entry.continuation.resume(returning: .cancelled)
            return
        }
        if let index = placed.newWatcher { startThread(watcher: index) }
        poke(placed.control)
    }

    private func cancel(_ id: UInt64) {
        let removed = state.withLock { state -> (Entry, UInt)? in
            guard let index = state.owners.removeValue(forKey: id) else {
                // Not registered yet: the registration resumes at once. (Already resumed: nothing.)
                if state.live.contains(id) { state.cancelledEarly.insert(id) }
                return nil
            }
            state.live.remove(id)
            guard let entry = state.watchers[index].entries.removeValue(forKey: id) else { return nil }
            return (entry, state.watchers[index].control)
        }
        guard let (entry, control) = removed else { return }
        entry.continuation.resume(returning: .cancelled)
        // Let the watcher drop the word from its vector.
        poke(control)
    }

    /// Makes a watcher rebuild its vector.
    private func poke(_ control: UInt) {
        let word = UnsafeMutablePointer<Atomic<UInt32>>(bitPattern: control)!
        // Release: the watcher that sees the new value (acquire load when it builds its
        // vector, under the state lock anyway) sees the registration made before.
        word.pointee.wrappingAdd(1, ordering: .releasing)
        Futex.wake(word, count: 1)
    }

    // MARK: Watcher threads

    private final class ThreadStart {
        let reactor: WaitReactor
        let index: Int
        init(reactor: WaitReactor, index: Int) {
            self.reactor = reactor
            self.index = index
        }
    }

    private func startThread(watcher index: Int) {
        let start = Unmanaged.passRetained(ThreadStart(reactor: self, index: index)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { argument in
            let start = Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue()
            start.reactor.run(watcher: start.index)
        }, start)
        precondition(rc == 0, "ShmMailbox: cannot start the async wait thread (pthread_create: \(rc))")
        pthread_detach(thread)
    }

    /// A watcher thread's loop: build the vector, sleep, resume whoever's word moved or whose
    /// deadline passed. Never returns.
    private func run(watcher index: Int) -> Never {
        let vector = UnsafeMutablePointer<shim_futex_waiter>.allocate(capacity: Int(SHIM_FUTEX_WAITV_MAX))
        var ready: [(CheckedContinuation<AsyncWaitOutcome, Never>, AsyncWaitOutcome)] = []
        while true {
            var count: UInt32 = 0
            var earliest = UInt64.max
            let controlAddress = state.withLock { state -> UInt in
                let watcher = state.watchers[index]
                let control = UnsafeMutablePointer<Atomic<UInt32>>(bitPattern: watcher.control)!
                // Relaxed: read under the state lock, which orders it after every registration
                // it must cover; a poke after this load makes the wait below return at once.
                shim_futex_waiter_set(vector, UnsafeMutableRawPointer(control).assumingMemoryBound(to: UInt32.self),
                                      control.pointee.load(ordering: .relaxed))
                count = 1
                for entry in watcher.entries.values {
                    shim_futex_waiter_set(vector + Int(count), UnsafeMutablePointer<UInt32>(bitPattern: entry.word)!,
                                          entry.expected)
                    count += 1
                    earliest = min(earliest, entry.deadline)
                }
                return watcher.control
            }
            let control = UnsafeMutablePointer<Atomic<UInt32>>(bitPattern: controlAddress)!
            if Self.vectoredWaitAvailable.load(ordering: .relaxed) {
                let rc = shim_futex_waitv(vector, count, earliest > UInt64(Int64.max) ? -1 : Int64(earliest))
                if rc == -ENOSYS {
                    // Relaxed: a hint; a thread that still tries the call gets ENOSYS again.
                    Self.vectoredWaitAvailable.store(false, ordering: .relaxed)
                } else if rc == -EFAULT {
                    // A word's mapping was truncated under us (the SIGBUS guard repairs it when
                    // the sweep below reads it): do not spin on the failing call meanwhile.
                    _ = try? Futex.wait(control, expected: UInt32(truncatingIfNeeded: vector[0].value),
                                        timeoutNanos: Self.pollNanos)
                }
            } else if count > 1 {
                // Polling fallback: sleep on the control word a millisecond at a time.
                let now = MonotonicClock.now()
                let until = min(earliest, now.addingSaturating(Self.pollNanos))
                _ = try? Futex.wait(control, expected: UInt32(truncatingIfNeeded: vector[0].value),
                                    timeoutNanos: until > now ? until - now : 0)
            } else {
                _ = try? Futex.wait(control, expected: UInt32(truncatingIfNeeded: vector[0].value), timeoutNanos: .max)
            }
            let now = MonotonicClock.now()
            state.withLock { state in
                for (id, entry) in state.watchers[index].entries {
                    let word = UnsafeMutablePointer<Atomic<UInt32>>(bitPattern: entry.word)!
                    // Relaxed: the resumed task re-checks its condition with its own ordering;
                    // this load only decides whether to resume it.
                    let outcome: AsyncWaitOutcome
                    if word.pointee.load(ordering: .relaxed) != entry.expected {
                        outcome = .changed
                    } else if now >= entry.deadline {
                        outcome = .timedOut
                    } else {
                        continue
                    }
                    state.watchers[index].entries[id] = nil
                    state.owners[id] = nil
                    state.live.remove(id)
                    ready.append((entry.continuation, outcome))
                }
            }
            for (continuation, outcome) in ready { continuation.resume(returning: outcome) }
            ready.removeAll(keepingCapacity: true)
        }
    }
}
