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

/// Why the namespace suites are skipped, if they are.
let hostsComment = Comment(rawValue: "network namespaces " + NetworkHosts.availability.description)

/// Why the netem test is skipped, if it is.
let netemComment = Comment(rawValue: "tc netem " + NetworkHosts.netemAvailability.description)

/// Whether `ping` (iputils-ping) is installed.
let pingInstalled = ["/usr/bin/ping", "/bin/ping", "/usr/sbin/ping"].contains { FileManager.default.isExecutableFile(atPath: $0) }

extension NetworkHosts {
    /// One ping from host `from` to host `to`: the round-trip time in milliseconds, or `nil` if no reply came.
    func pingMilliseconds(from: Int, to: Int, timeoutSeconds: Int = 1) throws -> Double? {
        let result = try execute(host: from, ["ping", "-n", "-c1", "-W\(timeoutSeconds)", address(of: to)], timeout: .seconds(10))
        guard result.succeeded, let range = result.output.range(of: "time=") else { return nil }
        return Double(result.output[range.upperBound...].prefix { $0.isNumber || $0 == "." })
    }
}

/// Runs a command (looked up on PATH, plus /usr/sbin and /sbin) to completion; returns its standard
/// output and fails unless it exits with status 0 within 30 s.
///
/// Spawned with `SpawnedProcess` rather than Foundation's `Process`: on Linux, `Process` children
/// inherit every descriptor not marked close-on-exec (pipes and exit-detection sockets of other
/// tests' processes), which makes concurrent tests wait on each other's children.
@discardableResult
func runCommand(_ arguments: [String]) throws -> String {
    let output = NSTemporaryDirectory() + "natsinfra-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    defer {
        try? FileManager.default.removeItem(atPath: output + ".out")
        try? FileManager.default.removeItem(atPath: output + ".err")
    }
    var environment = ProcessInfo.processInfo.environment
    environment["PATH"] = (environment["PATH"].map { $0 + ":" } ?? "") + "/usr/sbin:/sbin"
    let process = try SpawnedProcess(executable: "/usr/bin/env", arguments: arguments, environment: environment,
                                     standardOutputPath: output + ".out", standardErrorPath: output + ".err")
    let status = process.wait(timeout: .seconds(30))
    if status == nil { process.killAndWait() }
    try #require(status == .exited(0), "\(arguments): \(String(describing: status)): \(process.standardError())")
    return process.standardOutput()
}

/// The names `ip netns list` shows.
func namespaceList() throws -> Set<String> {
    let output = try runCommand(["ip", "netns", "list"])
    return Set(output.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
}
