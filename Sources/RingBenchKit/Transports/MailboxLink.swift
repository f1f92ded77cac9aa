#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

/// `shm` and `shm-shared`: ShmMailbox mailboxes created by the parent and opened by name in the
/// peers. One mailbox for a one-way stream or a fan-in, two (requests, replies) for ping-pong.
/// The names are deleted as soon as every peer has opened them, so nothing is left in /dev/shm
/// if a process crashes.
final class MailboxSetup: TransportSetup {
    private let plan: LinkPlan
    private let kind: MailboxOptions.RingKind
    private let capacity: Int
    private var names: [String] = []
    private var boxes: [Mailbox] = []

    /// Mailbox bytes per ring aimed at (capacity follows from it, between 2 and 4096 messages):
    /// small enough to stay in the caches, as the kernel's socket buffers do.
    static let ringBytes = 4 << 20

    /// Messages per ring: the plan's `capacity` if given, else as many `size`-byte messages as
    /// fit in `ringBytes`, between 2 and 64 for ping-pong (one message is in flight) and 2 and
    /// 4096 for streams.
    static func capacity(_ plan: LinkPlan) -> Int {
        if let capacity = plan.capacity { return capacity }
        let slot = (plan.size + 16 + 63) & ~63
        let fitting = ringBytes / slot - 1
        return plan.shape == .pingPong ? max(2, min(64, fitting)) : max(2, min(4096, fitting))
    }

    init(_ plan: LinkPlan) throws {
        self.plan = plan
        if case .fanIn = plan.shape {
            kind = .shared
        } else {
            kind = plan.transport == .shmShared ? .shared : .oneToOne
        }
        capacity = Self.capacity(plan)
        let base = uniqueName("ringbench")
        names = plan.shape == .pingPong ? [base + "-req", base + "-rep"] : [base]
        do {
            for name in names {
                boxes.append(try Mailbox.create(name, options: MailboxOptions(
                    capacity: .bounded(capacity), maxMessageSize: plan.size, kind: kind, waitStrategy: plan.strategy.waitStrategy)))
            }
        } catch {
            tearDown()
            throw BenchError.mailbox(operation: "Mailbox.create", description: "\(error)")
        }
    }

    var note: String {
        var parts = ["\(kind == .oneToOne ? "one-to-one" : "shared") ring, capacity \(capacity)"]
        if plan.transport == .shm, kind == .shared { parts[0] += " (fan-in uses the shared ring: a one-to-one ring takes one sender)" }
        if plan.shape != .pingPong {
            parts.append(plan.transport == .shmAsync ? "batch \(plan.batch)" : "batch \(plan.batch) (trySendBatch, copying in)")
        }
        parts.append("receiver copies each message out")
        if plan.transport == .shmAsync {
            parts.append("async calls, each side's loop one task on its own thread")
        }
        return parts.joined(separator: ", ")
    }

    func endpoint(forPeer index: Int) throws -> PeerEndpoint {
        var endpoint = PeerEndpoint()
        endpoint["name"] = names[0]
        if names.count > 1 { endpoint["reply"] = names[1] }
        return endpoint
    }

    func peerSpawned(_ index: Int) {}

    func parentLink(watchdog: Watchdog) throws -> Link {
        if plan.shape == .pingPong {
            return MailboxLink.make(inbox: boxes[1], outbox: boxes[0], size: plan.size, watchdog: watchdog,
                                    async: plan.transport == .shmAsync)
        }
        return MailboxLink.make(inbox: boxes[0], outbox: nil, size: plan.size, watchdog: watchdog,
                                async: plan.transport == .shmAsync)
    }

    func peersReady() {
        for name in names { try? Mailbox.unlink(name) }
    }

    func tearDown() {
        for name in names { try? Mailbox.unlink(name) }
        names = []
        boxes = []
    }

    static func connect(_ plan: LinkPlan, _ endpoint: PeerEndpoint, watchdog: Watchdog) throws -> Link {
        do {
            let strategy = plan.strategy.waitStrategy
            let first = try Mailbox.open(try endpoint.string("name"), waitStrategy: strategy)
            if plan.shape == .pingPong {
                let reply = try Mailbox.open(try endpoint.string("reply"), waitStrategy: strategy)
                return MailboxLink.make(inbox: first, outbox: reply, size: plan.size, watchdog: watchdog,
                                        async: plan.transport == .shmAsync)
            }
            return MailboxLink.make(inbox: nil, outbox: first, size: plan.size, watchdog: watchdog,
                                    async: plan.transport == .shmAsync)
        } catch let error as MailboxError {
            throw BenchError.mailbox(operation: "Mailbox.open", description: error.description)
        }
    }
}

