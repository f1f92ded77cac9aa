import Foundation
import Glibc

/// K simulated machines on one LAN, made of Linux network namespaces (needs root).
///
/// Host `i` is the namespace ``namespace(of:)`` with an interface `eth0` at ``address(of:)``
/// (`10.99.Y.(i+1)/24`) and `lo` up. Every host's `eth0` is one end of a veth pair whose other end
/// sits on a bridge in a separate "switch" namespace, so the test machine's own namespace is never
/// touched. Names start with `shmmb<pid>n<seq>`, so parallel runs and parallel tests do not collide,
/// and namespaces left by a test process that died are removed by the next ``init(count:)``.
///
/// ```swift
/// let hosts = try NetworkHosts(count: 3)
/// let pinger = try hosts.run(host: 0, executable: "ping", arguments: ["-c1", hosts.address(of: 1)])
/// ```
///
/// ``tearDown()`` (also run by `deinit`) kills the processes started with ``run(host:executable:arguments:environment:)``
/// and deletes the namespaces; deleting a namespace destroys its veth ends and the bridge.
public final class NetworkHosts: @unchecked Sendable {
    /// Whether network namespaces can be used here, and if not, why.
    public struct Availability: Sendable, CustomStringConvertible {
        /// `true` if the feature works here.
        public let isAvailable: Bool
        /// Why it does not (empty when it does).
        public let reason: String

        public var description: String { isAvailable ? "available" : "unavailable: \(reason)" }
    }

    /// Whether ``NetworkHosts`` works here (root, `ip` present, namespaces, veth and a bridge can be
    /// made, sockets can be opened inside a namespace). Probed once per process, with a scratch namespace.
    ///
    /// For Swift Testing: `.enabled(if: NetworkHosts.availability.isAvailable, Comment(rawValue: NetworkHosts.availability.reason))`.
    public static var availability: Availability { probe.hosts }

    /// Whether ``netem(host:delay:loss:)`` works here: `tc` is present and the kernel has the netem
    /// queueing discipline (`CONFIG_NET_SCH_NETEM`; some VM kernels lack it).
    public static var netemAvailability: Availability { probe.netem }

    /// The number of hosts.
    public let count: Int
    /// The prefix of every namespace name of this instance, `shmmb<pid>n<seq>`.
    public let prefix: String
    /// The namespace holding the bridge that connects the hosts.
    public let switchNamespace: String
    /// The interface name of each host's link to the switch.
    public let interface = "eth0"

    private let subnet: String
    private let outputDirectory: String
    private let lock = NSLock()
    private var processes: [SpawnedProcess] = []
    private var created: [String] = []
    private var torn = false

    /// Creates `count` hosts connected by a bridge.
    /// - Throws: ``NetworkHostsError/unavailable(_:)`` (with ``availability``'s reason), or
    ///   ``NetworkHostsError/commandFailed(command:status:output:)``; anything half-made is removed.
    public init(count: Int) throws {
        precondition(count >= 1 && count <= 250, "1...250 hosts")
        let availability = Self.availability
        guard availability.isAvailable else { throw NetworkHostsError.unavailable(availability.reason) }
        Self.removeStaleNamespaces()
        let sequence = Self.nextSequence()
        self.count = count
        prefix = "shmmb\(getpid())n\(sequence)"
        switchNamespace = prefix + "sw"
        subnet = "10.99.\(sequence % 256)"
        outputDirectory = try TemporaryDirectory.make("shmmb-hosts")
        do {
            try build()
        } catch {
            tearDown()
            throw error
        }
    }

    deinit { tearDown() }

    /// The namespace name of host `host` (`<prefix>h<host>`), for `ip netns exec` or `ip -n`.
    public func namespace(of host: Int) -> String {
        precondition(host >= 0 && host < count, "no host \(host)")
        return prefix + "h\(host)"
    }

    /// The IPv4 address of host `host` (`10.99.Y.(host+1)`).
    public func address(of host: Int) -> String {
        precondition(host >= 0 && host < count, "no host \(host)")
        return "\(subnet).\(host + 1)"
    }

    /// Starts `executable` (a name looked up on PATH, or an absolute path) inside host `host` with
    /// `ip netns exec`, which execs it: the returned process's pid is the program's own.
    ///
    /// Standard output and error go to separate files in a directory removed by ``tearDown()``.
    /// The process is killed by ``tearDown()`` if still running.
    /// - Parameter environment: the whole environment; `nil` inherits the test process's.
    public func run(host: Int, executable: String, arguments: [String] = [],
                    environment: [String: String]? = nil) throws -> SpawnedProcess {
        let namespace = namespace(of: host)
        guard let program = executable.hasPrefix("/") ? executable : Executables.find(executable) else {
            throw NATSServerError.io("\(executable) not found on PATH")
        }
        let ip = try Self.ipPath()
        return try lock.withLock {
            guard !torn else { throw NetworkHostsError.unavailable("these hosts were torn down") }
            let stem = outputDirectory + "/h\(host)-\(processes.count)"
            let process = try SpawnedProcess(executable: ip, arguments: ["netns", "exec", namespace, program] + arguments,
                                             environment: environment,
                                             standardOutputPath: stem + ".out", standardErrorPath: stem + ".err")
            processes.append(process)
            return process
        }
    }

