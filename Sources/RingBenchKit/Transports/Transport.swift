#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

/// A transport ringbench measures, by its `--transport` name: one of the built-in ones below, or
/// one registered from outside (`RingBench.register`; `ringbench-nats` registers the NATS
/// transports). What it does lives in its `BenchTransport`; this is only its name.
public struct TransportKind: RawRepresentable, Hashable, Sendable, CaseIterable, Codable {
    public let rawValue: String

    /// The transport named `rawValue`, if it is built in or registered in this process.
    public init?(rawValue: String) {
        guard TransportRegistry.transport(named: rawValue) != nil else { return nil }
        self.rawValue = rawValue
    }

    private init(builtIn name: String) {
        rawValue = name
    }

    /// ShmMailbox, one-to-one ring (`MailboxOptions.kind = .oneToOne`).
    public static let shm = TransportKind(builtIn: "shm")
    /// ShmMailbox, shared ring (`.shared`: any number of senders and receivers).
    public static let shmShared = TransportKind(builtIn: "shm-shared")
    /// ShmMailbox, one-to-one ring, with the async calls (`try await receive`, `send`) wherever a
    /// side must wait.
    public static let shmAsync = TransportKind(builtIn: "shm-async")
    /// ShmMailbox endpoints (direct naming): `send(to:)`, receive from anyone; one one-to-one link
    /// per sender.
    public static let shmEndpoint = TransportKind(builtIn: "shm-endpoint")
    /// `socketpair(AF_UNIX, SOCK_STREAM)`, 4-byte length prefix per message.
    public static let udsStream = TransportKind(builtIn: "uds-stream")
    /// `AF_UNIX, SOCK_DGRAM`: one datagram per message (or per chunk, see the note).
    public static let udsDgram = TransportKind(builtIn: "uds-dgram")
    /// `socketpair(AF_UNIX, SOCK_SEQPACKET)`: one packet per message (or per chunk).
    public static let udsSeqpacket = TransportKind(builtIn: "uds-seqpacket")
    /// `pipe2`, 4-byte length prefix per message.
    public static let pipe = TransportKind(builtIn: "pipe")
    /// POSIX message queue (`mq_open`): one queue message per message (or per chunk).
    public static let mqueue = TransportKind(builtIn: "mqueue")
    /// TCP over 127.0.0.1 with TCP_NODELAY, 4-byte length prefix per message.
    public static let tcp = TransportKind(builtIn: "tcp")
    /// C floor (CBenchShim): a busy-polling single-producer, single-consumer ring in a memfd, each
    /// message's index published on its own. One-to-one only (no fan-in).
    public static let cRing = TransportKind(builtIn: "c-ring")
    /// C floor: a busy-polling bounded multi-producer, multi-consumer queue in a memfd with a
    /// sequence word per slot (Vyukov's design; `shm-shared`'s kind of ring). Every shape, fan-in
    /// included.
    public static let cSlots = TransportKind(builtIn: "c-slots")
    /// C floor: ping-pong on one shared cache line (turn word and payload), both sides busy-poll.
    /// Latency only.
    public static let cSpin = TransportKind(builtIn: "c-spin")
    /// C floor: bare futex ping-pong, FUTEX_WAKE on every send, FUTEX_WAIT to receive. Latency only.
    public static let cFutex = TransportKind(builtIn: "c-futex")

    /// The transports built into ringbench, in the order reports list them.
    static let builtIn: [TransportKind] = [
        .shm, .shmShared, .shmEndpoint, .shmAsync, .udsStream, .udsDgram, .udsSeqpacket, .pipe, .mqueue, .tcp, .cRing, .cSlots, .cSpin,
        .cFutex,
    ]

    /// Every transport this process knows: the built-in ones, then the registered ones in the
    /// order they were registered.
    public static var allCases: [TransportKind] {
        TransportRegistry.all.map { TransportKind(builtIn: $0.name) }
    }

    var isSharedMemory: Bool { self == .shm || self == .shmShared || self == .shmEndpoint || self == .shmAsync }

    /// The C reference floors: not alternatives to ShmMailbox but the least its kind of work costs.
    var isCFloor: Bool { self == .cRing || self == .cSlots || self == .cSpin || self == .cFutex }

    /// What carries this transport's messages (registered under its name).
    var implementation: any BenchTransport {
        guard let transport = TransportRegistry.transport(named: rawValue) else {
            preconditionFailure("transport \(rawValue) is not registered in this process")
        }
        return transport
    }

    /// Whether the transport can carry `shape`; nil if so, else why not.
    func limitation(for shape: LinkShape) -> String? {
        implementation.limitation(for: shape)
    }

    /// Whether `--batch` matters to this transport in runs of `shape`.
    func usesBatch(for shape: LinkShape) -> Bool {
        implementation.usesBatch(for: shape)
    }

    /// What the report row calls this transport: the shared-memory ones carry their wait strategy.
    func reportName(strategy: WaitChoice) -> String {
        isSharedMemory ? "\(rawValue)/\(strategy.rawValue)" : rawValue
    }