/// A link over one or two mailboxes. Sends copy the message into the ring; receives copy it out
/// into the link's own buffer (as `recv` copies out of the kernel), then hand that over.
///
/// Blocking calls wait in slices of a second and ask the watchdog in between, so a peer that died
/// cannot strand this side.
class MailboxLink: Link {
    let inbox: Mailbox?
    let outbox: Mailbox?
    let buffer: ByteBuffer
    let watchdog: Watchdog

    static let slice: Duration = .seconds(1)

    init(inbox: Mailbox?, outbox: Mailbox?, size: Int, watchdog: Watchdog) {
        self.inbox = inbox
        self.outbox = outbox
        self.buffer = ByteBuffer(count: inbox == nil ? 1 : size)
        self.watchdog = watchdog
    }

    /// `shm`'s link, or with `async` `shm-async`'s.
    static func make(inbox: Mailbox?, outbox: Mailbox?, size: Int, watchdog: Watchdog, async: Bool) -> MailboxLink {
        async ? AsyncMailboxLink(inbox: inbox, outbox: outbox, size: size, watchdog: watchdog)
              : MailboxLink(inbox: inbox, outbox: outbox, size: size, watchdog: watchdog)
    }

    /// Runs `wait` (a call with a one-second timeout) until it succeeds, asking the watchdog after
    /// each timeout; other mailbox errors become `BenchError`s naming `operation`.
    private func untilDone<R>(_ operation: String, _ wait: () throws(MailboxError) -> R) throws -> R {
        while true {
            do throws(MailboxError) {
                return try wait()
            } catch {
                guard error == .timedOut else { throw BenchError.mailbox(operation: operation, description: error.description) }
                try watchdog.checkPeer()
            }
        }
    }

    func send(_ message: UnsafeRawBufferPointer) throws {
        guard let outbox else { throw BenchError.protocolViolation("this mailbox link only receives") }
        try untilDone("send") { () throws(MailboxError) in
            if try outbox.trySend(message) { return }
            try outbox.send(message, timeout: Self.slice)
        }
    }

    /// `outbox.trySend(bytes)`, its errors as `BenchError`s.
    static func trySend(_ bytes: UnsafeRawBufferPointer, to outbox: Mailbox) throws -> Bool {
        do throws(MailboxError) {
            return try outbox.trySend(bytes)
        } catch {
            throw BenchError.mailbox(operation: "send", description: error.description)
        }
    }

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let length = try receiveOne(wait: true)!
        try body(buffer.bytes(length))
    }

    func sendBatch(count: Int, buffer message: UnsafeMutableRawBufferPointer,
                   fill: (Int, UnsafeMutableRawBufferPointer) throws -> Void) throws {
        guard let outbox else { throw BenchError.protocolViolation("this mailbox link only receives") }
        // `trySendBatch`: the checks once, one tail store and at most one wake-up per call.
        try sendInBatches(count: count, buffer: message, fill: fill) { messages, fillOne in
            do {
                return try outbox.trySendBatch(messages: messages, bytesEach: message.count, fillOne)
            } catch let error as MailboxError {
                throw BenchError.mailbox(operation: "send", description: error.description)
            }
        }
    }

    func receiveBatch(limit: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        guard let inbox else { throw BenchError.protocolViolation("this mailbox link only sends") }
        let target = buffer
        // Each message is copied out (as `recv` would) before `body` sees it; the ring space of
        // the whole batch is released together when `receiveBatch` returns.
        return try withoutActuallyEscaping(body) { body in
            let copyOut = { (bytes: RawSpan, _: ProcessIdentity) throws in
                try body(try target.copyIn(bytes))
            }
            do {
                let taken = try inbox.tryReceiveBatch(limit: limit, copyOut)
                if taken > 0 { return taken }
                while true {
                    do {
                        return try inbox.receiveBatch(limit: limit, timeout: Self.slice, copyOut)
                    } catch let error as MailboxError where error == .timedOut {
                        try watchdog.checkPeer()
                    }
                }
            } catch let error as MailboxError {
                throw BenchError.mailbox(operation: "receive", description: error.description)
            }
        }
    }

    /// Copies the next message into `buffer` and returns its length; nil when `wait` is false and
    /// nothing is waiting.
    private func receiveOne(wait: Bool) throws -> Int? {
        guard let inbox else { throw BenchError.protocolViolation("this mailbox link only sends") }
        let target = buffer
        let copyOut = { (bytes: RawSpan, _: ProcessIdentity) throws -> Int in
            try target.copyIn(bytes).count
        }
        do {
            if let length = try inbox.tryReceive(copyOut) { return length }
            guard wait else { return nil }
            while true {
                do {
                    return try inbox.receive(timeout: Self.slice, copyOut)
                } catch let error as MailboxError where error == .timedOut {
                    try watchdog.checkPeer()
                }
            }
        } catch let error as MailboxError {
            throw BenchError.mailbox(operation: "receive", description: error.description)
        }
    }

    func close() {
        inbox?.close()
        outbox?.close()
    }
}

