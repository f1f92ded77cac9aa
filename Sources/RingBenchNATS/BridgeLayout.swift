#if canImport(Glibc)
import Glibc
#endif
import RingBenchKit

/// Which mailboxes a `nats-bridge` run has and who uses which.
///
/// Each direction is a chain: local mailbox `entry` → shmbox-bridge `--export entry:remote` →
/// remote mailbox `remote` (JetStream) → shmbox-bridge `--import remote:exit` → local mailbox
/// `exit`. A one-way stream or a fan-in has one direction (`stream`: the peers send into its
/// entry, the parent receives from its exit); ping-pong two (`down`: the parent sends into its
/// entry, the peer receives from its exit; `up`: the peer echoes into its entry, the parent
/// receives from its exit). The remote names are those `NATSSetup` creates.
struct BridgeLayout {
    /// One direction's chain.
    struct Direction {
        /// The local mailbox the export bridge drains.
        var entry: String
        /// The remote mailbox between the two bridges.
        var remote: String
        /// The local mailbox the import bridge feeds.
        var exit: String
    }

    let directions: [Direction]

    /// The layout for `shape`, the local names unique to this process and call.
    init(shape: LinkShape) {
        let base = "ringbench-bridge-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        directions = NATSSetup.streamNames(shape).map { Direction(entry: "\(base)-\($0)-in", remote: $0, exit: "\(base)-\($0)-out") }
    }

    /// Every local mailbox, entries and exits.
    var localNames: [String] { directions.flatMap { [$0.entry, $0.exit] } }

    /// Where the peers send (one-way, fan-in) or receive from (ping-pong), and where a ping-pong
    /// peer echoes into: the keys `LocalMailboxLinks.connect` reads.
    var peerEndpoint: PeerEndpoint {
        var endpoint = PeerEndpoint()
        if directions.count == 2 {
            endpoint["name"] = directions[0].exit
            endpoint["reply"] = directions[1].entry
        } else {
            endpoint["name"] = directions[0].entry
        }
        return endpoint
    }

    /// The local mailbox the parent receives from: the exit of the last direction.
    var parentInbox: String { directions[directions.count - 1].exit }

    /// The local mailbox the parent sends into (ping-pong only): the entry of `down`.
    var parentOutbox: String? { directions.count == 2 ? directions[0].entry : nil }
}
