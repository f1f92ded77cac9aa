import Foundation
import NATSTestSupport
import Testing

@Suite("NATSCluster: JetStream clusters on loopback", .enabled(if: NATSServer.isInstalled, notInstalledComment))
struct NATSClusterTests {
    @Test func threeServersElectAMetaLeader() throws {
        let cluster = try NATSCluster(size: 3)
        let leader = try #require(cluster.metaLeader())
        #expect(["n0", "n1", "n2"].contains(leader))
        #expect(Set(cluster.urls).count == 3)
        #expect(cluster.urls.allSatisfy { $0.hasPrefix("nats://127.0.0.1:") })
        for server in cluster.servers {
            let meta = try #require(try json(server.monitor("/jsz"))["meta_cluster"] as? [String: Any])
            #expect(meta["cluster_size"] as? Int == 3)
            #expect(meta["leader"] as? String == leader)
            let routes = try json(server.monitor("/routez"))
            #expect((routes["num_routes"] as? Int ?? 0) >= 2, "\(server.name) is routed to both others")
        }
    }

    @Test func killingTheLeaderElectsAnotherAndItRejoinsAfterRestart() throws {
        let cluster = try NATSCluster(size: 3)
        let leader = try cluster.waitForMetaLeader()
        let index = try #require(cluster.servers.firstIndex { $0.name == leader })
        let port = cluster.servers[index].port

        #expect(cluster.kill(index) == .signaled(SIGKILL))
        let successor = try cluster.waitForMetaLeader()
        #expect(successor != leader, "two of three keep a quorum and elect a new leader")

        try cluster.restart(index)
        #expect(cluster.servers.allSatisfy { $0.isRunning })
        #expect(cluster.servers[index].port == port)
        let meta = try #require(try json(cluster.servers[index].monitor("/jsz"))["meta_cluster"] as? [String: Any])
        #expect(meta["leader"] as? String == cluster.metaLeader(), "the restarted member follows the agreed leader")
    }
}
