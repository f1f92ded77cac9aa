import Foundation
import Testing
import RingBenchKit

/// `nats-bridge` carries verified messages (every byte checked) from local mailboxes through
/// shmbox-bridge processes and a nats-server of its own, and leaves no bridge, mailbox or state
/// directory behind, also when the run fails.
@Suite(.serialized)
struct NATSBridgeTransportTests {
    @Test func streamsVerifiedMessages() throws {
        let outcome = try RingbenchNATSProcess.run([
            "throughput", "--transport", "nats-bridge", "--size", "64", "--size", "4KiB",
            "--count", "400", "--warmup", "20", "--batch", "16", "--verify", "checksum", "--format", "json",
        ])
        try #require(outcome.status == 0, "\(outcome.stderr)")
        // Every bridge ended on SIGTERM (none had to be killed).
        #expect(!outcome.stderr.contains("did not stop"), "\(outcome.stderr)")
        let report = try JSONDecoder().decode(BenchmarkReport.self, from: Data(outcome.stdout.utf8))
        let pid = outcome.pid
        #expect(report.results.map(\.size) == [64, 4096])
        for row in report.results {
            #expect(row.transport == "nats-bridge")
            #expect(row.messages == 400)
            #expect(row.verified == "checksum")
            #expect(row.msgsPerSec > 0)
            #expect(row.note.contains("2 bridge processes, their CPU"), "\(row.note)")
            #expect(row.note.contains("server CPU"), "\(row.note)")
        }
        #expect(Self.leftovers(of: pid).isEmpty, "\(Self.leftovers(of: pid))")
    }

    @Test func pingPongsVerifiedMessages() throws {
        let (report, pid) = try RingbenchNATSProcess.reportAndPID([
            "latency", "--transport", "nats-bridge", "--size", "64", "--size", "4KiB", "--count", "60", "--warmup", "5",
            "--verify", "checksum",
        ])
        #expect(report.results.count == 2)
        for row in report.results {
            #expect(row.messages == 60)
            #expect(row.verified == "checksum")
            let p50 = try #require(row.p50Ns)
            #expect(p50 > 0)
            #expect(row.note.contains("a chain each way, 4 bridge processes"), "\(row.note)")
        }
        #expect(Self.leftovers(of: pid).isEmpty, "\(Self.leftovers(of: pid))")
    }

    @Test func fansInVerifiedMessages() throws {
        let report = try RingbenchNATSProcess.report([
            "fanin", "--senders", "3", "--transport", "nats-bridge", "--count", "300", "--warmup", "10", "--verify", "checksum",
        ])
        let row = try #require(report.results.first)
        #expect(row.messages == 300)
        #expect(row.note.contains("3 senders"))
    }

    @Test func corruptedMessageStopsTheRunAndCleansUp() throws {
        let outcome = try RingbenchNATSProcess.run([
            "throughput", "--transport", "nats-bridge", "--size", "2000", "--count", "300", "--warmup", "10",
            "--verify", "checksum", "--corrupt-at", "150",
        ])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("message 150"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("checksum mismatch"), "\(outcome.stderr)")
        #expect(Self.leftovers(of: outcome.pid).isEmpty, "\(Self.leftovers(of: outcome.pid))")
    }

    @Test func saysSoWithoutShmboxBridge() throws {
        let outcome = try RingbenchNATSProcess.run(["throughput", "--transport", "nats-bridge", "--count", "10"],
                                                   environment: ["SHMBOX_BRIDGE": "/nonexistent/shmbox-bridge"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("SHMBOX_BRIDGE=/nonexistent/shmbox-bridge is not an executable file"), "\(outcome.stderr)")
    }

    /// What a ringbench-nats process `pid` left: entries of /dev/shm (local mailboxes, the state
    /// directory) and running processes (bridges) whose names or command lines carry its mark.
    static func leftovers(of pid: Int32) -> [String] {
        let mark = "ringbench-bridge-\(pid)-"
        var found = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).filter { $0.contains(mark) }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(entry) != nil {
            guard let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let commandLine = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            if commandLine.contains(mark) { found.append("process \(entry): \(commandLine)") }
        }
        return found
    }
}
