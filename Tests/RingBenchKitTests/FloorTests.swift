import Foundation
import Testing
@testable import RingBenchKit

/// The C floors (`c-ring`, `c-slots`, `c-spin`, `c-futex`) between real processes: every message
/// arrives and is verified, a damaged one stops the run, they refuse the shapes they cannot carry,
/// and their busy and futex waits notice a dead peer.
@Suite(.serialized)
struct FloorTests {
    static let pingPongFloors: [TransportKind] = [.cRing, .cSlots, .cSpin, .cFutex]
    static let streamFloors: [TransportKind] = [.cRing, .cSlots]

    @Test(arguments: streamFloors)
    func ringStreamsVerifiedMessages(_ transport: TransportKind) throws {
        // 64 B: 4096 slots, wrapped twice; 100000 B: 32 slots, wrapped about 300 times.
        let report = try RingbenchProcess.report([
            "throughput", "--transport", transport.rawValue, "--size", "64", "--size", "100000",
            "--count", "10000", "--warmup", "100", "--verify", "checksum",
        ])
        #expect(report.results.map(\.size) == [64, 100_000])
        for row in report.results {
            #expect(row.transport == transport.rawValue)
            #expect(row.messages == 10000)
            #expect(row.verified == "checksum")
            #expect(row.msgsPerSec > 0 && row.seconds > 0)
            if transport == .cRing {
                #expect(row.note.hasPrefix("C floor: busy-polling SPSC ring, index published per message"))
            } else {
                #expect(row.note.hasPrefix("C floor: busy-polling MPMC queue, sequence word per slot"))
            }
        }
        // c-slots: the 8-byte sequence word puts a 64 B message in two cache lines.
        let slot = transport == .cRing ? "capacity 4096 × 64 B slots" : "capacity 4096 × 128 B slots"
        #expect(report.results.first?.note.contains(slot) == true)
        #expect(report.results.last?.note.contains("capacity 32 × 100032 B slots") == true)
    }

    /// c-slots is multi-producer: three sending processes share one queue, and every message of
    /// every sender arrives verified.
    @Test func slotsFanInVerifiedMessages() throws {
        let report = try RingbenchProcess.report([
            "fanin", "--transport", "c-slots", "--senders", "3", "--size", "64", "--size", "5000",
            "--count", "9000", "--warmup", "100", "--verify", "checksum",
        ])
        #expect(report.results.map(\.size) == [64, 5000])
        for row in report.results {
            #expect(row.transport == "c-slots")
            #expect(row.workload == "fanin")
            #expect(row.messages == 9000)
            #expect(row.verified == "checksum")
            #expect(row.msgsPerSec > 0 && row.seconds > 0)
            #expect(row.note.contains("3 senders"))
        }
    }

    /// 8 and 56 B fit in the turn word's cache line, 57 B just does not, 5000 B spans 79 lines.
    @Test(arguments: pingPongFloors)
    func pingPongsVerifiedMessages(_ transport: TransportKind) throws {
        let report = try RingbenchProcess.report([
            "latency", "--transport", transport.rawValue, "--size", "8", "--size", "56", "--size", "57",
            "--size", "5000", "--count", "300", "--warmup", "20", "--verify", "checksum",
        ])
        #expect(report.results.map(\.size) == [8, 56, 57, 5000])
        for row in report.results {
            #expect(row.transport == transport.rawValue)
            #expect(row.workload == "latency")
            #expect(row.messages == 300)
            #expect(row.verified == "checksum")
            let p50 = try #require(row.p50Ns), max = try #require(row.maxNs)
            #expect(p50 > 0 && p50 <= max)
            #expect(row.note.hasPrefix("C floor: "))
        }
        if transport == .cSlots {
            let slots = report.results.map { $0.note.contains("× 64 B slots") }
            #expect(slots == [true, true, false, false])
            #expect(report.results[2].note.contains("× 128 B slots"))
            #expect(report.results[3].note.contains("× 5056 B slots"))
        }
        if transport == .cSpin {
            #expect(report.results.map { $0.note.contains("sharing its line") } == [true, true, false, false])
            #expect(report.results[2].note.contains("continuing into 1 more line)"))
            #expect(report.results[3].note.contains("continuing into 78 more lines"))
        }
    }

