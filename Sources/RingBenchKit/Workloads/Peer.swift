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
        let size = config.plan.size
        let codec = MessageCodec(size: size, mode: config.verify)
        let buffer = ByteBuffer(count: size)
        let message = buffer.mutableBytes(size)
        let sender = config.index
        let corruptAt = config.corruptAt ?? -1
        let batch = max(1, config.plan.batch)
        var total = config.total
        let warmup = min(config.warmup, total - 1)
        var sequence = 0
        var started: UInt64 = 0
        var cpuStart = 0.0
        let capNanos = config.capSeconds > 0 ? UInt64(config.capSeconds * 1e9) : UInt64.max

        // Sends messages first..<first + count. The closure is passed straight to sendBatch (not
        // stored), and captures only constants, so its hot path has no exclusivity checks.
        func sendBatch(from first: Int, count: Int, last: Int) throws {
            try link.sendBatch(count: count, buffer: message) { index, target in
                let number = first + index
                codec.write(MessageHeader(sequence: number, sender: sender, last: number == last), into: target.baseAddress!)
                if number == corruptAt { Self.corrupt(target, codec) }
            }
        }
        while sequence < warmup {
            let count = min(batch, warmup - sequence)
            try sendBatch(from: sequence, count: count, last: total - 1)
            sequence += count
        }
        cpuStart = Sys.cpuSeconds()
        started = Sys.nanos()
        while sequence < total {
            if capNanos != .max, Sys.nanos() &- started >= capNanos { total = sequence + 1 }
            let count = min(batch, total - sequence)
            try sendBatch(from: sequence, count: count, last: total - 1)
            sequence += count
        }
        let seconds = Double(Sys.nanos() &- started) / 1e9
        return Figures(cpuSeconds: Sys.cpuSeconds() - cpuStart, seconds: seconds, messages: total - warmup)
    }

    /// Echoes every message after checking it, until the one marked last.
    static func echo(_ link: Link, _ config: PeerConfig) throws -> Figures {
        let size = config.plan.size
        let codec = MessageCodec(size: size, mode: config.verify)
        let scratch = ByteBuffer(count: size)
        let corruptAt = config.corruptAt ?? -1
        var expected = 0
        var done = false
        var started = Sys.nanos()
        var cpuStart = Sys.cpuSeconds()
        while !done {
            if expected == config.warmup {
                cpuStart = Sys.cpuSeconds()
                started = Sys.nanos()
            }
            try link.receive { bytes in
                done = try codec.verify(bytes, sequence: expected, sender: 0)
                if expected == corruptAt {
                    scratch.base.copyMemory(from: bytes.baseAddress!, byteCount: size)
                    Self.corrupt(scratch.mutableBytes(size), codec)
                    try link.send(scratch.bytes(size))
                } else {
                    try link.send(bytes)
                }
            }
            expected += 1
        }
        let seconds = Double(Sys.nanos() &- started) / 1e9
        return Figures(cpuSeconds: Sys.cpuSeconds() - cpuStart, seconds: seconds, messages: max(0, expected - config.warmup))
    }

    /// `--corrupt-at`: flips the last payload byte (checksum mode) or a bit of the sequence number.
    private static func corrupt(_ message: UnsafeMutableRawBufferPointer, _ codec: MessageCodec) {
        let index = codec.mode == .checksum && message.count > 8 ? message.count - 1 : 0
        message[index] ^= 0x01
    }
}