    /// Sets up the parent's side (mailboxes, sockets, pipes, queues, a listening port, a server).
    func setUp(_ plan: LinkPlan) throws -> any TransportSetup {
        try implementation.setUp(plan)
    }

    /// Connects in the peer, from what the parent's setup handed over.
    func connect(_ plan: LinkPlan, endpoint: PeerEndpoint, senderIndex: Int, watchdog: Watchdog) throws -> any Link {
        try implementation.connect(plan, endpoint: endpoint, senderIndex: senderIndex, watchdog: watchdog)
    }
}

/// How the shared-memory links wait (`--strategy`).
public enum WaitChoice: String, Sendable, CaseIterable, Codable {
    case spin, adaptive, block

    /// ShmMailbox's wait strategy for this choice (also for registered transports whose ends are
    /// local mailboxes).
    public var waitStrategy: WaitStrategy {
        switch self {
        case .spin: return .spin
        case .adaptive: return .default
        case .block: return .block
        }
    }
}

/// Who talks to whom in a run.
public enum LinkShape: Equatable, Sendable, Codable {
    /// The peer sends, the parent receives (throughput).
    case oneWay
    /// The parent sends, the peer echoes back (latency).
    case pingPong
    /// `senders` peers send, the parent receives (fanin).
    case fanIn(senders: Int)

    /// Peer processes in the run: the senders of a fan-in, else one.
    public var peers: Int {
        if case .fanIn(let senders) = self { return senders }
        return 1
    }
}

/// What both sides of a run agree on; the parent passes it to its peers.
public struct LinkPlan: Equatable, Sendable, Codable {
    public var transport: TransportKind
    /// The size of every message, in bytes.
    public var size: Int
    public var shape: LinkShape
    /// How the shared-memory links wait.
    public var strategy: WaitChoice
    /// Messages a link may publish together in a stream (`--batch`: the shm links and the NATS
    /// links' window of unacknowledged publishes); the others send one at a time.
    public var batch: Int
    /// Messages per ring of the shared-memory links and the C floors that have rings (`--capacity`);
    /// nil: as many as fit in `MailboxSetup.ringBytes`, within the shape's bounds.
    public var capacity: Int?

    public init(transport: TransportKind, size: Int, shape: LinkShape, strategy: WaitChoice, batch: Int,
                capacity: Int? = nil) {
        self.transport = transport
        self.size = size
        self.shape = shape
        self.strategy = strategy
        self.batch = batch
        self.capacity = capacity
    }
}

/// What a peer needs to connect: named values (mailbox or queue names, a port, the chunk size…)
/// and descriptors it inherits. In the peer, `fds[i]` is descriptor `PeerEndpoint.firstFD + i`.
public struct PeerEndpoint: Sendable {
    static let firstFD: Int32 = 3

    /// Named values, passed on the peer's command line (in its JSON configuration).
    public var values: [String: String] = [:]
    /// Descriptors the peer inherits (the parent's numbers in the parent, the peer's in the peer).
    public var fds: [Int32] = []

    public init() {}

    public subscript(key: String) -> String? {
        get { values[key] }
        set { values[key] = newValue }
    }

    /// The value of `key`; throws `protocolViolation` if the parent did not pass it.
    public func string(_ key: String) throws -> String {
        guard let value = values[key] else { throw BenchError.protocolViolation("peer endpoint lacks \"\(key)\"") }
        return value
    }

    /// The value of `key` as a number.
    public func int(_ key: String) throws -> Int {
        guard let value = Int(try string(key)) else { throw BenchError.protocolViolation("peer endpoint \"\(key)\" is not a number") }
        return value
    }

    /// The peer's descriptor number for inherited descriptor `index`.
    static func childFD(_ index: Int) -> Int32 { firstFD + Int32(index) }
}

/// The parent's side of a transport for one run.
public protocol TransportSetup: AnyObject {
    /// How message sizes are carried (whole, split, raised limits), for the report's note.
    var note: String { get }
    /// What peer `index` gets (its arguments and inherited descriptors).
    func endpoint(forPeer index: Int) throws -> PeerEndpoint
    /// Peer `index` has been spawned: close the parent's copies of what only it needs.
    func peerSpawned(_ index: Int)
    /// The parent's link (receiving for oneWay and fanIn, ping-ponging for pingPong). Called once
    /// all peers are spawned.
    func parentLink(watchdog: Watchdog) throws -> Link
    /// All peers have connected: names can go (nothing is left behind if anyone crashes later).
    func peersReady()
    /// CPU seconds a server process of the transport (not the parent or a peer) used since
    /// `peersReady` (nil: the transport has none). Asked once the timed part is over.
    func serverCPUSeconds() -> Double?
    /// Removes whatever is left (names, descriptors). Idempotent.
    func tearDown()
}

extension TransportSetup {
    public func serverCPUSeconds() -> Double? { nil }
}

/// A name unique to this process and call, usable for mailboxes and message queues.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}
