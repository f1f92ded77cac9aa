/// What the receiver checks in every message.
public enum VerifyMode: String, Sendable, CaseIterable, Codable {
    /// The length and the sequence number in the first 8 bytes.
    case sequence
    /// The length, the sequence number, and every payload byte against a pattern derived from the
    /// sequence number (the sender writes the pattern into each message).
    case checksum
}

/// The first 8 bytes of every message (native byte order): bits 0–47 the sequence number
/// (warm-up messages included, from 0), bits 48–62 the sender's index (fan-in), bit 63 set on a
/// sender's last message.
struct MessageHeader: Equatable {
    static let lastFlag: UInt64 = 1 << 63
    static let sequenceMask: UInt64 = (1 << 48) - 1
    static let maxSenders = 1 << 15

    var sequence: Int
    var sender: Int
    var last: Bool

    init(sequence: Int, sender: Int, last: Bool) {
        self.sequence = sequence
        self.sender = sender
        self.last = last
    }

    init(word: UInt64) {
        sequence = Int(word & Self.sequenceMask)
        sender = Int((word >> 48) & 0x7FFF)
        last = word & Self.lastFlag != 0
    }

    var word: UInt64 {
        UInt64(sequence) & Self.sequenceMask | UInt64(sender & 0x7FFF) << 48 | (last ? Self.lastFlag : 0)
    }

    /// What the checksum pattern is derived from: the header without the last flag.
    var patternKey: UInt64 { word & ~Self.lastFlag }
}

/// Writes and checks messages of one size. The checksum pattern is a 64-bit counter starting at a
/// value mixed from the sequence number and sender, stepping by an odd constant: a flipped,
/// shifted, stale or foreign byte anywhere in the payload changes some word.
struct MessageCodec {
    static let minimumSize = 8

    let size: Int
    let mode: VerifyMode

    init(size: Int, mode: VerifyMode) {
        precondition(size >= Self.minimumSize)
        self.size = size
        self.mode = mode
    }

    private static let step: UInt64 = 0xD1B5_4A32_D192_ED03

    @inline(__always)
    private static func start(_ key: UInt64) -> UInt64 {
        var x = (key &+ 0x9E37_79B9_7F4A_7C15) &* 0xBF58_476D_1CE4_E5B9
        x ^= x >> 31
        return x
    }

    /// Writes `header` into the first 8 bytes of `message` (which has `size` bytes) and, in
    /// checksum mode, the pattern into the rest. In sequence mode the rest is left as it is.
    @inline(__always)
    func write(_ header: MessageHeader, into message: UnsafeMutableRawPointer) {
        message.storeBytes(of: header.word, as: UInt64.self)
        if mode == .checksum { fillPattern(message, key: header.patternKey) }
    }

    private func fillPattern(_ message: UnsafeMutableRawPointer, key: UInt64) {
        var word = Self.start(key)
        var offset = 8
        while offset &+ 8 <= size {
            message.storeBytes(of: word, toByteOffset: offset, as: UInt64.self)
            word &+= Self.step
            offset &+= 8
        }
        while offset < size {
            message.storeBytes(of: UInt8(truncatingIfNeeded: word), toByteOffset: offset, as: UInt8.self)
            word >>= 8
            offset &+= 1
        }
    }

    /// Checks a message that must be number `sequence` from sender `sender`: its length, its
    /// header and (checksum mode) every payload byte. Returns whether the sender marked it last.
    @inline(__always)
    func verify(_ bytes: UnsafeRawBufferPointer, sequence: Int, sender: Int) throws -> Bool {
        guard bytes.count == size else {
            throw BenchError.verificationFailed(message: sequence, sender: sender == 0 ? nil : sender,
                                                detail: "it has \(bytes.count) bytes, expected \(size)")
        }
        let header = MessageHeader(word: bytes.loadUnaligned(as: UInt64.self))
        guard header.sequence == sequence, header.sender == sender else {
            throw BenchError.verificationFailed(
                message: sequence, sender: sender == 0 ? nil : sender,
                detail: "it carries sequence number \(header.sequence) of sender \(header.sender) (a lost, repeated, reordered or damaged message)")
        }
        if mode == .checksum { try verifyPattern(bytes, header) }
        return header.last
    }

    /// The header of a message from any sender (fan-in), after checking the length.
    @inline(__always)
    func header(of bytes: UnsafeRawBufferPointer) throws -> MessageHeader {
        guard bytes.count == size else {
            let partial = bytes.count >= 8 ? MessageHeader(word: bytes.loadUnaligned(as: UInt64.self)) : nil
            throw BenchError.verificationFailed(message: partial?.sequence ?? -1, sender: partial?.sender,
                                                detail: "it has \(bytes.count) bytes, expected \(size)")
        }
        return MessageHeader(word: bytes.loadUnaligned(as: UInt64.self))
    }

    /// Checks the payload pattern of a message whose header was checked already (checksum mode;
    /// nothing to do in sequence mode).
    @inline(__always)
    func verifyPayload(_ bytes: UnsafeRawBufferPointer, _ header: MessageHeader) throws {
        if mode == .checksum { try verifyPattern(bytes, header) }
    }

    private func verifyPattern(_ bytes: UnsafeRawBufferPointer, _ header: MessageHeader) throws {
        let base = bytes.baseAddress!
        var word = Self.start(header.patternKey)
        var offset = 8
        while offset &+ 8 <= size {
            if base.loadUnaligned(fromByteOffset: offset, as: UInt64.self) != word {
                throw mismatch(base, header, from: offset, word: word)
            }
            word &+= Self.step
            offset &+= 8
        }
        var tail = word
        let tailStart = offset
        while offset < size {
            if base.load(fromByteOffset: offset, as: UInt8.self) != UInt8(truncatingIfNeeded: tail) {
                throw mismatch(base, header, from: tailStart, word: word)
            }
            tail >>= 8
            offset &+= 1
        }
    }

    /// The error for a pattern word that differs, naming the first differing byte.
    private func mismatch(_ base: UnsafeRawPointer, _ header: MessageHeader, from offset: Int, word: UInt64) -> BenchError {
        var expected = word
        for index in offset..<min(offset + 8, size) {
            let have = base.load(fromByteOffset: index, as: UInt8.self)
            let want = UInt8(truncatingIfNeeded: expected)
            if have != want {
                return .verificationFailed(message: header.sequence, sender: header.sender == 0 ? nil : header.sender,
                                           detail: "checksum mismatch at byte \(index) of \(size): 0x\(hex(have)), expected 0x\(hex(want))")
            }
            expected >>= 8
        }
        return .verificationFailed(message: header.sequence, sender: header.sender == 0 ? nil : header.sender,
                                   detail: "checksum mismatch near byte \(offset) of \(size)")
    }

    private func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
