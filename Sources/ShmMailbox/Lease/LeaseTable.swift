import Synchronization

/// The lease table of a segment (see `SegmentLayout.leaseTableOffset`): one entry per process that
/// sends or receives through the segment, claimed at its first send or receive.
///
/// An entry is a lease word (the holder's packed identity) plus a tag that each new holder bumps.
/// Where a shared word has no room for a whole identity — a shared ring's slot word keeps 22 bits
/// for "who claimed or took me" — it stores a *lease reference* instead: the entry index and the
/// tag. A reference stays attributable after its process died: while the entry keeps the tag,
/// the holder named there is the process that wrote the reference; once the entry was leased
/// again (new tag), the process that wrote it has gone. So a reused pid never keeps a dead
/// process's claim alive.
///
/// Entries also record which roles a process had (for `Mailbox.participants`) and, for a
/// shared ring's receivers, the slot being taken (the *intent*), so that a message whose receiver
/// died while reading it can be found and redelivered. A process keeps its entry until it dies;
/// a dead process's entry is reclaimed when no entry is free.
struct LeaseTable {
    /// A lease held by this process: its entry and the tag it set.
    struct Lease: Equatable {
        let index: Int
        let tag: UInt32
        /// The lease reference stored in slot words: index in bits 14–20, tag in bits 0–13. The
        /// tag is masked: it was read from shared memory, and a damaged tag word must not spill
        /// into the index (the shared ring finds a sender's entry by it).
        var reference: UInt32 { UInt32(index) << LeaseTable.tagBits | tag & LeaseTable.tagMask }
    }

    static let tagBits: UInt32 = 14
    static let tagMask: UInt32 = (1 << tagBits) - 1
    static let roleSent: UInt32 = 1
    static let roleReceived: UInt32 = 2

    let base: UnsafeMutableRawPointer
    let count: Int

    init(header: UnsafeMutableRawPointer) {
        base = header + SegmentLayout.leaseTableOffset
        count = SegmentLayout.leaseCount
    }

    private func entry(_ index: Int) -> UnsafeMutableRawPointer {
        base + index * SegmentLayout.leaseEntrySize
    }

    private func holderWord(_ index: Int) -> LeaseWord {
        LeaseWord(entry(index).atomicUInt64(at: SegmentLayout.leaseHolder))
    }

    private func tagWord(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        entry(index).atomicUInt32(at: SegmentLayout.leaseTag)
    }

    /// The intent word of entry `index` (see `SegmentLayout.leaseIntent`).
    func intent(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        entry(index).atomicUInt64(at: SegmentLayout.leaseIntent)
    }

    /// The sender-intent word of entry `index` (see `SegmentLayout.leaseSenderIntent`).
    func senderIntent(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        entry(index).atomicUInt64(at: SegmentLayout.leaseSenderIntent)
    }

    /// Whether a live process may hold `position` of a shared ring through a cursor it moved but
    /// a slot it has not written yet: some entry's intent (`senders`: the sender intent, else the
    /// receiver intent) names the position and its holder is alive. A dead holder's intent, a
    /// reset one (the entry was leased again, so its holder died) and a free entry count as no
    /// claim. Scans every entry: for repairs, after a slot stayed the same for a while.
    func mayHoldLive(_ position: UInt64, senders: Bool, liveness: some Liveness) -> Bool {
        (0..<count).contains { index in
            let word = senders ? senderIntent(index) : intent(index)
            // Acquire: pairs with the release of the cursor CAS that followed the intent store,
            // which the caller saw (the cursor is past `position`).
            guard word.pointee.load(ordering: .acquiring) == position &+ 1 else { return false }
            let holder = holderWord(index).holder
            return holder != 0 && holder != LeaseWord.retired && liveness.isAlive(holder)
        }
    }

    /// Threads of one process take leases one at a time, so a thread never uses an entry this
    /// process has claimed before the claiming thread has set its tag. (The value counts the
    /// acquisitions; the lock is what matters. Not `Void`: ThreadSanitizer misreads the accesses
    /// to a zero-size value as unlocked.)
    private static let acquiring = Locked<Int>(0)

