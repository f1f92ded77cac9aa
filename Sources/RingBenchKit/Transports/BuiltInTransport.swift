/// The transports built into ringbench: the dispatch to each one's setup and link, by name.
struct BuiltInTransport: BenchTransport {
    let kind: TransportKind

    var name: String { kind.rawValue }

    /// Every built-in transport but the C floors (`c-slots` excepted) can carry every shape: the
    /// connection-oriented ones with one connection (or pipe) per sender that the receiver polls,
    /// `shm` with the shared ring, `shm-endpoint` with a link per sender, `c-slots` with its
    /// multi-producer queue.
    func limitation(for shape: LinkShape) -> String? {
        switch (kind, shape) {
        case (.cRing, .fanIn):
            return "a single-producer, single-consumer ring takes one sender"
        case (.cSpin, .oneWay), (.cSpin, .fanIn), (.cFutex, .oneWay), (.cFutex, .fanIn):
            return "it carries one message at a time each way (ping-pong: latency only)"
        default:
            return nil
        }
    }

    /// Only the shared-memory links publish streams together (`Outbox.batch`, `Endpoint.batch`);
    /// the others send every message with its own call whatever `--batch` says.
    func usesBatch(for shape: LinkShape) -> Bool {
        kind.isSharedMemory && shape != .pingPong
    }

    func setUp(_ plan: LinkPlan) throws -> any TransportSetup {
        switch kind {
        case .shm, .shmShared, .shmAsync: return try MailboxSetup(plan)
        case .shmEndpoint: return try EndpointSetup(plan)
        case .udsStream, .udsDgram, .udsSeqpacket: return try UnixSocketSetup(plan)
        case .pipe: return try PipeSetup(plan)
        case .mqueue: return try MessageQueueSetup(plan)
        case .tcp: return try TCPSetup(plan)
        case .cRing, .cSlots, .cSpin, .cFutex: return try FloorSetup(plan)
        default: preconditionFailure("\(kind.rawValue) is not a built-in transport")
        }
    }

    func connect(_ plan: LinkPlan, endpoint: PeerEndpoint, senderIndex: Int, watchdog: Watchdog) throws -> any Link {
        switch kind {
        case .shm, .shmShared, .shmAsync: return try MailboxSetup.connect(plan, endpoint, watchdog: watchdog)
        case .shmEndpoint: return try EndpointSetup.connect(plan, endpoint, watchdog: watchdog)
        case .udsStream, .udsDgram, .udsSeqpacket: return try UnixSocketSetup.connect(plan, endpoint, senderIndex: senderIndex, watchdog: watchdog)
        case .pipe: return try PipeSetup.connect(plan, endpoint, watchdog: watchdog)
        case .mqueue: return try MessageQueueSetup.connect(plan, endpoint, senderIndex: senderIndex, watchdog: watchdog)
        case .tcp: return try TCPSetup.connect(plan, endpoint, watchdog: watchdog)
        case .cRing, .cSlots, .cSpin, .cFutex: return try FloorSetup.connect(plan, endpoint, watchdog: watchdog)
        default: preconditionFailure("\(kind.rawValue) is not a built-in transport")
        }
    }
}
