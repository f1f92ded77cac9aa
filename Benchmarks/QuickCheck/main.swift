// A quick two-process check of ShmMailbox speed until `ringbench` exists:
//   swift run -c release mailbox-quickcheck [messages] [roundTrips]
// Streams 64-byte messages from a child process to this one (messages per second), then times
// ping-pong round trips of 64-byte messages (median and 99th percentile), for each ring kind and
// wait strategy. The child is this same executable, started again with a role argument.

#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

let messageSize = 64

func nanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func strategy(named name: String) -> WaitStrategy {
    switch name {
    case "spin": return .spin
    case "block": return .block
    default: return .default
    }
}

func complain(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func spawnSelf(_ arguments: [String]) -> pid_t {
    let path = "/proc/self/exe"
    var pid: pid_t = 0
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    let rc = posix_spawn(&pid, path, nil, nil, argv, environ)
    precondition(rc == 0, "posix_spawn failed: \(rc)")
    return pid
}

func reap(_ pid: pid_t) {
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    if status != 0 { complain("child exited with status \(status)"); exit(1) }
}

// MARK: Child roles

func streamSender(_ name: String, count: Int, strategyName: String, batch: Int) throws {
    let box = try Mailbox.open(name, waitStrategy: strategy(named: strategyName))
    var sequence: UInt64 = 0
    while sequence < UInt64(count) {
        let end = min(UInt64(count), sequence + UInt64(batch))
        try box.batch {
            while sequence < end {
                try box.send(count: messageSize) { buffer in
                    buffer.storeBytes(of: sequence, toByteOffset: 0, as: UInt64.self)
                    buffer.storeBytes(of: ~sequence, toByteOffset: messageSize - 8, as: UInt64.self)
                }
                sequence += 1
            }
        }
    }
}

func echo(_ requests: String, _ replies: String, count: Int, strategyName: String) throws {
    let inbox = try Mailbox.open(requests, waitStrategy: strategy(named: strategyName))
    let outbox = try Mailbox.open(replies, waitStrategy: strategy(named: strategyName))
    for _ in 0..<count {
        // Zero copy both ways: the reply carries the request's sequence number back.
        let sequence = try inbox.receive { bytes, _ in bytes.load(as: UInt64.self) }
        try outbox.send(count: messageSize) { $0.storeBytes(of: sequence, as: UInt64.self) }
    }
}

// MARK: Parent measurements

func stream(kind: MailboxOptions.RingKind, strategyName: String, count: Int, batch: Int) throws -> Double {
    let name = "quickcheck-stream-\(getpid())"
    let box = try Mailbox.create(name, options: MailboxOptions(capacity: 4096, maxMessageSize: messageSize, kind: kind,
                                                                waitStrategy: strategy(named: strategyName)))
    defer { try? Mailbox.delete(name) }
    let child = spawnSelf(["stream-sender", name, String(count), strategyName, String(batch)])
    var expected: UInt64 = 0
    let check = { (bytes: UnsafeRawBufferPointer, _: Int32) in
        let sequence = bytes.load(fromByteOffset: 0, as: UInt64.self)
        precondition(sequence == expected && bytes.load(fromByteOffset: messageSize - 8, as: UInt64.self) == ~sequence,
                     "message \(expected) corrupted")
        expected += 1
    }
    // The clock starts at the first message, so process start-up is not counted.
    try box.receive(check)
    let start = nanos()
    while expected < UInt64(count) {
        if batch > 1 {
            _ = try box.receiveBatch(limit: batch, check)
        } else {
            try box.receive(check)
        }
    }
    let seconds = Double(nanos() - start) / 1e9
    reap(child)
    return Double(count - 1) / seconds
}

func pingPong(kind: MailboxOptions.RingKind, strategyName: String, count: Int) throws -> (p50: Double, p99: Double) {
    let requests = "quickcheck-ping-\(getpid())", replies = "quickcheck-pong-\(getpid())"
    let options = MailboxOptions(capacity: 64, maxMessageSize: messageSize, kind: kind, waitStrategy: strategy(named: strategyName))
    let outbox = try Mailbox.create(requests, options: options)
    defer { try? Mailbox.delete(requests) }
    let inbox = try Mailbox.create(replies, options: options)
    defer { try? Mailbox.delete(replies) }
    let child = spawnSelf(["echo", requests, replies, String(count), strategyName])
    var samples = [UInt64](repeating: 0, count: count)
    for index in 0..<count {
        let start = nanos()
        try outbox.send(count: messageSize) { $0.storeBytes(of: UInt64(index), as: UInt64.self) }
        let echoed = try inbox.receive { bytes, _ in bytes.load(as: UInt64.self) }
        samples[index] = nanos() - start
        precondition(echoed == UInt64(index), "reply \(index) carries \(echoed)")
    }
    reap(child)
    samples.sort()
    return (Double(samples[count / 2]) / 1000, Double(samples[count * 99 / 100]) / 1000)
}

func pad(_ value: some CustomStringConvertible, _ width: Int) -> String {
    let text = value.description
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

/// `value` with two decimals.
func fixed(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

/// One process sends and receives 64-byte messages in batches of 64: for instruction counts
/// (`valgrind --tool=callgrind`) of the hot paths without any cross-process effects.
func inProcess(kind: MailboxOptions.RingKind, count: Int) throws {
    let name = "quickcheck-inproc-\(getpid())"
    let box = try Mailbox.create(name, options: MailboxOptions(capacity: 4096, maxMessageSize: messageSize, kind: kind))
    defer { try? Mailbox.delete(name) }
    var sequence: UInt64 = 0, expected: UInt64 = 0
    for _ in 0..<(count / 64) {
        try box.batch {
            for _ in 0..<64 {
                try box.send(count: messageSize) { $0.storeBytes(of: sequence, as: UInt64.self) }
                sequence += 1
            }
        }
        _ = try box.receiveBatch(limit: 64) { bytes, _ in
            precondition(bytes.load(as: UInt64.self) == expected)
            expected += 1
        }
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "in-process":
        try inProcess(kind: arguments[1] == "shared" ? .shared : .oneToOne, count: Int(arguments[2])!)
    case "stream-sender":
        try streamSender(arguments[1], count: Int(arguments[2])!, strategyName: arguments[3], batch: Int(arguments[4])!)
    case "echo":
        try echo(arguments[1], arguments[2], count: Int(arguments[3])!, strategyName: arguments[4])
    default:
        let messages = arguments.first.flatMap { Int($0) } ?? 2_000_000
        let roundTrips = arguments.dropFirst().first.flatMap { Int($0) } ?? 20_000
        print("64-byte messages, two processes; \(messages) streamed, \(roundTrips) round trips")
        print("kind      strategy   stream msgs/s   batched(64) msgs/s   round trip p50   p99")
        for kind in MailboxOptions.RingKind.allCases {
            for strategyName in ["spin", "adaptive", "block"] {
                let rate = try stream(kind: kind, strategyName: strategyName, count: messages, batch: 1)
                let batched = try stream(kind: kind, strategyName: strategyName, count: messages, batch: 64)
                let trip = try pingPong(kind: kind, strategyName: strategyName, count: roundTrips)
                let kindText = kind.rawValue + String(repeating: " ", count: 9 - kind.rawValue.count)
                let strategyText = strategyName + String(repeating: " ", count: 10 - strategyName.count)
                print("\(kindText) \(strategyText) \(pad(Int(rate), 14)) \(pad(Int(batched), 20))   \(pad(fixed(trip.p50), 11)) µs   \(fixed(trip.p99)) µs")
            }
        }
    }
} catch {
    complain("mailbox-quickcheck: \(error)")
    exit(1)
}
