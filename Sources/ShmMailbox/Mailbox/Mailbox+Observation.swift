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

    /// Messages sent into and taken out of the mailbox since it was created, derived from what
    /// its rings keep in the segment (nothing on the send or receive path counts them):
    ///
    /// - a bounded or zero-capacity shared mailbox: its ring's `tail` and `head` positions, which
    ///   count slots (a slot a sender gave back unfilled counts on both sides);
    /// - an unbounded one: the same per generation, plus the messages before each generation as
    ///   recorded when it was created; nil if a generation in use holds no such record (built by
    ///   an earlier version of this library);
    /// - a one-to-one mailbox, whose positions count bytes: its records counted from the start of
    ///   the data area, possible only until the sender begins a second lap over it (at least
    ///   `capacity + 1` messages of the largest size); nil after that.
    ///
    /// A snapshot: `received` is read first and `sent` is never reported below it.
    public var messageTotals: (sent: UInt64, received: UInt64)? {
        let totals: (sent: UInt64, received: UInt64)?
        switch ring {
        case .shared(let ring):
            let positions = ring.positions
            totals = (positions.tail, positions.head)
        case .chained(let chain):
            totals = chain.messageTotals
        case .oneToOne(let ring):
            totals = ring.messageTotals
        }
        // A tail hint may trail a claim that was already taken: never report fewer sent than received.
        return totals.map { (max($0.sent, $0.received), $0.received) }
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
