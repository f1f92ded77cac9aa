/// A 64-bit content checksum (not cryptographic): what tells a redelivered local message apart
/// from another one in the export journal, together with its length.
///
/// Eight bytes at a time, each word mixed in with a multiply and a rotation; the tail byte by
/// byte. Fast enough to be noise beside a network round trip.
enum Checksum {
    static func of(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(bytes.count)
        var offset = 0
        while offset + 8 <= bytes.count {
            let word = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            hash = ((hash ^ word) &* 0x9E37_79B9_7F4A_7C15)
            hash = (hash << 29) | (hash >> 35)
            offset += 8
        }
        while offset < bytes.count {
            hash = (hash ^ UInt64(bytes[offset])) &* 0x0000_0100_0000_01B3
            offset += 1
        }
        // Final avalanche (from splitmix64), so nearby inputs differ in every bit.
        hash ^= hash >> 31
        hash &*= 0xBF58_476D_1CE4_E5B9
        hash ^= hash >> 27
        return hash
    }
}
