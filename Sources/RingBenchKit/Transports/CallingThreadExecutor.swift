import Dispatch
import Synchronization

/// Runs async calls to completion on the calling thread, for `shm-async`: ringbench's timed loops
/// are synchronous, so each call that must wait is handed to one long-lived task that prefers
/// this executor and makes the calls one after another, as a program written in async code
/// would from its receive loop. Every job of that task (taking the next call, and each resumption
/// after a suspension, such as the `WaitReactor` resuming a parked receive) is enqueued here and
/// run by the thread that waits for the result, as a cooperative pool thread would run it. A
/// call costs one continuation resumed and one suspension on top of the async call itself; a
/// parked call also costs the same thread wake-up it costs an async program.
final class CallingThreadExecutor: TaskExecutor, @unchecked Sendable {
    // Unchecked: `jobs` is behind its mutex and `ready` is thread-safe; `pending`, `idle` and
    // `started` are used on the calling thread only (by `run`, and by the serving task, whose
    // every job `run` runs on that thread).
    private let jobs = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)
    /// The call the serving task makes next.
    private var pending: (() async -> Void)?
    /// The serving task, suspended until there is a call.
    private var idle: CheckedContinuation<Void, Never>?
    private var started = false

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        ready.signal()
    }

    /// What a run produced; written and read on the calling thread only.
    private final class Outcome<T>: @unchecked Sendable {
        var result: Result<T, any Error>?
    }

    /// Runs `body` in the serving task, on this thread, and returns what it returns (or throws
    /// what it throws).
    func run<T>(_ body: sending @escaping () async throws -> T) throws -> T {
        let outcome = Outcome<T>()
        pending = {
            do {
                outcome.result = .success(try await body())
            } catch {
                outcome.result = .failure(error)
            }
        }
        if let idle {
            self.idle = nil
            idle.resume()           // enqueues the serving task's next job here
        } else if !started {
            started = true
            Task(executorPreference: self) { await self.serve() }
        }
        while outcome.result == nil {
            ready.wait()
            while let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        return try outcome.result!.get()
    }

    /// The serving task: makes each call handed over, then waits for the next.
    private func serve() async {
        while true {
            if let call = pending {
                pending = nil
                await call()
            } else {
                await withCheckedContinuation { idle = $0 }
            }
        }
    }
}

/// Lets `shm-async`'s link hand its mailbox and closures to the serving task, which runs on the
/// calling thread while that thread waits (`CallingThreadExecutor.run`): nothing else touches
/// them meanwhile.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
}
