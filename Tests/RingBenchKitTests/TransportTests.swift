import Foundation
import Testing
@testable import RingBenchKit

/// Runs the built `ringbench` executable (next to the test bundle) as a separate process.
enum RingbenchProcess {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static let executable: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("ringbench")
    }()

    /// Runs `ringbench arguments…`; the report goes through a file so no pipe can fill up.
    static func run(_ arguments: [String], timeout: Duration = .seconds(60)) throws -> Outcome {
        let directory = FileManager.default.temporaryDirectory
        let reportFile = directory.appendingPathComponent("ringbench-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out")
        let errorFile = directory.appendingPathComponent("ringbench-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).err")
        defer {
            try? FileManager.default.removeItem(at: reportFile)
            try? FileManager.default.removeItem(at: errorFile)
        }
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["--output", reportFile.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errorFile)
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(5_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("ringbench \(arguments) did not finish within \(timeout); killed")
        }
        process.waitUntilExit()
        let output = (try? String(contentsOf: reportFile, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
        return Outcome(status: process.terminationStatus, stdout: output, stderr: errors)
    }

    /// Runs ringbench with `--format json`, expects success and decodes the report.
    static func report(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> BenchmarkReport {
        let outcome = try run(arguments + ["--format", "json"])
        try #require(outcome.status == 0, "ringbench \(arguments) failed: \(outcome.stderr)", sourceLocation: sourceLocation)
        return try JSONDecoder().decode(BenchmarkReport.self, from: Data(outcome.stdout.utf8))
    }
}

/// Every transport carries messages between two real processes, whole or in chunks, and every
/// message arrives verified (here in a stream; the ping-pong-only C floors in FloorTests).
@Suite(.serialized)
struct TransportTests {
    @Test(arguments: TransportKind.allCases.filter { $0.limitation(for: .oneWay) == nil })
    func carriesVerifiedMessagesBetweenProcesses(_ transport: TransportKind) throws {
        let report = try RingbenchProcess.report([
            "throughput", "--transport", transport.rawValue, "--size", "64", "--size", "100000",
            "--count", "2000", "--warmup", "100", "--verify", "checksum",
        ])
        #expect(report.results.map(\.size) == [64, 100_000])
        for row in report.results {
            #expect(row.transport.hasPrefix(transport.rawValue))
            #expect(row.workload == "throughput")
            #expect(row.messages == 2000)
            #expect(row.verified == "checksum")
            #expect(row.msgsPerSec > 0 && row.bytesPerSec > 0 && row.seconds > 0)
            #expect(row.bytesPerSec == row.msgsPerSec * Double(row.size))
            #expect(row.cpuSenderS >= 0 && row.cpuReceiverS >= 0)
            #expect(!row.note.isEmpty)
        }
        #expect(!report.machine.cpuModel.isEmpty && report.machine.cores >= 1)
    }

    @Test func messageQueueSplitsWhatExceedsTheQueueMessageSize() throws {
        let limit = Int((try? String(contentsOfFile: "/proc/sys/fs/mqueue/msgsize_max", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 8192
        let size = limit * 3 + 5
        let report = try RingbenchProcess.report([
            "latency", "--transport", "mqueue", "--size", String(size), "--count", "200", "--verify", "checksum",
        ])
        let row = try #require(report.results.first)
        #expect(row.messages == 200)
        // Either the kernel let us raise the limit (whole messages) or the note says it split.
        #expect(row.note.contains("split into") || row.note.contains("whole messages"))
        if limit < size, !row.note.contains("whole messages") {
            #expect(row.note.contains("split into 4 chunks"))
        }
    }

    @Test func datagramsCarryAMegabyteWholeOrInChunks() throws {
        let report = try RingbenchProcess.report([
            "throughput", "--transport", "uds-dgram", "--transport", "uds-seqpacket", "--size", "1m",
            "--count", "40", "--warmup", "2", "--verify", "checksum",
        ])
        #expect(report.results.count == 2)
        for row in report.results {
            #expect(row.messages == 40)
            #expect(row.note.contains("whole messages") || row.note.contains("split into"))
        }
    }

    /// `shm-async` with `--strategy block`: every wait parks a task in the async reactor (no spin
    /// first), both in ping-pong and in a stream that fills the ring; every byte is checked.
    @Test func asyncTransportParksAndCarriesEveryByte() throws {
        let latency = try RingbenchProcess.report([
            "latency", "--transport", "shm-async", "--strategy", "block", "--count", "300", "--verify", "checksum",
        ])
        let stream = try RingbenchProcess.report([
            "throughput", "--transport", "shm-async", "--strategy", "block", "--size", "1k", "--count", "20000",
            "--verify", "checksum",
        ])
        for row in latency.results + stream.results {
            #expect(row.transport.hasPrefix("shm-async"))
            #expect(row.verified == "checksum")
            #expect(row.note.contains("async calls"))
        }
        #expect(latency.results.map(\.messages) == [300])
        #expect(stream.results.map(\.messages) == [20000])
    }

    @Test func leavesNoSharedMemoryBehind() throws {
        // The names of queues and mailboxes are removed once the peers have them; endpoints
        // (`shmmb.@rb-…`) and their links when the run ends, also when it fails.
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
        _ = try RingbenchProcess.report([
            "latency", "--transport", "shm", "--transport", "mqueue", "--transport", "shm-endpoint", "--count", "50",
        ])
        _ = try RingbenchProcess.report(["fanin", "--transport", "shm-endpoint", "--senders", "3", "--count", "300"])
        let failed = try RingbenchProcess.run([
            "throughput", "--transport", "shm-endpoint", "--count", "1000", "--warmup", "10", "--corrupt-at", "300",
        ])
        #expect(failed.status != 0)
        let after = Set((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? [])
        #expect(after.subtracting(before).filter { $0.contains("ringbench") || $0.hasPrefix("shmmb.@rb-") }.isEmpty)
    }

    /// A killed parent cannot tear down: its peer, noticing, removes both endpoints and the link.
    @Test func killedParentLeavesNoEndpointsBehind() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: RingbenchProcess.executable)
        process.arguments = ["throughput", "--transport", "shm-endpoint", "--duration", "20"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let prefix = "shmmb.@rb-\(process.processIdentifier)-"
        func objects() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).filter { $0.hasPrefix(prefix) }
        }
        var deadline = ContinuousClock.now + .seconds(20)
        while !objects().contains(where: { $0.contains(">") }) && ContinuousClock.now < deadline { usleep(10_000) }
        #expect(objects().count == 3, "the endpoints and the link while it runs: \(objects())")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        deadline = ContinuousClock.now + .seconds(10)
        while !objects().isEmpty && ContinuousClock.now < deadline { usleep(10_000) }
        #expect(objects().isEmpty)
    }

    // MARK: In-process pieces

    @Test func chunksReassembleInOrderAndRejectGaps() throws {
        let plan = ChunkPlan(payload: 10, size: 25)
        #expect(plan.chunks == 3)
        #expect((0..<3).map(plan.length(ofChunk:)) == [10, 10, 5])
        let reassembler = Reassembler(plan: plan, senders: 2, label: "test")
        let source = (0..<25).map { UInt8($0) }
        func chunk(_ sender: Int, _ index: Int) throws -> Int? {
            try source.withUnsafeBytes { bytes in
                try reassembler.accept(header: ChunkHeader(sender: sender, index: index, last: index == 2).word,
                                       length: plan.length(ofChunk: index), source: bytes.baseAddress! + index * 10)
            }
        }
        #expect(try chunk(0, 0) == nil)
        #expect(try chunk(1, 0) == nil)
        #expect(try chunk(0, 1) == nil)
        #expect(try chunk(0, 2) == 0)
        #expect(Array(reassembler.message(of: 0)) == source)
        #expect(throws: BenchError.self) { try chunk(1, 2) }  // chunk 1 of sender 1 is missing
        #expect(throws: BenchError.self) { try chunk(5, 0) }  // no such sender
    }

    @Test func chunkHeaderRoundTrips() {
        let header = ChunkHeader(sender: 7, index: 12345, last: true)
        #expect(ChunkHeader(word: header.word) == header)
    }

    @Test func framedStreamCarriesFramesThroughASocketPair() throws {
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        let writer = FramedStreamLink(readFD: -1, writeFD: pair[0], size: 1000, watchdog: .none, label: "test")
        let reader = FramedStreamLink(readFD: pair[1], writeFD: -1, size: 1000, watchdog: .none, label: "test")
        defer {
            writer.close()
            reader.close()
        }
        let codec = MessageCodec(size: 1000, mode: .checksum)
        let buffer = ByteBuffer(count: 1000)
        for sequence in 0..<20 {
            codec.write(MessageHeader(sequence: sequence, sender: 0, last: sequence == 19), into: buffer.base)
            try writer.send(buffer.bytes(1000))
        }
        var last = false
        for sequence in 0..<20 {
            try reader.receive { bytes in last = try codec.verify(bytes, sequence: sequence, sender: 0) }
        }
        #expect(last)
    }

    /// The split path of datagram links (taken when SO_SNDBUF cannot be raised far enough, so a
    /// root run never takes it): two senders' chunks interleave on one bound socket and are put
    /// back together per sender.
    @Test func datagramChunksFromTwoSendersReassemble() throws {
        let size = 5000
        let chunk = ChunkPlan(payload: 1000, size: size)
        let name = uniqueName("ringbench-test")
        let receiverFD = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        try UnixAddress.bind(receiverFD, abstract: name)
        let receiver = DatagramLink(fd: receiverFD, size: size, chunk: chunk, chunkSender: 0, senders: 2,
                                    watchdog: .none, label: "test")
        let senders = try (0..<2).map { index -> DatagramLink in
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            try UnixAddress.connect(fd, abstract: name)
            return DatagramLink(fd: fd, size: size, chunk: chunk, chunkSender: index, senders: 0, watchdog: .none, label: "test")
        }
        defer {
            receiver.close()
            senders.forEach { $0.close() }
        }
        let codec = MessageCodec(size: size, mode: .checksum)
        let buffer = ByteBuffer(count: size)
        // max_dgram_qlen (10 by default) bounds what one socket queues: 2 × 1 message × 5 chunks.
        for sequence in 0..<3 {
            for (index, sender) in senders.enumerated() {
                codec.write(MessageHeader(sequence: sequence, sender: index, last: false), into: buffer.base)
                try sender.send(buffer.bytes(size))
            }
            var seen: [Int] = []
            for _ in 0..<2 {
                try receiver.receive { bytes in
                    let header = try codec.header(of: bytes)
                    #expect(header.sequence == sequence)
                    try codec.verifyPayload(bytes, header)
                    seen.append(header.sender)
                }
            }
            #expect(seen.sorted() == [0, 1])
        }
    }

    @Test func datagramChunksOverASocketPairReassemble() throws {
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &pair) == 0)
        let chunk = ChunkPlan(payload: 4088, size: 10_000)
        let sender = DatagramLink(fd: pair[0], size: 10_000, chunk: chunk, chunkSender: 0, senders: 0, watchdog: .none, label: "test")
        let receiver = DatagramLink(fd: pair[1], size: 10_000, chunk: chunk, chunkSender: 0, senders: 1, watchdog: .none, label: "test")
        defer {
            sender.close()
            receiver.close()
        }
        let codec = MessageCodec(size: 10_000, mode: .checksum)
        let buffer = ByteBuffer(count: 10_000)
        for sequence in 0..<4 {
            codec.write(MessageHeader(sequence: sequence, sender: 0, last: false), into: buffer.base)
            try sender.send(buffer.bytes(10_000))
        }
        for sequence in 0..<4 {
            try receiver.receive { bytes in _ = try codec.verify(bytes, sequence: sequence, sender: 0) }
        }
    }

    @Test func peerConfigRoundTrips() throws {
        var endpoint = PeerEndpoint()
        endpoint["name"] = "ringbench-1-2"
        endpoint["chunk"] = "8184"
        endpoint.fds = [10, 11]
        let config = PeerConfig(role: .sender, plan: LinkPlan(transport: .mqueue, size: 1 << 20, shape: .fanIn(senders: 3),
                                                              strategy: .spin, batch: 16),
                                verify: .checksum, total: Int.max, warmup: 5, capSeconds: 1.5, index: 2, parentPID: 42,
                                pinCPU: 1, corruptAt: 9, endpoint: endpoint)
        let decoded = try PeerConfig(decoding: config.encoded())
        #expect(decoded.plan == config.plan)
        #expect(decoded.total == Int.max && decoded.capSeconds == 1.5 && decoded.corruptAt == 9 && decoded.pinCPU == 1)
        #expect(decoded.endpoint.values == endpoint.values)
        #expect(decoded.endpoint.fds == [3, 4])
    }
}
