#if canImport(Glibc)
import Glibc
#endif

/// Reads records from a file descriptor as they arrive: the bytes up to each separator (the
/// separator dropped), or everything to the end of the input. Nothing is decoded or changed.
struct InputRecords {
    /// Where the bytes come from.
    let descriptor: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Reads more bytes into the buffer; false at the end of the input.
    private mutating func fill() throws(ReadError) -> Bool {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw ReadError(errno: errno) }
            guard count > 0 else {
                atEnd = true
                return false
            }
            buffer.append(contentsOf: chunk[..<count])
            return true
        }
    }

    /// The next record ending with `separator` (or, the last one, with the end of the input),
    /// or nil when nothing is left. An empty input has no records; a final separator does not
    /// start an empty record.
    mutating func next(separatedBy separator: UInt8) throws(ReadError) -> [UInt8]? {
        var scanned = 0  // bytes after `start` already searched
        while true {
            if let end = buffer[(start + scanned)...].firstIndex(of: separator) {
                let record = Array(buffer[start..<end])
                start = end + 1
                return record
            }
            scanned = buffer.count - start
            let more = atEnd ? false : try fill()
            if !more {
                guard start < buffer.count else { return nil }
                let record = Array(buffer[start...])
                start = buffer.count
                return record
            }
        }
    }

    /// Everything left, to the end of the input.
    mutating func rest() throws(ReadError) -> [UInt8] {
        while !atEnd {
            _ = try fill()
        }
        defer { start = buffer.count }
        return Array(buffer[start...])
    }
}

/// `read(2)` failed.
struct ReadError: Error, CustomStringConvertible {
    var errno: Int32
    var description: String { String(cString: strerror(errno)) }
}
