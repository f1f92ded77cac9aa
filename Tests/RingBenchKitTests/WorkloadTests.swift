import Foundation
import Testing
@testable import RingBenchKit

@Suite(.serialized)
struct WorkloadTests {
    // MARK: Latency

    @Test func latencyPercentilesAreOrdered() throws {
        let report = try RingbenchProcess.report([
            "latency", "--transport", "shm", "--transport", "uds-stream", "--transport", "pipe",
            "--size", "64", "--size", "20000", "--count", "500", "--warmup", "50", "--verify", "checksum",
        ])
        #expect(report.results.count == 6)
        for row in report.results {
            let p50 = try #require(row.p50Ns), p90 = try #require(row.p90Ns), p99 = try #require(row.p99Ns)
            let p999 = try #require(row.p999Ns), max = try #require(row.maxNs), mean = try #require(row.meanNs)
            #expect(p50 > 0)
            #expect(p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max, "\(row.transport) \(row.size): \(p50) \(p90) \(p99) \(p999) \(max)")
            #expect(mean > 0 && mean <= max)
            #expect(row.messages == 500)
            #expect(row.verified == "checksum")
            #expect(row.workload == "latency")
        }
        #expect(report.results.first?.transport == "shm/adaptive")
    }

    @Test(arguments: ["spin", "block"])
    func sharedMemoryStrategiesRun(_ strategy: String) throws {
        let report = try RingbenchProcess.report([
            "latency", "--transport", "shm", "--transport", "shm-shared", "--transport", "shm-endpoint",
            "--count", "300", "--strategy", strategy,
        ])
        #expect(report.results.map(\.transport) == ["shm/\(strategy)", "shm-shared/\(strategy)", "shm-endpoint/\(strategy)"])
    }

    // MARK: Fan-in

    @Test func fanInDeliversEverySendersMessages() throws {
        let report = try RingbenchProcess.report([
            "fanin", "--senders", "3", "--transport", "shm", "--transport", "uds-dgram", "--transport", "uds-stream",
            "--transport", "mqueue", "--transport", "shm-endpoint", "--size", "64", "--size", "20000", "--count", "1500",
            "--warmup", "20", "--verify", "checksum",
        ])
        #expect(report.results.count == 10)
        for row in report.results {
            #expect(row.workload == "fanin")
            #expect(row.messages == 1500)  // 500 from each of the 3 senders
            #expect(row.msgsPerSec > 0)
            #expect(row.note.contains("3 senders"))
        }
        let shm = try #require(report.results.first)
        #expect(shm.note.contains("shared ring"))
        let endpoint = try #require(report.results.last)
        #expect(endpoint.transport == "shm-endpoint/adaptive" && endpoint.note.contains("link per sender"))
    }

    // MARK: Verification is a hard error

    @Test(arguments: [TransportKind.shm, .shmEndpoint, .mqueue, .udsDgram, .tcp])
    func corruptedMessageStopsTheRun(_ transport: TransportKind) throws {
        let outcome = try RingbenchProcess.run([
            "throughput", "--transport", transport.rawValue, "--size", "20000", "--count", "1000", "--warmup", "10",
            "--verify", "checksum", "--corrupt-at", "300",
        ])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("message 300"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("checksum mismatch"), "\(outcome.stderr)")
        #expect(outcome.stdout.isEmpty)
    }

