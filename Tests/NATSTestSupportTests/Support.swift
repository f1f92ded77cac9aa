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

/// Runs a command (looked up on PATH) with Foundation's `Process`, independent of the code under
/// test; returns its standard output and fails unless it exits with status 0.
@discardableResult
func runCommand(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["PATH"] = (environment["PATH"].map { $0 + ":" } ?? "") + "/usr/sbin:/sbin"
    process.environment = environment
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try #require(process.terminationStatus == 0, "\(arguments) failed")
    return String(decoding: data, as: UTF8.self)
}

/// The names `ip netns list` shows.
func namespaceList() throws -> Set<String> {
    let output = try runCommand(["ip", "netns", "list"])
    return Set(output.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
}
