#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RingBenchKit
import ShmMailbox

/// The parent's side of a `nats-bridge` run: local mailboxes relayed through NATS JetStream by
/// shmbox-bridge processes (see `BridgeLayout` for which ones).
///
/// `NATSSetup` (flavour `.bridge`) starts the run's nats-server, creates the remote mailboxes
/// (unbounded, as for `nats`) and counts the server's CPU. On top of it this creates the local
/// mailboxes (shared ring, up to 1024 messages of the run's size), starts one shmbox-bridge per
/// relay (an export and an import per direction: two processes for a stream or a fan-in, four
/// for ping-pong) with a temporary `--state-dir`, and waits until a probe message has passed
/// every direction. The peers' and the parent's links are plain local `Mailbox` ends, `shm`'s
/// links. `tearDown` stops the bridges, removes the local mailboxes and the temporary
/// directory, then stops the server; a failed setup does the same before it throws.
final class BridgeSetup: TransportSetup {
    private let plan: LinkPlan
    private let layout: BridgeLayout
    private let capacity: Int
    private let nats: NATSSetup
    private var stateDirectory: String?
    /// The parent's open mailboxes, by name (after the probes, only those its link uses).
    private var boxes: [String: Mailbox] = [:]
    /// Local mailbox names not removed yet.
    private var names: [String] = []
    private var bridges: [BridgeProcess] = []
    private var bridgeCPUAtGo: Double?
    private var tornDown = false

    /// Mailbox bytes per local ring aimed at: 1024 messages up to about 16 KiB each, fewer above.
    static let ringBytes = 16 << 20

    /// Messages per local mailbox for `size`-byte messages: 1024, or as many as fit in
    /// `ringBytes` (at least 2).
    static func capacity(size: Int) -> Int {
        let slot = (32 + size + 63) & ~63
        return max(2, min(1024, ringBytes / slot))
    }

    init(_ plan: LinkPlan) throws {
        self.plan = plan
        layout = BridgeLayout(shape: plan.shape)
        capacity = Self.capacity(size: plan.size)
        let executable = try BridgeProcess.locate()
        nats = try NATSSetup(plan, flavor: .bridge)
        do {
            try createMailboxes()
            try startBridges(executable)
            for direction in layout.directions {
                try BridgeProbe.run(entry: boxes[direction.entry]!, exit: boxes[direction.exit]!, size: plan.size, bridges: bridges)
            }
            // Keep only the ends the parent's link uses.
            let kept = [layout.parentInbox] + (layout.parentOutbox.map { [$0] } ?? [])
            boxes = boxes.filter { kept.contains($0.key) }
        } catch {
            tearDown()
            throw error
        }
    }

    deinit { tearDown() }

    private func createMailboxes() throws {
        let options = MailboxOptions(capacity: .bounded(capacity), maxMessageSize: plan.size, kind: .shared,
                                     waitStrategy: plan.strategy.waitStrategy)
        for name in layout.localNames {
            do {
                boxes[name] = try Mailbox.create(name, options: options)
                names.append(name)
            } catch {
                throw BenchError.mailbox(operation: "Mailbox.create(\(name))", description: error.description)
            }
        }
    }

    private func startBridges(_ executable: String) throws {
        // Named like the local mailboxes, so whatever a run leaves behind is recognisable by its pid.
        var template = Array("/dev/shm/ringbench-bridge-\(getpid())-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw BenchError.system(operation: "mkdtemp(/dev/shm)", errno: errno) }
        let directory = String(cString: made)
        stateDirectory = directory
        let common = ["--nats", nats.url, "--state-dir", directory]
        // An import fetches (and acknowledges) up to --batch messages at a time, within the bridge's limit.
        let importBatch = String(min(max(1, plan.batch), 1024))
        for direction in layout.directions {
            let relays = [
                ("export \(direction.entry)->\(direction.remote)", ["--export", "\(direction.entry):\(direction.remote)"]),
                ("import \(direction.remote)->\(direction.exit)", ["--import", "\(direction.remote):\(direction.exit)", "--batch", importBatch]),
            ]
            for (label, arguments) in relays {
                bridges.append(try BridgeProcess(executable: executable, arguments: common + arguments, label: label,
                                                 log: "\(directory)/bridge-\(bridges.count).log"))
            }
        }
    }

    var note: String {
        var text = "local shared mailboxes (capacity \(capacity)) relayed by shmbox-bridge: export (each message's publish "
            + "acknowledged before the next) -> JetStream on a local nats-server (file storage, unbounded work queue) -> "
            + "import (fetch batch \(min(max(1, plan.batch), 1024)), explicit acks) -> local mailbox; "
            + (plan.shape == .pingPong ? "a chain each way, " : "") + "\(bridges.count) bridge processes"
        if let bridgeCPUAtGo {
            // Read when the report asks for the note, right after the timed part.
            text += ", their CPU \(String(format: "%.3g", bridgeCPUSeconds - bridgeCPUAtGo)) s (warm-up included)"
        }
        return text
    }

    private var bridgeCPUSeconds: Double {
        bridges.reduce(0) { $0 + $1.cpuSeconds }
    }

    func endpoint(forPeer index: Int) throws -> PeerEndpoint {
        layout.peerEndpoint
    }

    func peerSpawned(_ index: Int) {}

    /// The parent's link on its local mailboxes; its watchdog also fails the run when a bridge
    /// ends.
    func parentLink(watchdog: Watchdog) throws -> any Link {
        let bridges = self.bridges
        let guarded = Watchdog {
            try watchdog.checkPeer()
            for bridge in bridges { try bridge.checkRunning() }
        }
        return LocalMailboxLinks.link(inbox: boxes[layout.parentInbox], outbox: layout.parentOutbox.flatMap { boxes[$0] },
                                      size: plan.size, watchdog: guarded)
    }

    /// Everyone has the local mailboxes open (the bridges since their probes): the names can go.
    func peersReady() {
        nats.peersReady()
        bridgeCPUAtGo = bridgeCPUSeconds
        for name in names { try? Mailbox.unlink(name) }
        names = []
    }

    func serverCPUSeconds() -> Double? {
        nats.serverCPUSeconds()
    }

    func tearDown() {
        guard !tornDown else { return }
        tornDown = true
        // The bridges first: an export finishing the message in hand still needs the server.
        BridgeProcess.stop(bridges)
        boxes = [:]
        for name in names { try? Mailbox.delete(name) }
        names = []
        if let stateDirectory { try? FileManager.default.removeItem(atPath: stateDirectory) }
        nats.tearDown()
    }

    /// A peer's link: `shm`'s, on the local mailboxes `layout.peerEndpoint` names.
    static func connect(_ plan: LinkPlan, endpoint: PeerEndpoint, watchdog: Watchdog) throws -> any Link {
        try LocalMailboxLinks.connect(plan, endpoint: endpoint, watchdog: watchdog)
    }
}
