import Foundation
import NATSTestSupport
import Testing

@Suite("NetworkHosts: machines made of network namespaces", .enabled(if: NetworkHosts.availability.isAvailable, hostsComment))
struct NetworkHostsTests {
    @Test(.enabled(if: pingInstalled, "ping is not installed (apt-get install iputils-ping)"))
    func threeHostsPingEachOther() throws {
        let hosts = try NetworkHosts(count: 3)
        for from in 0..<3 {
            for to in 0..<3 where to != from {
                let result = try hosts.execute(host: from, ["ping", "-n", "-c1", "-W1", hosts.address(of: to)])
                #expect(result.succeeded, "host \(from) -> \(hosts.address(of: to)): \(result.output)")
            }
        }
    }

    @Test(.enabled(if: pingInstalled && NetworkHosts.impairAvailability.isAvailable, "needs ping and nft"))
    func impairDropsPacketsAndIsUndone() throws {
        let hosts = try NetworkHosts(count: 2)
        try hosts.impair(host: 0, loss: 0.5)
        let lossy = try hosts.execute(host: 0, ["ping", "-n", "-q", "-c", "40", "-i", "0.01", "-W", "1", hosts.address(of: 1)])
        // 40 echo requests, each dropped with probability 1/2: all 40 through happens 1 in 2^40.
        #expect(!lossy.output.contains(" 0% packet loss"), "\(lossy.output)")
        try hosts.impair(host: 0)
        let clean = try hosts.execute(host: 0, ["ping", "-n", "-q", "-c", "10", "-i", "0.01", "-W", "1", hosts.address(of: 1)])
        #expect(clean.output.contains(" 0% packet loss"), "\(clean.output)")
    }

    @Test func processesRunInsideTheirHostWithOutputCaptured() throws {
        let hosts = try NetworkHosts(count: 2)
        let shell = try hosts.run(host: 1, executable: "sh",
                                  arguments: ["-c", "ip -o -4 addr show eth0; echo \"$GREETING\" >&2; exit 3"],
                                  environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "GREETING": "hello"])
        #expect(shell.wait(timeout: .seconds(10)) == .exited(3))
        #expect(shell.standardOutput().contains(hosts.address(of: 1) + "/24"))
        #expect(!shell.standardOutput().contains(hosts.address(of: 0)))
        #expect(shell.standardError() == "hello\n")
    }

    @Test func tearDownKillsProcessesAndDeletesNamespaces() throws {
        let hosts = try NetworkHosts(count: 2)
        let names = [hosts.switchNamespace, hosts.namespace(of: 0), hosts.namespace(of: 1)]
        let before = try namespaceList()
        #expect(Set(names).isSubset(of: before))
        let sleeper = try hosts.run(host: 0, executable: "sleep", arguments: ["600"])
        #expect(sleeper.isRunning)
        #expect(sleeper.wait(timeout: .milliseconds(100)) == nil, "still running")
        sleeper.send(SIGSTOP)  // even a stopped process is killed
        hosts.tearDown()
        #expect(sleeper.poll() == .signaled(SIGKILL))
        #expect(!processExists(sleeper.pid))
        let after = try namespaceList()
        #expect(Set(names).isDisjoint(with: after))
        hosts.tearDown()  // idempotent
        #expect(throws: NetworkHostsError.self) { try hosts.run(host: 0, executable: "true") }
    }

    @Test(.enabled(if: pingInstalled, "ping is not installed (apt-get install iputils-ping)"))
    func aLinkTakenDownCutsTheHostOff() throws {
        let hosts = try NetworkHosts(count: 2)
        #expect(try hosts.pingMilliseconds(from: 0, to: 1) != nil)
        try hosts.setLink(host: 1, up: false)
        #expect(try hosts.pingMilliseconds(from: 0, to: 1) == nil)
        try hosts.setLink(host: 1, up: true)
        // The link needs a moment to carry traffic again.
        let back = try (0..<5).lazy.compactMap { _ in try hosts.pingMilliseconds(from: 0, to: 1) }.first
        #expect(back != nil)
    }

    @Test(.enabled(if: pingInstalled, "ping is not installed (apt-get install iputils-ping)"),
          .enabled(if: NetworkHosts.netemAvailability.isAvailable, netemComment))
    func netemDelayRaisesRoundTripTime() throws {
        let hosts = try NetworkHosts(count: 2)
        let before = try #require(try hosts.pingMilliseconds(from: 0, to: 1))
        try hosts.netem(host: 0, delay: .milliseconds(80))
        let delayed = try #require(try hosts.pingMilliseconds(from: 0, to: 1))
        #expect(delayed >= 80, "the delay is added to every packet host 0 sends")
        #expect(delayed > before + 70)
        try hosts.netem(host: 0)
        let after = try #require(try hosts.pingMilliseconds(from: 0, to: 1))
        #expect(after < 40)
    }

    @Test func staleNamespacesOfDeadProcessesAreRemoved() throws {
        // A name as a crashed run would have left it: pid 4194303 (above the default pid_max) is never alive.
        let stale = "shmmb4194303n0h0"
        // (Not checked to exist first: a parallel test's NetworkHosts may already have swept it.)
        try runCommand(["ip", "netns", "add", stale])
        NetworkHosts.removeStaleNamespaces()
        let after = try namespaceList()
        #expect(!after.contains(stale))
    }
}
