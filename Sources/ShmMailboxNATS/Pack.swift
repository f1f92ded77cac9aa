/// Packs: consecutive messages of one `batch`, from one sender, carried in one JetStream
/// message, so that the server stores, delivers and acknowledges them once (on these machines it
/// costs ~25 µs of server CPU per JetStream message, whatever its size; see `RemoteMailbox.batch`).
///
/// The format, which `ringbench`'s `nats-raw` link writes too:
///
/// | part | content |
/// |---|---|
/// | header `Shmmb-Pack` | the number of messages packed, in decimal (2 … `maxCount`) |
/// | body | that many records back to back, each a 4-byte little-endian length and that many bytes; nothing after the last |
///
/// A message that is not a pack has no `Shmmb-Pack` header. Everything else about a pack (its
/// message id, its sender header, its stream sequence) is that of a message.
///
/// How far receivers got through a pack is kept in the key-value bucket `SHMMB_PACKS`, under
/// `<mailbox>.<nonce>.<sequence>`: the number of its messages handed over, written when a receive
/// call ends part-way through it (see `RemoteMailbox+Receive`).
enum Pack {
    static let header = "Shmmb-Pack"
    /// The most messages one pack holds.
    static let maxCount = 4096
    /// The largest pack body (less where the mailbox's `maxMessageSize` is smaller).
    static let maxBody = 65536
    /// The length word before each message.
    static let recordOverhead = 4
    /// The key-value bucket of the packs' progress.
    static let progressBucket = "SHMMB_PACKS"
}

/// A pack being filled by a batch's sends.
struct PackBuilder {
    /// The records so far (capacity kept between packs).
    private(set) var body: [UInt8] = []
    private(set) var count = 0
    /// The number of the pack's first send (its message id is that send's).
    private(set) var firstSend: UInt64 = 0
    /// The sender every message of the pack came from.
    private(set) var sender: RemoteSender?

    /// Whether a message of `length` bytes can join the pack now: same sender, room for its
    /// record within `limit` bytes, fewer than `Pack.maxCount` messages.
    func admits(length: Int, from sender: RemoteSender, limit: Int) -> Bool {
        count == 0 || (count < Pack.maxCount && self.sender == sender && body.count + Pack.recordOverhead + length <= limit)
    }

    /// Adds a message (its record fits: see `admits`).
    mutating func append(_ buffer: UnsafeRawBufferPointer, send number: UInt64, from sender: RemoteSender) {
        if count == 0 {
            firstSend = number
            self.sender = sender
        }
        let length = UInt32(buffer.count).littleEndian
        withUnsafeBytes(of: length) { body.append(contentsOf: $0) }
        body.append(contentsOf: buffer)
        count += 1
    }

    /// Empties the pack, keeping its storage.
    mutating func reset() {
        body.removeAll(keepingCapacity: true)
        count = 0
        sender = nil
    }
}

/// Reads a received pack's records. The pack came through the network from anyone: it is
/// checked whole before the first record is handed over.
struct PackReader {
    private let base: UnsafeRawPointer?
    private let length: Int
    /// The number of messages in the pack.
    let count: Int
    /// The index of the next message `next` hands over.
    private(set) var index = 0
    private var offset = 0

    /// Why a pack cannot be read.
    struct Malformed: Error {
        let reason: String
    }

    /// Checks that `count` (the header's text) names 2 … `Pack.maxCount` records that fill the
    /// `length` bytes at `base` exactly.
    init(base: UnsafeRawPointer?, length: Int, count text: String) throws(Malformed) {
        guard let count = Int(text), count >= 2, count <= Pack.maxCount else {
            throw Malformed(reason: "pack count '\(text.prefix(20))' is not a number from 2 to \(Pack.maxCount)")
        }
        var offset = 0
        for record in 0..<count {
            guard length - offset >= Pack.recordOverhead, let base else {
                throw Malformed(reason: "record \(record) of \(count) starts past the end of the \(length)-byte pack")
            }
            let size = Int(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            offset += Pack.recordOverhead
            guard size <= length - offset else {
                throw Malformed(reason: "record \(record) of \(count) claims \(size) bytes; \(length - offset) are left")
            }
            offset += size
        }
        guard offset == length else {
            throw Malformed(reason: "\(length - offset) bytes follow the pack's \(count) records")
        }
        self.base = base
        self.length = length
        self.count = count
    }

    /// Whether every message was handed over.
    var isExhausted: Bool { index == count }

    /// The next message's bytes (valid while the pack's message lives); nil past the last.
    mutating func next() -> UnsafeRawBufferPointer? {
        guard index < count, let base else { return nil }
        // The bounds were checked in `init`.
        let size = Int(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        let bytes = UnsafeRawBufferPointer(start: base + offset + Pack.recordOverhead, count: size)
        offset += Pack.recordOverhead + size
        index += 1
        return bytes
    }

    /// Skips to message `target` (those before it were handed over by an earlier holder).
    mutating func skip(to target: Int) {
        while index < min(target, count) { _ = next() }
    }
}

/// A pack a receiving handle is part-way through, kept between its receive calls.
struct PackInHand {
    /// The pack's JetStream message (unacknowledged; the records point into it).
    let message: OpaquePointer
    let sequence: UInt64
    /// The server marked it redelivered: its messages are handed over marked so.
    let redelivered: Bool
    let sender: RemoteSender?
    var reader: PackReader
    /// How many of its messages the progress bucket says were handed over.
    var recorded: Int
    /// Whether the bucket has a key for it (removed once the pack is acknowledged).
    var hasProgressKey: Bool
    /// No later than when the server last started the pack's redelivery timer (its delivery, or
    /// an in-progress notice).
    var touched: ContinuousClock.Instant
}
