/// Byte offsets and constants of an endpoint segment (`/shmmb.@NAME`), version 1.
///
/// `Layout/README.md` (section "Endpoint segments") documents the format; this enum is its
/// single source of truth in code. Fields are read and written at these explicit offsets, in
/// native byte order. Fields written by different processes sit on different 128-byte lines.
enum EndpointLayout {
    /// "SHMMBEP1" read as a little-endian UInt64. Published last, with a release store.
    static let magic: UInt64 = 0x3150_4542_4D4D_4853
    static let version: UInt32 = 1

    // Line 0 (0): identity and geometry, written once by the creator before `magic`.
    static let magicOffset = 0              // u64
    static let versionOffset = 8            // u32
    static let tableCapacityOffset = 12     // u32: entries in the incoming-link table
    static let segmentSizeOffset = 16       // u64: tableOffset + tableCapacity × entrySize
    static let tableOffsetOffset = 24       // u64: 512
    static let entrySizeOffset = 32         // u32: 128
    static let modeOffset = 36              // u32: permission bits (for information)
    static let createdAtOffset = 40         // u64: Unix time in ns (for information)
    // 48..<128 reserved (zero).

    // Line 1 (128): the holder, written by joining and closing processes (CAS).
    static let holderOffset = 128           // u64 packed identity; 0 = nobody holds the name

    // Line 2 (256): the doorbell: futex word bumped by senders, sleeper count kept by the holder.
    static let doorbellOffset = 256         // u32 word, u32 waiters at +4 (an `EventCount`)

    // Line 3 (384): how many table entries have been claimed (senders creating links).
    static let tableCountOffset = 384       // u32

    // Lines 4…: the incoming-link table, one 128-byte line per entry.
    static let tableOffset = 512
    static let entrySize = 128
    /// Entries of a table this version creates (senders to one endpoint, over its lifetime).
    static let tableCapacity = 256
    /// Largest table an opener accepts.
    static let maxTableCapacity = 65_536

    // Entry fields, relative to the entry.
    static let entryStateOffset = 0         // u32: 0 claimed, not yet written; 1 published
    static let entryLengthOffset = 4        // u32: bytes of the sender's endpoint name (1…100)
    static let entryNameOffset = 8          // the name's bytes (at most 100); 108..<128 reserved
    static let entryPublished: UInt32 = 1

    static func segmentSize(tableCapacity: Int) -> Int {
        tableOffset + tableCapacity * entrySize
    }
}
