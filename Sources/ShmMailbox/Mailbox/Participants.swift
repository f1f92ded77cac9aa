import Synchronization

/// A process that has sent to or received from a mailbox, as recorded in its segment.
public struct Participant: Sendable, Equatable {
    /// The process.
    public var process: ProcessIdentity
    /// Whether it has sent at least one message.
    public var hasSent: Bool
    /// Whether it has received at least one message.
    public var hasReceived: Bool
    /// When it was first seen, in nanoseconds since the Unix epoch.
    public var firstSeenUnixNanos: UInt64
    /// Whether it still runs (pid and start time match a live process).
    public var isAlive: Bool { process.isAlive }
}

/// The participants table in the segment header: a fixed array of entries claimed by
/// compare-and-swap on the pid word. Written once per process and role, never on the hot path.
struct ParticipantTable {
    static let sent: UInt32 = 1
    static let received: UInt32 = 2

    let header: UnsafeMutableRawPointer

    private func entry(_ index: Int) -> UnsafeMutableRawPointer {
        header + SegmentLayout.participantsOffset + index * SegmentLayout.participantSize
    }

    /// Records that `process` acts in `role`. When the table is full, the entry of a dead process
    /// is reused; if every entry is alive, the record is skipped (it is informational only).
    func record(_ process: ProcessIdentity, role: UInt32, nowUnixNanos: UInt64) {
        let pid = UInt32(bitPattern: process.pid)
        var free: Int?
        for index in 0..<SegmentLayout.participantCount {
            let at = entry(index)
            // Acquire: pairs with the release CAS below, making the entry's other fields visible.
            let holder = at.atomicUInt32(at: SegmentLayout.participantPid).pointee.load(ordering: .acquiring)
            if holder == pid && at.load(fromByteOffset: SegmentLayout.participantStartTime, as: UInt64.self) == process.startTime {
                // Relaxed: an informational bit set; nothing else is ordered by it.
                at.atomicUInt32(at: SegmentLayout.participantRoles).pointee.bitwiseOr(role, ordering: .relaxed)
                return
            }
            if holder == 0 && free == nil { free = index }
        }
        if let index = free, claim(index, expected: 0, process, role: role, now: nowUnixNanos) { return }
        for index in 0..<SegmentLayout.participantCount {
            let at = entry(index)
            let holder = at.atomicUInt32(at: SegmentLayout.participantPid).pointee.load(ordering: .acquiring)
            let start = at.load(fromByteOffset: SegmentLayout.participantStartTime, as: UInt64.self)
            if holder == 0 || !ProcessIdentity(pid: Int32(bitPattern: holder), startTime: start).isAlive,
               claim(index, expected: holder, process, role: role, now: nowUnixNanos) { return }
        }
    }

    private func claim(_ index: Int, expected: UInt32, _ process: ProcessIdentity, role: UInt32, now: UInt64) -> Bool {
        let at = entry(index)
        let pidWord = at.atomicUInt32(at: SegmentLayout.participantPid)
        // Claim with a sentinel first so readers never see a new pid with an old start time.
        // Acquire-release: the CAS decides ownership of the entry.
        guard pidWord.pointee.compareExchange(expected: expected, desired: UInt32.max, ordering: .acquiringAndReleasing).exchanged else { return false }
        at.storeBytes(of: process.startTime, toByteOffset: SegmentLayout.participantStartTime, as: UInt64.self)
        at.storeBytes(of: now, toByteOffset: SegmentLayout.participantFirstSeen, as: UInt64.self)
        // Relaxed: published by the release store of the pid below.
        at.atomicUInt32(at: SegmentLayout.participantRoles).pointee.store(role, ordering: .relaxed)
        // Release: the fields above are visible to anyone who reads this pid.
        pidWord.pointee.store(UInt32(bitPattern: process.pid), ordering: .releasing)
        return true
    }

    /// The recorded participants (entries being claimed right now are left out).
    func all() -> [Participant] {
        var result: [Participant] = []
        for index in 0..<SegmentLayout.participantCount {
            let at = entry(index)
            let holder = at.atomicUInt32(at: SegmentLayout.participantPid).pointee.load(ordering: .acquiring)
            guard holder != 0, holder != UInt32.max, holder <= UInt32(Int32.max) else { continue }
            let roles = at.atomicUInt32(at: SegmentLayout.participantRoles).pointee.load(ordering: .relaxed)
            result.append(Participant(
                process: ProcessIdentity(pid: Int32(bitPattern: holder),
                                         startTime: at.load(fromByteOffset: SegmentLayout.participantStartTime, as: UInt64.self)),
                hasSent: roles & Self.sent != 0,
                hasReceived: roles & Self.received != 0,
                firstSeenUnixNanos: at.load(fromByteOffset: SegmentLayout.participantFirstSeen, as: UInt64.self)))
        }
        return result
    }
}
