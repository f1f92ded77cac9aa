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
/// | 64 + 8·i | slot i: the sequence of the batch's i-th message delivered locally, 0 when empty |
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

    /// The recorded sequences (a killed run's unconfirmed deliveries).
    var recorded: [UInt64] {
        (0..<Self.capacity).map { file.word(Self.slotsOffset + 8 * $0) }.filter { $0 != 0 }
    }

    /// Commits: message `sequence`, the batch's `slot`-th, is in the local mailbox.
    func record(_ sequence: UInt64, slot: Int) {
        file.store(sequence, at: Self.slotsOffset + 8 * slot)
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
