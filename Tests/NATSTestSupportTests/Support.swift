import Foundation
import NATSTestSupport
import Testing

/// Why the NATS suites are skipped when `nats-server` is missing.
let notInstalledComment: Comment = "nats-server is not installed (apt-get install nats-server)"

/// Parses a monitoring endpoint's JSON body into a dictionary.
func json(_ body: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
}

/// `true` if a process with this id exists (zombies included).
func processExists(_ pid: pid_t) -> Bool {
    kill(pid, 0) == 0 || errno != ESRCH
}
