import Foundation
import Glibc

/// N real nats-servers forming one JetStream cluster: on loopback with distinct free ports, or one
/// server per ``NetworkHosts`` host (each listening on its host's address).
///
/// Ready means: every server's `/healthz?js-enabled=true` answers 200, and the cluster is settled
/// (``metaLeader()``): all members agree on a running meta leader, count every member in the meta
/// group, and are routed to each other.
///
/// ```swift
/// let cluster = try NATSCluster(size: 3)                 // loopback
/// connect(to: cluster.urls)
/// cluster.kill(0); try cluster.restart(0)                // crash one member, bring it back
/// let wide = try NATSCluster(hosts: try NetworkHosts(count: 3))   // one server per namespace
/// ```
public final class NATSCluster: @unchecked Sendable {
    /// The cluster's name (`cluster { name }`).
    public let name: String
    /// The members, in order; member `i` is named `n<i>` (its `server_name`).
    public let servers: [NATSServer]
    /// The hosts the members run on (one each), or `nil` on loopback. Kept alive by the cluster.
    public let hosts: NetworkHosts?

    /// Starts `size` servers on 127.0.0.1 and waits until the cluster is ready. If another process
    /// takes a picked port first, the whole cluster is started again on fresh ports (a few times).
    /// - Parameter options: applied to every member; JetStream must be on.
    public convenience init(size: Int = 3, options: NATSServer.Options = .init(),
                            leaderTimeout: Duration = .seconds(30)) throws {
        precondition(size >= 1)
        var attempt = 1
        while true {
            let ports = try FreePort.pick(3 * size)
            let client = Array(ports[0..<size]), monitor = Array(ports[size..<2 * size]), route = Array(ports[(2 * size)...])
            let members = try (0..<size).map { index in
                try NATSServer(name: "n\(index)", host: "127.0.0.1", namespace: nil, options: options) { _ in
                    (client[index], monitor[index], .init(name: Self.clusterName, port: route[index],
                                                          routes: route.map { "nats-route://127.0.0.1:\($0)" }))
                }
            }
            do {
                try Self.launch(members, leaderTimeout: leaderTimeout)
                self.init(servers: members, hosts: nil)
                return
            } catch NATSServerError.notReady(_, _, _) where attempt < 4
                        && members.contains(where: { $0.logTail(lines: 200).contains("address already in use") }) {
                attempt += 1  // The failed members stop and remove their directories as they go.
            }
        }
    }

    /// Starts one server on each of `hosts`' hosts (client 4222, monitoring 8222, routes 6222 on the
    /// host's address; namespaces have their own ports, so these are always free) and waits until
    /// the cluster is ready.
    public convenience init(hosts: NetworkHosts, options: NATSServer.Options = .init(),
                            leaderTimeout: Duration = .seconds(30)) throws {
        let routes = (0..<hosts.count).map { "nats-route://\(hosts.address(of: $0)):6222" }
        let members = try (0..<hosts.count).map { index in
            try NATSServer(name: "n\(index)", host: hosts.address(of: index), namespace: hosts.namespace(of: index),
                           options: options) { _ in (4222, 8222, .init(name: Self.clusterName, port: 6222, routes: routes)) }
        }
        try Self.launch(members, leaderTimeout: leaderTimeout)
        self.init(servers: members, hosts: hosts)
    }

    private init(servers: [NATSServer], hosts: NetworkHosts?) {
        name = Self.clusterName
        self.servers = servers
        self.hosts = hosts
    }

    private static let clusterName = "shmmb-test"

    /// Starts prepared members and waits until the cluster is ready.
    private static func launch(_ servers: [NATSServer], leaderTimeout: Duration) throws {
        precondition(servers.allSatisfy(\.options.jetStream), "a NATSCluster needs JetStream (its readiness is a meta leader)")
        // All members must run before any can be healthy: JetStream waits for a quorum.
        for server in servers { try server.start() }
        for server in servers { try server.waitUntilReady() }
        _ = try waitForMetaLeader(of: servers, timeout: leaderTimeout)
    }

    deinit {
        // Stop members together rather than one by one (each clean shutdown waits for its peers otherwise).
        for server in servers { server.signalStop() }
        for server in servers { server.stop(grace: .seconds(5)) }
    }

    /// The members' client URLs, `nats://HOST:PORT`, in member order.
    public var urls: [String] { servers.map(\.url) }

    /// Kills member `index` with SIGKILL and waits for it to end.
    @discardableResult
    public func kill(_ index: Int) -> ExitStatus? { servers[index].kill() }

    /// Stops member `index` with SIGTERM and waits for it to end.
    @discardableResult
    public func stop(_ index: Int) -> ExitStatus? { servers[index].stop() }

    /// Restarts member `index` (same ports and store), waits until it is healthy and the cluster
    /// has an agreed meta leader again.
    public func restart(_ index: Int, leaderTimeout: Duration = .seconds(30)) throws {
        try servers[index].restart()
        try waitForMetaLeader(timeout: leaderTimeout)
    }

    /// The meta leader's name if the cluster is settled, else `nil`. Settled means every running
    /// member names the same meta leader, itself a running member; counts all members (running or not)
    /// in its meta group (`cluster_size`); and has a route to every other running member.
    public func metaLeader() -> String? { Self.metaLeader(of: servers) }

    private static func metaLeader(of servers: [NATSServer]) -> String? {
        let running = servers.filter(\.isRunning)
        guard !running.isEmpty else { return nil }
        var leaders = Set<String>()
        for server in running {
            guard let jsz = try? object(server.monitor("/jsz")),
                  let meta = jsz["meta_cluster"] as? [String: Any],
                  let leader = meta["leader"] as? String, !leader.isEmpty,
                  meta["cluster_size"] as? Int == servers.count,
                  let routez = try? object(server.monitor("/routez")),
                  let routes = routez["num_routes"] as? Int, routes >= running.count - 1 else { return nil }
            leaders.insert(leader)
        }
        guard leaders.count == 1, let leader = leaders.first, running.contains(where: { $0.name == leader }) else { return nil }
        return leader
    }

    private static func object(_ body: String) throws -> [String: Any]? {
        try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
    }

    /// Waits until ``metaLeader()`` names a leader, and returns it.
    /// - Throws: ``NATSServerError/notReady(server:reason:logTail:)`` with every member's log tail.
    @discardableResult
    public func waitForMetaLeader(timeout: Duration = .seconds(30)) throws -> String {
        try Self.waitForMetaLeader(of: servers, timeout: timeout)
    }

    private static func waitForMetaLeader(of servers: [NATSServer], timeout: Duration) throws -> String {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let leader = metaLeader(of: servers) { return leader }
            if ContinuousClock.now >= deadline {
                let logs = servers.map { "== \($0.name) (\($0.isRunning ? "running" : "stopped")) ==\n\($0.logTail(lines: 15))" }
                throw NATSServerError.notReady(server: "cluster \(clusterName)", reason: "no agreed meta leader within \(timeout)",
                                               logTail: logs.joined(separator: "\n"))
            }
            usleep(100_000)
        }
    }
}
