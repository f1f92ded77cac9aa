#if canImport(Glibc)
import Glibc
#endif
import RingBenchKit

/// CPU time of another process, for the processes a NATS run starts beside the measured ones
/// (the nats-server, the shmbox-bridges).
enum ProcessCPU {
    /// CPU seconds (user + system) process `pid` has used so far, from /proc/<pid>/stat; 0 if it
    /// cannot be read (the process is gone).
    static func seconds(_ pid: pid_t) -> Double {
        guard let text = Sys.readSmallFile("/proc/\(pid)/stat"),
              let close = text.lastIndex(of: ")") else { return 0 }
        // After the command name: state is field 3, utime and stime fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
