// The workload that Benchmarks/instruction-counts.sh runs under valgrind's callgrind:
//
//   instruction-counts CONFIG ITERATIONS    # ITERATIONS send+receive of one configuration
//   instruction-counts --list               # the configuration names, one a line
//
// One process and one thread: it creates a mailbox (or joins an endpoint and sends to its own
// name), sends ITERATIONS messages and receives each one, and checks every message it receives
// (its length, the sequence number in its first 8 bytes, the complement of the sequence number
// in its last 8 bytes and the sender's identity: pid and start time). Nobody ever sleeps, so every call takes the
// no-waiter path. Only the loop is counted (see `measuredSection`). The script runs each
// configuration twice, with two iteration counts, and divides the difference of the counts by the
// difference of the iteration counts, which removes what the loop does once (first calls: lazy
// binding, type metadata, an endpoint's link creation).
//
// Every send is a non-blocking `trySend` (a full mailbox would be a bug here; it fails at once
// instead of hanging under valgrind). Configurations:
//
//   <ring>-copy-<size>    trySend([UInt8]) of a prebuilt array (its sequence numbers rewritten in
//                         place), then the copying tryReceive() that returns a Message
//   <ring>-zc-<size>      zero-copy trySend(count:) { fill } writing every byte of the message
//                         (copied from a prebuilt pattern, as the copying send copies its array),
//                         then zero-copy tryReceive { bytes, sender in ... } reading in place
//   <ring>-batch-<size>   Mailbox.batch { 64 zero-copy trySend(count:) }, then
//                         receiveBatch(limit: 64) reading in place
//   <ring>-many-64        trySendBatch(messages: 64, bytesEach: 64) { index, span in fill }, then
//                         receiveBatch(limit: 64) reading in place (how ringbench's shm and
//                         shm-shared stream, copying in instead of filling)
//   <ring>-poll-64        zero-copy tryReceive { ... } on an empty mailbox, which must find
//                         nothing: what each turn of a caller's own busy-polling loop costs
//   <ring>-async-64       the async zero-copy send(count:) { fill } and receive { bytes, sender,
//                         redelivered in ... } (neither waits: what an async call costs over
//                         the non-blocking one when it need not suspend), in one task run on
//                         this thread (`runOnThisThread`; an async main starts the cooperative
//                         pool's threads, which valgrind does not survive)
//   endpoint-copy-<size>  Endpoint.trySend(to: ownName, [UInt8]), then the copying tryReceive()
//   endpoint-zc-<size>    Endpoint.trySend(to: ownName, UnsafeRawBufferPointer) (endpoints have no
//                         zero-copy send), then zero-copy tryReceive { bytes, sender, from in ... }
//   endpoint-batch-<size> Endpoint.batch { 64 of those sends }, then tryReceiveBatch(limit: 64)
//                         reading in place
//   endpoint-many-64      Endpoint.trySendBatch(to: ownName, messages: 64, bytesEach: 64) { fill },
//                         then tryReceiveBatch(limit: 64) (how ringbench's shm-endpoint streams)
//   endpoint-poll-64      zero-copy tryReceive { bytes, sender, from in ... } from anyone with one
//                         empty link (to itself): one turn of a busy-polling loop, and of the
//                         spin before a blocking receive from anyone sleeps
//
// <ring> is o2o (.oneToOne) or shared (.shared); <size> is 8, 64 or 4096 bytes. Mailboxes use the
// library's defaults (capacity 1024, largest message 4096 B); endpoints use theirs.

#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

enum Target {
    case oneToOne, shared, endpoint

    var label: String {
        switch self {
        case .oneToOne: "o2o"
        case .shared: "shared"
        case .endpoint: "endpoint"
        }
    }
}

enum Mode: String {
    case copy, zc, batch, many, poll, async
}

struct Configuration {
    let target: Target
    let mode: Mode
    let size: Int

    var name: String { "\(target.label)-\(mode.rawValue)-\(size)" }
}

/// Messages per batch in the batched configurations; iteration counts must be multiples of it.
let batchSize = 64
let sizes = [8, 64, 4096]

let configurations: [Configuration] =
    [Target.oneToOne, .shared].flatMap { target in
        [Mode.copy, .zc, .batch].flatMap { mode in sizes.map { Configuration(target: target, mode: mode, size: $0) } }
    }
    + [Mode.copy, .zc, .batch].flatMap { mode in sizes.map { Configuration(target: .endpoint, mode: mode, size: $0) } }
    + [Target.oneToOne, .shared, .endpoint].map { Configuration(target: $0, mode: .many, size: 64) }
    + [Target.oneToOne, .shared, .endpoint].map { Configuration(target: $0, mode: .poll, size: 64) }
    + [Target.oneToOne, .shared].map { Configuration(target: $0, mode: .async, size: 64) }

