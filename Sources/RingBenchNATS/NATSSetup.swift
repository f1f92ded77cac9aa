import RingBenchKit
import ShmMailboxNATS

/// The parent's side of a NATS run: a nats-server of its own, the streams (one for a stream or a
/// fan-in, two for ping-pong: `down` to the peer, `up` back), and the server's CPU time from the
/// GO to the end of the timed part. `nats-bridge` uses it for its server and remote mailboxes
/// (made as `nats` makes them) inside its own setup, `BridgeSetup`.
///
/// Stream settings, the same for both flavours (RemoteMailbox's defaults but the capacity):
/// work-queue retention, discard new, file storage, one replica, the largest message the run's
/// size (`nats-raw`: at least a 64 KiB pack) plus 1 KiB of headers, a 120 s duplicate window;
/// durable pull consumer `receivers`, explicit acks, 30 s ack wait, no delivery limit. The
/// streams are unbounded: a bounded stream refuses publishes when full, and a refused message
/// published again arrives after later ones, which ringbench's in-order check would call a
/// reordering.
final class NATSSetup: TransportSetup {
    /// Which streams a link publishes to and fetches from.
    struct Ends {
        var sendTo: String?
        var receiveFrom: String?
    }

    private let plan: LinkPlan
    private let flavor: NATSFlavor
    private let server: NATSServer
    private var cpuAtGo: Double?

    init(_ plan: LinkPlan, flavor: NATSFlavor) throws {
        self.plan = plan
        self.flavor = flavor
        server = try NATSServer()
        do {
            let names = Self.streamNames(plan.shape)
            switch flavor {
            case .raw:
                try RawStreams.create(names, url: server.url, maxMessageSize: plan.size)
            case .mailbox, .bridge:
                let connection = try NATSConnection(server.url)
                defer { connection.close() }
                for name in names {
                    try RemoteMailbox.create(name, on: connection, options: Self.mailboxOptions(size: plan.size)).close()
                }
            }
        } catch {
            server.stop()
            throw error
        }
    }

    /// The streams (remote mailboxes) of a run of `shape`: `down` and `up` for ping-pong, else
    /// `stream`.
    static func streamNames(_ shape: LinkShape) -> [String] {
        shape == .pingPong ? ["down", "up"] : ["stream"]
    }

    /// The run's server.
    var url: String { server.url }

    /// The mailboxes `nats` creates.
    static func mailboxOptions(size: Int) -> RemoteMailboxOptions {
        RemoteMailboxOptions(capacity: .unbounded, maxMessageSize: size, storage: .file)
    }

    var note: String {
        let api = flavor == .raw ? "plain libnats" : "RemoteMailbox"
        var text = "JetStream on a local nats-server (file storage, unbounded work queue), \(api); "
        switch plan.shape {
        case .pingPong: text += "a stream each way, each message's publish acknowledged before the next step"
        case .oneWay, .fanIn:
            text += "publish window \(plan.batch) acks, fetch batch \(plan.batch), explicit acks"
            // Its windows and fetches count packs, not messages.
            if flavor == .raw { text += "; batches sent as packs (Shmmb-Pack)" }
        }
        if case .fanIn = plan.shape { text += "; all senders publish to one stream" }
        return text
    }

    func endpoint(forPeer index: Int) throws -> PeerEndpoint {
        var endpoint = PeerEndpoint()
        endpoint["url"] = server.url
        if plan.shape == .pingPong {
            endpoint["receive"] = "down"
            endpoint["send"] = "up"
        } else {
            endpoint["send"] = "stream"
        }
        return endpoint
    }

    func peerSpawned(_ index: Int) {}

    func parentLink(watchdog: Watchdog) throws -> any Link {
        let ends = plan.shape == .pingPong ? Ends(sendTo: "down", receiveFrom: "up") : Ends(sendTo: nil, receiveFrom: "stream")
        return try Self.link(flavor, url: server.url, ends: ends, plan: plan, watchdog: watchdog)
    }

    func peersReady() {
        cpuAtGo = server.cpuSeconds
    }

    func serverCPUSeconds() -> Double? {
        cpuAtGo.map { server.cpuSeconds - $0 }
    }

    func tearDown() {
        server.stop()
    }

    /// A link of `flavor` to the server at `url`.
    static func link(_ flavor: NATSFlavor, url: String, ends: Ends, plan: LinkPlan, watchdog: Watchdog) throws -> any Link {
        switch flavor {
        case .raw: return try NATSRawLink(url: url, ends: ends, plan: plan, watchdog: watchdog)
        case .mailbox: return try NATSMailboxLink(url: url, ends: ends, plan: plan, watchdog: watchdog)
        case .bridge: preconditionFailure("nats-bridge's links are local mailboxes (BridgeSetup)")
        }
    }
}
