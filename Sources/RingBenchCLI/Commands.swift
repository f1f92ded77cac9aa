import ArgumentParser
import Foundation
import RingBenchKit

/// Options every workload takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("size"), help: ArgumentHelp(
        "Message size in bytes, at least 8; k/KiB and m/MiB suffixes allowed. Repeatable. (default: 64; compare: 8, 64, 1024, 16384, 65536, 1048576)",
        valueName: "bytes"))
    var sizes: [String] = []

    @Option(name: .customLong("transport"), help: ArgumentHelp(
        "\(RingBenchCLI.transportList). Repeatable. (default: all that can do the workload)",
        valueName: "name"))
    var transports: [String] = []

    @Option(help: ArgumentHelp(
        "Timed messages per cell (round trips for latency; all senders together for fanin, rounded up to a multiple of --senders). Default: about 256 MiB of payload per cell (256 to 1,000,000 messages; 500 to 100,000 round trips), capped at 1 s of timed messages.",
        valueName: "n"))
    var count: Int?

    @Option(help: ArgumentHelp("Seconds of timed messages per cell, instead of a count.", valueName: "seconds"))
    var duration: Double?

    @Option(help: ArgumentHelp("Untimed messages before the timed part (per sender). (default: a tenth of the default count, at most 1000)", valueName: "n"))
    var warmup: Int?

    @Option(help: ArgumentHelp("Runs per cell, interleaved (all cells once, then again…); the median run (by msgs/s, or p50 for latency) is reported with the range over runs, and ratios are medians of per-round ratios. (default: 3 for compare, else 1, which the report says)", valueName: "k"))
    var runs: Int?

    @Option(help: ArgumentHelp("CPUs to pin to (sched_setaffinity): the parent on the first, the peers on the others in turn.", valueName: "cpu,cpu"))
    var pin: String?

    @Option(help: ArgumentHelp("How the shm links wait: spin, adaptive or block.", valueName: "strategy"))
    var strategy: String = "adaptive"

    @Option(help: ArgumentHelp("What the receiver checks in every message: sequence (the sequence number and length) or checksum (every byte against a pattern derived from the sequence number).", valueName: "mode"))
    var verify: String = "sequence"

    @Option(help: ArgumentHelp("Messages the shared-memory links (shm, shm-shared, shm-endpoint) may publish together in a stream (throughput, fanin), and the NATS links' window of unacknowledged publishes; other transports send each message with its own call (refused when no run uses it, named on standard error where ignored). (default: 64)", valueName: "n"))
    var batch: Int?

    @Option(help: ArgumentHelp("Messages per ring of the shared-memory links (per link for shm-endpoint) and slots of the C floors' rings (c-ring, c-slots: rounded down to a power of two); other transports ignore it. (default: as many as fit in 4 MiB, at most 64 for latency and 4096 for streams)", valueName: "n"))
    var capacity: Int?

    @Option(help: ArgumentHelp("Report format: table, markdown, json or csv.", valueName: "format"))
    var format: String = "table"

    @Option(help: ArgumentHelp("Write the report to this file instead of standard output.", valueName: "file"))
    var output: String?

    @Option(help: ArgumentHelp("Also write an SVG chart of the results to this file.", valueName: "file"))
    var svg: String?

    @Option(name: .customLong("corrupt-at"), help: .private)
    var corruptAt: Int?

    func options(senders: Int = 2, defaultRuns: Int = 1) throws -> BenchOptions {
        var options = BenchOptions()
        options.sizes = try sizes.map { text in
            guard let size = RingBench.parseSize(text) else { throw ValidationError("--size \(text): not a size in bytes") }
            return size
        }
        options.transports = try transports.map(RingBenchCLI.transport(named:))
        guard let strategy = WaitChoice(rawValue: strategy) else {
            throw ValidationError("--strategy \(strategy): expected spin, adaptive or block")
        }
        guard let verify = VerifyMode(rawValue: verify) else {
            throw ValidationError("--verify \(verify): expected sequence or checksum")
        }
        guard ["table", "markdown", "json", "csv"].contains(format) else {
            throw ValidationError("--format \(format): expected table, markdown, json or csv")
        }
        if let pin {
            options.pin = try pin.split(separator: ",").map { part in
                guard let cpu = Int(part.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("--pin \(pin): expected CPU numbers like 0,1") }
                return cpu
            }
        }
        options.count = count
        options.duration = duration
        options.warmup = warmup
        options.runs = runs ?? defaultRuns
        options.strategy = strategy
        options.verify = verify
        if let batch {
            options.batch = batch
            options.batchGiven = true
        }
        options.capacity = capacity
        options.senders = senders
        options.corruptAt = corruptAt
        options.progress = isatty(2) != 0
        do {
            try options.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        return options
    }

    /// Measures with `measure` and writes the report (and the chart) where asked. The `--output`
    /// and `--svg` files are opened first, so a path that cannot be written fails before
    /// measuring; one that fails after the run has its text printed on standard output instead
    /// (and the command says so and exits non-zero), so a finished run is never lost.
    func measureAndEmit(baseline: String = "shm", _ measure: () throws -> BenchmarkReport) throws {
        let outputFile: ReportFile?, svgFile: ReportFile?
        do {
            outputFile = try output.map { path throws(BenchError) in try ReportFile(path: path) }
            svgFile = try svg.map { path throws(BenchError) in try ReportFile(path: path) }
        } catch {
            throw ValidationError("cannot write the report where asked (nothing measured): \(error)")
        }
        var report: BenchmarkReport?
        defer {
            if report == nil {
                outputFile?.discard()
                svgFile?.discard()
            }
        }
        try runReporting { report = try measure() }
        guard let report else { return }
        var lost = false
        let text = try render(report, baseline: baseline)
        if let outputFile {
            lost = !deliver(text, to: outputFile, what: "report", option: "--output") || lost
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        if let svgFile {
            lost = !deliver(SVGChart.render(report), to: svgFile, what: "chart", option: "--svg") || lost
        }
        if lost { throw ExitCode.failure }
    }

    /// The report in the `--format` asked for.
    func render(_ report: BenchmarkReport, baseline: String) throws -> String {
        switch format {
        case "json": return try ReportFormatter.json(report) + "\n"
        case "csv": return ReportFormatter.csv(report)
        case "markdown": return ReportFormatter.markdown(report, baseline: baseline)
        default: return ReportFormatter.table(report, baseline: baseline)
        }
    }

    /// Writes `text` to `file`; if that fails, prints it on standard output, says so on standard
    /// error and returns false.
    private func deliver(_ text: String, to file: ReportFile, what: String, option: String) -> Bool {
        do {
            try file.write(text)
            return true
        } catch {
            FileHandle.standardError.write(Data(
                "\(RingBenchCLI.commandName): error: \(option) \(file.path): \(error); the \(what) follows on standard output instead\n".utf8))
            FileHandle.standardOutput.write(Data(text.utf8))
            return false
        }
    }
}

/// Runs `body`, printing a failure as one line on standard error and exiting non-zero.
func runReporting(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as BenchError {
        FileHandle.standardError.write(Data("\(RingBenchCLI.commandName): error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}

struct Latency: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ping-pong round trips, each timed; p50, p90, p99, p99.9, max and mean.")

    @OptionGroup var common: CommonOptions

    func run() throws {
        let options = try common.options()
        try common.measureAndEmit { try RingBench.run(.latency, options: options) }
    }
}

struct Throughput: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A one-way stream (the sender never drops); msgs/s, bytes/s and CPU seconds of each side.")

    @OptionGroup var common: CommonOptions

    func run() throws {
        let options = try common.options()
        try common.measureAndEmit { try RingBench.run(.throughput, options: options) }
    }
}

struct FanIn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanin",
        abstract: "Several sending processes into one receiver.",
        discussion: """
        shm uses the shared ring (a one-to-one ring takes one sender); shm-endpoint gives each sender \
        its own link into the receiver's endpoint; uds-dgram and mqueue share one \
        socket or queue; uds-stream, uds-seqpacket, pipe and tcp use one connection per sender, which \
        the receiver polls with poll(). c-slots, the C floor of a multi-producer queue, takes every \
        sender into its one queue; the other C floors (c-ring, c-spin, c-futex) take one sender \
        only and are left out.
        """)

    @OptionGroup var common: CommonOptions

    @Option(help: ArgumentHelp("Sending processes.", valueName: "n"))
    var senders: Int = 2

    func run() throws {
        let options = try common.options(senders: senders)
        try common.measureAndEmit { try RingBench.run(.fanin, options: options) }
    }
}

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Latency and throughput for every transport and size, each row against shm.")

    @OptionGroup var common: CommonOptions

    func run() throws {
        let options = try common.options(defaultRuns: BenchOptions.compareRuns)
        try common.measureAndEmit { try RingBench.compare(options: options) }
    }
}

