#if canImport(Glibc)
import Glibc
#endif
import CBenchShim
import SystemPackage

/// Thin helpers over Glibc shared by the transports: errors from `errno`, EINTR-safe calls,
/// socket options, clocks, CPU time, affinity.
package enum Sys {
    /// The current `errno` as a `BenchError`.
    static func failure(_ operation: String, _ code: Int32 = errno) -> BenchError {
        .system(operation: operation, errno: code)
    }

    /// What a failed receive call (`errno` = `code`) means to a receiver that polls: nil to call
    /// again (EINTR), true for "nothing yet" (EAGAIN; the peer is checked first), false for "the
    /// peer has gone" (ECONNRESET). Anything else throws.
    static func receiveFailure(_ code: Int32, _ operation: @autoclosure () -> String, watchdog: Watchdog) throws -> Bool? {
        switch code {
        case EINTR: return nil
        case EAGAIN, EWOULDBLOCK:
            try watchdog.checkPeer()
            return true
        case ECONNRESET: return false
        default: throw failure(operation(), code)
        }
    }

    /// Throws when `rc` is -1.
    @discardableResult
    static func check(_ rc: Int32, _ operation: @autoclosure () -> String) throws(BenchError) -> Int32 {
        if rc == -1 { throw failure(operation()) }
        return rc
    }

    /// Runs `call` again while it fails with EINTR.
    @inline(__always)
    static func retrying<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let rc = call()
            if rc != -1 || errno != EINTR { return rc }
        }
    }

    /// A pipe with both ends close-on-exec (`pipe2(O_CLOEXEC)`): `fds[0]` reads, `fds[1]` writes.
    static func makePipe(_ fds: inout [Int32]) throws(BenchError) {
        do {
            let ends = try FileDescriptor.pipe(options: .closeOnExec)
            fds = [ends.readEnd.rawValue, ends.writeEnd.rawValue]
        } catch {
            throw failure("pipe2", error.rawValue)
        }
    }

    static func setCloseOnExec(_ fd: Int32) {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    static func close(_ fd: Int32) {
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    /// Ignore SIGPIPE: a write to a closed pipe or socket then fails with EPIPE instead of killing us.
    static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    // MARK: Socket options

    static func setInt(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int) -> Bool {
        var v = Int32(clamping: value)
        return setsockopt(fd, level, option, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    static func getInt(_ fd: Int32, _ level: Int32, _ option: Int32) -> Int {
        var v: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, option, &v, &length) == 0 else { return 0 }
        return Int(v)
    }

    /// `SO_RCVTIMEO` and `SO_SNDTIMEO`: a blocked call returns EAGAIN after `seconds`, so the caller
    /// can check that its peer is still alive.
    static func setTimeouts(_ fd: Int32, seconds: Int = 1) throws(BenchError) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        let size = socklen_t(MemoryLayout<timeval>.size)
        try check(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, size), "setsockopt(SO_RCVTIMEO)")
        try check(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, size), "setsockopt(SO_SNDTIMEO)")
    }

    /// Raises a socket buffer to at least `bytes` as the kernel counts it (it doubles what is
    /// asked): first with the `…FORCE` option (needs CAP_NET_ADMIN, ignores net.core.*mem_max),
    /// else with the ordinary one (capped at net.core.*mem_max). Returns the size reached and
    /// whether the forced option worked.
    static func raiseBuffer(_ fd: Int32, send: Bool, toAtLeast bytes: Int) -> (size: Int, forced: Bool) {
        let option = send ? SO_SNDBUF : SO_RCVBUF
        let force = send ? SO_SNDBUFFORCE : SO_RCVBUFFORCE
        let current = getInt(fd, SOL_SOCKET, option)
        if current >= bytes { return (current, false) }
        let ask = (bytes + 1) / 2
        if setInt(fd, SOL_SOCKET, force, ask) {
            return (getInt(fd, SOL_SOCKET, option), true)
        }
        _ = setInt(fd, SOL_SOCKET, option, ask)
        return (getInt(fd, SOL_SOCKET, option), false)
    }

    // MARK: Files

    /// The whole of a small text file (a /proc entry), read with plain read(2), which /proc files
    /// need (they report size 0), in as many reads as it takes; nil if it cannot be read.
    package static func readSmallFile(_ path: String, limit: Int = 8 << 20) -> String? {
        guard let file = try? FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec) else { return nil }
        return try? file.closeAfter {
            var contents: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16 << 10)
            while contents.count < limit {
                let count = try buffer.withUnsafeMutableBytes { try file.read(into: $0) }
                if count == 0 { break }
                contents += buffer[0..<count]
            }
            return String(decoding: contents, as: UTF8.self)
        }
    }

    static func readIntFile(_ path: String) -> Int? {
        readSmallFile(path).flatMap { Int($0.trimmingSpaces) }
    }

    /// Writes all of `text` to `fd` (short writes and EINTR handled); false on failure.
    @discardableResult
    static func writeAll(_ fd: Int32, _ text: String) -> Bool {
        (try? FileDescriptor(rawValue: fd).writeAll(text.utf8)) != nil
    }

    // MARK: Clocks

    /// Nanoseconds on CLOCK_MONOTONIC (vDSO, no system call).
    @inline(__always)
    package static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// User plus system CPU seconds of this process so far (getrusage RUSAGE_SELF).
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ tv: timeval) -> Double { Double(tv.tv_sec) + Double(tv.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    // MARK: Affinity

    /// Pins the calling process to one CPU (`sched_setaffinity`, through CBenchShim: Glibc's
    /// Swift module does not declare it without _GNU_SOURCE).
    static func pin(toCPU cpu: Int) throws(BenchError) {
        let limit = MemoryLayout<cpu_set_t>.size * 8
        guard cpu >= 0, cpu < limit else { throw .invalidArgument("--pin: CPU \(cpu) is out of range 0..<\(limit)") }
        if bench_pin_process_to_cpu(Int32(cpu)) != 0 { throw failure("sched_setaffinity(CPU \(cpu))") }
    }
}

/// A point in time ahead on ringbench's one monotonic clock (`Sys.nanos`), for waits with a limit.
package struct Deadline {
    private let nanos: UInt64

    /// `duration` from now.
    package init(after duration: Duration) {
        let parts = duration.components
        let ahead = max(0, Double(parts.seconds) * 1e9 + Double(parts.attoseconds) / 1e9)
        nanos = Sys.nanos() &+ UInt64(min(ahead, Double(UInt64.max / 2)))
    }

    /// Whether the deadline has come.
    package var hasPassed: Bool { Sys.nanos() >= nanos }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}

/// A page-aligned, zeroed buffer owned by one link or workload; freed on deinit. Reused for every
/// message, so the hot loops allocate nothing.
final class ByteBuffer {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        self.count = max(count, 1)
        var pointer: UnsafeMutableRawPointer?
        precondition(posix_memalign(&pointer, 4096, self.count) == 0 && pointer != nil, "out of memory (\(count) bytes)")
        base = pointer!
        memset(base, 0, self.count)
    }

    deinit { free(base) }

    var mutableBytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: count) }

    func bytes(_ length: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: length) }
    func mutableBytes(_ length: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: length) }

    /// Copies a received message in (as `recv` copies out of the kernel) and returns the copy.
    /// A message larger than the buffer breaks the workload's protocol.
    func copyIn(_ message: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer {
        guard message.count <= count else {
            throw BenchError.protocolViolation("a message of \(message.count) bytes, more than the \(count) expected")
        }
        if let source = message.baseAddress { base.copyMemory(from: source, byteCount: message.count) }
        return bytes(message.count)
    }

    /// `copyIn(_:)` for a message handed over as a span.
    func copyIn(_ message: RawSpan) throws -> UnsafeRawBufferPointer {
        try message.withUnsafeBytes { try copyIn($0) }
    }
}
