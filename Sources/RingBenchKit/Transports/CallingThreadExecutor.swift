import Dispatch
import Synchronization

/// Runs an async body to completion on the calling thread, for `shm-async`: the body is a task
/// that prefers this executor, so each of its jobs (its start, and each resumption after a
/// suspension, such as the `WaitReactor` resuming a parked receive) is enqueued here and run by
/// the thread that waits for the result, as a cooperative pool thread would run it. While the
/// task is suspended that thread sleeps on a semaphore, as an idle pool thread does.
final class CallingThreadExecutor: TaskExecutor, @unchecked Sendable {
    // Unchecked: `jobs` is behind its mutex and `ready` is thread-safe.
    private let jobs = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        ready.signal()
    }

    /// What the task produced; written by the task and read after it finished, both on the
    /// calling thread.
    private final class Outcome<T>: @unchecked Sendable {
        var result: Result<T, any Error>?
    }

    /// Runs `body` as a task on this thread, and returns what it returns (or throws what it
    /// throws).
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

/// Lets `AsyncDriver` hand a loop's closure to the task that runs it on the calling thread while
/// that thread waits (`CallingThreadExecutor.run`): nothing else touches it meanwhile.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
