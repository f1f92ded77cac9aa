/// Byte offsets and constants of an endpoint segment (`/shmmb.@NAME`), version 2.
///
/// `Layout/README.md` (section "Endpoint segments") documents the format; this enum is its
/// single source of truth in code. Fields are read and written at these explicit offsets, in
/// native byte order. Fields written by different processes sit on different 128-byte lines.
enum EndpointLayout {
    /// "SHMMBEP1" read as a little-endian UInt64. Published last, with a release store.
    static let magic: UInt64 = 0x3150_4542_4D4D_4853
    static let version: UInt32 = 2

    // Line 0 (0): identity and geometry, written once by the creator before `magic`.
    static let magicOffset = 0              // u64
    static let versionOffset = 8            // u32
    static let tableCapacityOffset = 12     // u32: entries in the incoming-link table
    static let segmentSizeOffset = 16       // u64: tableOffset + tableCapacity × entrySize
    static let tableOffsetOffset = 24       // u64: 512
    static let entrySizeOffset = 32         // u32: 128
    static let modeOffset = 36              // u32: permission bits (for information)
    static let createdAtOffset = 40         // u64: Unix time in ns (for information)
    static let nonceOffset = 48             // u64: random, drawn at creation (names this incarnation)
    static let pidNamespaceOffset = 56      // u64: the creator's pid namespace (as in a mailbox)
    // 64..<128 reserved (zero).

    // Line 1 (128): the holder, a lease word written by joining and closing processes (CAS).
    static let holderOffset = 128           // u64 packed identity; 0 = nobody holds the name

    // Line 2 (256): the doorbell, an event line (`EventLayout`) with a one-word sleeper bitmap
    // whose bit 0 is the holder's: senders bump the word, only the holder sleeps.
    static let doorbellOffset = 256
    static let doorbellBitmapWords = 1
    /// The holder's bit in the doorbell's sleeper bitmap.
    static let holderSleeperBit = 0

    // Line 3 (384): bumped (release) after every change to the table, so the holder re-reads the
    // table only when it changed.
    static let tableChangesOffset = 384     // u32

    // Lines 4…: the incoming-link table, one 128-byte line per entry.
    static let tableOffset = 512
    static let entrySize = 128
    /// Entries of a table this version creates (links to one endpoint at a time).
    static let tableCapacity = 256
    /// Largest table an opener accepts.
    static let maxTableCapacity = 65_536

    // Entry fields, relative to the entry.
    /// Lease word: packed identity of the process that claimed the entry to write it (kept while
    /// the entry is published); 0 = free.
    static let entryClaimOffset = 0         // u64
    /// generation << 2 | state: state 0 free (or claimed, being written), 2 published. The
    /// generation changes with every publication, touch and release, so a CAS on this word acts
    /// only on the entry as its caller saw it.
    static let entryStateOffset = 8         // u64
    static let entryLengthOffset = 16       // u32: bytes of the sender's endpoint name (1…100)
    static let entryNameOffset = 20         // the name's bytes (at most 100); 120..<128 reserved
    static let entryFree: UInt64 = 0
    static let entryPublished: UInt64 = 2

    static func segmentSize(tableCapacity: Int) -> Int {
        tableOffset + tableCapacity * entrySize
    }
}
