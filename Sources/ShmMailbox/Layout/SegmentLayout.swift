/// Byte offsets and constants of the shared-memory format, version 1.
///
/// `Layout/README.md` beside this file documents the format; this enum is its single source of
/// truth in code. Fields are read and written at these explicit offsets (never through Swift
/// struct layout), in native byte order (little-endian on every supported platform).
enum SegmentLayout {
    /// "SHMMBOX1" read as a little-endian UInt64. Published last, with a release store.
    static let magic: UInt64 = 0x3158_4F42_4D4D_4853
    static let version: UInt32 = 1
    /// The header occupies one page; ring data starts right after it.
    static let headerSize = 4096
    /// Spacing between the hot fields written by different processes (tail, head): two cache
    /// lines, so that adjacent-line prefetching does not couple them either. The event and role
    /// lines are written by both sides, but only on slow paths (going to sleep, waking, claiming).
    static let lineSize = 128

    // Line 0: identity and geometry, written once by the creator before `magic` is published.
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
    // Unbounded and chained segments only (zero otherwise). Written at most once each, on the
    // slow path, so they may share the creator's read-mostly line.
    static let sealedAtOffset = 104         // u64: position from which senders no longer use this
                                            // segment's ring (set by CAS 0 → p), 0 = open
    static let generationOffset = 112       // u64: chained segment's number in its chain (first = 0)
    // 120..<128 reserved (zero).

    // Line 1 (128): written by senders.
    static let tailOffset = 128             // u64 position (one-to-one: bytes; shared: messages)
    static let producedCountOffset = 136    // u64 messages (one-to-one only)

    // Line 2 (256): written by receivers.
    static let headOffset = 256             // u64 position (one-to-one: bytes; shared: messages)
    static let consumedCountOffset = 264    // u64 messages (one-to-one only)
    static let lastReceiverOffset = 272     // u64 packed identity of the latest receiver to take
                                            // the one-to-one receiver role (never cleared)

    // Line 3 (384): "a message arrived" event (futex word bumped by senders, waiter count).
    static let messageEventOffset = 384     // u32 futex word, u32 waiters at +4

    // Line 4 (512): "space freed" event (futex word bumped by receivers, and by a sender that
    // frees a dead receiver's slot; waiter count).
    static let spaceEventOffset = 512       // u32 futex word, u32 waiters at +4

    // Line 5 (640): roles of a one-to-one mailbox (packed identity of the sender / receiver,
    // 0 = none; see `ProcessIdentity.packed`).
    static let senderRoleOffset = 640       // u64
    static let receiverRoleOffset = 648     // u64

    // Line 6 (768): ownership, written rarely (creation, transfer, owner's exit).
    static let ownerOffset = 768            // u64 packed identity of the owner, 0 = none
    static let ownerFlagsOffset = 776       // u32: bit 0 = the owner has terminated the mailbox
    static let ownerTerminatedFlag: UInt32 = 1
    // Line 7 (896): round robin: the index (into the receivers table) whose turn it is.
    static let turnOffset = 896             // u64
    // 904..<1024 reserved.

    // 1024..<3072: participants table, `participantCount` entries of `participantSize` bytes.
    static let participantsOffset = 1024
    static let participantCount = 64
    static let participantSize = 32
    static let participantPid = 0           // u32, 0 = free, 0xFFFFFFFF = being claimed (CAS)
    static let participantRoles = 4         // u32 bit set: 1 sent, 2 received
    static let participantStartTime = 8     // u64
    static let participantFirstSeen = 16    // u64 Unix nanoseconds
    // 3072..<3328: receive rights granted by a system owner: 32 packed identities, 0 = free.
    static let rightsOffset = 3072
    static let rightsCount = 32
    // 3328..<3456: round-robin receivers, 16 packed identities in turn order, 0 = free.
    static let receiversOffset = 3328
    static let receiversCount = 16
    // Line 27 (3456): the chain of an unbounded mailbox (first segment only), written once per
    // segment switch. Both are hints that only grow; the segments themselves decide.
    static let writeGenerationOffset = 3456 // u64: newest chained segment senders moved to
    static let readGenerationOffset = 3464  // u64: oldest segment not yet fully received
    // 3472..<4096 reserved.

    static let dataOffset = headerSize

    // One-to-one ring records (16-byte aligned, never straddling the end of the data area).
    static let recordHeaderSize = 16
    static let recordAlignment = 16
    static let recordStamp = 0              // u64: position + 1, stored last (release) = present
    static let recordLength = 8             // u32 payload bytes, or `paddingLength`
    static let recordSender = 12            // u32 pid
    /// Length of a padding record, which fills the data area from its position to the end.
    static let paddingLength = UInt32.max

    // Shared ring slot kinds.
    static let kindMessage: UInt32 = 1
    static let kindCancelled: UInt32 = 3    // a claim whose writer gave up
    static let kindDelivered: UInt32 = 4    // a receipt message the receiver has finished with
    static let kindReceipt: UInt32 = 5      // a message whose sender waits to learn who took it

    // Shared ring slots: u64 state word, u32 length, u32 kind, payload at +16; stride 64-aligned.
    static let slotState = 0
    static let slotLength = 8
    static let slotKind = 12
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
