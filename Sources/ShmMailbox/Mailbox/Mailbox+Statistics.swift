/// Reading a mailbox's counters for monitoring (`ShmMailboxMetrics` exports them).
extension Mailbox {
    /// The mailbox's counters now, read from its segment without writing to it or taking a
    /// lease: message totals (`messageTotals`), depth, segments, memory, sleepers, repairs and
    /// sends that waited for room. Costs a few loads, plus a walk of the records for a one-to-one
    /// mailbox in its first lap and a look at /dev/shm for an unbounded one; never call it on a
    /// hot path.
    public var statistics: MailboxStatistics {
        let totals = messageTotals
        let sleeping = sleepers
        return MailboxStatistics(name: name, kind: kind, messagesSent: totals?.sent, messagesReceived: totals?.received,
                                 depth: max(0, depth), segments: max(1, segmentCount), memoryUsed: max(0, memoryUsed),
                                 sleepingReceivers: sleeping.receivers, sleepingSenders: sleeping.senders,
                                 isDeleted: isDeleted, repairs: counter(SegmentLayout.repairsOffset),
                                 fullWaits: counter(SegmentLayout.fullWaitsOffset))
    }

    /// A statistics counter of the header (any value is harmless: it is only reported).
    private func counter(_ offset: Int) -> UInt64 {
        // Relaxed: a snapshot for reporting.
        segment.base.atomicUInt64(at: offset).pointee.load(ordering: .relaxed)
    }
}
