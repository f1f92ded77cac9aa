#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A named place between two stores of a protocol (send, receive, takeover, growth, repair,
/// removal) where a process can be killed. Tests make a helper process kill itself exactly there
/// (`SHMMB_CRASH_AT=<point>[:<n>]` in its environment: the n-th time it passes the point, default
/// the first) and then check that the survivors lose, duplicate and wedge nothing.
///
/// Debug builds only: in release builds `crashPoint(_:)` is empty and compiles away.
enum CrashPoint: String, CaseIterable, Sendable {
    // One-to-one ring, sender.
    case oneToOneAfterPadding = "o2o.send.after-padding"
    case oneToOneAfterPayload = "o2o.send.after-payload"
    case oneToOneAfterStamp = "o2o.send.after-stamp"
    case oneToOneAfterPublish = "o2o.send.after-publish"
    // One-to-one ring, receiver.
    case oneToOneAfterIntent = "o2o.receive.after-intent"
    case oneToOneBeforeRelease = "o2o.receive.before-release"
    // Shared ring, sender.
    case sharedAfterTailClaim = "shared.send.after-tail-claim"
    case sharedAfterClaim = "shared.send.after-claim"
    case sharedAfterPayload = "shared.send.after-payload"
    case sharedAfterCommit = "shared.send.after-commit"
    // Shared ring, receiver.
    case sharedAfterIntent = "shared.receive.after-intent"
    case sharedAfterHeadTake = "shared.receive.after-head-take"
    case sharedAfterTake = "shared.receive.after-take"
    case sharedBeforeRelease = "shared.receive.before-release"
    // Receipts (synchronous sends).
    case receiptBeforeDelivered = "receipt.before-delivered"
    case receiptAfterDelivered = "receipt.after-delivered"
    // Repairs.
    case repairAfterAdopt = "repair.after-adopt"
    case repairAfterRedeliverMark = "repair.after-redeliver-mark"
    // Leases.
    case leaseAfterAcquire = "lease.after-acquire"
    // Unbounded chains.
    case chainAfterSeal = "chain.after-seal"
    case chainAfterBuild = "chain.after-build"
    case chainAfterLink = "chain.after-link"
    case chainAfterRaiseRead = "chain.after-raise-read"
    // Removal of a segment's name.
    case unlinkAfterClaim = "unlink.after-claim"
    // Endpoints.
    case endpointAfterEntryClaim = "endpoint.after-entry-claim"
    case endpointAfterRetire = "endpoint.after-retire"
}

/// Kills this process (SIGKILL, as `kill -9` would) if the test armed `point`. Debug builds only.
@inline(__always)
func crashPoint(_ point: CrashPoint) {
    #if DEBUG
    CrashPoints.pass(point)
    #endif
}

#if DEBUG
/// The armed crash point of this process, read once from `SHMMB_CRASH_AT`.
enum CrashPoints {
    static let environmentVariable = "SHMMB_CRASH_AT"

    private static let armed: (point: CrashPoint, hit: Int)? = {
        guard let raw = getenv(environmentVariable) else { return nil }
        let parts = String(cString: raw).split(separator: ":")
        guard let first = parts.first, let point = CrashPoint(rawValue: String(first)) else { return nil }
        return (point, parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
    }()
    private static let passes = Atomic<Int>(0)

    static func pass(_ point: CrashPoint) {
        guard let armed, armed.point == point else { return }
        // Relaxed: a counter private to this process; the kill is the only effect.
        if passes.add(1, ordering: .relaxed).newValue == armed.hit {
            kill(getpid(), SIGKILL)
        }
    }
}
#endif
