import Foundation
import Testing
import RingBenchKit
@testable import RingBenchNATS

/// The NATS transports carry verified messages between real processes (every byte checked), in
/// every workload, against a nats-server of their own that is gone afterwards.
@Suite(.serialized)
struct NATSTransportTests {
    static let transports = ["nats-raw", "nats"]

    @Test(arguments: transports)
    func streamsVerifiedMessages(_ transport: String) throws {
        let report = try RingbenchNATSProcess.report([
            "throughput", "--transport", transport, "--size", "64", "--size", "4KiB", "--size", "100000",
            "--count", "600", "--warmup", "50", "--batch", "16", "--verify", "checksum",
        ])
        #expect(report.results.map(\.size) == [64, 4096, 100_000])
        for row in report.results {
            #expect(row.transport == transport)
            #expect(row.messages == 600)
            #expect(row.verified == "checksum")
            #expect(row.msgsPerSec > 0)
            #expect(row.note.contains("server CPU"), "\(row.note)")
            #expect(row.note.contains("publish window 16"), "\(row.note)")
        }
    }

    /// `--batch` is refused where no run uses it: NATS streams use it, ping-pong only through the bridge.
    @Test func batchAppliesToStreamsAndTheBridge() {
        #expect(NATSTransport(flavor: .raw).usesBatch(for: .oneWay))
        #expect(NATSTransport(flavor: .mailbox).usesBatch(for: .fanIn(senders: 2)))
        #expect(!NATSTransport(flavor: .mailbox).usesBatch(for: .pingPong))
        #expect(NATSTransport(flavor: .bridge).usesBatch(for: .pingPong))
    }

    @Test(arguments: transports)
    func pingPongsVerifiedMessages(_ transport: String) throws {
        let report = try RingbenchNATSProcess.report([
            "latency", "--transport", transport, "--size", "64", "--size", "65536", "--count", "100", "--warmup", "10",
            "--verify", "checksum",
        ])
        #expect(report.results.count == 2)
        for row in report.results {
            #expect(row.messages == 100)
            let p50 = try #require(row.p50Ns)
            #expect(p50 > 0)
        }
    }

    @Test(arguments: transports)
    func fansInVerifiedMessages(_ transport: String) throws {
        let report = try RingbenchNATSProcess.report([
            "fanin", "--senders", "3", "--transport", transport, "--count", "600", "--warmup", "20", "--verify", "checksum",
        ])
        let row = try #require(report.results.first)
        #expect(row.messages == 600)
        #expect(row.note.contains("3 senders"))
    }

    @Test(arguments: transports)
    func corruptedMessageStopsTheRun(_ transport: String) throws {
        let outcome = try RingbenchNATSProcess.run([
            "throughput", "--transport", transport, "--size", "2000", "--count", "500", "--warmup", "10",
            "--verify", "checksum", "--corrupt-at", "300",
        ])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("message 300"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("checksum mismatch"), "\(outcome.stderr)")
    }

    @Test(arguments: transports)
    func corruptedEchoStopsALatencyRun(_ transport: String) throws {
        let outcome = try RingbenchNATSProcess.run([
            "latency", "--transport", transport, "--count", "200", "--warmup", "0", "--corrupt-at", "77",
        ])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("message 77"), "\(outcome.stderr)")
    }

    @Test func runsNextToTheBuiltInTransports() throws {
        let report = try RingbenchNATSProcess.report([
            "throughput", "--transport", "shm", "--transport", "tcp", "--transport", "nats", "--count", "300", "--warmup", "10",
        ])
        #expect(report.results.map(\.transport) == ["shm/adaptive", "tcp", "nats"])
        #expect(report.results.last?.ratio != nil)
    }

    @Test func saysSoWithoutANATSServer() throws {
        let outcome = try RingbenchNATSProcess.run(["throughput", "--transport", "nats-raw", "--count", "10"],
                                                   environment: ["NATS_SERVER": "/nonexistent/nats-server"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("NATS_SERVER=/nonexistent/nats-server is not an executable file"), "\(outcome.stderr)")
    }
}

/// The server a NATS run starts: reachable, its CPU counted, stopped and its directory removed.
@Suite struct NATSServerTests {
    @Test func startsCountsAndCleansUp() throws {
        let server = try NATSServer()
        let directory = server.directory
        #expect(FileManager.default.fileExists(atPath: directory + "/server.conf"))
        #expect(server.cpuSeconds >= 0)
        #expect(kill(server.pid, 0) == 0)
        server.stop()
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(kill(server.pid, 0) != 0)
    }

    @Test func registersTheTransports() {
        NATSTransports.register()
        #expect(TransportKind(rawValue: "nats") != nil)
        #expect(TransportKind(rawValue: "nats-raw") != nil)
        #expect(TransportKind(rawValue: "nats-bridge") != nil)
        #expect(RingBench.transportNames.suffix(3) == ["nats-raw", "nats", "nats-bridge"])
    }
}