// MARK: - Messages

func fail(_ text: String) -> Never {
    let line = Array(("instruction-counts: " + text + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}

/// This process (its start time read from /proc once, before any measured section).
let me = ProcessIdentity.current()

/// Writes message `sequence` into `buffer`: the sequence number first, its complement last (for
/// messages of 16 bytes or more). The bytes between keep whatever they hold.
@inline(__always)
func stamp(_ buffer: UnsafeMutableRawBufferPointer, _ sequence: UInt64) {
    buffer.storeBytes(of: sequence, toByteOffset: 0, as: UInt64.self)
    if buffer.count >= 16 { buffer.storeBytes(of: ~sequence, toByteOffset: buffer.count - 8, as: UInt64.self) }
}

/// Checks a received message against the one expected next.
@inline(__always)
func verify(_ bytes: UnsafeRawBufferPointer, sender: ProcessIdentity, size: Int, expected: UInt64) {
    guard bytes.count == size, sender == me,
          bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self) == expected,
          size < 16 || bytes.loadUnaligned(fromByteOffset: size - 8, as: UInt64.self) == ~expected
    else {
        fail("message \(expected): wrong contents (\(bytes.count) bytes from pid \(sender.pid), start time \(sender.startTime))")
    }
}

/// What the zero-copy senders copy into each message before stamping it (as large as the largest
/// message): a zero-copy send's fill must write every byte, and here it writes what the copying
/// send copies, so that the two differ only in the library's work. (Not memset: glibc fills
/// 2 KiB and more with `rep stosb`, which callgrind counts as one instruction per byte.)
/// Written once, before anything reads it; never freed.
nonisolated(unsafe) let pattern: UnsafeRawBufferPointer = {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: sizes.max()!, alignment: 16)
    buffer.initializeMemory(as: UInt8.self, repeating: 0xA5)
    return UnsafeRawBufferPointer(buffer)
}()

/// Zero-copy fill: every byte of the message, then the sequence numbers.
@inline(__always)
func fill(_ buffer: UnsafeMutableRawBufferPointer, _ sequence: UInt64) {
    buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: pattern[0..<buffer.count]))
    stamp(buffer, sequence)
}

// MARK: - Workloads

/// Runs `loop`, the part that is measured: the script has callgrind zero its counters on entry to
/// this function and write them out on entry to `measuredSectionEnd` (`--zero-before`,
/// `--dump-before`: callgrind takes one action per function), so that setup and clean-up, whose
/// cost depends on the machine (they list /dev/shm, read /proc), are not counted. Called once per
/// process. Neither function is inlined, so that callgrind sees them.
@inline(never)
func measuredSection(_ loop: () throws -> Void) rethrows {
    try loop()
    measuredSectionEnd()
}

/// The start of an async measured section (the same name, so that callgrind's pattern finds
/// it): an async function is split into parts that all carry its name, and the part that resumes
/// after the loop would zero the counters again. The loop follows, then `measuredSectionEnd()`.
@inline(never)
func measuredSection() {
    // Not getpid(), as in `measuredSectionEnd`: two identical bodies may be folded into one.
    _ = getppid()
}

@inline(never)
func measuredSectionEnd() {
    // Keeps the call (an empty function might be dropped as having no effect).
    _ = getpid()
}

/// `icount-NNNNNNN`: the same length for every pid (14 bytes, a small string inline).
func uniqueName() -> String {
    let digits = String(me.pid)
    return "icount-" + String(repeating: "0", count: max(0, 7 - digits.count)) + digits
}

