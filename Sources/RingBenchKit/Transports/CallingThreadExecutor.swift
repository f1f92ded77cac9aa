import Dispatch
import Synchronization

/// Runs an async call to completion on the calling thread, for `shm-async`: ringbench's timed
/// loops are synchronous, so each call that must wait runs as a task that prefers this executor.
/// Every job of that task (its start, and each resumption after a suspension, such as the
/// `WaitReactor` resuming a parked receive) is enqueued here and run by the thread that waits for
/// the result, as a cooperative pool thread would run it: a parked task costs the same thread
/// wake-up it costs in a program written in async code, plus the task's creation, which such a
/// program does not pay per call (so `shm-async` figures err on the slow side).
final class CallingThreadExecutor: TaskExecutor, @unchecked Sendable {
    // Unchecked: `jobs` is behind its mutex, `ready` is thread-safe.
    private let jobs = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        ready.signal()
    }

    /// What a run produced; written and read on the calling thread only (every job of the task
    /// runs there).
    private final class Outcome<T>: @unchecked Sendable {
        var result: Result<T, any Error>?
    }

    /// Runs `body` in a task on this thread and returns what it returns (or throws what it throws).
    func run<T>(_ body: sending @escaping () async throws -> T) throws -> T {
        let outcome = Outcome<T>()
        Task(executorPreference: self) {
            do {
                outcome.result = .success(try await body())
            } catch {
                outcome.result = .failure(error)
            }
        }
        while outcome.result == nil {
            ready.wait()
            while let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        return try outcome.result!.get()
    }
}

/// Lets `shm-async`'s link hand its mailbox and closures to a task that runs on the calling
/// thread while that thread waits (`CallingThreadExecutor.run`): nothing else touches them
/// meanwhile.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
