/// Byte offsets and constants of the shared-memory format, version 3.
///
/// `Layout/README.md` beside this file documents the format; this enum is its single source of
/// truth in code. Fields are read and written at these explicit offsets (never through Swift
/// struct layout), in native byte order (little-endian on every supported platform).
enum SegmentLayout {
    /// "SHMMBOX1" read as a little-endian UInt64. Published last, with a release store. The
    /// trailing "1" is part of the name, not the version (see `version`).
    static let magic: UInt64 = 0x3158_4F42_4D4D_4853
    static let version: UInt32 = 3
    /// Spacing between fields written by different processes: two cache lines, so that
    /// adjacent-line prefetching does not couple them either.
    static let lineSize = 128

    // Line 0 (0): identity and geometry, written once by the creator before `magic` is published
    // (`sealedAt` excepted, see below).
    static let magicOffset = 0              // u64
    static let versionOffset = 8            // u32
    static let ringKindOffset = 12          // u32: 1 one-to-one, 2 shared
    static let segmentSizeOffset = 16       // u64
    static let dataOffsetOffset = 24        // u64
    static let dataSizeOffset = 32          // u64
    static let capacityOffset = 40          // u64: messages
    static let maxMessageSizeOffset = 48    // u64: bytes
    static let slotStrideOffset = 56        // u64: shared ring only, else 0
    static let modeOffset = 64              // u32
    static let creatorPidOffset = 68        // u32
    static let creatorStartTimeOffset = 72  // u64: clock ticks after boot (/proc/PID/stat field 22)
    static let createdAtOffset = 80         // u64: Unix time in nanoseconds
    static let ownershipOffset = 88         // u32: 0 none, 1 system, 2 process
    static let receiverPolicyOffset = 92    // u32: 1 pair, 2 exclusive, 3 competing, 4 round robin
    static let bufferingOffset = 96         // u32: 0 bounded, 1 zero capacity (rendezvous),
                                            // 2 unbounded (first segment), 3 chained segment
    // 100..<104 reserved (zero).
    /// Unbounded and chained segments only: the position from which senders no longer use this
    /// segment's ring (set once, by CAS 0 → p), 0 = open. Written at most once, on the slow path,
    /// so it may share the creator's read-mostly line.
    static let sealedAtOffset = 104         // u64
    static let generationOffset = 112       // u64: chained segment's number in its chain (first = 0)
    /// A random number drawn at creation: names this incarnation of the mailbox (chained segments
    /// carry the first segment's), and keys the one-to-one ring's record stamps.
    static let nonceOffset = 120            // u64

    // Line 1 (128): written by senders.
    static let tailOffset = 128             // u64 position (one-to-one: bytes, a hint; shared: messages)

    // Line 2 (256): written by receivers.
    static let headOffset = 256             // u64 position (one-to-one: bytes; shared: messages)
    /// One-to-one: packed identity of the latest receiver to take the receiver role (never
    /// cleared); names the receiver in a synchronous send's receipt.
    static let lastReceiverOffset = 272     // u64

    // Lines 3, 4 and 8: events (see `EventLayout`).
    static let messageEventOffset = 384     // "a message arrived": senders notify, receivers sleep
    static let spaceEventOffset = 512       // "space was freed": receivers notify, senders sleep
    static let roleEventOffset = 1024       // "a role or turn was given up": standby receivers sleep

    // Line 5 (640): roles of a one-to-one (pair) or exclusive mailbox: lease words holding the
    // packed identity of the holder, 0 = none.
    static let senderRoleOffset = 640       // u64
    static let receiverRoleOffset = 648     // u64

    // Line 6 (768): ownership and lifecycle, written rarely.
    static let ownerOffset = 768            // u64 lease word: packed identity of the owner, 0 = none
    static let lifecycleOffset = 776        // u32 flags, set with atomic OR, never cleared
    static let ownerTerminatedFlag: UInt32 = 1  // the owner of a process-owned mailbox has gone
    static let deletedFlag: UInt32 = 2          // `Mailbox.delete` ended the mailbox
    // 780..<784 reserved.
    /// Lease word of the process removing the segment's name (see `SegmentRemoval`): only its
    /// holder unlinks, after checking that the name still refers to this segment.
    static let unlinkClaimOffset = 784      // u64

    // Line 7 (896): round robin: the index (into the receivers table) whose turn it is.
    static let turnOffset = 896             // u64

    // Line 9 (1152): more creation-time identity, written once before `magic`.
    /// The creator's pid namespace (inode of /proc/self/ns/pid; 0 unknown). Openers in another
    /// namespace are refused: pids, and so every liveness check, would mean other processes.
    static let pidNamespaceOffset = 1152    // u64
    /// Chained segments (`buffering = 3`) only: the messages sent into the generations before
    /// this one (the sum of their `sealedAt`), written by the segment's creator before `magic`;
    /// `0` = not recorded (a segment built by an earlier build, or by a sender that skipped a
    /// generation). Read only by `Mailbox.messageTotals`, never by sends or receives.
    static let messagesBeforeOffset = 1160  // u64

