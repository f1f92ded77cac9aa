#if canImport(Glibc)
import Glibc
#endif

/// Something the fan-in receiver polls: a descriptor and the bytes received on it so far.
protocol PolledSource: AnyObject {
    var pollFD: Int32 { get }
    /// A whole message is buffered and can be taken without reading.
    var hasMessage: Bool { get }
    /// Reads once what the descriptor has now (poll said it is readable). False at end of file.
    func readAvailable() throws -> Bool
    /// Hands the buffered message to `body` (`hasMessage` must be true).
    func takeMessage(_ body: (UnsafeRawBufferPointer) throws -> Void) throws
}

/// A byte stream (Unix stream socket, pipe, TCP) carrying messages as a 4-byte length (native
/// byte order) followed by the bytes.
///
/// Sending is one `writev` of length and message (short writes continued). Receiving reads as
/// much as the stream has into a buffer and hands out whole frames in place; a large frame's
/// remainder is read with exactly its length, so frames do not have to be moved.
final class FramedStreamLink: Link, PolledSource {
    private let readFD: Int32
    private let writeFD: Int32
    private let maxFrame: Int
    private let buffer: ByteBuffer
    private var start = 0
    private var end = 0
    private let watchdog: Watchdog
    private let label: String
    private var closed = false

    /// Frames at least this large are completed with exact-length reads.
    static let largeFrame = 64 << 10

    /// - Parameters:
    ///   - readFD: descriptor to read frames from (-1: send only).
    ///   - writeFD: descriptor to write frames to (-1: receive only); may equal `readFD`.
    ///   - size: the largest message.
    init(readFD: Int32, writeFD: Int32, size: Int, watchdog: Watchdog, label: String) {
        self.readFD = readFD
        self.writeFD = writeFD
        self.maxFrame = size
        self.buffer = ByteBuffer(count: readFD >= 0 ? max(256 << 10, 4 + size + (64 << 10)) : 1)
        self.watchdog = watchdog
        self.label = label
    }

    deinit { close() }

    var pollFD: Int32 { readFD }

    // MARK: Sending

    func send(_ message: UnsafeRawBufferPointer) throws {
        var header = UInt32(message.count)
        try withUnsafeBytes(of: &header) { headerBytes in
            let total = 4 + message.count
            var done = 0
            while done < total {
                var vectors = (iovec(), iovec())
                let count: Int32
                if done < 4 {
                    vectors.0 = iovec(iov_base: UnsafeMutableRawPointer(mutating: headerBytes.baseAddress! + done), iov_len: 4 - done)
                    vectors.1 = iovec(iov_base: UnsafeMutableRawPointer(mutating: message.baseAddress), iov_len: message.count)
                    count = message.isEmpty ? 1 : 2
                } else {
                    vectors.0 = iovec(iov_base: UnsafeMutableRawPointer(mutating: message.baseAddress! + (done - 4)),
                                      iov_len: total - done)
                    count = 1
                }
                let written = withUnsafePointer(to: &vectors) {
                    $0.withMemoryRebound(to: iovec.self, capacity: 2) { writev(writeFD, $0, count) }
                }
                if written >= 0 {
                    done += written
                    continue
                }
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: try watchdog.checkPeer()
                case EPIPE, ECONNRESET: throw BenchError.peerClosed("\(label): the receiving end is closed")
                default: throw Sys.failure("\(label): writev")
                }
            }
        }
    }

    // MARK: Receiving

    var hasMessage: Bool {
        let available = end - start
        guard available >= 4 else { return false }
        let length = Int(buffer.base.loadUnaligned(fromByteOffset: start, as: UInt32.self))
        return available >= 4 + length
    }

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        while !hasMessage {
            guard try readAvailable() else {
                throw BenchError.peerClosed("\(label): end of stream" + (end > start ? " inside a message" : ""))
            }
        }
        try takeMessage(body)
    }

    func takeMessage(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let length = Int(buffer.base.loadUnaligned(fromByteOffset: start, as: UInt32.self))
        let frame = UnsafeRawBufferPointer(start: buffer.base + start + 4, count: length)
        start += 4 + length
        // Nothing is read until `body` returns, so the frame stays in place even when the
        // buffer is marked empty here.
        if start == end {
            start = 0
            end = 0
        }
        try body(frame)
    }

    func readAvailable() throws -> Bool {
        let capacity = buffer.count
        let available = end - start
        var needed = 4
        if available >= 4 {
            let length = Int(buffer.base.loadUnaligned(fromByteOffset: start, as: UInt32.self))
            guard length <= maxFrame else {
                throw BenchError.protocolViolation("\(label): length prefix \(length) is larger than the \(maxFrame)-byte messages of this run")
            }
            needed = 4 + length
        }
        if start > 0, start + needed > capacity || capacity - end < 4096 {
            memmove(buffer.base, buffer.base + start, available)
            start = 0
            end = available
        }
        let want = needed >= Self.largeFrame && available < needed ? needed - available : capacity - end
        while true {
            let n = read(readFD, buffer.base + end, want)
            if n > 0 {
                end += n
                return true
            }
            if n == 0 { return false }
            guard let outcome = try Sys.receiveFailure(errno, "\(label): read", watchdog: watchdog) else { continue }
            return outcome
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        Sys.close(readFD)
        if writeFD != readFD { Sys.close(writeFD) }
    }
}
