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

    /// Messages sent into and taken out of a bounded or zero-capacity shared mailbox since it was
    /// created: its ring's `tail` and `head` positions, which count slots (a slot a sender gave
    /// back unfilled counts on both sides). Nil for one-to-one mailboxes, whose positions count
    /// bytes, and for unbounded ones, whose further segments start at 0.
    public var messageTotals: (sent: UInt64, received: UInt64)? {
        guard case .shared(let ring) = ring else { return nil }
        let positions = ring.positions
        return (positions.tail, positions.head)
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
