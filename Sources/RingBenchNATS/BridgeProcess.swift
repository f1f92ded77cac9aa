#if canImport(Glibc)
import Glibc
#endif
import Foundation
import RingBenchKit

/// One `shmbox-bridge` process of a `nats-bridge` run: started with one relay (`--export` or
/// `--import`), its standard output and error in a log file, its CPU time readable while it
/// runs, stopped with SIGTERM (SIGKILL if it does not end in time).
///
/// The executable is `$SHMBOX_BRIDGE` if set, else `shmbox-bridge` in the directory of this
/// executable (`/proc/self/exe`), where SwiftPM builds it next to `ringbench-nats`.
final class BridgeProcess {
    let pid: pid_t
    /// The relay, as the bridge's own status line names it (`export a->stream`).
    let label: String
    /// Where its standard output and error go.
    let log: String
    /// Its wait status, once it has been reaped.
    private var exitStatus: Int32?

    /// How long `stop` waits after SIGTERM before SIGKILL: a bridge finishes the message in hand
    /// first, and gives up on it after its own 5 s grace.
    static let stopGrace: Duration = .seconds(6)

    /// Starts `executable` with `arguments`; `label` names it in errors.
    init(executable: String, arguments: [String], label: String, log: String) throws {
        self.label = label
        self.log = log
        pid = try spawnLogged(executable, arguments, log: log)
    }

    deinit { Self.stop([self]) }

    /// The shmbox-bridge executable to start; a clear error if there is none.
    static func locate() throws -> String {
        if let given = ProcessInfo.processInfo.environment["SHMBOX_BRIDGE"], !given.isEmpty {
            guard access(given, X_OK) == 0 else {
                throw BenchError.invalidArgument("SHMBOX_BRIDGE=\(given) is not an executable file")
            }
            return given
        }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let directory = (exe as NSString).deletingLastPathComponent
        let candidate = (directory as NSString).appendingPathComponent("shmbox-bridge")
        guard access(candidate, X_OK) == 0 else {
            throw BenchError.invalidArgument(
                "nats-bridge runs shmbox-bridge, and there is none next to this executable (\(candidate)): "
                    + "build it (swift build --product shmbox-bridge, with the same configuration) or set SHMBOX_BRIDGE to its path")
        }
        return candidate
    }

    /// CPU seconds (user + system) it has used so far; 0 once it has ended.
    var cpuSeconds: Double {
        exitStatus == nil ? ProcessCPU.seconds(pid) : 0
    }

    /// Throws if the bridge has ended, with the end of its log.
    func checkRunning() throws {
        if exitStatus == nil {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return }
            exitStatus = status
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let tail = text.split(whereSeparator: \.isNewline).suffix(3).joined(separator: " | ")
        throw BenchError.peerFailed("shmbox-bridge (\(label)) \(Self.describe(exitStatus ?? 0))" + (tail.isEmpty ? "" : ": \(tail)"))
    }

    /// Stops `bridges` together: SIGTERM to each, then waits for all of them for `stopGrace`,
    /// then SIGKILL to those still running (saying so on standard error). Idempotent.
    static func stop(_ bridges: [BridgeProcess]) {
        let running = bridges.filter { $0.exitStatus == nil }
        for bridge in running { kill(bridge.pid, SIGTERM) }
        let deadline = Deadline(after: stopGrace)
        for bridge in running {
            var status: Int32 = 0
            while waitpid(bridge.pid, &status, WNOHANG) == 0 {
                if deadline.hasPassed {
                    kill(bridge.pid, SIGKILL)
                    _ = waitpid(bridge.pid, &status, 0)
                    // Not silently: a bridge that ignores SIGTERM costs every run its grace.
                    FileHandle.standardError.write(Data("ringbench: shmbox-bridge (\(bridge.label)) did not stop within \(stopGrace) of SIGTERM; killed it\n".utf8))
                    break
                }
                usleep(2_000)
            }
            bridge.exitStatus = status
        }
    }

    private static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        return "was killed by signal \(signal)"
    }
}
