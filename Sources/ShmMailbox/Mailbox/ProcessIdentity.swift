#if canImport(Glibc)
import Glibc
#endif

/// A process as ShmMailbox identifies it: its pid plus its start time, so that a reused pid is
/// not mistaken for the process that held it before.
public struct ProcessIdentity: Sendable, Equatable, CustomStringConvertible {
    /// The process id.
    public let pid: Int32
    /// Start time in clock ticks after boot (`/proc/PID/stat`, field 22); 0 if unknown.
    public let startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// The calling process (`getpid()` plus its start time).
    public static func current() -> ProcessIdentity {
        let pid = getpid()
        return ProcessIdentity(pid: pid, startTime: startTime(of: pid) ?? 0)
    }

    public var description: String { "\(pid)" }

    /// Bits of the start time kept in a packed identity (42 bits of clock ticks: over a thousand
    /// years at 100 ticks per second).
    static let packedStartBits: UInt64 = 42
    static let packedPidMask: UInt64 = (1 << 22) - 1

    /// The identity in one 64-bit word, for fields that must change atomically: the pid in the
    /// low 22 bits (Linux pids stay below 2^22), the start time's low 42 bits above it.
    /// Never 0 for a real process.
    var packed: UInt64 {
        (UInt64(UInt32(bitPattern: pid)) & Self.packedPidMask)
            | (startTime & ((1 << Self.packedStartBits) - 1)) << 22
    }

    /// The identity stored by `packed` (start time truncated to 42 bits).
    init(packed: UInt64) {
        self.init(pid: Int32(truncatingIfNeeded: packed & Self.packedPidMask), startTime: packed >> 22)
    }

    /// Whether the process a packed identity names still runs (pid and start time both match).
    static func isAlive(packed: UInt64) -> Bool {
        guard packed != 0 else { return false }
        let identity = ProcessIdentity(packed: packed)
        guard let status = status(of: identity.pid) else { return pidExists(identity.pid) }
        if status.state == UInt8(ascii: "Z") || status.state == UInt8(ascii: "X") { return false }
        return identity.startTime == 0 || status.startTime & ((1 << packedStartBits) - 1) == identity.startTime
    }

    /// The identity of a running process, or nil if `pid` does not run.
    static func live(pid: Int32) -> ProcessIdentity? {
        guard pid > 0, let status = status(of: pid),
              status.state != UInt8(ascii: "Z"), status.state != UInt8(ascii: "X") else { return nil }
        return ProcessIdentity(pid: pid, startTime: status.startTime)
    }

    /// Whether this very process still runs: the pid exists, is not a zombie, and (when both
    /// start times are known) started at the recorded time.
    public var isAlive: Bool {
        guard let status = Self.status(of: pid) else {
            // No /proc entry readable: fall back to kill(pid, 0).
            return Self.pidExists(pid)
        }
        if status.state == UInt8(ascii: "Z") || status.state == UInt8(ascii: "X") { return false }
        return startTime == 0 || status.startTime == startTime
    }

    /// Whether some process with `pid` runs (a zombie counts as dead). Used where only a pid fits
    /// in shared memory.
    static func isAlive(pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        guard let status = status(of: pid) else { return pidExists(pid) }
        return status.state != UInt8(ascii: "Z") && status.state != UInt8(ascii: "X")
    }

    static func startTime(of pid: Int32) -> UInt64? {
        status(of: pid)?.startTime
    }

    private static func pidExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    /// State letter and start time from `/proc/PID/stat`.
    private static func status(of pid: Int32) -> (state: UInt8, startTime: UInt64)? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let bytes = buffer[0..<count]
        // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
        guard fields.count > 19, let state = fields[0].first,
              let start = UInt64(String(decoding: fields[19], as: UTF8.self)) else { return nil }
        return (state, start)
    }
}