    @Test func corruptedEchoStopsALatencyRun() throws {
        let outcome = try RingbenchProcess.run([
            "latency", "--transport", "uds-seqpacket", "--count", "1000", "--warmup", "0", "--corrupt-at", "77",
        ])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("message 77"), "\(outcome.stderr)")
    }

    // MARK: Options

    @Test func durationRunsAboutThatLong() throws {
        let report = try RingbenchProcess.report(["throughput", "--transport", "pipe", "--duration", "0.3", "--warmup", "100"])
        let row = try #require(report.results.first)
        #expect(row.messages > 0)
        #expect(row.seconds > 0.2 && row.seconds < 5)
    }

    @Test func runsReportTheMedianAndTheRange() throws {
        let report = try RingbenchProcess.report(["throughput", "--transport", "shm", "--transport", "pipe", "--count", "20000", "--runs", "3"])
        let row = try #require(report.results.first)
        #expect(row.runs == 3)
        let low = try #require(row.minOverRuns), high = try #require(row.maxOverRuns)
        #expect(low <= row.msgsPerSec && row.msgsPerSec <= high)
        // Every row carries its probes and a ratio to the shm row (1 for shm itself).
        #expect(row.ratio == 1)
        let pipe = try #require(report.results.last)
        #expect(pipe.transport == "pipe" && pipe.ratio != nil && pipe.probeNs != nil && pipe.probeAfterNs != nil)
    }

    @Test func compareMeasuresLatencyAndThroughputForEachCell() throws {
        let outcome = try RingbenchProcess.run([
            "compare", "--transport", "shm", "--transport", "uds-stream", "--size", "8", "--size", "4k",
            "--count", "300", "--format", "csv",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let lines = outcome.stdout.split(separator: "\n")
        #expect(lines.count == 1 + 2 * 2 * 2)
        #expect(lines.first?.hasPrefix("transport,workload,size") == true)
    }

    @Test func badOptionsAreRefused() throws {
        for arguments in [["throughput", "--size", "4"], ["latency", "--transport", "carrier-pigeon"],
                          ["throughput", "--count", "10", "--duration", "1"], ["fanin", "--senders", "0"]] {
            let outcome = try RingbenchProcess.run(arguments)
            #expect(outcome.status != 0, "\(arguments)")
            #expect(!outcome.stderr.isEmpty)
        }
    }

    // MARK: In-process pieces

    @Test func checksumCatchesEveryFlippedByte() throws {
        for size in [8, 9, 63, 64, 100] {
            let codec = MessageCodec(size: size, mode: .checksum)
            let buffer = ByteBuffer(count: size)
            codec.write(MessageHeader(sequence: 41, sender: 2, last: false), into: buffer.base)
            #expect(try codec.verify(buffer.bytes(size), sequence: 41, sender: 2) == false)
            for index in 0..<size {
                buffer.base.storeBytes(of: buffer.base.load(fromByteOffset: index, as: UInt8.self) ^ 0x10,
                                       toByteOffset: index, as: UInt8.self)
                #expect(throws: BenchError.self) { try codec.verify(buffer.bytes(size), sequence: 41, sender: 2) }
                buffer.base.storeBytes(of: buffer.base.load(fromByteOffset: index, as: UInt8.self) ^ 0x10,
                                       toByteOffset: index, as: UInt8.self)
            }
            #expect(throws: BenchError.self) { try codec.verify(buffer.bytes(size - 1), sequence: 41, sender: 2) }
            #expect(throws: BenchError.self) { try codec.verify(buffer.bytes(size), sequence: 42, sender: 2) }
        }
    }

    @Test func errorNamesTheMessageAndByte() {
        let codec = MessageCodec(size: 32, mode: .checksum)
        let buffer = ByteBuffer(count: 32)
        codec.write(MessageHeader(sequence: 5, sender: 0, last: true), into: buffer.base)
        buffer.base.storeBytes(of: 0, toByteOffset: 20, as: UInt8.self)
        buffer.base.storeBytes(of: 0xFF, toByteOffset: 21, as: UInt8.self)
        do {
            _ = try codec.verify(buffer.bytes(32), sequence: 5, sender: 0)
            Issue.record("corruption not caught")
        } catch {
            #expect("\(error)".contains("message 5"))
            #expect("\(error)".contains("byte 2"))
        }
    }

    @Test func headerRoundTrips() {
        let header = MessageHeader(sequence: 123_456_789, sender: 300, last: true)
        #expect(MessageHeader(word: header.word) == header)
    }

    @Test func medianPicksTheMiddleRun() {
        func row(_ rate: Double) -> BenchmarkResult {
            BenchmarkResult(transport: "pipe", workload: "throughput", size: 64, runs: 1, messages: 10, seconds: 10 / rate,
                            msgsPerSec: rate, bytesPerSec: rate * 64, cpuSenderS: 0, cpuReceiverS: 0, verified: "sequence", note: "n")
        }
        let median = Runner.median([row(5), row(1), row(3)])
        #expect(median.msgsPerSec == 3 && median.runs == 3 && median.minOverRuns == 1 && median.maxOverRuns == 5)
    }

    @Test func ratiosComeFromRoundsInOneHostMode() {
        func row(_ rate: Double, probe: Double, after: Double? = nil) -> BenchmarkResult {
            BenchmarkResult(transport: "pipe", workload: "throughput", size: 64, runs: 1, messages: 10, seconds: 10 / rate,
                            msgsPerSec: rate, bytesPerSec: rate * 64, cpuSenderS: 0, cpuReceiverS: 0, verified: "sequence",
                            note: "n", probeNs: probe, probeAfterNs: after ?? probe)
        }
        // Round 2 ran the pipe in a slow host mode (probe 300 ns against the baseline's 100 ns):
        // its ratio (0.25) is left out, the others (0.5, 0.6) give the median 0.5.
        let base = [row(10, probe: 100), row(10, probe: 100), row(10, probe: 100)]
        let runs = [row(5, probe: 100), row(2.5, probe: 300), row(6, probe: 110)]
        var reported = Runner.median(runs)
        Runner.compareModes(&reported, runs: runs, baseline: (base, Runner.median(base)))
        #expect(reported.ratio == 0.5)
        #expect(reported.modeWarning == "ratio from 2 of 3 rounds (host mode differed in the others)")
        // A mode change during the reported run, and a reported run in another mode than the baseline's.
        let changing = [row(5, probe: 100, after: 400)]
        var alone = Runner.median(changing)
        Runner.compareModes(&alone, runs: changing, baseline: ([row(10, probe: 300)], row(10, probe: 300)))
        #expect(alone.ratio == 0.5)
        #expect(alone.modeWarning?.contains("host mode changed during the run (probe 100 → 400 ns)") == true)
        #expect(alone.modeWarning?.contains("another host mode") == true)
        #expect(alone.modeWarning?.contains("ratio from rounds in different host modes") == true)
        // The same mode everywhere: no warning.
        var calm = Runner.median(base)
        Runner.compareModes(&calm, runs: base, baseline: (base, Runner.median(base)))
        #expect(calm.ratio == 1 && calm.modeWarning == nil)
        #expect(HostProbe.sameMode(100, 150) && !HostProbe.sameMode(100, 151) && HostProbe.sameMode(nil, 5))
    }

    @Test func probeMeasuresACrossCoreRoundTrip() throws {
        try #require(HostProbe.cpus(pin: [], cpuCount: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) != nil)
        // On a machine as busy as a parallel test run, one try can be starved of the other CPU
        // for its whole second: three tries.
        let nanos = try #require((0..<3).lazy.compactMap { _ in HostProbe.measure(pin: []) }.first)
        // A cache line between two cores takes tens to hundreds of nanoseconds; 1 ms would be a
        // descheduled echo thread measured as a round trip.
        #expect(nanos > 5 && nanos < 1_000_000)
        #expect(HostProbe.cpus(pin: [1, 0], cpuCount: 2)! == (1, 0))
        #expect(HostProbe.cpus(pin: [], cpuCount: 1) == nil)
    }

    @Test func idleMailboxesCostNoCPUAndLeaveNothingBehind() throws {
        var options = IdleOptions()
        options.mailboxes = 50
        options.links = 5
        options.seconds = 0.5
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
        let report = try RingBench.idle(options: options)
        #expect(report.mailboxes == 50 && report.links == 5)
        #expect(report.seconds >= 0.5 && report.seconds < 5)
        // A receiver that spun would use the whole wait; one asleep wakes per 50 ms slice. The
        // bound is loose (the tests share two CPUs): `ringbench idle` measures the real figure.
        #expect(report.cpuSeconds < report.seconds / 4)
        #expect(report.wakeups >= 1 && report.wakeups < 1000)
        // 64 × 256 B one-to-one rings: a few tens of KiB each, all allocated at creation.
        #expect(report.sharedBytesPerMailbox > 16 * 1024 && report.sharedBytesPerMailbox < 256 * 1024)
        let after = Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
        #expect(after.subtracting(before).filter { $0.contains("rb-idle") }.isEmpty)
        let table = ReportFormatter.table(idle: report)
        #expect(table.contains("50 mailboxes held open, a receiver waiting on 5 links"))
        let json = try ReportFormatter.json(idle: report)
        #expect(try JSONDecoder().decode(IdleReport.self, from: Data(json.utf8)) == report)
    }

    @Test func sizesParseWithSuffixes() {
        #expect(RingBench.parseSize("64") == 64)
        #expect(RingBench.parseSize("16k") == 16384)
        #expect(RingBench.parseSize("1MiB") == 1 << 20)
        #expect(RingBench.parseSize("x") == nil)
    }

    @Test func defaultCountsShrinkWithSize() {
        #expect(BenchOptions.defaultCount(.throughput, size: 8) == 1_000_000)
        #expect(BenchOptions.defaultCount(.throughput, size: 1 << 20) == 256)
        #expect(BenchOptions.defaultCount(.latency, size: 1 << 20) == 500)
    }
}