    // MARK: Verification

    @Test(arguments: streamFloors)
    func corruptedStreamMessageStopsTheRun(_ transport: TransportKind) throws {
        let outcome = try RingbenchProcess.run([
            "throughput", "--transport", transport.rawValue, "--size", "20000", "--count", "1000", "--warmup", "10",
            "--verify", "checksum", "--corrupt-at", "300",
        ])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("message 300"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("checksum mismatch"), "\(outcome.stderr)")
        #expect(outcome.stdout.isEmpty)
    }

    /// The echoing peer damages its echo: the last payload byte (checksum) or the sequence number.
    @Test(arguments: pingPongFloors, ["checksum", "sequence"])
    func corruptedEchoStopsTheRun(_ transport: TransportKind, _ verify: String) throws {
        let outcome = try RingbenchProcess.run([
            "latency", "--transport", transport.rawValue, "--size", "100", "--count", "1000", "--warmup", "0",
            "--verify", verify, "--corrupt-at", "77",
        ])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("message 77"), "\(outcome.stderr)")
        if verify == "checksum" { #expect(outcome.stderr.contains("checksum mismatch"), "\(outcome.stderr)") }
        #expect(outcome.stdout.isEmpty)
    }

    // MARK: Shapes they cannot carry

    @Test func limitationsAreStated() {
        #expect(TransportKind.cRing.limitation(for: .oneWay) == nil)
        #expect(TransportKind.cRing.limitation(for: .pingPong) == nil)
        #expect(TransportKind.cRing.limitation(for: .fanIn(senders: 2)) != nil)
        #expect(TransportKind.cSlots.limitation(for: .oneWay) == nil)
        #expect(TransportKind.cSlots.limitation(for: .pingPong) == nil)
        #expect(TransportKind.cSlots.limitation(for: .fanIn(senders: 3)) == nil)
        for transport in [TransportKind.cSpin, .cFutex] {
            #expect(transport.limitation(for: .pingPong) == nil)
            #expect(transport.limitation(for: .oneWay) != nil)
            #expect(transport.limitation(for: .fanIn(senders: 2)) != nil)
        }
        for transport in TransportKind.allCases where !transport.isCFloor || transport == .cSlots {
            #expect(transport.limitation(for: .fanIn(senders: 3)) == nil)
        }
        // The default list (quiet skips; a skip of one asked for by name is on stderr, see below).
        let options = BenchOptions()
        #expect(Runner.transports(for: .latency, options).filter(\.isCFloor) == [.cRing, .cSlots, .cSpin, .cFutex])
        #expect(Runner.transports(for: .throughput, options).filter(\.isCFloor) == [.cRing, .cSlots])
        #expect(Runner.transports(for: .fanin, options).filter(\.isCFloor) == [.cSlots])
    }

