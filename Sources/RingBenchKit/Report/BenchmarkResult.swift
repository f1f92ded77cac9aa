/// One row of a ringbench report: one transport, one workload, one message size.
///
/// The JSON form uses exactly these field names (snake_case), so the output of
/// `ringbench --format json` can be read back with `JSONDecoder` into `[BenchmarkResult]`.
public struct BenchmarkResult: Codable, Sendable, Equatable {
    /// Transport name as given to `--transport` (`shm`, `shm-shared`, `uds-stream`, …), with the
    /// wait strategy appended for shared-memory links (`shm/adaptive`).
    public var transport: String
    /// `latency`, `throughput` or `fanin`.
    public var workload: String
    /// Message size in bytes.
    public var size: Int
    /// Runs made; the figures are those of the median run (by the workload's main figure).
    public var runs: Int
    /// Messages timed in the reported run (round trips for `latency`).
    public var messages: Int
    /// Wall-clock seconds of the reported run.
    public var seconds: Double
    /// Messages per second (round trips per second for `latency`).
    public var msgsPerSec: Double
    /// Payload bytes per second.
    public var bytesPerSec: Double
    /// Round-trip percentiles in nanoseconds (`latency`); nil for other workloads.
    public var p50Ns: Double?
    public var p90Ns: Double?
    public var p99Ns: Double?
    public var p999Ns: Double?
    public var maxNs: Double?
    public var meanNs: Double?
    /// CPU seconds (user + system) used by the sending and the receiving side in the reported run.
    public var cpuSenderS: Double
    public var cpuReceiverS: Double
    /// What was verified for every message: `sequence` or `checksum`.
    public var verified: String
    /// Free text: splitting, raised limits, min–max over runs, batch sizes.
    public var note: String
    /// Main figure's minimum and maximum over the runs (msgs/s, or p50 for latency).
    public var minOverRuns: Double?
    public var maxOverRuns: Double?
    /// The host-mode probe (a cross-core spin round trip, ns) just before and just after the
    /// reported run; nil where it could not be measured (one CPU).
    public var probeNs: Double?
    public var probeAfterNs: Double?
    /// The main figure against the baseline row of the same workload and size (`shm`), as the
    /// median of per-round ratios: the runs of all cells are interleaved (A B A B …), and rounds
    /// whose two probes disagree (another host mode) are left out while any agree. Throughput:
    /// msgs/s ÷ baseline msgs/s; latency: p50 ÷ baseline p50. Nil without a baseline row.
    public var ratio: Double?
    /// Why this row's figures may not compare fairly (host mode changed during the reported run,
    /// or differed from the baseline's; rounds left out of the ratio); nil when nothing was seen.
    public var modeWarning: String?

    public init(transport: String, workload: String, size: Int, runs: Int, messages: Int, seconds: Double,
                msgsPerSec: Double, bytesPerSec: Double, p50Ns: Double? = nil, p90Ns: Double? = nil,
                p99Ns: Double? = nil, p999Ns: Double? = nil, maxNs: Double? = nil, meanNs: Double? = nil,
                cpuSenderS: Double, cpuReceiverS: Double, verified: String, note: String,
                minOverRuns: Double? = nil, maxOverRuns: Double? = nil, probeNs: Double? = nil,
                probeAfterNs: Double? = nil, ratio: Double? = nil, modeWarning: String? = nil) {
        self.transport = transport
        self.workload = workload
        self.size = size
        self.runs = runs
        self.messages = messages
        self.seconds = seconds
        self.msgsPerSec = msgsPerSec
        self.bytesPerSec = bytesPerSec
        self.p50Ns = p50Ns
        self.p90Ns = p90Ns
        self.p99Ns = p99Ns
        self.p999Ns = p999Ns
        self.maxNs = maxNs
        self.meanNs = meanNs
        self.cpuSenderS = cpuSenderS
        self.cpuReceiverS = cpuReceiverS
        self.verified = verified
        self.note = note
        self.minOverRuns = minOverRuns
        self.maxOverRuns = maxOverRuns
        self.probeNs = probeNs
        self.probeAfterNs = probeAfterNs
        self.ratio = ratio
        self.modeWarning = modeWarning
    }

    enum CodingKeys: String, CodingKey {
        case transport, workload, size, runs, messages, seconds
        case msgsPerSec = "msgs_per_sec"
        case bytesPerSec = "bytes_per_sec"
        case p50Ns = "p50_ns"
        case p90Ns = "p90_ns"
        case p99Ns = "p99_ns"
        case p999Ns = "p999_ns"
        case maxNs = "max_ns"
        case meanNs = "mean_ns"
        case cpuSenderS = "cpu_sender_s"
        case cpuReceiverS = "cpu_receiver_s"
        case verified, note
        case minOverRuns = "min_over_runs"
        case maxOverRuns = "max_over_runs"
        case probeNs = "probe_ns"
        case probeAfterNs = "probe_after_ns"
        case ratio
        case modeWarning = "mode_warning"
    }
}

/// Facts about the machine a report was measured on, printed with every report.
public struct MachineFacts: Codable, Sendable, Equatable {
    public var cpuModel: String
    public var cores: Int
    public var kernel: String
    public var date: String
    /// Other load seen while measuring (1-minute load average at start), so readers can judge noise.
    public var loadAverage: Double
    /// The highest 1-minute load average seen while measuring (read after every cell); nil when
    /// not sampled.
    public var loadAverageMax: Double?

    public init(cpuModel: String, cores: Int, kernel: String, date: String, loadAverage: Double,
                loadAverageMax: Double? = nil) {
        self.cpuModel = cpuModel
        self.cores = cores
        self.kernel = kernel
        self.date = date
        self.loadAverage = loadAverage
        self.loadAverageMax = loadAverageMax
    }

    enum CodingKeys: String, CodingKey {
        case cpuModel = "cpu_model"
        case cores, kernel, date
        case loadAverage = "load_average"
        case loadAverageMax = "load_average_max"
    }
}

/// A whole report: the machine and the rows, in the order measured.
public struct BenchmarkReport: Codable, Sendable, Equatable {
    public var machine: MachineFacts
    public var results: [BenchmarkResult]

    public init(machine: MachineFacts, results: [BenchmarkResult]) {
        self.machine = machine
        self.results = results
    }
}