    /// The lease of process `me`: the entry it holds already, else a free entry, else the entry
    /// of a dead process for which `canReclaim` agrees (the caller first repairs what that
    /// process left behind). `reclaimed` says the entry had a dead holder, whose leftovers
    /// (sleeper bits) the caller clears.
    ///
    /// - Throws: `tooManyParticipants` when every entry belongs to a live process.
    func acquire(for me: UInt64, liveness: some Liveness,
                 canReclaim: (Int) -> Bool) throws(MailboxError) -> (lease: Lease, reclaimed: Bool) {
        try Self.acquiring.withLock { acquisitions throws(MailboxError) in
            acquisitions &+= 1
            for index in 0..<count where holderWord(index).holder == me {
                // Relaxed: this process set the tag before it released the lock.
                return (Lease(index: index, tag: tagWord(index).pointee.load(ordering: .relaxed)), false)
            }
            for pass in 0..<2 {
                for index in 0..<count {
                    let word = holderWord(index)
                    let holder = word.holder
                    let claimable = pass == 0 ? holder == 0
                        : holder != 0 && holder != LeaseWord.retired && !liveness.isAlive(holder) && canReclaim(index)
                    guard claimable, word.replace(holder, with: me) else { continue }
                    crashPoint(.leaseAfterAcquire)
                    return (Lease(index: index, tag: stamp(index)), pass == 1)
                }
            }
            throw .tooManyParticipants(limit: count)
        }
    }

    /// A new holder's set-up: a fresh tag (so references of earlier holders read as gone), no
    /// intent, no roles, and when it was first seen.
    private func stamp(_ index: Int) -> UInt32 {
        // Relaxed: only the holder writes its entry's fields, and it holds the entry now.
        let previous = tagWord(index).pointee.load(ordering: .relaxed) & Self.tagMask
        let tag = previous == Self.tagMask ? 1 : previous + 1
        // Relaxed: published by the release store of the tag below.
        intent(index).pointee.store(0, ordering: .relaxed)
        senderIntent(index).pointee.store(0, ordering: .relaxed)
        entry(index).atomicUInt32(at: SegmentLayout.leaseRoles).pointee.store(0, ordering: .relaxed)
        entry(index).storeBytes(of: WallClock.nanos(), toByteOffset: SegmentLayout.leaseFirstSeen, as: UInt64.self)
        // Release: whoever reads this tag also sees the entry reset above.
        tagWord(index).pointee.store(tag, ordering: .releasing)
        return tag
    }

    /// Records that the holder of `lease` acted in `role` (informational).
    func record(_ role: UInt32, for lease: Lease) {
        // Relaxed: an informational bit; nothing is ordered by it.
        entry(lease.index).atomicUInt32(at: SegmentLayout.leaseRoles).pointee.bitwiseOr(role, ordering: .relaxed)
    }

    /// The packed identity of the process that stored `reference`, if it still holds that entry
    /// (nil if the entry was leased again since, or the reference is out of range).
    func holder(of reference: UInt32) -> UInt64? {
        let index = Int(reference >> Self.tagBits)
        guard index < count else { return nil }
        // Holder first, then tag: a re-lease in between makes the tag differ (read as gone),
        // which is right, since the entry is only re-leased once its holder has died.
        let holder = holderWord(index).holder
        // Acquire: pairs with the new holder's release store of the tag.
        guard tagWord(index).pointee.load(ordering: .acquiring) & Self.tagMask == reference & Self.tagMask else { return nil }
        return holder
    }

    /// Whether the process that stored `reference` still runs.
    func isAlive(_ reference: UInt32, liveness: some Liveness) -> Bool {
        guard let holder = holder(of: reference), holder != 0 else { return false }
        return liveness.isAlive(holder)
    }

    /// The holder of entry `index` (0 = free).
    func holder(at index: Int) -> UInt64 {
        holderWord(index).holder
    }

    /// The recorded participants, live or not.
    func participants() -> [Mailbox.Participant] {
        (0..<count).compactMap { index in
            let holder = holderWord(index).holder
            guard holder != 0, holder != LeaseWord.retired else { return nil }
            // Relaxed: informational fields.
            let roles = entry(index).atomicUInt32(at: SegmentLayout.leaseRoles).pointee.load(ordering: .relaxed)
            return Mailbox.Participant(process: ProcessIdentity(packed: holder),
                               hasSent: roles & Self.roleSent != 0,
                               hasReceived: roles & Self.roleReceived != 0,
                               firstSeenUnixNanos: entry(index).load(fromByteOffset: SegmentLayout.leaseFirstSeen, as: UInt64.self))
        }
    }
}
