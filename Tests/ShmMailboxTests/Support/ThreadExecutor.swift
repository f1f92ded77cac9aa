import Foundation
import Synchronization

/// A task executor with a thread of its own, for measuring how soon the library resumes a task
/// without the measurement including the wait for a cooperative thread: while other suites run
/// blocking tests, the pool's few threads can all be busy for most of a second.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    // Unchecked: `jobs` is behind its mutex and `ready` is thread-safe; the thread owns the rest.
    private let jobs = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)

    /// One for the whole test process (its thread never ends).
    static let shared = ThreadExecutor()

    private init() {
        let thread = Thread { [self] in
            while true {
                ready.wait()
                while let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                    job.runSynchronously(on: asUnownedTaskExecutor())
                }
            }
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        ready.signal()
    }
}
