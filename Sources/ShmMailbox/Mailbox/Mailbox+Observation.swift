import Synchronization

/// Read-only views of a mailbox for tools (`shmbox inspect`, `peek`, `top`): nothing here writes
/// to the segment or takes a lease, so looking never disturbs senders or receivers.
extension Mailbox {
    /// Up to `limit` waiting messages, oldest first, copied without taking them (a snapshot).
    /// Messages being sent, taken or given back during the copy are left out, so this may
    /// return fewer than `depth`; every message returned is exactly as its sender published it.
    /// On an unbounded mailbox the generations are read oldest first.
    public func peek(limit: Int = .max) -> [Message] {
        switch ring {
        case .oneToOne(let ring): return ring.peek(limit: limit)
        case .shared(let ring): return ring.peek(limit: limit)
        case .chained(let chain):
            var found: [Message] = []
            for generation in chain.inspectedGenerations() where found.count < limit {
                found += generation.ring.peek(limit: limit - found.count)
            }
            return found
        }
    }

    /// The process that created the mailbox (as recorded in its header).
    public var creator: ProcessIdentity {
        ProcessIdentity(pid: Int32(bitPattern: segment.base.load(fromByteOffset: SegmentLayout.creatorPidOffset, as: UInt32.self)),
                        startTime: segment.base.load(fromByteOffset: SegmentLayout.creatorStartTimeOffset, as: UInt64.self))
    }

    /// When the mailbox was created, in nanoseconds since the Unix epoch (`CLOCK_REALTIME`).
    public var createdAtUnixNanos: UInt64 {
        segment.base.load(fromByteOffset: SegmentLayout.createdAtOffset, as: UInt64.self)
    }

    /// Messages sent into and taken out of the mailbox since it was created, derived from the
    /// positions its rings already keep (nothing is counted on the send or receive path), or nil
    /// where they no longer tell:
    ///
    /// - bounded and zero-capacity shared mailboxes: the ring's `tail` and `head`, which count
    ///   slots (a slot a sender gave back unfilled counts on both sides); always known;
    /// - unbounded mailboxes: the sum over their segments, each up to its seal; nil once a
    ///   further segment has been given back (after the mailbox overflowed its first segment
    ///   and the receivers drained it), since its counts went with it;
    /// - one-to-one mailboxes (and endpoint links): their positions count bytes, so the records
    ///   from the start of the ring are walked and counted by their stamps; nil once the sender
    ///   has gone around the ring once (the first records were overwritten).
    ///
    /// A snapshot for reporting; everything read is validated as elsewhere (a damaged segment
    /// gives nil or a wrong count, never a trap).
    public var messageTotals: (sent: UInt64, received: UInt64)? {
        switch ring {
        case .shared(let ring):
            let positions = ring.positions
            return (positions.tail, positions.head)
        case .chained(let chain):
            return chain.messageTotals
        case .oneToOne(let ring):
            let positions = ring.positions
            guard let sent = ring.messages(from: 0, to: positions.tail),
                  let received = ring.messages(from: 0, to: positions.head) else { return nil }
            // The published tail is a hint that may trail the receiver; what was received was sent.
            return (UInt64(max(sent, received)), UInt64(received))
        }
    }

    /// The user id that owns the mailbox's segment (its file in /dev/shm).
    public var ownerUID: UInt32 { segment.uid }

    /// Bytes of shared memory the mailbox occupies now: its own segment plus, for an unbounded
    /// mailbox, the further segments not yet given back (a snapshot).
    public var memoryUsed: Int {
        guard case .chained(let chain) = ring else { return segment.size }
        return chain.inspectedGenerations().reduce(0) { $0 + $1.segment.size }
    }

    /// Processes asleep (or about to sleep) in this mailbox right now: receivers waiting for a
    /// message, senders waiting for space (the announced bits of the message and space events).
    public var sleepers: (receivers: Int, senders: Int) {
        (Self.announced(segment.base + SegmentLayout.messageEventOffset + EventLayout.sleepers),
         Self.announced(segment.base + SegmentLayout.spaceEventOffset + EventLayout.sleepers))
    }

    /// The number of bits set in an event line's sleeper bitmap at `bitmap`.
    private static func announced(_ bitmap: UnsafeMutableRawPointer) -> Int {
        (0..<EventLayout.bitmapWords).reduce(0) { total, index in
            // Relaxed: a snapshot for reporting.
            total + bitmap.atomicUInt64(at: index * 8).pointee.load(ordering: .relaxed).nonzeroBitCount
        }
    }
}
