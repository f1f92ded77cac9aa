import Foundation
import NATSTestSupport
import Testing

@Suite("NATSCluster on network namespaces", .enabled(if: NetworkHosts.availability.isAvailable, hostsComment),
       .enabled(if: NATSServer.isInstalled, notInstalledComment))
struct NamespaceClusterTests {
    @Test func threeHostClusterElectsALeaderAndSurvivesKillNine() throws {
        let cluster = try NATSCluster(hosts: try NetworkHosts(count: 3))
        let hosts = try #require(cluster.hosts)
        #expect(cluster.urls == (0..<3).map { "nats://\(hosts.address(of: $0)):4222" })
        let leader = try #require(cluster.metaLeader())
        #expect(["n0", "n1", "n2"].contains(leader))

        // The pid is nats-server itself (`ip netns exec` execs it), so SIGKILL hits the server.
        let victim = cluster.servers[1]
        let pid = try #require(victim.pid)
        let command = try String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)
        #expect(command.hasPrefix("nats-server"))
        #expect(victim.namespace == hosts.namespace(of: 1))

        #expect(cluster.kill(1) == .signaled(SIGKILL))
        let survivorLeader = try cluster.waitForMetaLeader()
        #expect(survivorLeader != "n1")
        try cluster.restart(1)
        #expect(victim.isRunning && victim.pid != pid)
        #expect(try victim.monitor("/healthz?js-enabled=true").contains("ok"))
        #expect(cluster.metaLeader() != nil)
    }
}