    /// Runs a short command inside host `host` to completion (killed after `timeout`).
    public func execute(host: Int, _ command: [String], timeout: Duration = .seconds(30)) throws -> CommandResult {
        try Command.run(["ip", "netns", "exec", namespace(of: host)] + command, timeout: timeout)
    }

    /// Delays and/or drops the packets host `host` sends (its `eth0` egress), with
    /// `tc qdisc replace … root netem`. Both `nil` removes the impairment.
    /// - Parameters:
    ///   - delay: added to every packet leaving the host (a ping between two hosts sees it once).
    ///   - loss: the fraction of packets dropped, 0...1.
    /// - Throws: ``NetworkHostsError/unavailable(_:)`` if ``netemAvailability`` says no.
    public func netem(host: Int, delay: Duration? = nil, loss: Double? = nil) throws {
        let namespace = namespace(of: host)
        guard delay != nil || loss != nil else {
            let result = try Command.run(["tc", "-n", namespace, "qdisc", "del", "dev", interface, "root"])
            // Deleting when no netem is installed fails harmlessly.
            if !result.succeeded && !result.output.contains("No such file") && !result.output.contains("Cannot delete") {
                throw NetworkHostsError.commandFailed(command: ["tc", "qdisc", "del"], status: result.status, output: result.output)
            }
            return
        }
        let netem = Self.netemAvailability
        guard netem.isAvailable else { throw NetworkHostsError.unavailable(netem.reason) }
        var arguments = ["tc", "-n", namespace, "qdisc", "replace", "dev", interface, "root", "netem"]
        if let delay {
            let microseconds = delay.components.seconds * 1_000_000 + delay.components.attoseconds / 1_000_000_000_000
            arguments += ["delay", "\(microseconds)us"]
        }
        if let loss {
            precondition((0...1).contains(loss), "loss is a fraction 0...1")
            arguments += ["loss", String(format: "%.4f%%", loss * 100)]
        }
        try Command.check(arguments)
    }

    /// Where netem is missing: drops the fraction `loss` of the packets host `host` sends (an
    /// nftables rule, `numgen random`) and limits its sending rate to `rate` bits per second
    /// (a token-bucket qdisc whose queue adds delay under load). Both `nil` removes them.
    /// Needs the `nft` tool (Debian's nftables).
    public func impair(host: Int, loss: Double? = nil, rate: Int? = nil) throws {
        let namespace = namespace(of: host)
        _ = try? Command.run(["nft", "delete", "table", "inet", "shmmbloss"].prefixed(namespace))
        _ = try? Command.run(["tc", "-n", namespace, "qdisc", "del", "dev", interface, "root"])
        if let loss {
            precondition((0...1).contains(loss), "loss is a fraction 0...1")
            let percent = Int((loss * 100).rounded())
            try Command.check(["nft", "add", "table", "inet", "shmmbloss"].prefixed(namespace))
            try Command.check(["nft", "add", "chain", "inet", "shmmbloss", "out",
                               "{ type filter hook output priority 0; }"].prefixed(namespace))
            try Command.check(["nft", "add", "rule", "inet", "shmmbloss", "out", "oifname", interface,
                               "numgen", "random", "mod", "100", "<", "\(percent)", "drop"].prefixed(namespace))
        }
        if let rate {
            try Command.check(["tc", "-n", namespace, "qdisc", "replace", "dev", interface, "root", "tbf",
                               "rate", "\(rate)bit", "burst", "32kbit", "latency", "100ms"])
        }
    }

    /// Whether `impair` can work here: the `nft` tool is installed.
    public static var impairAvailability: Availability {
        Executables.find("nft") != nil
            ? Availability(isAvailable: true, reason: "")
            : Availability(isAvailable: false, reason: "the nft tool is not installed (apt-get install nftables)")
    }

    /// Takes host `host`'s link down (a cable pulled: the host is cut off, its processes keep
    /// running) or brings it back up.
    public func setLink(host: Int, up: Bool) throws {
        try Command.check(["ip", "-n", namespace(of: host), "link", "set", interface, up ? "up" : "down"])
    }

    /// Kills the processes started with ``run(host:executable:arguments:environment:)`` and
    /// deletes every namespace of this instance. Safe to call more than once.
    public func tearDown() {
        let (processes, namespaces) = lock.withLock {
            torn = true
            defer { self.processes = []; created = [] }
            return (self.processes, created)
        }
        for process in processes { process.killAndWait() }
        for namespace in namespaces.reversed() { Self.deleteNamespace(namespace) }
        TemporaryDirectory.remove(outputDirectory)
    }

