import RingBenchKit

/// ringbench's NATS transports, registered into RingBenchKit by `ringbench-nats`:
///
/// - `nats-raw`: plain libnats, the least the work costs through the official client: a
///   JetStream stream (work-queue retention), a durable pull consumer with explicit acks,
///   publishes with a message id (synchronous one by one; in a stream, each batch in packs of
///   up to 4096 messages or 64 KiB, the `Shmmb-Pack` format, published asynchronously with a
///   window of `--batch` outstanding acknowledgements, as `nats bench` does), fetches of up to
///   `--batch` with acks.
/// - `nats`: the same work through ShmMailboxNATS's `RemoteMailbox` (create/open, `send`,
///   `batch(window:)`, `receive`, `receiveBatch`), on the same stream settings.
/// - `nats-bridge`: unchanged local programs across NATS: the processes send into and receive
///   from local mailboxes, and shmbox-bridge processes relay them (local mailbox -> export ->
///   remote mailbox -> import -> local mailbox; see `BridgeSetup`).
///
/// Each run starts a nats-server of its own (`NATSServer`) and counts its CPU time in the row's
/// note (`nats-bridge` adds its bridges' CPU time). The streams are unbounded (see `NATSSetup`).
public enum NATSTransports {
    /// The transports this module adds.
    static let all: [NATSTransport] = [NATSTransport(flavor: .raw), NATSTransport(flavor: .mailbox), NATSTransport(flavor: .bridge)]

    /// Registers `nats-raw`, `nats` and `nats-bridge` with RingBenchKit. Call before parsing the
    /// command line (also in the peer processes: they are this executable again).
    public static func register() {
        for transport in all { RingBench.register(transport) }
    }

    /// One sentence for the root command's help.
    public static let summary = """
        NATS JetStream over 127.0.0.1, each run against a nats-server of its own (file storage in a \
        temporary directory; its CPU time is in the note): nats-raw (plain libnats: batches published as \
        packs of messages with --batch acknowledgements outstanding, pull-consumer fetches of --batch with \
        explicit acks), \
        nats (the same through ShmMailboxNATS's RemoteMailbox) and nats-bridge (local mailboxes relayed \
        through NATS by shmbox-bridge processes, which must be built next to this executable; their CPU \
        time is in the note too).
        """
}

/// Which NATS transport.
enum NATSFlavor: String, Sendable {
    case raw = "nats-raw"
    case mailbox = "nats"
    /// Local mailboxes relayed by shmbox-bridge (`BridgeSetup`).
    case bridge = "nats-bridge"
}

/// A NATS transport as RingBenchKit sees it.
struct NATSTransport: BenchTransport {
    let flavor: NATSFlavor

    var name: String { flavor.rawValue }

    /// Every shape: ping-pong uses two streams (one each way), a fan-in one stream all senders
    /// publish to (`nats-bridge`: one local mailbox all senders send into, relayed by one export).
    func limitation(for shape: LinkShape) -> String? { nil }

    /// Streams publish with a window of `--batch` acknowledgements and fetch `--batch` at a time;
    /// `nats-bridge`'s imports fetch `--batch` at a time in ping-pong too.
    func usesBatch(for shape: LinkShape) -> Bool {
        flavor == .bridge || shape != .pingPong
    }

    func setUp(_ plan: LinkPlan) throws -> any TransportSetup {
        if flavor == .bridge { return try BridgeSetup(plan) }
        return try NATSSetup(plan, flavor: flavor)
    }

    func connect(_ plan: LinkPlan, endpoint: PeerEndpoint, senderIndex: Int, watchdog: Watchdog) throws -> any Link {
        if flavor == .bridge { return try BridgeSetup.connect(plan, endpoint: endpoint, watchdog: watchdog) }
        let ends = NATSSetup.Ends(sendTo: endpoint["send"], receiveFrom: endpoint["receive"])
        return try NATSSetup.link(flavor, url: try endpoint.string("url"), ends: ends, plan: plan, watchdog: watchdog)
    }
}
