import Histogram

/// The parent's timed loops. Each message received is verified before the next is taken; a
/// failed check throws and ends the run.
enum Measure {
    struct StreamFigures {
        var seconds: Double
        var messages: Int
        var cpuSeconds: Double
    }

    /// Receives streams from `senders` senders until each has sent its last message. The clock
    /// starts once the warm-up messages of all senders have arrived (at once without warm-up).
    static func receiveStreams(_ link: Link, codec: MessageCodec, senders: Int, warmup: Int, batch: Int) throws -> StreamFigures {
        var expected = [Int](repeating: 0, count: senders)
        var finished = 0
        var received = 0
        let warmupTotal = warmup * senders
        var started: UInt64 = 0
        var cpuStart = 0.0
        if warmupTotal == 0 {
            cpuStart = Sys.cpuSeconds()
            started = Sys.nanos()
        }
        let limit = max(1, batch)
        while finished < senders {
            _ = try link.receiveBatch(limit: limit) { bytes in
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
        }
        let seconds = Double(Sys.nanos() &- started) / 1e9
        return StreamFigures(seconds: seconds, messages: received - warmupTotal, cpuSeconds: Sys.cpuSeconds() - cpuStart)
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
        let size = codec.size
        let buffer = ByteBuffer(count: size)
        let message = UnsafeRawBufferPointer(buffer.mutableBytes(size))
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000,
                                          numberOfSignificantValueDigits: .three)
        let total = count.map { warmup + $0 } ?? Int.max
        let capNanos = capSeconds.map { UInt64($0 * 1e9) } ?? UInt64.max
        var sum: Double = 0
        var sequence = 0
        var started = Sys.nanos()
        var cpuStart = Sys.cpuSeconds()
        var last = false
        var end: UInt64 = started
        while !last {
            if sequence == warmup {
                cpuStart = Sys.cpuSeconds()
                started = Sys.nanos()
                end = started
            }
            last = sequence == total - 1 || (sequence >= warmup && capNanos != .max && end &- started >= capNanos)
            codec.write(MessageHeader(sequence: sequence, sender: 0, last: last), into: buffer.base)
            let start = Sys.nanos()
            try link.send(message)
            let number = sequence
            try link.receive { bytes in
                end = Sys.nanos()
                _ = try codec.verify(bytes, sequence: number, sender: 0)
            }
            if sequence >= warmup {
                let nanos = end &- start
                histogram.record(nanos)
                sum += Double(nanos)
            }
            sequence += 1
        }
        let seconds = Double(end &- started) / 1e9
        let cpu = Sys.cpuSeconds() - cpuStart
        let timed = sequence - min(warmup, sequence)
        return RoundTrips(seconds: seconds, messages: timed, cpuSeconds: cpu,
                          p50: Double(histogram.valueAtPercentile(50)), p90: Double(histogram.valueAtPercentile(90)),
                          p99: Double(histogram.valueAtPercentile(99)), p999: Double(histogram.valueAtPercentile(99.9)),
                          max: Double(histogram.maxRecorded), mean: timed > 0 ? sum / Double(timed) : 0)
    }
}
