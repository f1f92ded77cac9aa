#if canImport(Glibc)
import Glibc
#endif
import CBenchShim

/// The host-mode probe: a cross-core spin round trip (`bench_spin_probe`, a few milliseconds),
/// measured before and after every run of every cell.
///
/// On these VMs the host moves the two vCPUs between modes (sibling hyperthreads, separate cores,
/// throttled) and every cell moves with it, up to 2×. The probe's figure tells the modes apart:
/// two runs compare fairly only when their probes agree. `Runner` uses it to flag cells measured
/// in another mode than their baseline and to leave such rounds out of ratios.
enum HostProbe {
    /// Two probes within this factor of each other count as the same host mode.
    static let sameModeFactor = 1.5

    /// The CPUs to bounce between: the parent's and the first peer's when pinned, else CPUs 0
    /// and 1 (unpinned threads could share a CPU); nil on a one-CPU machine.
    static func cpus(pin: [Int], cpuCount: Int) -> (Int32, Int32)? {
        if pin.count >= 2 { return (Int32(pin[0]), Int32(pin[1])) }
        return cpuCount >= 2 ? (0, 1) : nil
    }

    /// The median spin round trip in nanoseconds, or nil when it cannot be measured.
    static func measure(pin: [Int]) -> Double? {
        guard let (a, b) = cpus(pin: pin, cpuCount: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) else { return nil }
        let nanos = bench_spin_probe(a, b)
        return nanos > 0 ? nanos : nil
    }

    /// Whether two probes show the same host mode (unknown probes never disagree).
    static func sameMode(_ first: Double?, _ second: Double?) -> Bool {
        guard let first, let second, first > 0, second > 0 else { return true }
        return max(first, second) / min(first, second) <= sameModeFactor
    }
}