/// `shm-async`'s link: the same mailboxes, waited on with the async calls. Each async call makes
/// the non-blocking attempt first (so a call that need not wait costs what `trySend` or
/// `tryReceive` costs), spins briefly, then suspends on the wait reactor.
final class AsyncMailboxLink: MailboxLink, AsyncLink {
    /// Runs `call` (an async call with a one-second timeout) until it succeeds, asking the
    /// watchdog after each timeout; other mailbox errors become `BenchError`s naming `operation`.
    private func untilDone<R>(_ operation: String, _ call: () async throws -> R) async throws -> R {
        while true {
            do {
                return try await call()
            } catch {
                try failedOrTimedOut(operation, error)
            }
        }
    }

    // Each call is made once directly, as an async program makes it; only a call that timed out
    // goes round `untilDone`'s loop (a closure and a frame more).

    func send(_ message: UnsafeRawBufferPointer) async throws {
        guard let outbox else { throw BenchError.protocolViolation("this mailbox link only receives") }
        do {
            return try await outbox.send(message, timeout: Self.slice)
        } catch {
            try failedOrTimedOut("send", error)
        }
        try await untilDone("send") { try await outbox.send(message, timeout: Self.slice) }
    }

    func receive() async throws -> UnsafeRawBufferPointer {
        guard let inbox else { throw BenchError.protocolViolation("this mailbox link only sends") }
        let target = buffer
        do {
            let length = try await inbox.receive(timeout: Self.slice) { bytes, _, _ in try target.copyIn(bytes).count }
            return target.bytes(length)
        } catch {
            try failedOrTimedOut("receive", error)
        }
        let length = try await untilDone("receive") {
            try await inbox.receive(timeout: Self.slice) { bytes, _, _ in try target.copyIn(bytes).count }
        }
        return target.bytes(length)
    }

    /// Returns after a timeout (once the watchdog found the peer alive); throws anything else,
    /// mailbox errors as `BenchError`s naming `operation`.
    private func failedOrTimedOut(_ operation: String, _ error: any Error) throws {
        guard let failure = error as? MailboxError else { throw error }
        guard failure == .timedOut else { throw BenchError.mailbox(operation: operation, description: failure.description) }
        try watchdog.checkPeer()
    }

    func sendBatch(count: Int, buffer message: UnsafeMutableRawBufferPointer,
                   fill: (Int, UnsafeMutableRawBufferPointer) throws -> Void) async throws {
        guard let outbox else { throw BenchError.protocolViolation("this mailbox link only receives") }
        let bytes = UnsafeRawBufferPointer(message)
        var index = 0
        while index < count {
            // As many as fit, published with one tail store; the first that does not fit waits
            // for room in an async send (it is already in `message`).
            var full = false
            try outbox.batch {
                while index < count {
                    try fill(index, message)
                    guard try Self.trySend(bytes, to: outbox) else { full = true; return }
                    index += 1
                }
            }
            if full {
                try await send(bytes)
                index += 1
            }
        }
    }

    func receiveBatch(limit: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) async throws -> Int {
        guard let inbox else { throw BenchError.protocolViolation("this mailbox link only sends") }
        let target = buffer
        // Copied out before `body` sees it, as in the synchronous link.
        return try await untilDone("receive") {
            try await inbox.receiveBatch(limit: limit, timeout: Self.slice) { bytes, _, _ in try body(try target.copyIn(bytes)) }
        }
    }
}

/// `shm`'s links for transports registered from outside RingBenchKit whose ends are local
/// mailboxes (ringbench-nats's `nats-bridge`: its mailboxes are relayed by shmbox-bridge).
public enum LocalMailboxLinks {
    /// A link on mailboxes the caller opened: it receives from `inbox` and sends into `outbox`
    /// (either may be nil), each message `size` bytes at most.
    public static func link(inbox: Mailbox?, outbox: Mailbox?, size: Int, watchdog: Watchdog) -> any Link {
        MailboxLink(inbox: inbox, outbox: outbox, size: size, watchdog: watchdog)
    }

    /// A peer's link, as `shm`'s peers connect: `endpoint["name"]` is the mailbox it sends into
    /// (one-way, fan-in) or receives from (ping-pong), `endpoint["reply"]` the one it echoes into.
    public static func connect(_ plan: LinkPlan, endpoint: PeerEndpoint, watchdog: Watchdog) throws -> any Link {
        try MailboxSetup.connect(plan, endpoint, watchdog: watchdog)
    }
}
