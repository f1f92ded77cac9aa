#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

/// `ringbench idle`: what mailboxes cost while nothing happens. One process creates `mailboxes`
/// one-to-one mailboxes and keeps them open, joins an endpoint that `links` other endpoints (in
/// the same process) have each sent one message to, takes those messages, and then blocks in
/// `receive()` from anyone for `seconds`, while nothing is sent. Reported: the CPU the whole
/// process used meanwhile (every thread; the waiting receiver wakes in bounded slices to check
/// that its peers live), how often it woke (voluntary context switches), and the memory per idle
/// mailbox: shared memory (the object's allocated blocks) and this process's resident memory.
public struct IdleOptions: Sendable {
    public var mailboxes = 1000
    public var links = 100
    public var seconds = 5.0
    /// Each mailbox's options, and the links' (default: one-to-one, 64 messages of up to 256 B;
    /// the library's defaults reserve megabytes per mailbox, too much for thousands).
    public var mailbox = MailboxOptions(capacity: 64, maxMessageSize: 256, kind: .oneToOne)
    public var strategy: WaitChoice = .adaptive

    public init() {}

    public func validate() throws {
        if mailboxes < 0 || mailboxes > 100_000 { throw BenchError.invalidArgument("--mailboxes must be 0 to 100000") }
        if links < 1 || links > 1000 { throw BenchError.invalidArgument("--links must be 1 to 1000") }
        if !(seconds > 0) || seconds > 3600 { throw BenchError.invalidArgument("--seconds must be more than 0 and at most 3600") }
    }
}

/// What `ringbench idle` measured.
public struct IdleReport: Codable, Sendable, Equatable {
    public var machine: MachineFacts
    public var mailboxes: Int
    public var links: Int
    public var seconds: Double
    /// CPU seconds (user + system, all threads) while the receiver waited.
    public var cpuSeconds: Double
    /// `cpuSeconds` as a share of one core over the wait, in percent.
    public var cpuPercent: Double
    /// Voluntary context switches while waiting (each a sleep that ended).
    public var wakeups: Int
    /// Shared memory per idle mailbox: the allocated blocks of its object.
    public var sharedBytesPerMailbox: Double
    /// This process's resident memory growth per mailbox (its mapping's touched pages, handle).
    public var residentBytesPerMailbox: Double
    /// The mailboxes' capacity and message size, for the reader.
    public var mailboxShape: String

    enum CodingKeys: String, CodingKey {
        case machine, mailboxes, links, seconds, wakeups
        case cpuSeconds = "cpu_seconds"
        case cpuPercent = "cpu_percent"
        case sharedBytesPerMailbox = "shared_bytes_per_mailbox"
        case residentBytesPerMailbox = "resident_bytes_per_mailbox"
        case mailboxShape = "mailbox_shape"
    }
}

enum Idle {
    static func run(_ options: IdleOptions) throws -> IdleReport {
        try options.validate()
        let machine = MachineFacts.current()
        let prefix = uniqueName("rb-idle")
        var names: [String] = []
        var endpoints: [Endpoint] = []
        var receiver: Endpoint?
        defer {
            receiver?.close()
            for endpoint in endpoints { endpoint.close() }
            for name in names { try? Mailbox.delete(name) }
            // The endpoints' segments and every link from or to them.
            for index in 0..<options.links { _ = try? Endpoint.remove("\(prefix)-s\(index)") }
            _ = try? Endpoint.remove("\(prefix)-in")
        }
        func failing<T>(_ operation: String, _ body: () throws -> T) throws -> T {
            do { return try body() } catch { throw BenchError.mailbox(operation: operation, description: "\(error)") }
        }

        let residentBefore = residentBytes()
        var boxes: [Mailbox] = []
        var mailboxOptions = options.mailbox
        mailboxOptions.waitStrategy = options.strategy.waitStrategy
        for index in 0..<options.mailboxes {
            let name = "\(prefix)-\(index)"
            boxes.append(try failing("Mailbox.create") { try Mailbox.create(name, options: mailboxOptions) })
            names.append(name)
        }
        let residentAfter = residentBytes()
        let shared = names.reduce(0) { $0 + allocatedBytes(of: $1) }

        let inbox = "\(prefix)-in"
        var endpointOptions = Endpoint.Options()
        endpointOptions.waitStrategy = options.strategy.waitStrategy
        if mailboxOptions.capacity.kind == .bounded { endpointOptions.linkCapacity = mailboxOptions.capacity.messages }
        endpointOptions.maxMessageSize = mailboxOptions.maxMessageSize
        receiver = try failing("Endpoint.join") { try Endpoint.join(inbox, options: endpointOptions) }
        for index in 0..<options.links {
            let sender = try failing("Endpoint.join") { try Endpoint.join("\(prefix)-s\(index)", options: endpointOptions) }
            endpoints.append(sender)
            try failing("Endpoint.send") { try sender.send(to: inbox, "hello") }
        }
        var taken = 0
        while taken < options.links {
            guard try failing("Endpoint.receive", { try receiver!.tryReceive() }) != nil else {
                throw BenchError.protocolViolation("the idle receiver found \(taken) of \(options.links) messages")
            }
            taken += 1
        }

        let cpuBefore = Sys.cpuSeconds()
        let switchesBefore = voluntarySwitches()
        let started = Sys.nanos()
        do {
            _ = try receiver!.receive(timeout: .nanoseconds(Int64(options.seconds * 1e9)))
            throw BenchError.protocolViolation("a message arrived while nothing was sent")
        } catch MailboxError.timedOut {
            // The expected end: nothing came.
        } catch let error as MailboxError {
            throw BenchError.mailbox(operation: "Endpoint.receive", description: "\(error)")
        }
        let waited = Double(Sys.nanos() &- started) / 1e9
        let cpu = Sys.cpuSeconds() - cpuBefore
        let wakeups = voluntarySwitches() - switchesBefore
        withExtendedLifetime(boxes) {}

        let count = Double(max(1, options.mailboxes))
        return IdleReport(
            machine: machine, mailboxes: options.mailboxes, links: options.links, seconds: waited,
            cpuSeconds: cpu, cpuPercent: waited > 0 ? cpu / waited * 100 : 0, wakeups: wakeups,
            sharedBytesPerMailbox: options.mailboxes > 0 ? Double(shared) / count : 0,
            residentBytesPerMailbox: options.mailboxes > 0 ? Double(max(0, residentAfter - residentBefore)) / count : 0,
            mailboxShape: "\(mailboxOptions.kind.rawValue), capacity \(mailboxOptions.capacity), max message \(mailboxOptions.maxMessageSize) B")
    }

    /// The allocated size of mailbox `name`'s shared-memory object (`/dev/shm/shmmb.<name>`).
    static func allocatedBytes(of name: String) -> Int {
        var info = stat()
        guard stat("/dev/shm/shmmb.\(name)", &info) == 0 else { return 0 }
        return Int(info.st_blocks) * 512
    }

    /// VmRSS of this process, in bytes.
    static func residentBytes() -> Int {
        statusField("VmRSS:").map { $0 * 1024 } ?? 0
    }

    static func voluntarySwitches() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_nvcsw
    }

    /// A number field of /proc/self/status ("VmRSS:   1234 kB" → 1234).
    static func statusField(_ key: String) -> Int? {
        guard let text = Sys.readSmallFile("/proc/self/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
        }
        return nil
    }
}

extension RingBench {
    /// `ringbench idle`: the cost of idle mailboxes and of a receiver waiting on many links.
    public static func idle(options: IdleOptions) throws -> IdleReport {
        try Idle.run(options)
    }
}
