/// Counts the messages that went into and out of a mailbox between two samples, from the
/// positions its rings already keep (nothing is written to the segment):
///
/// - shared rings (and each generation of an unbounded mailbox): `tail` counts the slots
///   claimed, `head` the slots taken or given back, so their differences are the messages in
///   and out;
/// - one-to-one rings keep byte positions: the records between two samples of the published
///   tail (or of `head`) are walked and counted by their stamps; where a range cannot be walked
///   (overwritten already) the other side's count plus the change in depth stands in.
///
/// ```swift
/// let meter = TrafficMeter(mailbox)
/// _ = meter.sample()                 // a baseline
/// sleep(1)
/// let counts = meter.sample()        // counts.sent, counts.received since the baseline
/// ```
public final class TrafficMeter {
    /// Messages counted between two samples.
    public struct Counts: Sendable, Equatable {
        /// Messages that went in (sent); nil on the first sample or when they cannot be counted.
        public var sent: Int?
        /// Messages that came out (received, or given back); nil as for `sent`.
        public var received: Int?
        /// Messages waiting at this sample.
        public var depth: Int
    }

    /// The mailbox sampled.
    public let mailbox: Mailbox
    /// Per generation (0 for a non-chained ring): head and tail at the previous sample.
    private var previous: [UInt64: (head: UInt64, tail: UInt64)]?
    private var previousDepth = 0

    /// A meter for `mailbox`; keep the handle open while sampling.
    public init(_ mailbox: Mailbox) {
        self.mailbox = mailbox
    }

    /// Samples the positions; returns the messages counted since the previous sample.
    public func sample() -> Counts {
        let depth = mailbox.depth
        defer { previousDepth = depth }
        switch mailbox.ring {
        case .shared(let ring):
            return shared([(0, ring.positions)], depth: depth)
        case .chained(let chain):
            return shared(chain.inspectedGenerations().map { ($0.generation, $0.ring.positions) }, depth: depth)
        case .oneToOne(let ring):
            let now = ring.positions
            defer { previous = [0: now] }
            guard let before = previous?[0] else { return Counts(sent: nil, received: nil, depth: depth) }
            let change = depth - previousDepth
            var sent = ring.messages(from: before.tail, to: now.tail)
            var received = ring.messages(from: before.head, to: now.head)
            if sent == nil, let received { sent = max(0, received + change) }
            if received == nil, let sent { received = max(0, sent - change) }
            return Counts(sent: sent, received: received, depth: depth)
        }
    }

    /// Counts from shared-ring positions, per generation.
    private func shared(_ generations: [(generation: UInt64, positions: (head: UInt64, tail: UInt64))], depth: Int) -> Counts {
        let now = Dictionary(generations.map { ($0.generation, $0.positions) }, uniquingKeysWith: { first, _ in first })
        defer { previous = now }
        guard let before = previous else { return Counts(sent: nil, received: nil, depth: depth) }
        var sent = 0
        var received = 0
        for (generation, positions) in now {
            let start = before[generation] ?? (0, 0)
            sent += Self.advance(from: start.tail, to: positions.tail)
            received += Self.advance(from: start.head, to: positions.head)
        }
        // A generation given back since the previous sample was drained: what was left in it went out.
        for (generation, positions) in before where now[generation] == nil {
            received += Self.advance(from: positions.head, to: positions.tail)
        }
        return Counts(sent: sent, received: received, depth: depth)
    }

    /// `to − from` for positions that only grow; 0 if a position seems to have gone back.
    private static func advance(from: UInt64, to: UInt64) -> Int {
        let difference = Int64(bitPattern: to &- from)
        return difference > 0 ? Int(difference) : 0
    }
}
