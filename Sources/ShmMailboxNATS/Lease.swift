#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A lease this process holds (see `LeaseTable`), kept alive by the connection's `LeaseKeeper`
/// until `release()`; `isLost` turns true if a refresh found it expired and taken.
final class Lease: Sendable {
    let key: String
    /// What the lease's value says: this handle's sender identity and a random token (two handles
    /// of one process hold different values).
    let holder: String
    private let state: Mutex<(revision: UInt64, lost: Bool, released: Bool)>
    private let table: LeaseTable

    init(key: String, holder: String, revision: UInt64, table: LeaseTable) {
        self.key = key
        self.holder = holder
        self.table = table
        state = Mutex((revision, false, false))
    }

    var isLost: Bool { state.withLock { $0.lost } }

    /// One refresh (the keeper's); false once lost or released (the keeper then drops it).
    func refresh() -> Bool {
        state.withLock { state in
            guard !state.lost, !state.released else { return false }
            if let next = table.refresh(key, holder: holder, revision: state.revision) {
                state.revision = next
            } else {
                state.lost = true
            }
            return !state.lost
        }
    }

    /// Gives the lease up (if still ours). Idempotent.
    func release() {
        state.withLock { state in
            guard !state.released else { return }
            state.released = true
            if !state.lost { table.release(key, revision: state.revision) }
        }
    }
}

/// Refreshes a connection's leases every `LeaseTable.ttl / 4` on one background thread, so a
/// lease lives exactly as long as its holder's process and connection do.
final class LeaseKeeper: Sendable {
    private let leases = Mutex<[Lease]>([])
    private let stopped = Atomic<Bool>(false)

    init() {}

    func keep(_ lease: Lease) {
        let start = leases.withLock { leases in
            leases.append(lease)
            return leases.count == 1
        }
        if start { startThread() }
    }

    func stop() {
        // Relaxed suffices: the thread only needs to see it eventually; nothing else hangs on it.
        stopped.store(true, ordering: .relaxed)
    }

    private func startThread() {
        startDetachedThread { [self] in
            while !stopped.load(ordering: .relaxed) {
                sleepFor(LeaseTable.ttl / 4)
                let current = leases.withLock { $0 }
                let kept = current.filter { $0.refresh() }
                let done = leases.withLock { leases in
                    leases.removeAll { lease in !kept.contains { $0 === lease } && current.contains { $0 === lease } }
                    return leases.isEmpty
                }
                if done { return }
            }
        }
    }
}

/// Runs `body` on a new detached thread (pthreads: the library does not use Foundation).
func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { context in
        let box = Unmanaged<AnyObject>.fromOpaque(context!).takeRetainedValue() as! Box
        box.body()
        return nil
    }, context)
    precondition(status == 0, "pthread_create failed: \(status)")
    pthread_detach(thread)
}
