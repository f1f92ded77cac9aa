import ShmboxCLISupport
/// The import direction's journal: the stream sequences of the remote messages already sent
/// into the local mailbox whose acknowledgement to the server is not yet confirmed.
///
/// Four pages of a `StateFile`:
///
/// | offset | word |
/// |---|---|
/// | 0 | magic `shmbxIJ1` |
/// | 8 | the remote mailbox's incarnation the sequences belong to (0: none yet) |
/// | 64 + 8·i | slot i: the batch's i-th message delivered locally, 0 when empty: its stream sequence, plus its index in its pack (`RemoteMessage.index`) times 2⁴⁸ |
///
/// A slot is written by one aligned 8-byte store right after the local send: that store is the
/// commit point. Slots are emptied once the server has confirmed the batch's acknowledgements,
/// or once the messages have been removed from the stream (`settle`).
final class ImportJournal {
    /// The largest batch the slots hold.
    static let capacity = 1024

    private static let magic: UInt64 = 0x314A_4978_626D_6873 // "shmbxIJ1", little-endian
    private static let incarnationOffset = 8, slotsOffset = 64
    private let file: StateFile

    /// Opens (or starts) the journal at `path`, locking it for this process.
    init(path: String) throws(CLIFailure) {
        file = try StateFile(path: path, size: 16384, magic: Self.magic)
    }

    /// Binds the journal to the remote mailbox's current incarnation. Sequences recorded for an
    /// earlier one (the mailbox was deleted and created again; its sequences start over) mean
    /// nothing now and are dropped, before the new incarnation is stored: a kill in between
    /// just drops them again.
    func adopt(incarnation: String) {
        let value = UInt64(incarnation, radix: 16) ?? Checksum.of(incarnation)
        guard file.word(Self.incarnationOffset) != value else { return }
        clear(count: Self.capacity)
        file.store(value, at: Self.incarnationOffset)
    }

    /// One delivered message in one word: its stream sequence (below 2⁴⁸, 281 trillion messages
    /// in one incarnation) and its index in its pack (below `Pack.maxCount`) above it. A message
    /// sent unpacked (index 0) is its sequence, as in the journal's first version.
    static func word(sequence: UInt64, index: Int) -> UInt64 {
        sequence | UInt64(index) << 48
    }

    /// The recorded deliveries (a killed run's unconfirmed ones), as how many messages of each
    /// stream sequence were delivered: one past the highest index recorded.
    var recorded: [(sequence: UInt64, handed: Int)] {
        var handed: [UInt64: Int] = [:]
        for slot in 0..<Self.capacity {
            let word = file.word(Self.slotsOffset + 8 * slot)
            guard word != 0 else { continue }
            let sequence = word & (1 << 48 - 1)
            handed[sequence] = max(handed[sequence] ?? 0, Int(word >> 48) + 1)
        }
        return handed.map { ($0.key, $0.value) }.sorted { $0.sequence < $1.sequence }
    }

    /// Commits: `word` (see `word(sequence:index:)`), the batch's `slot`-th message, is in the
    /// local mailbox.
    func record(_ word: UInt64, slot: Int) {
        file.store(word, at: Self.slotsOffset + 8 * slot)
    }

    /// Empties the first `count` slots (their acknowledgements are confirmed, or their messages
    /// removed from the stream).
    func clear(count: Int) {
        for slot in 0..<min(count, Self.capacity) where file.word(Self.slotsOffset + 8 * slot) != 0 {
            file.store(0, at: Self.slotsOffset + 8 * slot)
        }
    }
}

extension Checksum {
    /// The checksum of a string's UTF-8 bytes.
    static func of(_ text: String) -> UInt64 {
        Array(text.utf8).withUnsafeBytes { of($0) }
    }
}
