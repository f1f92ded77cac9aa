// Microbenchmarks of ShmMailbox's hot paths (public API only), all in one process and one thread:
// nobody ever sleeps, so every send takes the "no waiter" path (the notify is only a check of the
// event word, no futex call).
//
// Every sample runs 1000 operations (`scalingFactor: .kilo`); the default output shows metrics
// marked `*` per operation (package-benchmark 1.38.1's `--scale` shows raw per-sample values
// instead). See ../../README.md.
//
// Mailboxes are named `bench-<pid>-<label>` and deleted in each benchmark's teardown; the global
// setup also deletes `bench-<pid>-…` mailboxes left behind by benchmark processes that died.

#if canImport(Glibc)
import Glibc
#endif
import Benchmark
import ShmMailbox

// MARK: - Configuration

/// Mailbox settings: the library's defaults (1024 messages, 4 KiB largest message), which is what a
/// user gets without options and fits the largest message measured here.
private let capacity = 1024
private let maxMessageSize = 4096

private var metrics: [BenchmarkMetric] { [.wallClock, .throughput, .cpuTotal, .mallocCountTotal] }

/// 1000 operations per sample; 17 benchmarks of at most 1.5 s each keep a full run well under 2 minutes.
private var configuration: Benchmark.Configuration {
    Benchmark.Configuration(
        metrics: metrics,
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .milliseconds(1500),
        maxIterations: 3000
    )
}

private let sizes: [(label: String, bytes: Int)] = [("8 B", 8), ("64 B", 64), ("4 KiB", 4096)]

// MARK: - Mailbox lifetime

private let pid = getpid()

/// `bench-<pid>-<label>`, unique per process and benchmark.
private func mailboxName(_ label: String) -> String {
    "bench-\(pid)-\(label)"
}

private func makeMailbox(_ label: String, kind: MailboxOptions.RingKind) throws -> Mailbox {
    let name = mailboxName(label)
    // A previous process with the same pid may have died before deleting it.
    try? Mailbox.delete(name)
    return try Mailbox.create(name, options: MailboxOptions(capacity: .bounded(capacity), maxMessageSize: maxMessageSize, kind: kind))
}

private func deleteMailbox(_ label: String) {
    try? Mailbox.delete(mailboxName(label))
}

/// Deletes `bench-<pid>-…` mailboxes whose process is gone (left by a crashed or killed run).
private func deleteStaleMailboxes() {
    guard let names = try? Mailbox.list() else { return }
    for name in names where name.hasPrefix("bench-") {
        let fields = name.split(separator: "-", maxSplits: 2)
        guard fields.count == 3, let owner = Int32(fields[1]), owner != pid else { continue }
        if kill(owner, 0) == -1, errno == ESRCH {
            try? Mailbox.delete(name)
        }
    }
}

/// Registers a benchmark that gets its own mailbox, created in setup and deleted in teardown.
private func mailboxBenchmark(
    _ title: String,
    label: String,
    kind: MailboxOptions.RingKind,
    body: @escaping (Benchmark, Mailbox) throws -> Void
) {
    Benchmark(
        title,
        configuration: configuration,
        closure: { benchmark, box in try body(benchmark, box) },
        setup: { try makeMailbox(label, kind: kind) },
        teardown: { deleteMailbox(label) }
    )
}

private func kindLabel(_ kind: MailboxOptions.RingKind) -> String {
    kind == .oneToOne ? "oneToOne" : "shared"
}

private func payload(_ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0) }
}

/// What a zero-copy receiver does with a message: looks at its length and last byte.
@inline(__always)
private func consume(_ bytes: RawSpan, _ sender: ProcessIdentity) {
    blackHole(bytes.byteCount &+ Int(bytes.unsafeLoad(fromByteOffset: bytes.byteCount - 1, as: UInt8.self)) &+ Int(sender.pid))
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    Benchmark.setup = { deleteStaleMailboxes() }

    // 0. The harness alone: an empty sample. Its malloc count is the benchmark framework's own
    //    per-sample overhead, to subtract from the others' raw (unscaled) counts.
    Benchmark("harness: empty sample", configuration: configuration) { benchmark in
        for iteration in benchmark.scaledIterations {
            blackHole(iteration)
        }
    }

    for kind in [MailboxOptions.RingKind.oneToOne, .shared] {
        let kindName = kindLabel(kind)

        // 1. Send + receive of one message, no waiter: copying `send([UInt8])` of a prebuilt
        //    array, zero-copy `receive { bytes, sender in … }`.
        for (sizeLabel, count) in sizes {
            let bytes = payload(count)
            mailboxBenchmark("\(kindName) send+receive \(sizeLabel)", label: "\(kindName)-rt-\(count)", kind: kind) { benchmark, box in
                for _ in benchmark.scaledIterations {
                    try box.send(bytes)
                    try box.receive(consume)
                }
            }
        }

        // 1b. The same with the non-generic `send(UnsafeRawBufferPointer)`: the difference to (1)
        //     is the cost of going through the generic `Collection<UInt8>` entry point.
        let raw = payload(64)
        mailboxBenchmark("\(kindName) send(raw buffer)+receive 64 B", label: "\(kindName)-rb-64", kind: kind) { benchmark, box in
            try raw.withUnsafeBytes { buffer in
                for _ in benchmark.scaledIterations {
                    try box.send(buffer)
                    try box.receive(consume)
                }
            }
        }

        // 2. Zero-copy send (`send(count:) { fill }`, the fill writes every byte) + zero-copy
        //    receive: compare with (1) at the same size.
        for (sizeLabel, count) in sizes where count >= 64 {
            mailboxBenchmark("\(kindName) zero-copy send+receive \(sizeLabel)", label: "\(kindName)-zc-\(count)", kind: kind) { benchmark, box in
                for iteration in benchmark.scaledIterations {
                    try box.send(count: count) { span in
                        span.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: UInt8(truncatingIfNeeded: iteration)) }
                    }
                    try box.receive(consume)
                }
            }
        }

        // 3. Send side only: `trySend` into a mailbox nobody receives from. Each sample starts
        //    with an empty mailbox (drained outside the measurement) and sends 1000 messages,
        //    fewer than the capacity, so every trySend succeeds.
        let bytes = payload(64)
        mailboxBenchmark("\(kindName) trySend only 64 B", label: "\(kindName)-ts-64", kind: kind) { benchmark, box in
            while try box.tryReceive(consume) != nil {}
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let sent = try bytes.withUnsafeBytes { buffer throws(MailboxError) in try box.trySend(buffer) }
                guard sent else { fatalError("trySend found the mailbox full") }
            }
            benchmark.stopMeasurement()
        }

        // 4. Reference: the copying `receive()` that returns a `Message` (allocates its bytes by
        //    design).
        mailboxBenchmark("\(kindName) send+receive() copying 64 B", label: "\(kindName)-cp-64", kind: kind) { benchmark, box in
            for _ in benchmark.scaledIterations {
                try box.send(bytes)
                blackHole(try box.receive())
            }
        }
    }
}
