#if canImport(Glibc)
import Glibc
#endif

/// What ringbench measures.
public enum Workload: String, Sendable, CaseIterable {
    /// Ping-pong round trips, each timed.
    case latency
    /// A one-way stream from one sender.
    case throughput
    /// Streams from several sending processes into one receiver.
    case fanin
}

/// The options of a ringbench run (the command line, parsed).
public struct BenchOptions: Sendable {
    /// Transports to measure; empty: every transport that can do the workload (for fan-in every
    /// one but `shm-shared`, which `shm` already is there, and the C floors but `c-slots`, which
    /// cannot).
    public var transports: [TransportKind] = []
    /// Message sizes in bytes (at least 8); empty: the default sizes.
    public var sizes: [Int] = []
    /// Timed messages per cell (round trips for latency; all senders together for fan-in). With
    /// neither `count` nor `duration`, a per-size default with a time cap.
    public var count: Int?
    /// Seconds per cell instead of a count.
    public var duration: Double?
    /// Untimed messages first (per sender); nil: a tenth of the default count, at most 1000.
    public var warmup: Int?
    /// Runs per cell; the median run by the main figure is reported. The command line's default
    /// is `compareRuns` for `compare`, one run elsewhere (the report then says it is one run).
    public var runs = 1
    /// CPUs: the parent's first, then the peers' (round robin). Empty: no pinning.
    public var pin: [Int] = []
    public var strategy: WaitChoice = .adaptive
    public var verify: VerifyMode = .sequence
    /// Messages the shm link may publish together in a stream (throughput, fan-in).
    public var batch = 64
    /// Whether `batch` was asked for (`--batch`): it is then refused when no run uses it, and
    /// the runs that ignore it are named on standard error.
    public var batchGiven = false
    /// Messages per ring of the shm links and the C floors (`--capacity`); nil: as many as fit in
    /// `MailboxSetup.ringBytes`, at most 64 for ping-pong and 4096 for streams.
    public var capacity: Int?
    /// Sending processes in a fan-in.
    public var senders = 2
    /// Debugging: the peer flips a byte of this message (sequence number).
    public var corruptAt: Int?
    /// Show a progress line on standard error (the CLI sets it when stderr is a terminal).
    public var progress = false

    public init() {}

    /// Runs per cell of `compare` when `--runs` is not given: one noisy run cannot decide a ratio.
    public static let compareRuns = 3
    /// Sizes when none are given: the `compare` matrix.
    public static let compareSizes = [8, 64, 1024, 16384, 65536, 1_048_576]
    /// Sizes for a single workload when none are given.
    public static let defaultSizes = [64]
    /// Seconds of timed messages per cell at most, unless `--count` or `--duration` says otherwise.
    public static let defaultCapSeconds = 1.0
    /// Largest size accepted (ShmMailbox's limit).
    public static let maxSize = 1 << 30

    /// Timed messages per cell by default: about 256 MiB of payload, within 256…1,000,000
    /// messages for streams and 500…100,000 round trips for latency; the time cap usually ends
    /// slow transports' cells earlier.
    public static func defaultCount(_ workload: Workload, size: Int) -> Int {
        let budget = (256 << 20) / max(1, size)
        switch workload {
        case .latency: return min(100_000, max(500, budget))
        case .throughput, .fanin: return min(1_000_000, max(256, budget))
        }
    }

    /// Checks the options; throws `BenchError.invalidArgument` naming the bad one.
    public func validate() throws {
        for size in sizes where size < MessageCodec.minimumSize || size > Self.maxSize {
            throw BenchError.invalidArgument("--size \(size): sizes must be \(MessageCodec.minimumSize) B (room for the sequence number) to 1 GiB")
        }
        if count != nil && duration != nil { throw BenchError.invalidArgument("give --count or --duration, not both") }
        if let count, count < 1 { throw BenchError.invalidArgument("--count must be at least 1") }
        if let duration, !(duration > 0) { throw BenchError.invalidArgument("--duration must be positive") }
        if let warmup, warmup < 0 { throw BenchError.invalidArgument("--warmup must not be negative") }
        if runs < 1 { throw BenchError.invalidArgument("--runs must be at least 1") }
        if batch < 1 { throw BenchError.invalidArgument("--batch must be at least 1") }
        if let capacity, capacity < 2 || capacity > 1 << 24 {
            throw BenchError.invalidArgument("--capacity must be 2 to 16777216 messages")
        }
        if senders < 1 || senders > 256 { throw BenchError.invalidArgument("--senders must be 1 to 256") }
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_CONF)))
        for cpu in pin where cpu < 0 || cpu >= max(cpus, 1) {
            throw BenchError.invalidArgument("--pin: CPU \(cpu) does not exist (CPUs 0-\(cpus - 1))")
        }
    }
}

