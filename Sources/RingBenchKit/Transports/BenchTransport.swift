/// What a transport does for ringbench: set up the parent's side of a run, connect a peer's side,
/// and say which shapes of run it cannot carry.
///
/// The built-in transports conform through `BuiltInTransport`; others are registered from outside
/// RingBenchKit with `RingBench.register(_:)` (the NATS transports of `ringbench-nats`, which
/// need libnats, so `ringbench` itself does not link them). A registered transport must be
/// registered in the peer processes too: peers are the same executable started again, so
/// registering before the command line is parsed covers both.
public protocol BenchTransport: Sendable {
    /// The `--transport` name (also the report's row name).
    var name: String { get }
    /// Whether the transport can carry `shape`: nil if it can, else why not (one line).
    func limitation(for shape: LinkShape) -> String?
    /// Sets up the parent's side of one run (one cell, once per round).
    func setUp(_ plan: LinkPlan) throws -> any TransportSetup
    /// Connects in peer `senderIndex`, from what the parent's setup handed over in `endpoint`.
    /// Blocking calls of the link call `watchdog.checkPeer()` about once a second.
    func connect(_ plan: LinkPlan, endpoint: PeerEndpoint, senderIndex: Int, watchdog: Watchdog) throws -> any Link
    /// Whether `--batch` changes what the transport does in runs of `shape` (it publishes or
    /// acknowledges messages together); `--batch` given for none of the runs is refused.
    func usesBatch(for shape: LinkShape) -> Bool
}

extension BenchTransport {
    /// By default a transport batches streams (throughput, fan-in), not ping-pong.
    public func usesBatch(for shape: LinkShape) -> Bool { shape != .pingPong }
}
