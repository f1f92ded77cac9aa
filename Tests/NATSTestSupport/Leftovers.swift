import Foundation
import Glibc

/// Cleans up after test processes that died before their `deinit`s ran (SIGKILL, a crash, a
/// timeout in CI): their nats-servers keep running and their temporary directories stay.
/// Everything this module makes is named `shmmb-<kind>-<owner pid>-…`, so what belongs to a dead
/// owner can be recognized.
enum Leftovers {
    /// The temporary-directory prefixes this module uses.
    static let prefixes = ["shmmb-nats-", "shmmb-hosts-", "shmmb-cmd-"]

    /// Runs ``sweep()`` once per process.
    static let sweptOnce: Void = sweep()

    /// Kills nats-servers whose configuration lives in a dead owner's directory (waiting for them to
    /// end), then removes every dead owner's directories.
    static func sweep() {
        let temporary = (NSTemporaryDirectory() as NSString).standardizingPath
        let configPrefix = temporary + "/shmmb-nats-"
        var killed: [pid_t] = []
        for pid in processIDs() {
            guard pid != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard arguments.first.map({ ($0 as NSString).lastPathComponent == "nats-server" }) == true,
                  let configuration = arguments.first(where: { $0.hasPrefix(configPrefix) }),
                  let owner = owner(of: (configuration as NSString).lastPathComponent == "server.conf"
                                    ? ((configuration as NSString).deletingLastPathComponent as NSString).lastPathComponent : ""),
                  !isAlive(owner) else { continue }
            if kill(pid, SIGKILL) == 0 { killed.append(pid) }
        }
        // The killed servers are not our children; init reaps them. Wait until they are gone so
        // their ports and store files are free.
        let deadline = ContinuousClock.now + .seconds(5)
        while killed.contains(where: isRunning) && ContinuousClock.now < deadline { usleep(10_000) }

        for name in entries(of: temporary) {
            guard let owner = owner(of: name), !isAlive(owner) else { continue }
            TemporaryDirectory.remove(temporary + "/" + name)
        }
    }

    /// The ids of all processes, from `/proc`.
    private static func processIDs() -> [pid_t] { entries(of: "/proc").compactMap { pid_t($0) } }

    /// The names in `path`, read with `readdir` directly: entries come and go during the scan
    /// (processes, other tests' directories), and FileManager's listing can fail as a whole then.
    private static func entries(of path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) })
        }
        return names
    }

    /// The owner pid in a directory name `shmmb-<kind>-<pid>-XXXXXX`, or `nil` if it is not ours.
    static func owner(of directoryName: String) -> pid_t? {
        guard let prefix = prefixes.first(where: directoryName.hasPrefix) else { return nil }
        let rest = directoryName.dropFirst(prefix.count)
        let digits = rest.prefix { $0.isNumber }
        guard rest.dropFirst(digits.count).hasPrefix("-") else { return nil }
        return pid_t(digits)
    }

    private static func isAlive(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || errno != ESRCH
    }

    /// `true` if the process exists and is not a zombie (state `Z` in `/proc/PID/stat`).
    private static func isRunning(_ pid: pid_t) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return false }
        let stat = String(decoding: data, as: UTF8.self)
        guard let end = stat.range(of: ") ", options: .backwards) else { return false }
        return !stat[end.upperBound...].hasPrefix("Z")
    }
}