/// Runs workloads over transports and sizes and collects the report.
enum Runner {
    static func run(_ workloads: [Workload], _ options: BenchOptions, defaultSizes: [Int]) throws -> BenchmarkReport {
        try options.validate()
        Sys.ignoreSIGPIPE()
        var cells: [Cell] = []
        for workload in workloads {
            let sizes = options.sizes.isEmpty ? defaultSizes : options.sizes
            for transport in transports(for: workload, options) {
                for size in sizes { cells.append(cell(workload, transport, size, options)) }
            }
        }
        if options.batchGiven, let note = try batchNote(cells, batch: options.batch) {
            Sys.writeAll(2, "ringbench: \(note)\n")
        }
        var machine = MachineFacts.current()
        var loadWarned = machine.loadAverage > Double(machine.cores)
        if loadWarned {
            Sys.writeAll(2, "ringbench: load average \(machine.loadAverage) exceeds the \(machine.cores) cores before measuring: "
                         + "figures may be noisy (noted under the report)\n")
        }
        if let cpu = options.pin.first { try Sys.pin(toCPU: cpu) }

        // Rounds outermost (A B C, A B C, …): every cell's k-th run is measured next to every
        // other's, so a ratio compares runs made minutes apart at most one cell-time, and a host
        // mode change hits all cells of a round rather than all runs of one cell.
        var measured = [[BenchmarkResult]](repeating: [], count: cells.count)
        let progress = Progress(enabled: options.progress, total: cells.count * options.runs)
        defer { progress.clear() }
        for round in 0..<options.runs {
            for (index, cell) in cells.enumerated() {
                progress.show("\(cell.workload.rawValue) \(cell.transport.rawValue) \(cell.size) B" + (options.runs > 1 ? " round \(round + 1)/\(options.runs)" : ""))
                let before = HostProbe.measure(pin: options.pin)
                var row = try cell.run()
                row.probeNs = before
                row.probeAfterNs = HostProbe.measure(pin: options.pin)
                measured[index].append(row)
                let load = MachineFacts.currentLoadAverage()
                machine.loadAverageMax = max(machine.loadAverageMax ?? machine.loadAverage, load)
                if !loadWarned, load > Double(machine.cores) {
                    loadWarned = true
                    progress.clear()
                    Sys.writeAll(2, "ringbench: load average \(load) exceeds the \(machine.cores) cores during the run (noted under the report)\n")
                }
            }
        }
        var results = measured.map(median)
        for (index, cell) in cells.enumerated() {
            let base = cells.firstIndex { $0.workload == cell.workload && $0.size == cell.size && $0.transport == .shm }
            compareModes(&results[index], runs: measured[index], baseline: base.map { (measured[$0], results[$0]) })
        }
        return BenchmarkReport(machine: machine, results: results)
    }

    /// What `--batch` does for these cells: nil when every one uses it, else a line naming those
    /// that ignore it. Throws when none uses it.
    static func batchNote(_ cells: [Cell], batch: Int) throws -> String? {
        let ignoring = cells.filter { !$0.transport.usesBatch(for: $0.shape) }
        guard !ignoring.isEmpty else { return nil }
        var names: [String] = []
        for cell in ignoring {
            let name = "\(cell.transport.rawValue) \(cell.workload.rawValue)"
            if !names.contains(name) { names.append(name) }
        }
        if ignoring.count == cells.count {
            throw BenchError.invalidArgument(
                "--batch \(batch) does not apply to \(names.joined(separator: ", ")): only streams (throughput, fanin) of "
                + "transports that publish messages together (shm, shm-shared, shm-endpoint, the NATS ones) use it")
        }
        return "--batch \(batch) is ignored for \(names.joined(separator: ", ")) (it sends every message with its own call there)"
    }

    /// The main figure of a run: p50 for latency (lower is better), msgs/s otherwise.
    static func figure(_ row: BenchmarkResult) -> Double {
        row.workload == "latency" ? row.p50Ns ?? 0 : row.msgsPerSec
    }

