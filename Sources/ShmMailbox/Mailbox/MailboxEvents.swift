import Synchronization

/// The process-wide observers of `MailboxEvent`s: none by default.
///
/// ```swift
/// let registration = MailboxEvents.addObserver { event in print(event) }
/// // …
/// MailboxEvents.removeObserver(registration)
/// ```
///
/// Observers are called synchronously, on the thread of the call that acted (a send that
/// repaired a slot, a receive that gave a segment back), outside any lock of this library: keep
/// them short and do not block. Every place that reports an event is on a slow path (recovery,
/// role claims, segment creation and removal, deletion); with no observer, reporting costs one
/// relaxed load there and nothing anywhere else. `ShmMailboxMetrics` routes events to swift-log.
public enum MailboxEvents {
    /// An observer: called once for every event this process reports.
    public typealias Observer = @Sendable (MailboxEvent) -> Void

    /// Names an observer added with `addObserver(_:)`, to remove it.
    public struct Registration: Sendable, Hashable {
        fileprivate let id: UInt64
    }

    /// The observers and the next registration number.
    private struct Registry {
        var observers: [UInt64: Observer] = [:]
        var nextID: UInt64 = 1
    }

    private static let registry = Locked(Registry())
    /// How many observers `registry` holds; read without the lock before each report.
    private static let observerCount = Atomic<Int>(0)

    /// Adds `observer`; it is called for every event reported from now on, until removed.
    @discardableResult
    public static func addObserver(_ observer: @escaping Observer) -> Registration {
        registry.withLock { registry in
            let id = registry.nextID
            registry.nextID += 1
            registry.observers[id] = observer
            // Relaxed, inside the lock: the count only says whether to take the lock at all; an
            // event reported concurrently with this call may miss the new observer either way.
            observerCount.store(registry.observers.count, ordering: .relaxed)
            return Registration(id: id)
        }
    }

    /// Removes the observer `registration` names (nothing if it was removed already). An event
    /// being reported on another thread at this moment may still reach it.
    public static func removeObserver(_ registration: Registration) {
        registry.withLock { registry in
            registry.observers[registration.id] = nil
            // Relaxed, inside the lock: as in `addObserver`.
            observerCount.store(registry.observers.count, ordering: .relaxed)
        }
    }

    /// Reports the event `make` builds to every observer; builds nothing without one. Slow paths
    /// only.
    @inline(__always)
    static func emit(_ make: @autoclosure () -> MailboxEvent) {
        // Relaxed: a hint whether to take the lock; the observers themselves are read under it.
        guard observerCount.load(ordering: .relaxed) != 0 else { return }
        deliver(make())
    }

    @inline(never)
    private static func deliver(_ event: MailboxEvent) {
        // Called outside the lock, so an observer may add or remove observers.
        let observers = registry.withLock { Array($0.observers.values) }
        for observer in observers { observer(event) }
    }
}
