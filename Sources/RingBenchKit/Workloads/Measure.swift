import Histogram

/// The parent's timed loops. Each message received is verified before the next is taken; a
/// failed check throws and ends the run.
///
/// Each loop is a small state type (what to send next, what a received message must be, the
/// figures) driven by a few lines: synchronously for a `Link`, or, for an `AsyncLink`
/// (`shm-async`), by an async loop that runs as one task on this thread, as a receive loop in an
/// async program would (see `AsyncDriver`).
enum Measure {
    struct StreamFigures {
        var seconds: Double
        var messages: Int
        var cpuSeconds: Double
    }

    /// Receives streams from `senders` senders until each has sent its last message. The clock
    /// starts once the warm-up messages of all senders have arrived (at once without warm-up).
    static func receiveStreams(_ link: Link, codec: MessageCodec, senders: Int, warmup: Int, batch: Int) throws -> StreamFigures {
        var streams = StreamReceiver(codec: codec, senders: senders, warmup: warmup)
        let limit = max(1, batch)
        if let link = link as? AsyncLink {
            return try AsyncDriver.run {
                while !streams.isDone {
                    _ = try await link.receiveBatch(limit: limit) { try streams.take($0) }
                }
                return streams.figures()
            }
        }
        while !streams.isDone {
            _ = try link.receiveBatch(limit: limit) { try streams.take($0) }
        }
        return streams.figures()
    }

    /// What `receiveStreams` expects next from each sender, and its clock.
    struct StreamReceiver {
        private let codec: MessageCodec
        private let senders: Int
        private let warmupTotal: Int
        private var expected: [Int]
        private var finished = 0
        private var received = 0
        private var started: UInt64 = 0
        private var cpuStart = 0.0

        init(codec: MessageCodec, senders: Int, warmup: Int) {
            self.codec = codec
            self.senders = senders
            warmupTotal = warmup * senders
            expected = [Int](repeating: 0, count: senders)
            if warmupTotal == 0 {
                cpuStart = Sys.cpuSeconds()
                started = Sys.nanos()
            }
        }

        /// Every sender has sent its last message.
        var isDone: Bool { finished == senders }

        /// Checks the next message (its sender's next sequence number, its bytes).
        mutating func take(_ bytes: UnsafeRawBufferPointer) throws {
            if senders == 1 {
                if try codec.verify(bytes, sequence: expected[0], sender: 0) { finished += 1 }
                expected[0] += 1
            } else {
                let header = try codec.header(of: bytes)
                guard header.sender < senders else {
                    throw BenchError.verificationFailed(message: header.sequence, sender: header.sender,
                                                        detail: "there is no sender \(header.sender) (of \(senders))")
                }
                let want = expected[header.sender]
                guard header.sequence == want else {
                    throw BenchError.verificationFailed(
                        message: want, sender: header.sender,
                        detail: "it carries sequence number \(header.sequence) (a lost, repeated, reordered or damaged message)")
                }
                try codec.verifyPayload(bytes, header)
                expected[header.sender] = want + 1
                if header.last { finished += 1 }
            }
            received += 1
            if received == warmupTotal {
                cpuStart = Sys.cpuSeconds()
                started = Sys.nanos()
            }
        }

        func figures() -> StreamFigures {
            let seconds = Double(Sys.nanos() &- started) / 1e9
            return StreamFigures(seconds: seconds, messages: received - warmupTotal, cpuSeconds: Sys.cpuSeconds() - cpuStart)
        }
    }

    struct RoundTrips {
        var seconds: Double
        var messages: Int
        var cpuSeconds: Double
        var p50: Double, p90: Double, p99: Double, p999: Double, max: Double, mean: Double
    }

    /// Ping-pong: sends a message, waits for its echo, and times each round trip separately
    /// (CLOCK_MONOTONIC) into an HdrHistogram. `count` timed round trips after `warmup`, or
    /// (count nil) until `capSeconds` are up; a cap also ends a counted run early.
    static func pingPong(_ link: Link, codec: MessageCodec, warmup: Int, count: Int?, capSeconds: Double?) throws -> RoundTrips {
        var trips = PingPong(codec: codec, warmup: warmup, count: count, capSeconds: capSeconds)
        if let link = link as? AsyncLink {
            return try AsyncDriver.run {
                while !trips.isDone {
                    try await link.send(trips.next())
                    try trips.check(try await link.receive())
                }
                return trips.figures()
            }
        }
        while !trips.isDone {
            try link.send(trips.next())
            try link.receive { try trips.check($0) }
        }
        return trips.figures()
    }

    /// `pingPong`'s state: the message to send next, the echo to expect, the histogram.
    struct PingPong {
        private let codec: MessageCodec
        private let buffer: ByteBuffer
        private let warmup: Int
        private let total: Int
        private let capNanos: UInt64
        private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000,
                                                  numberOfSignificantValueDigits: .three)
        private var sum: Double = 0
        private var sequence = 0
        private var started: UInt64
        private var cpuStart: Double
        private var end: UInt64
        private var start: UInt64 = 0
        private var last = false
        private(set) var isDone = false

        init(codec: MessageCodec, warmup: Int, count: Int?, capSeconds: Double?) {
            self.codec = codec
            buffer = ByteBuffer(count: codec.size)
            self.warmup = warmup
            total = count.map { warmup + $0 } ?? Int.max
            capNanos = capSeconds.map { UInt64($0 * 1e9) } ?? UInt64.max
            started = Sys.nanos()
            cpuStart = Sys.cpuSeconds()
            end = started
        }

        /// Writes the next message and starts its clock.
        mutating func next() -> UnsafeRawBufferPointer {
            if sequence == warmup {
                cpuStart = Sys.cpuSeconds()
                started = Sys.nanos()
                end = started
            }
            last = sequence == total - 1 || (sequence >= warmup && capNanos != .max && end &- started >= capNanos)
            codec.write(MessageHeader(sequence: sequence, sender: 0, last: last), into: buffer.base)
            start = Sys.nanos()
            return buffer.bytes(codec.size)
        }

        /// Stops the clock on the echo of the message `next` wrote, and checks it.
        mutating func check(_ bytes: UnsafeRawBufferPointer) throws {
            end = Sys.nanos()
            _ = try codec.verify(bytes, sequence: sequence, sender: 0)
            if sequence >= warmup {
                let nanos = end &- start
                histogram.record(nanos)
                sum += Double(nanos)
            }
            sequence += 1
            isDone = last
        }

        func figures() -> RoundTrips {
            let seconds = Double(end &- started) / 1e9
            let cpu = Sys.cpuSeconds() - cpuStart
            let timed = sequence - min(warmup, sequence)
            return RoundTrips(seconds: seconds, messages: timed, cpuSeconds: cpu,
                              p50: Double(histogram.valueAtPercentile(50)), p90: Double(histogram.valueAtPercentile(90)),
                              p99: Double(histogram.valueAtPercentile(99)), p999: Double(histogram.valueAtPercentile(99.9)),
                              max: Double(histogram.maxRecorded), mean: timed > 0 ? sum / Double(timed) : 0)
        }
    }
}
