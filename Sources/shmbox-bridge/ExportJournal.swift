/// The export direction's write-ahead journal: the one local message in hand, the NATS message
/// id it is published under, and whether it is still unfinished.
///
/// One page of a `StateFile`, one entry (the export relay holds one local message at a time):
///
/// | offset | word |
/// |---|---|
/// | 0 | magic `shmbxEJ1` |
/// | 8 | state: 0 = nothing unfinished, 1 = the entry below is in hand (the commit word) |
/// | 16 | run id of the message id |
/// | 24 | counter of the message id |
/// | 32 | length of the local message |
/// | 40 | checksum of the local message |
///
/// `record` writes the fields while the state word says 0, then sets it to 1: a kill in the
/// middle leaves state 0 (no entry), never a half-written one. `finish` is one store of 0.
final class ExportJournal {
    /// A NATS message id: `shmbox-bridge.<run id in hex>.<counter>`. The run id is random per
    /// bridge start, so ids never repeat across restarts unless reused on purpose.
    struct MessageID: Equatable {
        var run: UInt64
        var counter: UInt64

        var text: String { "shmbox-bridge.\(String(run, radix: 16)).\(counter)" }
    }

    private static let magic: UInt64 = 0x314A_4578_626D_6873 // "shmbxEJ1", little-endian
    private static let stateOffset = 8, runOffset = 16, counterOffset = 24, lengthOffset = 32, checksumOffset = 40
    private let file: StateFile

    /// Opens (or starts) the journal at `path`, locking it for this process.
    init(path: String) throws(BridgeError) {
        file = try StateFile(path: path, size: 4096, magic: Self.magic)
    }

    /// The id of the unfinished entry, if there is one and it describes a message of this length
    /// and checksum: the message a killed bridge had in hand, handed out again.
    func unfinishedID(length: Int, checksum: UInt64) -> MessageID? {
        guard file.word(Self.stateOffset) == 1, file.word(Self.lengthOffset) == UInt64(length),
              file.word(Self.checksumOffset) == checksum else { return nil }
        return MessageID(run: file.word(Self.runOffset), counter: file.word(Self.counterOffset))
    }

    /// Records `id` for the message in hand (length and checksum), committed by the last store.
    func record(_ id: MessageID, length: Int, checksum: UInt64) {
        // A stale unfinished entry (its message went to another receiver) is withdrawn first, so
        // the fields are never rewritten under a state of 1.
        file.store(0, at: Self.stateOffset)
        file.store(id.run, at: Self.runOffset)
        file.store(id.counter, at: Self.counterOffset)
        file.store(UInt64(length), at: Self.lengthOffset)
        file.store(checksum, at: Self.checksumOffset)
        file.store(1, at: Self.stateOffset)
    }

    /// The message in hand is stored on the server: nothing unfinished any more.
    func finish() {
        file.store(0, at: Self.stateOffset)
    }
}