    // Lines 10–11 (1280): receive rights granted by a system owner: 32 lease words, 0 = free.
    static let rightsOffset = 1280
    static let rightsCount = 32
    // Line 12 (1536): round-robin receivers, 16 lease words in turn order, 0 = free.
    static let receiversOffset = 1536
    static let receiversCount = 16
    // Line 13 (1664): the chain of an unbounded mailbox (first segment only). Hints that only grow.
    static let writeGenerationOffset = 1664 // u64: newest chained segment senders moved to
    static let readGenerationOffset = 1672  // u64: oldest segment not yet fully received
    // Line 14 (1792): which lease entries belong to receivers (bit i = entry i), for the search
    // for messages whose receiver died while reading them. Set and cleared with atomic OR / AND.
    static let receiverLeasesOffset = 1792  // u64 × 2
    // Line 15 (1920): one-to-one receiver only, on a line of its own: written for every record
    // handed out, read by nobody else until a receiver takes over (so the sender's loads of
    // `head` never pull it away from the receiver).
    /// One-to-one: the end position of the record the receiver is handing to its caller (stored
    /// before the caller sees it, left behind after): a receiver that takes over redelivers the
    /// records below it as *redelivered*.
    static let readingUpToOffset = 1920     // u64
    // Line 16 (2048): counters for statistics, added by whoever does what they count with a
    // relaxed atomic add: never on a send's or receive's fast path (a repair, a send about to
    // wait for room). 0 in segments built before they were added.
    /// Slots repaired after their holder died (freed claims and receipts, requeued or adopted
    /// messages), by any process; an unbounded mailbox counts its generations' here too.
    static let repairsOffset = 2048         // u64
    /// Blocking, timed and async sends that found the mailbox full and waited for room.
    static let fullWaitsOffset = 2056       // u64
    // 1808..<1920, 1928..<2048 and 2064..<4096 reserved (zero).

    // 4096..<12288: the lease table (see `LeaseTable`): one 64-byte entry per process using
    // the segment.
    static let leaseTableOffset = 4096
    static let leaseCount = 128
    static let leaseEntrySize = 64
    static let leaseHolder = 0              // u64 lease word: packed identity, 0 = free
    static let leaseTag = 8                 // u32: bumped by each new holder (never 0 once used)
    static let leaseRoles = 12              // u32 bit set: 1 has sent, 2 has received
    static let leaseFirstSeen = 16          // u64 Unix nanoseconds
    /// Shared ring: position + 1 of the slot this holder is taking, stored before its take;
    /// 0 = none. Lets others find a message whose receiver died while reading it.
    static let leaseIntent = 24             // u64
    /// Shared ring: position + 1 of the slot this holder is claiming, stored before its claim
    /// (the CAS on `tail`); 0 = none. Lets others tell whether the claimer of a position whose
    /// slot was never written is dead (see `SharedRing`).
    static let leaseSenderIntent = 32       // u64
    // +40..<64 reserved.

    /// The header: everything before the data area.
    static let headerSize = leaseTableOffset + leaseCount * leaseEntrySize
    static let dataOffset = headerSize

    // One-to-one ring records (16-byte aligned, never straddling the end of the data area).
    static let recordHeaderSize = 16
    static let recordAlignment = 16
    static let recordStamp = 0              // u64: (position + 1) XOR stamp key, stored last (release)
    static let recordLength = 8             // u32 payload bytes, or `paddingLength`
    static let recordSender = 12            // u32 pid
    /// Length of a padding record, which fills the data area from its position to the end.
    static let paddingLength = UInt32.max

    // Shared ring slot kinds (the low byte of `kind`).
    static let kindMessage: UInt32 = 1
    static let kindDelivered: UInt32 = 4    // a receipt message its receiver has finished with
    static let kindReceipt: UInt32 = 5      // a message whose sender waits to learn who took it
    static let kindAbandoned: UInt32 = 6    // a receipt message whose sender stopped waiting
    static let kindMask: UInt32 = 0xFF
    /// Flag in `kind`: the message was taken before by a receiver that died while reading it.
    static let redeliveredFlag: UInt32 = 0x100

    // Shared ring slots: u64 state word, u32 length, u32 kind, u64 sender, u64 takenBy, payload
    // at +32; stride 64-aligned.
    static let slotState = 0
    static let slotLength = 8
    static let slotKind = 12                // u32, atomic
    static let slotSender = 16              // u64 packed identity of the sender
    static let slotTakenBy = 24             // u64 packed identity of the receiver (receipts)
    static let slotHeaderSize = 32
    static let slotAlignment = 64

    static let ringKindOneToOne: UInt32 = 1
    static let ringKindShared: UInt32 = 2

    /// Largest accepted `maxMessageSize` (1 GiB) and capacity (16 Mi messages).
    static let maxMessageSizeLimit = 1 << 30
    static let capacityLimit = 1 << 24

    static func align(_ value: Int, to alignment: Int) -> Int {
        (value + alignment - 1) & ~(alignment - 1)
    }
}

/// An event line (see `EventCount`): a futex word and bitmaps of the lease entries (bit i =
/// entry i) that sleep on it.
enum EventLayout {
    static let word = 0                     // u32 futex word, bumped by notifiers
    static let sleepers = 8                 // u64 × `bitmapWords`: asleep, or about to sleep
    /// Message event of a zero-capacity mailbox: receivers inside a blocking receive (spinning or
    /// asleep), so that a non-blocking send can hand its message to one.
    static let waiting = 24                 // u64 × `bitmapWords`
    static let bitmapWords = (SegmentLayout.leaseCount + 63) / 64
}