    @Test func askedForByNameASkipIsExplained() throws {
        let outcome = try RingbenchProcess.run([
            "throughput", "--transport", "c-spin", "--transport", "c-ring", "--transport", "c-futex",
            "--count", "200", "--format", "csv",
        ])
        let fanIn = try RingbenchProcess.run([
            "fanin", "--transport", "c-ring", "--transport", "c-slots", "--transport", "shm", "--count", "200",
            "--format", "csv",
        ])
        #expect(fanIn.status == 0 && fanIn.stderr.contains("skipping c-ring for fanin: a single-producer"), "\(fanIn.stderr)")
        #expect(!fanIn.stderr.contains("c-slots"), "\(fanIn.stderr)")
        #expect(fanIn.stdout.split(separator: "\n").contains { $0.hasPrefix("c-slots,fanin,") })
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("skipping c-spin for throughput"))
        #expect(outcome.stderr.contains("skipping c-futex for throughput"))
        #expect(!outcome.stderr.contains("c-ring"))
        let rows = outcome.stdout.split(separator: "\n").dropFirst()
        #expect(rows.count == 1 && rows.first?.hasPrefix("c-ring,throughput,64") == true)
    }

    /// The default transport list takes the floors along and skips, without a word, the cells
    /// they cannot do (all of fan-in here but c-slots's).
    @Test func defaultListSkipsQuietly() throws {
        let outcome = try RingbenchProcess.run(["fanin", "--senders", "2", "--count", "200", "--warmup", "10", "--format", "csv"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(!outcome.stderr.contains("skipping"), "\(outcome.stderr)")
        let floorRows = outcome.stdout.split(separator: "\n").filter { $0.hasPrefix("c-") }
        #expect(!floorRows.isEmpty && floorRows.allSatisfy { $0.hasPrefix("c-slots,fanin,") }, "\(outcome.stdout)")
    }

    // MARK: A dead peer

    /// The parent is waiting (spinning or in FUTEX_WAIT) for a reply when its peer is killed: it
    /// notices within a time slice or two and fails the run, naming the peer.
    @Test(arguments: pingPongFloors)
    func parentNoticesAKilledPeer(_ transport: TransportKind) throws {
        let run = try DetachedRun(["latency", "--transport", transport.rawValue, "--duration", "30"])
        defer { run.stop() }
        let peer = try #require(run.waitForChild(), "no peer process appeared")
        usleep(300_000)  // well into the run
        kill(peer, SIGKILL)
        let started = ContinuousClock.now
        let status = run.wait(upTo: .seconds(10))
        #expect(status != nil && status != 0, "ringbench went on for 10 s after its peer died")
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(run.errors().contains("exited in the middle of the run") || run.errors().contains("killed by signal"), "\(run.errors())")
    }

    /// The peer is sending into a full ring (or waiting for a request) when the parent is killed:
    /// it notices that it has a new parent within a time slice or two and exits.
    @Test(arguments: [("throughput", TransportKind.cRing), ("throughput", .cSlots), ("fanin", .cSlots), ("latency", .cSpin),
                      ("latency", .cFutex)])
    func peerNoticesAKilledParent(_ workload: String, _ transport: TransportKind) throws {
        let run = try DetachedRun([workload, "--transport", transport.rawValue, "--duration", "30"])
        defer { run.stop() }
        let peer = try #require(run.waitForChild(), "no peer process appeared")
        usleep(300_000)
        run.kill()
        let deadline = ContinuousClock.now + .seconds(10)
        while DetachedRun.isAlive(peer) && ContinuousClock.now < deadline { usleep(20_000) }
        #expect(!DetachedRun.isAlive(peer), "the peer went on for 10 s after its parent died")
    }
}

/// A ringbench run in the background, to kill it or its peer while it runs.
final class DetachedRun {
    private let process = Process()
    private let errorFile: URL

    init(_ arguments: [String]) throws {
        errorFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("ringbench-floor-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).err")
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: RingbenchProcess.executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errorFile)
        try process.run()
    }

    /// The first child process (the peer), once it exists.
    func waitForChild() -> pid_t? {
        let pid = process.processIdentifier
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            if let first = text.split(separator: " ").first, let child = pid_t(first) { return child }
            usleep(10_000)
        }
        return nil
    }

    /// The exit status, or nil if still running after `limit`.
    func wait(upTo limit: Duration) -> Int32? {
        let deadline = ContinuousClock.now + limit
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func errors() -> String {
        (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
    }

    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func stop() {
        kill()
        try? FileManager.default.removeItem(at: errorFile)
    }

    /// Whether `pid` runs (a zombie left to whoever reaps orphans here counts as gone).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        guard let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }
}