func runMailbox(_ configuration: Configuration, iterations: Int) throws {
    let name = uniqueName()
    try? Mailbox.delete(name)
    let box = try Mailbox.create(name, options: MailboxOptions(kind: configuration.target == .oneToOne ? .oneToOne : .shared))
    defer { try? Mailbox.delete(name) }
    let size = configuration.size
    var payload = [UInt8](repeating: 0xA5, count: size)
    switch configuration.mode {
    case .copy:
        try measuredSection {
            for index in 0..<iterations {
                let sequence = UInt64(index)
                payload.withUnsafeMutableBytes { stamp($0, sequence) }
                guard try box.trySend(payload) else { fail("mailbox full at message \(index)") }
                guard let message = try box.tryReceive() else { fail("message \(index) missing") }
                message.bytes.withUnsafeBytes { verify($0, sender: message.sender, size: size, expected: sequence) }
            }
        }
    case .zc:
        try measuredSection {
            for index in 0..<iterations {
                let sequence = UInt64(index)
                guard try box.trySend(count: size, { span in span.withUnsafeMutableBytes { fill($0, sequence) } }) else { fail("mailbox full at message \(index)") }
                let taken: Void? = try box.tryReceive { bytes, sender in bytes.withUnsafeBytes { verify($0, sender: sender, size: size, expected: sequence) } }
                guard taken != nil else { fail("message \(index) missing") }
            }
        }
    case .batch:
        var sent: UInt64 = 0
        var expected: UInt64 = 0
        try measuredSection {
            for _ in 0..<(iterations / batchSize) {
                try box.batch {
                    for _ in 0..<batchSize {
                        let sequence = sent
                        guard try box.trySend(count: size, { span in span.withUnsafeMutableBytes { fill($0, sequence) } }) else { fail("mailbox full at message \(sequence)") }
                        sent += 1
                    }
                }
                while expected < sent {
                    _ = try box.receiveBatch(limit: batchSize) { bytes, sender in
                        bytes.withUnsafeBytes { verify($0, sender: sender, size: size, expected: expected) }
                        expected += 1
                    }
                }
            }
        }
    case .many:
        var sent: UInt64 = 0
        var expected: UInt64 = 0
        try measuredSection {
            for _ in 0..<(iterations / batchSize) {
                let first = sent
                let written = try box.trySendBatch(messages: batchSize, bytesEach: size) { index, span in
                    span.withUnsafeMutableBytes { fill($0, first + UInt64(index)) }
                }
                guard written == batchSize else { fail("mailbox full at message \(first + UInt64(written))") }
                sent += UInt64(written)
                while expected < sent {
                    _ = try box.receiveBatch(limit: batchSize) { bytes, sender in
                        bytes.withUnsafeBytes { verify($0, sender: sender, size: size, expected: expected) }
                        expected += 1
                    }
                }
            }
        }
    case .poll:
        try measuredSection {
            for index in 0..<iterations {
                let taken: Void? = try box.tryReceive { _, _ in fail("poll \(index) found a message in an empty mailbox") }
                guard taken == nil else { fail("poll \(index) found a message in an empty mailbox") }
            }
        }
    case .async:
        try runOnThisThread {
            measuredSection()
            for index in 0..<iterations {
                let sequence = UInt64(index)
                try await box.send(count: size, timeout: .seconds(1)) { span in span.withUnsafeMutableBytes { fill($0, sequence) } }
                try await box.receive(timeout: .seconds(1)) { bytes, sender, _ in
                    bytes.withUnsafeBytes { verify($0, sender: sender, size: size, expected: sequence) }
                }
            }
            measuredSectionEnd()
        }
    }
}

