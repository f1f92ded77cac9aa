#if canImport(Glibc)
import Glibc
#endif

/// A process as ShmMailbox identifies it: its pid plus its start time, so that a reused pid is
/// not mistaken for the process that held it before.
///
/// A start time of 0 means *unknown*: only the pid is known (a one-to-one mailbox's message
/// whose sender has given up the role since, or an identity built from a bare pid). Where such
/// an identity is used to name a running process (`isAlive`, `Mailbox.grantReceive(to:)`,
/// `Mailbox.transferOwnership(to:)`), it stands for whichever process has that pid now.
///
/// `Equatable` (and `Hashable`) compares both fields as they are: an identity with an unknown start time is not
/// equal to the same pid's identity with its start time known. Compare `pid`s to ask only
/// whether two identities name the same pid.
///
/// Its `description` is the pid alone, in decimal.
public struct ProcessIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The process id.
    public let pid: Int32
    /// Start time in clock ticks after boot (`/proc/PID/stat`, field 22); 0 if unknown. Read from
    /// shared memory it keeps only its low 42 bits (over a thousand years at 100 ticks per second).
    public let startTime: UInt64

    /// The process with id `pid` that started `startTime` clock ticks after boot (0 if unknown).
    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// The calling process (`getpid()` plus its start time).
    public static func current() -> ProcessIdentity {
        let pid = getpid()
        return ProcessIdentity(pid: pid, startTime: status(of: pid)?.startTime ?? 0)
    }

    /// The pid, in decimal.
    public var description: String { "\(pid)" }

    /// Bits of the start time kept in a packed identity (42 bits of clock ticks: over a thousand
    /// years at 100 ticks per second).
    static let packedStartBits: UInt64 = 42
    static let packedStartMask: UInt64 = (1 << packedStartBits) - 1
    static let packedPidMask: UInt64 = (1 << 22) - 1

    /// The identity in one 64-bit word, for fields that must change atomically: the pid in the
    /// low 22 bits (Linux pids stay below 2^22), the start time's low 42 bits above it.
    /// Never 0 for a real process (its pid is at least 1).
    var packed: UInt64 {
        (UInt64(UInt32(bitPattern: pid)) & Self.packedPidMask) | (startTime & Self.packedStartMask) << 22
    }

    /// The identity stored by `packed` (start time truncated to 42 bits).
    init(packed: UInt64) {
        self.init(pid: Int32(truncatingIfNeeded: packed & Self.packedPidMask), startTime: packed >> 22)
    }

    /// Whether the process a packed identity names still runs: its pid is a real pid (at least 1;
    /// 0 and sentinels never count as alive), `/proc/PID/stat` exists and is not a zombie, and
    /// its start time agrees in the packed bits — so a reused pid never passes for the process
    /// that held it before. Where `/proc` cannot be read, falls back to `kill(pid, 0)`.
    static func isAlive(packed: UInt64) -> Bool {
        let identity = ProcessIdentity(packed: packed)
        guard identity.pid > 0 else { return false }
        guard let status = status(of: identity.pid) else { return pidExists(identity.pid) }
        if status.isDead { return false }
        return identity.startTime == 0 || status.startTime & packedStartMask == identity.startTime
    }

    /// The identity of a running process, or nil if `pid` does not run.
    static func live(pid: Int32) -> ProcessIdentity? {
        guard pid > 0, let status = status(of: pid), !status.isDead else { return nil }
        return ProcessIdentity(pid: pid, startTime: status.startTime)
    }

    /// Whether this very process still runs: the pid exists, is not a zombie, and (when both
    /// start times are known) started at the recorded time.
    public var isAlive: Bool {
        guard pid > 0 else { return false }
        guard let status = Self.status(of: pid) else { return Self.pidExists(pid) }
        if status.isDead { return false }
        return startTime == 0 || status.startTime == startTime
    }

    /// Whether some process with `pid` runs (a zombie counts as dead; pids below 1 never run).
    /// Only where nothing but a pid is known (a temporary segment's name).
    static func isAlive(pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        guard let status = status(of: pid) else { return pidExists(pid) }
        return !status.isDead
    }

    /// `kill(pid, 0)`: the pid exists (EPERM: it exists but belongs to another user). Only for
    /// pids above 0: `kill(0, …)` and `kill(-1, …)` address groups of processes.
    private static func pidExists(_ pid: Int32) -> Bool {
        precondition(pid > 0)
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// State letter and start time from `/proc/PID/stat`.
    private static func status(of pid: Int32) -> (isDead: Bool, startTime: UInt64)? {
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
        return (state == UInt8(ascii: "Z") || state == UInt8(ascii: "X"), start)
    }

    /// The calling process's pid namespace (the inode of `/proc/self/ns/pid`), or 0 if unknown.
    /// Pids, and so every liveness check, mean something only inside one namespace.
    static func pidNamespace() -> UInt64 {
        var info = stat()
        guard stat("/proc/self/ns/pid", &info) == 0 else { return 0 }
        return UInt64(info.st_ino)
    }
}

/// Decides whether a process named in shared memory (by its packed identity) still runs. The
/// rings, leases and waits repair what a dead process left behind only after asking this; the
/// library asks `/proc` (`SystemLiveness`), tests may answer for themselves.
protocol Liveness: Sendable {
    func isAlive(_ packed: UInt64) -> Bool
}

/// `ProcessIdentity.isAlive(packed:)`: `/proc/PID/stat`, pid and start time.
struct SystemLiveness: Liveness {
    func isAlive(_ packed: UInt64) -> Bool { ProcessIdentity.isAlive(packed: packed) }
}
