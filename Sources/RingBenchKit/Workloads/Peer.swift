#if canImport(Glibc)
import Glibc
#endif

/// The peer process's side of a run (`ringbench _peer <config>`): connect, say READY, wait for
/// GO, send a stream or echo, report `RESULT <cpu seconds> <seconds> <messages>`, then wait for
/// the parent to close standard input.
enum Peer {
    static func main(_ argument: String) -> Int32 {
        Sys.ignoreSIGPIPE()
        do {
            try run(PeerConfig(decoding: argument))
            return 0
        } catch {
            Sys.writeAll(2, "ringbench peer: \(error)\n")
            return 1
        }
    }

    struct Figures {
        var cpuSeconds: Double
        var seconds: Double
        var messages: Int
    }

    static func run(_ config: PeerConfig) throws {
        if let cpu = config.pinCPU { try Sys.pin(toCPU: cpu) }
        let parent = config.parentPID
        let watchdog = Watchdog {
            if getppid() != parent { throw BenchError.parentGone }
        }
        let link = try config.plan.transport.connect(config.plan, endpoint: config.endpoint, senderIndex: config.index,
                                                     watchdog: watchdog)
        defer { link.close() }
        guard Sys.writeAll(1, "READY\n") else { throw BenchError.parentGone }
        guard readLine() == "GO" else { throw BenchError.parentGone }
        let figures: Figures
        switch config.role {
        case .sender: figures = try sendStream(link, config)
        case .echo: figures = try echo(link, config)
        }
        guard Sys.writeAll(1, "RESULT \(figures.cpuSeconds) \(figures.seconds) \(figures.messages)\n") else {
            throw BenchError.parentGone
        }
        // Stay (and keep the link open) until the parent has taken everything and closes our input.
        while readLine() != nil {}
    }

    /// A line from standard input, or nil at end of file.
    private static func readLine() -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = Sys.retrying { read(0, &byte, 1) }
            if n <= 0 { return line.isEmpty ? nil : String(decoding: line, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
    }

    /// Sends `config.total` messages (or until `capSeconds` of timed sending are up), in batches
    /// of `plan.batch`; the last one carries the last flag.
    static func sendStream(_ link: Link, _ config: PeerConfig) throws -> Figures {
        var stream = SendStream(config)
        let buffer = ByteBuffer(count: config.plan.size)
        let message = buffer.mutableBytes(config.plan.size)
        if let link = link as? AsyncLink {
            return try AsyncDriver.run {
                while let batch = stream.nextBatch() {
                    try await link.sendBatch(count: batch.count, buffer: message) { index, target in
                        batch.fill(index, target)
                    }
                }
                return stream.figures()
            }
        }
        while let batch = stream.nextBatch() {
            // The closure captures only a constant, so its hot path has no exclusivity checks.
            try link.sendBatch(count: batch.count, buffer: message) { index, target in batch.fill(index, target) }
        }
        return stream.figures()
    }

    /// `sendStream`'s state: which messages go in the next batch, and the clock.
    struct SendStream {
        /// Messages `first ..< first + count`.
        struct Batch {
            let first: Int
            let count: Int
            let last: Int
            let sender: Int
            let corruptAt: Int
            let codec: MessageCodec

            /// Writes message `first + index` into `target`.
            func fill(_ index: Int, _ target: UnsafeMutableRawBufferPointer) {
                let number = first + index
                codec.write(MessageHeader(sequence: number, sender: sender, last: number == last), into: target.baseAddress!)
                if number == corruptAt { Peer.corrupt(target, codec) }
            }
        }

        private let codec: MessageCodec
        private let sender: Int
        private let corruptAt: Int
        private let batch: Int
        private let warmup: Int
        private let capNanos: UInt64
        private var total: Int
        private var sequence = 0
        private var timing = false
        private var started: UInt64 = 0
        private var cpuStart = 0.0

        init(_ config: PeerConfig) {
            codec = MessageCodec(size: config.plan.size, mode: config.verify)
            sender = config.index
            corruptAt = config.corruptAt ?? -1
            batch = max(1, config.plan.batch)
            total = config.total
            warmup = min(config.warmup, total - 1)
            capNanos = config.capSeconds > 0 ? UInt64(config.capSeconds * 1e9) : UInt64.max
        }

        /// The next batch (warm-up batches end at the warm-up's end, where the clock starts), or
        /// nil once the last message went.
        mutating func nextBatch() -> Batch? {
            if !timing, sequence >= warmup {
                timing = true
                cpuStart = Sys.cpuSeconds()
                started = Sys.nanos()
            }
            guard sequence < total else { return nil }
            if timing, capNanos != .max, Sys.nanos() &- started >= capNanos { total = sequence + 1 }
            let count = min(batch, (timing ? total : warmup) - sequence)
            defer { sequence += count }
            return Batch(first: sequence, count: count, last: total - 1, sender: sender, corruptAt: corruptAt, codec: codec)
        }

        func figures() -> Figures {
            let seconds = Double(Sys.nanos() &- started) / 1e9
            return Figures(cpuSeconds: Sys.cpuSeconds() - cpuStart, seconds: seconds, messages: total - warmup)
        }
    }

    /// Echoes every message after checking it, until the one marked last.
    static func echo(_ link: Link, _ config: PeerConfig) throws -> Figures {
        var echo = Echo(config)
        if let link = link as? AsyncLink {
            return try AsyncDriver.run {
                while !echo.isDone {
                    try await link.send(try echo.check(try await link.receive()))
                }
                return echo.figures()
            }
        }
        while !echo.isDone {
            try link.receive { bytes in try link.send(try echo.check(bytes)) }
        }
        return echo.figures()
    }

    /// `echo`'s state: the sequence number expected next, and the clock.
    struct Echo {
        private let codec: MessageCodec
        private let scratch: ByteBuffer
        private let corruptAt: Int
        private let warmup: Int
        private var expected = 0
        private var started = Sys.nanos()
        private var cpuStart = Sys.cpuSeconds()
        private(set) var isDone = false

        init(_ config: PeerConfig) {
            codec = MessageCodec(size: config.plan.size, mode: config.verify)
            scratch = ByteBuffer(count: config.plan.size)
            corruptAt = config.corruptAt ?? -1
            warmup = config.warmup
        }

        /// Checks a received message and returns what to send back: the message itself (or, at
        /// `--corrupt-at`, a damaged copy).
        mutating func check(_ bytes: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer {
            if expected == warmup {
                cpuStart = Sys.cpuSeconds()
                started = Sys.nanos()
            }
            isDone = try codec.verify(bytes, sequence: expected, sender: 0)
            defer { expected += 1 }
            guard expected == corruptAt else { return bytes }
            scratch.base.copyMemory(from: bytes.baseAddress!, byteCount: codec.size)
            Peer.corrupt(scratch.mutableBytes(codec.size), codec)
            return scratch.bytes(codec.size)
        }

        func figures() -> Figures {
            let seconds = Double(Sys.nanos() &- started) / 1e9
            return Figures(cpuSeconds: Sys.cpuSeconds() - cpuStart, seconds: seconds, messages: max(0, expected - warmup))
        }
    }

    /// `--corrupt-at`: flips the last payload byte (checksum mode) or a bit of the sequence number.
    private static func corrupt(_ message: UnsafeMutableRawBufferPointer, _ codec: MessageCodec) {
        let index = codec.mode == .checksum && message.count > 8 ? message.count - 1 : 0
        message[index] ^= 0x01
    }
}