func runEndpoint(_ configuration: Configuration, iterations: Int) throws {
    let name = uniqueName()
    _ = try? Endpoint.remove(name)
    let endpoint = try Endpoint.join(name)
    defer {
        endpoint.close()
        _ = try? Endpoint.remove(name)
    }
    let size = configuration.size
    var payload = [UInt8](repeating: 0xA5, count: size)
    // The buffer the zero-copy and batched configurations send from: stamped in place, so the
    // loop does not go through the array's closures (a retain, a release and a uniqueness check
    // of the captured array on every message, which is this program's work, not the library's).
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
    buffer.initializeMemory(as: UInt8.self, repeating: 0xA5)
    defer { buffer.deallocate() }
    switch configuration.mode {
    case .copy:
        try measuredSection {
            for index in 0..<iterations {
                let sequence = UInt64(index)
                payload.withUnsafeMutableBytes { stamp($0, sequence) }
                guard try endpoint.trySend(to: name, payload) else { fail("link full at message \(index)") }
                guard let message = try endpoint.tryReceive() else { fail("message \(index) missing") }
                guard message.from == name else { fail("message \(index) from \(message.from)") }
                message.bytes.withUnsafeBytes { verify($0, sender: message.message.sender, size: size, expected: sequence) }
            }
        }
    case .zc:
        try measuredSection {
            for index in 0..<iterations {
                let sequence = UInt64(index)
                stamp(buffer, sequence)
                guard try endpoint.trySend(to: name, UnsafeRawBufferPointer(buffer)) else { fail("link full at message \(index)") }
                let taken: Void? = try endpoint.tryReceive { bytes, sender, from in
                    guard from == name else { fail("message \(index) from \(from)") }
                    bytes.withUnsafeBytes { verify($0, sender: sender, size: size, expected: sequence) }
                }
                guard taken != nil else { fail("message \(index) missing") }
            }
        }
    case .batch:
        var sent: UInt64 = 0
        var expected: UInt64 = 0
        try measuredSection {
            for _ in 0..<(iterations / batchSize) {
                try endpoint.batch {
                    for _ in 0..<batchSize {
                        stamp(buffer, sent)
                        guard try endpoint.trySend(to: name, UnsafeRawBufferPointer(buffer)) else { fail("link full at message \(sent)") }
                        sent += 1
                    }
                }
                while expected < sent {
                    _ = try endpoint.tryReceiveBatch(limit: batchSize) { bytes, sender, from in
                        guard from == name else { fail("message \(expected) from \(from)") }
                        bytes.withUnsafeBytes { verify($0, sender: sender, size: size, expected: expected) }
                        expected += 1
                    }
                }
            }
        }
    case .poll:
        // One link (to itself), emptied before the loop: each poll looks at it and finds nothing.
        guard try endpoint.trySend(to: name, UnsafeRawBufferPointer(buffer)), try endpoint.tryReceive() != nil else { fail("the link to itself did not work") }
        try measuredSection {
            for index in 0..<iterations {
                let taken: Void? = try endpoint.tryReceive { _, _, _ in fail("poll \(index) found a message on an empty link") }
                guard taken == nil else { fail("poll \(index) found a message on an empty link") }
            }
        }
    case .many:
        var sent: UInt64 = 0
        var expected: UInt64 = 0
        try measuredSection {
            for _ in 0..<(iterations / batchSize) {
                let first = sent
                let written = try endpoint.trySendBatch(to: name, messages: batchSize, bytesEach: size) { index, span in
                    span.withUnsafeMutableBytes { fill($0, first + UInt64(index)) }
                }
                guard written == batchSize else { fail("link full at message \(first + UInt64(written))") }
                sent += UInt64(written)
                while expected < sent {
                    _ = try endpoint.tryReceiveBatch(limit: batchSize) { bytes, sender, from in
                        guard from == name else { fail("message \(expected) from \(from)") }
                        bytes.withUnsafeBytes { verify($0, sender: sender, size: size, expected: expected) }
                        expected += 1
                    }
                }
            }
        }
    case .async:
        fail("endpoints have no \(configuration.mode) configuration")
    }
}

/// Runs `body` as a task whose jobs this thread runs (it never suspends here: nothing waits), so
/// that no other thread starts.
final class ThisThread: TaskExecutor, @unchecked Sendable {
    // Unchecked: only the thread that calls `runOnThisThread` touches `jobs`.
    var jobs: [UnownedJob] = []
    func enqueue(_ job: consuming ExecutorJob) { jobs.append(UnownedJob(job)) }
}

func runOnThisThread(_ body: () async throws -> Void) throws {
    let executor = ThisThread()
    nonisolated(unsafe) var failure: (any Error)?
    nonisolated(unsafe) var finished = false
    try withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let call = body
        Task(executorPreference: executor) {
            do { try await call() } catch { failure = error }
            finished = true
        }
        while !finished {
            guard !executor.jobs.isEmpty else { fail("the task suspended") }
            executor.jobs.removeFirst().runSynchronously(on: executor.asUnownedTaskExecutor())
        }
        if let failure { throw failure }
    }
}

// MARK: - Main

let arguments = CommandLine.arguments
if arguments.count == 2 && arguments[1] == "--list" {
    for configuration in configurations { print(configuration.name) }
    exit(0)
}
guard arguments.count == 3, let iterations = Int(arguments[2]), iterations > 0, iterations % batchSize == 0 else {
    fail("usage: instruction-counts CONFIG ITERATIONS (a positive multiple of \(batchSize)) | --list")
}
guard let configuration = configurations.first(where: { $0.name == arguments[1] }) else {
    fail("unknown configuration \(arguments[1]); --list shows them")
}
do {
    if configuration.target == .endpoint {
        try runEndpoint(configuration, iterations: iterations)
    } else {
        try runMailbox(configuration, iterations: iterations)
    }
} catch {
    fail("\(configuration.name): \(error)")
}
