import Foundation
import Testing
@testable import RingBenchKit

private let quietMachine = MachineFacts(cpuModel: "Example CPU", cores: 2, kernel: "Linux test",
                                        date: "2025-06-01T12:00:00Z", loadAverage: 0.5)

private func streamRow(_ transport: String, note: String, runs: Int = 1) -> BenchmarkResult {
    BenchmarkResult(transport: transport, workload: "throughput", size: 64, runs: runs, messages: 1_000_000, seconds: 0.1,
                    msgsPerSec: 10e6, bytesPerSec: 640e6, cpuSenderS: 0.1, cpuReceiverS: 0.1, verified: "sequence",
                    note: note)
}

/// Runs the built `ringbench` with the arguments as given (no `--output` added), standard output
/// and standard error through files.
private func runRingbench(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String, seconds: Double) {
    let directory = FileManager.default.temporaryDirectory
    let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let out = directory.appendingPathComponent("ringbench-polish-\(tag).out")
    let err = directory.appendingPathComponent("ringbench-polish-\(tag).err")
    defer {
        try? FileManager.default.removeItem(at: out)
        try? FileManager.default.removeItem(at: err)
    }
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: RingbenchProcess.executable)
    process.arguments = arguments
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    let started = ContinuousClock.now
    try process.run()
    process.waitUntilExit()
    let elapsed = ContinuousClock.now - started
    return (process.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "",
            (try? String(contentsOf: err, encoding: .utf8)) ?? "",
            Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

@Suite(.serialized)
struct PolishTests {
    // MARK: Shared notes

    @Test func aNoteEveryRowHasIsPrintedOnceUnderTheTable() throws {
        let report = BenchmarkReport(machine: quietMachine, results: [
            streamRow("shm/adaptive", note: "batch 64; warmup 1000"),
            streamRow("pipe", note: "pipe buffer 65536 B; warmup 1000"),
            streamRow("tcp", note: "warmup 1000"),
        ])
        for text in [ReportFormatter.table(report), ReportFormatter.markdown(report)] {
            #expect(text.components(separatedBy: "warmup 1000").count == 2, "\(text)")
            #expect(text.contains("note (every row): warmup 1000"))
            #expect(text.contains("batch 64") && text.contains("pipe buffer 65536 B"))
        }
        // JSON keeps the whole note in every row.
        let decoded = try ReportFormatter.decode(json: try ReportFormatter.json(report))
        #expect(decoded.results.map(\.note) == report.results.map(\.note))
    }

    @Test func theNoteColumnGoesWhenEveryNoteIsShared() {
        let report = BenchmarkReport(machine: quietMachine, results: [
            streamRow("shm/adaptive", note: "common-note"), streamRow("pipe", note: "common-note"),
        ])
        let table = ReportFormatter.table(report)
        let header = table.split(separator: "\n").first { $0.hasPrefix("transport") } ?? ""
        #expect(!header.contains("note"))
        #expect(table.contains("note (every row): common-note"))
        #expect(table.components(separatedBy: "common-note").count == 2)
    }

    @Test func differentNotesStayInTheirRows() {
        let report = BenchmarkReport(machine: quietMachine, results: [
            streamRow("shm/adaptive", note: "a"), streamRow("pipe", note: "b"),
        ])
        let table = ReportFormatter.table(report)
        #expect(!table.contains("every row"))
        #expect(table.split(separator: "\n").first { $0.hasPrefix("transport") }?.contains("note") == true)
    }

    // MARK: Runs

    @Test func aSingleRunIsSaidToBeOne() {
        let one = ReportFormatter.table(BenchmarkReport(machine: quietMachine, results: [streamRow("shm/adaptive", note: "")]))
        #expect(one.contains("one run per cell (--runs 1)"))
        let three = ReportFormatter.table(BenchmarkReport(machine: quietMachine, results: [
            streamRow("shm/adaptive", note: "", runs: 3), streamRow("pipe", note: "", runs: 3),
        ]))
        #expect(!three.contains("one run per cell") && three.contains("runs: 3 per cell"))
        #expect(BenchOptions.compareRuns >= 3)
        // The run count is the row's `runs`, not repeated in its note.
        let median = Runner.median([streamRow("pipe", note: "plain"), streamRow("pipe", note: "plain")])
        #expect(median.runs == 2 && median.note == "plain")
    }

    // MARK: Load average

    @Test func loadAboveTheCoresIsWarnedUnderTheReport() throws {
        #expect(ReportFormatter.loadWarning(quietMachine) == nil)
        var busy = quietMachine
        busy.loadAverageMax = 3.5
        let warning = try #require(ReportFormatter.loadWarning(busy))
        #expect(warning == "! load average 3.50 (1-minute, highest seen before and during the run) exceeds the 2 cores: "
                + "other work competed for the CPUs, so figures may be noisy and ratios unfair")
        var before = quietMachine
        before.loadAverage = 2.25
        #expect(ReportFormatter.loadWarning(before)?.contains("2.25") == true)
        let report = BenchmarkReport(machine: busy, results: [streamRow("shm/adaptive", note: "")])
        #expect(ReportFormatter.table(report).hasSuffix(warning + "\n"))
        #expect(ReportFormatter.markdown(report).hasSuffix("- " + warning + "\n"))
        // JSON carries the highest load seen.
        #expect(try ReportFormatter.decode(json: try ReportFormatter.json(report)).machine.loadAverageMax == 3.5)
    }

    // MARK: --output and --svg

    @Test(arguments: ["--output", "--svg"])
    func anUnwritableFileFailsBeforeMeasuring(_ option: String) throws {
        let path = "/nonexistent-ringbench-dir/report.txt"
        let outcome = try runRingbench(["throughput", "--transport", "pipe", "--count", "100", "--warmup", "0", option, path])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("nothing measured") && outcome.stderr.contains(path), "\(outcome.stderr)")
        #expect(!outcome.stdout.contains("ringbench report") && !outcome.stderr.contains("ringbench report"))
    }

    @Test func aFileThatFailsAfterTheRunGetsTheReportOnStandardOutput() throws {
        // /dev/full opens but every write fails (ENOSPC).
        let outcome = try runRingbench(["throughput", "--transport", "pipe", "--count", "100", "--warmup", "0",
                                        "--output", "/dev/full"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("--output /dev/full") && outcome.stderr.contains("follows on standard output"),
                "\(outcome.stderr)")
        #expect(outcome.stdout.contains("ringbench report") && outcome.stdout.contains("pipe"))
    }

    @Test func aFileTheRunFailedForIsRemoved() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ringbench-polish-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        // --corrupt-at makes the peer send a damaged message: the run fails after opening the file.
        let outcome = try runRingbench(["throughput", "--transport", "pipe", "--count", "100", "--warmup", "0",
                                        "--corrupt-at", "5", "--output", path])
        #expect(outcome.status != 0)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    // MARK: --batch

    @Test func batchIsRefusedWhereNoRunUsesIt() throws {
        let outcome = try runRingbench(["latency", "--transport", "shm", "--count", "100", "--batch", "8"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("--batch 8 does not apply"), "\(outcome.stderr)")
    }

    @Test func batchIsNamedWhereIgnored() throws {
        let cells = [Runner.cell(.throughput, .shm, 64, BenchOptions()), Runner.cell(.throughput, .pipe, 64, BenchOptions())]
        let note = try #require(try Runner.batchNote(cells, batch: 8))
        #expect(note.contains("ignored for pipe throughput") && !note.contains("shm "))
        #expect(try Runner.batchNote([cells[0]], batch: 8) == nil)
        #expect(throws: BenchError.self) { try Runner.batchNote([Runner.cell(.latency, .shm, 64, BenchOptions())], batch: 8) }
    }

    // MARK: --capacity

    @Test func capacitySizesTheRingsOfShmAndTheCFloorsAndIsChecked() throws {
        let outcome = try runRingbench(["throughput", "--transport", "shm", "--transport", "c-ring", "--count", "2000",
                                        "--capacity", "3000", "--format", "csv"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        // shm takes the count as given; c-ring rounds it down to a power of two.
        #expect(outcome.stdout.contains("one-to-one ring, capacity 3000,"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("capacity 2048 × 64 B slots"), "\(outcome.stdout)")
        var plan = LinkPlan(transport: .shm, size: 64, shape: .oneWay, strategy: .adaptive, batch: 64)
        #expect(MailboxSetup.capacity(plan) == 4096)
        plan.capacity = 100_000
        #expect(MailboxSetup.capacity(plan) == 100_000)
        for bad in ["1", "16777217"] {
            let refused = try runRingbench(["throughput", "--transport", "shm", "--count", "10", "--capacity", bad])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("--capacity must be 2 to 16777216"), "\(refused.stderr)")
        }
    }

    // MARK: Harness

    @Test func peerConfigTravelsAsJSON() throws {
        var endpoint = PeerEndpoint()
        endpoint["name"] = "a;b=c \"quoted\""  // what the old key=value;… form could not carry
        endpoint.fds = [17]
        let config = PeerConfig(role: .echo, plan: LinkPlan(transport: .shmEndpoint, size: 64, shape: .pingPong,
                                                            strategy: .block, batch: 1),
                                verify: .sequence, total: Int.max, warmup: 0, capSeconds: 0, index: 0, parentPID: 7,
                                pinCPU: nil, corruptAt: nil, endpoint: endpoint)
        let text = config.encoded()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["role"] as? String == "echo" && object["fds"] as? Int == 1 && object["pinCPU"] == nil)
        let decoded = try PeerConfig(decoding: text)
        #expect(decoded == config)
        #expect(decoded.endpoint["name"] == "a;b=c \"quoted\"" && decoded.endpoint.fds == [3])
        #expect(decoded.total == Int.max && decoded.plan.shape == .pingPong)
        for bad in ["role=sender;size=64", "{}", #"{"role":"sender"}"#,
                    text.replacingOccurrences(of: "\"shm-endpoint\"", with: "\"no-such-transport\"")] {
            #expect(throws: BenchError.self) { try PeerConfig(decoding: bad) }
        }
    }

    @Test func oneProcReaderReadsWholeFiles() throws {
        // /proc/self/maps of a test process is far longer than one read's worth.
        let maps = try #require(Sys.readSmallFile("/proc/self/maps"))
        #expect(maps.hasSuffix("\n") && maps.split(separator: "\n").count > 20)
        #expect(Sys.readSmallFile("/proc/no-such-file") == nil)
        #expect(MachineFacts.currentLoadAverage() >= 0)
    }

    @Test func deadlinesRunOnTheMonotonicClock() {
        #expect(!Deadline(after: .seconds(60)).hasPassed)
        #expect(Deadline(after: .zero).hasPassed)
        let soon = Deadline(after: .milliseconds(20))
        usleep(30_000)
        #expect(soon.hasPassed)
    }

    @Test func pinningGoesThroughTheShim() throws {
        // Pinning here would pin the test runner: only the range checks in process, and the real
        // call through a pinned ringbench run.
        #expect(throws: BenchError.self) { try Sys.pin(toCPU: -1) }
        #expect(throws: BenchError.self) { try Sys.pin(toCPU: 1 << 20) }
        let outcome = try runRingbench(["latency", "--transport", "pipe", "--count", "50", "--warmup", "0", "--pin", "0",
                                        "--format", "json"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("\"transport\" : \"pipe\""))
    }

    @Test func pipesAreCloseOnExecAndWritesComplete() throws {
        var fds: [Int32] = [-1, -1]
        try Sys.makePipe(&fds)
        defer { for fd in fds { close(fd) } }
        for fd in fds { #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0) }
        let text = String(repeating: "x", count: 10_000) + "\n"
        #expect(Sys.writeAll(fds[1], text))
        var buffer = [UInt8](repeating: 0, count: 20_000)
        var got = 0
        while got < text.utf8.count {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress! + got, $0.count - got) }
            try #require(n > 0)
            got += n
        }
        #expect(String(decoding: buffer[0..<got], as: UTF8.self) == text)
        #expect(!Sys.writeAll(-1, "nowhere"))
    }

    @Test func aReportFileReplacesWhatItHeld() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ringbench-file-\(getpid()).txt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "an older, longer report\n".write(toFile: path, atomically: false, encoding: .utf8)
        let file = try ReportFile(path: path)
        file.discard()  // it existed before: kept
        #expect(FileManager.default.fileExists(atPath: path))
        try file.write("new\n")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new\n")
        #expect(throws: BenchError.self) { try ReportFile(path: FileManager.default.temporaryDirectory.path) }
    }
}