struct IdleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle",
        abstract: "What idle mailboxes cost: CPU while a receiver waits on many links, memory per mailbox.",
        discussion: """
        One process creates --mailboxes one-to-one mailboxes and keeps them open, joins an endpoint \
        that --links other endpoints have each sent one message to, takes those, and then waits in a \
        blocking receive from anyone for --seconds while nothing is sent. Reports the CPU the \
        process used meanwhile (all threads), its wake-ups, and shared and resident memory per mailbox.
        """)

    @Option(help: ArgumentHelp("Idle mailboxes held open.", valueName: "n"))
    var mailboxes: Int = 1000

    @Option(help: ArgumentHelp("Links into the waiting endpoint (one sending endpoint each).", valueName: "n"))
    var links: Int = 100

    @Option(help: ArgumentHelp("Seconds to wait.", valueName: "seconds"))
    var seconds: Double = 5

    @Option(help: ArgumentHelp("How the receiver waits: spin, adaptive or block.", valueName: "strategy"))
    var strategy: String = "adaptive"

    @Option(help: ArgumentHelp("Report format: table or json.", valueName: "format"))
    var format: String = "table"

    func run() throws {
        var options = IdleOptions()
        options.mailboxes = mailboxes
        options.links = links
        options.seconds = seconds
        guard let strategy = WaitChoice(rawValue: strategy) else {
            throw ValidationError("--strategy \(strategy): expected spin, adaptive or block")
        }
        options.strategy = strategy
        guard ["table", "json"].contains(format) else { throw ValidationError("--format \(format): expected table or json") }
        try runReporting {
            let report = try RingBench.idle(options: options)
            let text = format == "json" ? try ReportFormatter.json(idle: report) + "\n" : ReportFormatter.table(idle: report)
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

/// The peer process ringbench starts of itself.
struct PeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_peer", shouldDisplay: false)

    @Argument(help: .private)
    var config: String

    func run() throws {
        let status = RingBench.peerMain(config)
        if status != 0 { throw ExitCode(status) }
    }
}
