// RingBenchKit: the `ringbench` harness. Measures ShmMailbox against other ways local processes
// pass messages (Unix domain sockets, pipes, POSIX message queues, TCP over loopback) and against
// C floors (CBenchShim: the least a ring, a queue with a sequence word per slot, a spinning cache
// line or a futex costs), always between two or more real processes: ringbench starts itself
// again as the peer.
//
//   Transports/  one file per transport: parent-side setup, what the peer inherits or is told,
//                and the `Link` that carries whole messages of one size; `BenchTransport` and
//                the registry through which transports from outside (RingBenchNATS) join.
//   Workloads/   the peer process, the timed loops (latency, throughput, fan-in), runs and
//                medians, the message pattern and its verification.
//   Report/      the result model and its formatters (table, JSON, CSV, SVG).

/// The entry points the `ringbench` command calls.
public enum RingBench {
    /// Runs one workload over the chosen transports and sizes (default size: 64 B).
    public static func run(_ workload: Workload, options: BenchOptions) throws -> BenchmarkReport {
        try Runner.run([workload], options, defaultSizes: BenchOptions.defaultSizes)
    }

    /// The `compare` matrix: latency, then throughput, for every chosen transport and size
    /// (default: all transports, 8 B to 1 MiB).
    public static func compare(options: BenchOptions) throws -> BenchmarkReport {
        try Runner.run([.latency, .throughput], options, defaultSizes: BenchOptions.compareSizes)
    }

    /// Makes `transport` available to `--transport` (and to `compare`'s default list) in this
    /// process. Call it before parsing the command line, in the parent and its peers alike (they
    /// are the same executable). Built-in names cannot be replaced.
    public static func register(_ transport: any BenchTransport) {
        TransportRegistry.register(transport)
    }

    /// The names `--transport` accepts in this process: built in, then registered.
    public static var transportNames: [String] {
        TransportKind.allCases.map(\.rawValue)
    }

    /// The peer process (`ringbench _peer <config>`); returns the exit status.
    public static func peerMain(_ config: String) -> Int32 {
        Peer.main(config)
    }

    /// Parses a size: bytes, or with a k/K/KiB or m/M/MiB suffix (powers of 1024).
    public static func parseSize(_ text: String) -> Int? {
        let lower = text.lowercased()
        for (suffix, factor) in [("kib", 1024), ("mib", 1 << 20), ("gib", 1 << 30), ("k", 1024), ("m", 1 << 20), ("g", 1 << 30)]
        where lower.hasSuffix(suffix) {
            return Int(lower.dropLast(suffix.count)).flatMap { $0.multipliedReportingOverflow(by: factor).overflow ? nil : $0 * factor }
        }
        return Int(lower)
    }
}