    // MARK: - Building

    private func build() throws {
        try addNamespace(switchNamespace)
        try Command.check(["ip", "-n", switchNamespace, "link", "add", "br0", "type", "bridge"])
        try Command.check(["ip", "-n", switchNamespace, "link", "set", "br0", "up"])
        for host in 0..<count {
            let namespace = namespace(of: host)
            let port = "p\(host)"
            try addNamespace(namespace)
            // Both veth ends are created directly in their namespaces: the root namespace never sees them.
            try Command.check(["ip", "-n", namespace, "link", "add", interface, "type", "veth",
                               "peer", "name", port, "netns", switchNamespace])
            try Command.check(["ip", "-n", switchNamespace, "link", "set", port, "master", "br0"])
            try Command.check(["ip", "-n", switchNamespace, "link", "set", port, "up"])
            try Command.check(["ip", "-n", namespace, "addr", "add", address(of: host) + "/24", "dev", interface])
            try Command.check(["ip", "-n", namespace, "link", "set", interface, "up"])
        }
    }

    private func addNamespace(_ name: String) throws {
        try Command.check(["ip", "netns", "add", name])
        lock.withLock { created.append(name) }
        try Command.check(["ip", "-n", name, "link", "set", "lo", "up"])
    }

    private static func deleteNamespace(_ name: String) {
        // `ip netns del` only fails if the name is already gone, or transiently while a mount is busy.
        for _ in 0..<3 {
            guard let result = try? Command.run(["ip", "netns", "del", name]), !result.succeeded else { return }
            if !namespaceNames().contains(name) { return }
            usleep(100_000)
        }
    }

    private static func ipPath() throws -> String {
        guard let ip = Executables.find("ip") else { throw NetworkHostsError.unavailable("`ip` (iproute2) not found") }
        return ip
    }

    // MARK: - Names

    private static let sequenceLock = NSLock()
    nonisolated(unsafe) private static var sequence = 0

    private static func nextSequence() -> Int {
        sequenceLock.withLock {
            defer { sequence += 1 }
            return sequence
        }
    }

    /// The names `ip netns list` shows.
    static func namespaceNames() -> [String] {
        guard let result = try? Command.run(["ip", "netns", "list"]), result.succeeded else { return [] }
        return result.output.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    /// Deletes namespaces named `shmmb<pid>n…` whose creating process no longer exists
    /// (a test run that crashed or was killed before its teardown).
    public static func removeStaleNamespaces() {
        for name in namespaceNames() where name.hasPrefix("shmmb") {
            let digits = name.dropFirst("shmmb".count).prefix { $0.isNumber }
            guard let pid = pid_t(digits), name.dropFirst("shmmb".count + digits.count).hasPrefix("n") else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { deleteNamespace(name) }
        }
    }

    // MARK: - Probing

    private static let probe: (hosts: Availability, netem: Availability) = runProbe()

    private static func runProbe() -> (hosts: Availability, netem: Availability) {
        func no(_ reason: String) -> Availability { Availability(isAvailable: false, reason: reason) }
        let yes = Availability(isAvailable: true, reason: "")
        guard geteuid() == 0 else {
            let reason = no("not root (euid \(geteuid())): network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN")
            return (reason, reason)
        }
        guard Executables.find("ip") != nil else {
            let reason = no("`ip` (iproute2) not found: apt-get install iproute2")
            return (reason, reason)
        }
        removeStaleNamespaces()
        let name = "shmmb\(getpid())nprobe"
        defer { deleteNamespace(name) }
        let steps: [(String, [String])] = [
            ("`ip netns add` failed", ["ip", "netns", "add", name]),
            ("cannot bring up lo in a namespace", ["ip", "-n", name, "link", "set", "lo", "up"]),
            ("cannot create a bridge", ["ip", "-n", name, "link", "add", "br0", "type", "bridge"]),
            ("cannot create a veth pair", ["ip", "-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1"]),
        ]
        for (problem, command) in steps {
            do {
                try Command.check(command, timeout: .seconds(10))
            } catch {
                let reason = no("\(problem): \(error)")
                return (reason, reason)
            }
        }
        do {
            close(try NamespaceSocket.tcp(in: name))
        } catch {
            let reason = no("cannot open a socket inside a namespace: \(error)")
            return (reason, reason)
        }
        guard Executables.find("tc") != nil else { return (yes, no("`tc` (iproute2) not found")) }
        do {
            try Command.check(["tc", "-n", name, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"], timeout: .seconds(10))
        } catch {
            return (yes, no("tc netem does not work here (the kernel may lack sch_netem, CONFIG_NET_SCH_NETEM): \(error)"))
        }
        return (yes, yes)
    }
}

private extension Array where Element == String {
    /// This command run inside network namespace `namespace` (`ip netns exec`).
    func prefixed(_ namespace: String) -> [String] { ["ip", "netns", "exec", namespace] + self }
}
