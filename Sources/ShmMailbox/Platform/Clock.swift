#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on `CLOCK_MONOTONIC` (read through the vDSO, no system call), used for deadlines
/// and spin budgets.
enum MonotonicClock {
    @inline(__always)
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// `CLOCK_MONOTONIC_COARSE` in nanoseconds: a few nanoseconds to read, millisecond
    /// resolution. For rate-limiting checks on hot paths, not for deadlines.
    @inline(__always)
    static func coarseNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// `now() + duration`, saturating; negative durations give `now()`.
    static func deadline(after duration: Duration) -> UInt64 {
        now().addingSaturating(nanoseconds(duration))
    }

    /// A duration in whole nanoseconds, clamped to `0...UInt64.max`.
    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 { return 0 }
        let whole = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if whole.overflow { return .max }
        return whole.partialValue.addingSaturating(UInt64(max(0, attoseconds / 1_000_000_000)))
    }
}

extension UInt64 {
    func addingSaturating(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}

/// Wall-clock time, for informational header fields (creation time, first seen).
enum WallClock {
    /// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`).
    static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
