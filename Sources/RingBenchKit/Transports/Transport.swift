#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

/// The transports ringbench measures, by their `--transport` names.
public enum TransportKind: String, CaseIterable, Sendable {
    /// ShmMailbox, one-to-one ring (`MailboxOptions.kind = .oneToOne`).
    case shm
    /// ShmMailbox, shared ring (`.shared`: any number of senders and receivers).
    case shmShared = "shm-shared"
    /// ShmMailbox endpoints (direct naming): `send(to:)`, receive from anyone; one one-to-one link
    /// per sender.
    case shmEndpoint = "shm-endpoint"
    /// `socketpair(AF_UNIX, SOCK_STREAM)`, 4-byte length prefix per message.
    case udsStream = "uds-stream"
    /// `AF_UNIX, SOCK_DGRAM`: one datagram per message (or per chunk, see the note).
    case udsDgram = "uds-dgram"
    /// `socketpair(AF_UNIX, SOCK_SEQPACKET)`: one packet per message (or per chunk).
    case udsSeqpacket = "uds-seqpacket"
    /// `pipe2`, 4-byte length prefix per message.
    case pipe
    /// POSIX message queue (`mq_open`): one queue message per message (or per chunk).
    case mqueue
    /// TCP over 127.0.0.1 with TCP_NODELAY, 4-byte length prefix per message.
    case tcp
    /// C floor (CBenchShim): a busy-polling single-producer, single-consumer ring in a memfd, each
    /// message's index published on its own. One-to-one only (no fan-in).
    case cRing = "c-ring"
    /// C floor: ping-pong on one shared cache line (turn word and payload), both sides busy-poll.
    /// Latency only.
    case cSpin = "c-spin"
    /// C floor: bare futex ping-pong, FUTEX_WAKE on every send, FUTEX_WAIT to receive. Latency only.
    case cFutex = "c-futex"

    var isSharedMemory: Bool { self == .shm || self == .shmShared || self == .shmEndpoint }

    /// The C reference floors: not alternatives to ShmMailbox but the least its kind of work costs.
    var isCFloor: Bool { self == .cRing || self == .cSpin || self == .cFutex }

    /// Whether the transport can carry `shape`; nil if so, else why not. Every transport but the C
    /// floors can: the connection-oriented ones with one connection (or pipe) per sender that the
    /// receiver polls, `shm` with the shared ring, `shm-endpoint` with a link per sender.
    func limitation(for shape: LinkShape) -> String? {
        switch (self, shape) {
        case (.cRing, .fanIn):
            return "a single-producer, single-consumer ring takes one sender"
        case (.cSpin, .oneWay), (.cSpin, .fanIn), (.cFutex, .oneWay), (.cFutex, .fanIn):
            return "it carries one message at a time each way (ping-pong: latency only)"
        default:
            return nil
        }
    }

    /// What the report row calls this transport: the shared-memory ones carry their wait strategy.
    func reportName(strategy: WaitChoice) -> String {
        isSharedMemory ? "\(rawValue)/\(strategy.rawValue)" : rawValue
    }

    /// Sets up the parent's side (mailboxes, sockets, pipes, queues, a listening port).
    func setUp(_ plan: LinkPlan) throws -> TransportSetup {
        switch self {
        case .shm, .shmShared: return try MailboxSetup(plan)
        case .shmEndpoint: return try EndpointSetup(plan)
        case .udsStream, .udsDgram, .udsSeqpacket: return try UnixSocketSetup(plan)
        case .pipe: return try PipeSetup(plan)
        case .mqueue: return try MessageQueueSetup(plan)
        case .tcp: return try TCPSetup(plan)
        case .cRing, .cSpin, .cFutex: return try FloorSetup(plan)
        }
    }

    /// Connects in the peer, from what the parent's setup handed over.
    func connect(_ plan: LinkPlan, endpoint: PeerEndpoint, senderIndex: Int, watchdog: Watchdog) throws -> Link {
        switch self {
        case .shm, .shmShared: return try MailboxSetup.connect(plan, endpoint, watchdog: watchdog)
        case .shmEndpoint: return try EndpointSetup.connect(plan, endpoint, watchdog: watchdog)
        case .udsStream, .udsDgram, .udsSeqpacket: return try UnixSocketSetup.connect(plan, endpoint, senderIndex: senderIndex, watchdog: watchdog)
        case .pipe: return try PipeSetup.connect(plan, endpoint, watchdog: watchdog)
        case .mqueue: return try MessageQueueSetup.connect(plan, endpoint, senderIndex: senderIndex, watchdog: watchdog)
        case .tcp: return try TCPSetup.connect(plan, endpoint, watchdog: watchdog)
        case .cRing, .cSpin, .cFutex: return try FloorSetup.connect(plan, endpoint, watchdog: watchdog)
        }
    }
}

/// How the shared-memory links wait (`--strategy`).
public enum WaitChoice: String, Sendable, CaseIterable {
    case spin, adaptive, block

    var waitStrategy: WaitStrategy {
        switch self {
        case .spin: return .spin
        case .adaptive: return .default
        case .block: return .block
        }
    }
}

/// Who talks to whom in a run.
enum LinkShape: Equatable {
    /// The peer sends, the parent receives (throughput).
    case oneWay
    /// The parent sends, the peer echoes back (latency).
    case pingPong
    /// `senders` peers send, the parent receives (fanin).
    case fanIn(senders: Int)

    var peers: Int {
        if case .fanIn(let senders) = self { return senders }
        return 1
    }
}

/// What both sides of a run agree on; the parent passes it to its peers.
struct LinkPlan: Equatable {
    var transport: TransportKind
    var size: Int
    var shape: LinkShape
    var strategy: WaitChoice
    /// Messages the shm link may publish together (`--batch`); other links send one at a time.
    var batch: Int
}

/// What a peer needs to connect: named values (mailbox or queue names, a port, the chunk size…)
/// and descriptors it inherits. In the peer, `fds[i]` is descriptor `PeerEndpoint.firstFD + i`.
struct PeerEndpoint {
    static let firstFD: Int32 = 3

    var values: [String: String] = [:]
    var fds: [Int32] = []

    subscript(key: String) -> String? {
        get { values[key] }
        set { values[key] = newValue }
    }

    func string(_ key: String) throws -> String {
        guard let value = values[key] else { throw BenchError.protocolViolation("peer endpoint lacks \"\(key)\"") }
        return value
    }

    func int(_ key: String) throws -> Int {
        guard let value = Int(try string(key)) else { throw BenchError.protocolViolation("peer endpoint \"\(key)\" is not a number") }
        return value
    }

    /// The peer's descriptor number for inherited descriptor `index`.
    static func childFD(_ index: Int) -> Int32 { firstFD + Int32(index) }
}

/// The parent's side of a transport for one run.
protocol TransportSetup: AnyObject {
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
    /// Removes whatever is left (names, descriptors). Idempotent.
    func tearDown()
}

/// A name unique to this process and call, usable for mailboxes and message queues.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}