    /// Sets `row.ratio` (the median of per-round ratios to the baseline's run of the same round,
    /// over the rounds whose probes agree, if any do) and `row.modeWarning`.
    static func compareModes(_ row: inout BenchmarkResult, runs: [BenchmarkResult],
                             baseline: (runs: [BenchmarkResult], reported: BenchmarkResult)?) {
        var warnings: [String] = []
        if let before = row.probeNs, let after = row.probeAfterNs, !HostProbe.sameMode(before, after) {
            warnings.append("host mode changed during the run (probe \(Int(before)) → \(Int(after)) ns)")
        }
        if let baseline {
            if !HostProbe.sameMode(row.probeNs, baseline.reported.probeNs), let mine = row.probeNs, let theirs = baseline.reported.probeNs {
                warnings.append("probe \(Int(mine)) ns, the baseline's \(Int(theirs)) ns: another host mode")
            }
            var fair: [Double] = [], all: [Double] = []
            for (mine, theirs) in zip(runs, baseline.runs) where figure(theirs) > 0 {
                let ratio = figure(mine) / figure(theirs)
                all.append(ratio)
                if HostProbe.sameMode(mine.probeNs, theirs.probeNs), HostProbe.sameMode(mine.probeNs, mine.probeAfterNs),
                   HostProbe.sameMode(theirs.probeNs, theirs.probeAfterNs) {
                    fair.append(ratio)
                }
            }
            if !fair.isEmpty {
                row.ratio = middle(fair)
                if fair.count < all.count { warnings.append("ratio from \(fair.count) of \(all.count) rounds (host mode differed in the others)") }
            } else if !all.isEmpty {
                row.ratio = middle(all)
                warnings.append("ratio from rounds in different host modes")
            }
        }
        row.modeWarning = warnings.isEmpty ? nil : warnings.joined(separator: "; ")
    }

    /// The median (the lower middle for an even count) of non-empty `values`.
    static func middle(_ values: [Double]) -> Double {
        values.sorted()[(values.count - 1) / 2]
    }

    /// The transports to run for `workload`, telling on stderr about any asked for by name that
    /// cannot do it. The C floors that come with the default list are skipped quietly where they
    /// cannot (`compare` would otherwise print a line for each of them).
    static func transports(for workload: Workload, _ options: BenchOptions) -> [TransportKind] {
        let byDefault = options.transports.isEmpty
        var chosen = byDefault ? TransportKind.allCases : options.transports
        if byDefault, workload == .fanin { chosen.removeAll { $0 == .shmShared } }
        let shape: LinkShape = workload == .fanin ? .fanIn(senders: options.senders) : workload == .latency ? .pingPong : .oneWay
        return chosen.filter { transport in
            guard let reason = transport.limitation(for: shape) else { return true }
            if !(byDefault && transport.isCFloor) {
                Sys.writeAll(2, "ringbench: skipping \(transport.rawValue) for \(workload.rawValue): \(reason)\n")
            }
            return false
        }
    }

    static func cell(_ workload: Workload, _ transport: TransportKind, _ size: Int, _ options: BenchOptions) -> Cell {
        let defaultCount = BenchOptions.defaultCount(workload, size: size)
        let count: Int?
        let cap: Double?
        if let given = options.count {
            count = given
            cap = nil
        } else if let duration = options.duration {
            count = nil
            cap = duration
        } else {
            count = defaultCount
            cap = BenchOptions.defaultCapSeconds
        }
        return Cell(workload: workload, transport: transport, size: size, count: count,
                    warmup: options.warmup ?? min(1000, defaultCount / 10), capSeconds: cap, senders: options.senders,
                    strategy: options.strategy, verify: options.verify, batch: options.batch, capacity: options.capacity, pin: options.pin,
                    corruptAt: options.corruptAt)
    }

    /// The median run by the main figure (the lower middle for an even count), with the figure's
    /// range over all runs (`runs` says how many; the report prints it once under the table, not
    /// in every row's note).
    static func median(_ rows: [BenchmarkResult]) -> BenchmarkResult {
        let sorted = rows.sorted { figure($0) < figure($1) }
        var chosen = sorted[(sorted.count - 1) / 2]
        chosen.runs = rows.count
        chosen.minOverRuns = figure(sorted.first!)
        chosen.maxOverRuns = figure(sorted.last!)
        return chosen
    }
}

/// The `\r`-updated progress line on standard error.
final class Progress {
    private let enabled: Bool
    private let total: Int
    private var done = 0
    private let started = Sys.nanos()

    init(enabled: Bool, total: Int) {
        self.enabled = enabled
        self.total = total
    }

    func show(_ text: String) {
        done += 1
        guard enabled else { return }
        let elapsed = Int(Double(Sys.nanos() - started) / 1e9)
        Sys.writeAll(2, "\r\u{1B}[K[\(done)/\(total)] \(elapsed) s  \(text)")
    }

    func clear() {
        if enabled { Sys.writeAll(2, "\r\u{1B}[K") }
    }
}
