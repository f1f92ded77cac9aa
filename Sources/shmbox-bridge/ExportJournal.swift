import ShmboxCLISupport
/// The export direction's write-ahead journal: for each local message a bridge had in hand when
/// it was killed, the NATS message id it was (perhaps) published under, kept until ShmMailbox
/// hands that message out again.
///
/// ShmMailbox redelivers a message whose receiver died mid-read, but not necessarily next: on a
/// shared mailbox kept full by its senders, a sender makes it the newest message, so it comes
/// back after up to capacity − 1 later ones, which the restarted bridge relays meanwhile (and it
/// may be killed again before the message turns up). So the journal keeps every such entry, not
/// just the last.
///
/// One page of a `StateFile`: the magic word `shmbxEJ2`, then `entryCount` entries of 48 bytes
/// at offset 64:
///
/// | offset in entry | word |
/// |---|---|
/// | 0 | state: 0 free, 1 in hand (this run), 2 left by a killed run, awaiting redelivery |
/// | 8 | run id of the message id |
/// | 16 | counter of the message id |
/// | 24 | length of the local message |
/// | 32 | checksum of the local message |
/// | 40 | the local sender's pid |
///
/// Every change is committed by one store of the state word, written after the fields (a kill
/// in between leaves the entry free, never half-written). Only one bridge uses a journal (the
/// file is locked), so at start every entry still in hand belongs to a killed run: it becomes
/// awaiting.
final class ExportJournal {
    /// A NATS message id: `shmbox-bridge.<run id in hex>.<counter>`. The run id is random per
    /// bridge start, so ids never repeat across restarts unless reused on purpose.
    struct MessageID: Equatable {
        var run: UInt64
        var counter: UInt64

        var text: String { "shmbox-bridge.\(String(run, radix: 16)).\(counter)" }
    }

    /// Entries: how many killed runs' messages can await redelivery at once (beyond that, the
    /// oldest is forgotten, and its message, should it still turn up, is published under a new
    /// id).
    static let entryCount = 64
    private static let magic: UInt64 = 0x324A_4578_626D_6873 // "shmbxEJ2", little-endian
    private static let firstEntry = 64, entrySize = 48
    private static let free: UInt64 = 0, inHand: UInt64 = 1, awaiting: UInt64 = 2
    private enum Field: Int { case state = 0, run = 8, counter = 16, length = 24, checksum = 32, sender = 40 }
    private let file: StateFile

    /// Opens (or starts) the journal at `path`, locking it for this process; entries a killed run
    /// left in hand now await their message's redelivery.
    init(path: String) throws(CLIFailure) {
        file = try StateFile(path: path, size: 4096, magic: Self.magic)
        for entry in 0..<Self.entryCount where word(entry, .state) == Self.inHand {
            set(entry, .state, Self.awaiting)
        }
    }

    /// The entry awaiting a message of this length, checksum and sender, and its id: the message
    /// a killed bridge had in hand, handed out again (call only for messages marked redelivered).
    func awaiting(length: Int, checksum: UInt64, sender: Int32) -> (entry: Int, id: MessageID)? {
        for entry in 0..<Self.entryCount where word(entry, .state) == Self.awaiting
            && word(entry, .length) == UInt64(length) && word(entry, .checksum) == checksum
            && word(entry, .sender) == UInt64(UInt32(bitPattern: sender)) {
            // In hand again, under its old id (a kill now leaves it awaiting once more).
            set(entry, .state, Self.inHand)
            return (entry, MessageID(run: word(entry, .run), counter: word(entry, .counter)))
        }
        return nil
    }

    /// Records `id` for a new message in hand; returns its entry, for `finish`.
    func record(_ id: MessageID, length: Int, checksum: UInt64, sender: Int32) -> Int {
        let entry = freeEntry()
        set(entry, .run, id.run)
        set(entry, .counter, id.counter)
        set(entry, .length, UInt64(length))
        set(entry, .checksum, checksum)
        set(entry, .sender, UInt64(UInt32(bitPattern: sender)))
        set(entry, .state, Self.inHand)
        return entry
    }

    /// The message of `entry` is stored on the server: the entry is free.
    func finish(_ entry: Int) {
        set(entry, .state, Self.free)
    }

    /// A free entry; if none, an awaiting one (its message may never come back: another local
    /// receiver may have had it), withdrawn first so that its fields are never rewritten under a
    /// live state.
    private func freeEntry() -> Int {
        if let entry = (0..<Self.entryCount).first(where: { word($0, .state) == Self.free }) { return entry }
        let entry = (0..<Self.entryCount).first(where: { word($0, .state) == Self.awaiting }) ?? 0
        set(entry, .state, Self.free)
        return entry
    }

    private func word(_ entry: Int, _ field: Field) -> UInt64 {
        file.word(Self.firstEntry + entry * Self.entrySize + field.rawValue)
    }

    private func set(_ entry: Int, _ field: Field, _ value: UInt64) {
        file.store(value, at: Self.firstEntry + entry * Self.entrySize + field.rawValue)
    }
}
