/// How a message-oriented transport (datagram or seqpacket socket, message queue) carries
/// messages larger than the largest unit it can send: in chunks of at most `payload` bytes of
/// the message, each behind an 8-byte `ChunkHeader`.
struct ChunkPlan: Equatable {
    /// Message bytes per chunk (the last chunk may have fewer).
    let payload: Int
    /// The whole message.
    let size: Int

    init(payload: Int, size: Int) {
        precondition(payload > 0)
        self.payload = payload
        self.size = size
    }

    var chunks: Int { (size + payload - 1) / payload }

    func length(ofChunk index: Int) -> Int {
        index == chunks - 1 ? size - index * payload : payload
    }

    /// "split into 129 chunks of ≤ 8184 B + 8 B header".
    var description: String {
        "split into \(chunks) chunks of ≤ \(payload) B + \(ChunkHeader.size) B header"
    }
}

/// The 8 bytes before each chunk: the sending process's index on this endpoint (bits 0–31), the
/// chunk's index in its message (bits 32–62), and bit 63 on the last chunk.
struct ChunkHeader: Equatable {
    static let size = 8

    var sender: Int
    var index: Int
    var last: Bool

    init(sender: Int, index: Int, last: Bool) {
        self.sender = sender
        self.index = index
        self.last = last
    }

    init(word: UInt64) {
        sender = Int(word & 0xFFFF_FFFF)
        index = Int((word >> 32) & 0x7FFF_FFFF)
        last = word >> 63 != 0
    }

    var word: UInt64 {
        UInt64(UInt32(truncatingIfNeeded: sender)) | UInt64(index & 0x7FFF_FFFF) << 32 | (last ? 1 << 63 : 0)
    }
}

/// Puts chunks back into whole messages, one message in progress per sender. A missing,
/// repeated, reordered or wrongly sized chunk is an error, never skipped.
final class Reassembler {
    let plan: ChunkPlan
    let senders: Int
    private let slots: [ByteBuffer]
    private var next: [Int]
    private let label: String

    init(plan: ChunkPlan, senders: Int, label: String) {
        self.plan = plan
        self.senders = senders
        self.slots = (0..<senders).map { _ in ByteBuffer(count: plan.size) }
        self.next = [Int](repeating: 0, count: senders)
        self.label = label
    }

    /// Where the next chunk of `sender` belongs and how long it must be; a receiver that knows
    /// the sender (one sender) can receive straight into place.
    func nextTarget(sender: Int) -> UnsafeMutableRawBufferPointer {
        let index = next[sender]
        return UnsafeMutableRawBufferPointer(start: slots[sender].base + index * plan.payload, count: plan.length(ofChunk: index))
    }

    /// Accepts one chunk with header `word` and `length` payload bytes, which are at `source`
    /// (copied into place) or, when `source` is nil, already at `nextTarget(sender:)`. Returns
    /// the sender whose message is now complete, or nil.
    func accept(header word: UInt64, length: Int, source: UnsafeRawPointer?) throws -> Int? {
        let header = ChunkHeader(word: word)
        guard header.sender >= 0, header.sender < senders else {
            throw BenchError.protocolViolation("\(label): a chunk from sender \(header.sender), but there are \(senders)")
        }
        let expected = next[header.sender]
        guard header.index == expected else {
            throw BenchError.protocolViolation("\(label): chunk \(header.index) from sender \(header.sender) arrived, expected chunk \(expected) (a lost, repeated or reordered chunk)")
        }
        guard length == plan.length(ofChunk: expected), header.last == (expected == plan.chunks - 1) else {
            throw BenchError.protocolViolation("\(label): chunk \(expected) from sender \(header.sender) has \(length) bytes\(header.last ? " and is marked last" : ""), expected \(plan.length(ofChunk: expected)) of \(plan.chunks) chunks")
        }
        if let source {
            (slots[header.sender].base + expected * plan.payload).copyMemory(from: source, byteCount: length)
        }
        if header.last {
            next[header.sender] = 0
            return header.sender
        }
        next[header.sender] = expected + 1
        return nil
    }

    /// The completed message of `sender` (valid until its next chunk arrives).
    func message(of sender: Int) -> UnsafeRawBufferPointer {
        slots[sender].bytes(plan.size)
    }
}
