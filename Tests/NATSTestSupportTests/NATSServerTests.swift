import Foundation
import NATSTestSupport
import Testing

@Suite("NATSServer: one real nats-server", .enabled(if: NATSServer.isInstalled, notInstalledComment))
struct NATSServerTests {
    @Test func startsHealthyWithJetStreamOnLoopback() throws {
        let server = try NATSServer()
        #expect(server.url == "nats://127.0.0.1:\(server.port)")
        #expect(server.port != server.monitorPort)
        let pid = try #require(server.pid)
        #expect(processExists(pid))
        #expect(try server.monitor("/healthz?js-enabled=true").contains("ok"))
        let varz = try json(server.monitor("/varz"))
        #expect(varz["port"] as? Int == server.port)
        #expect(varz["http_port"] as? Int == server.monitorPort)
        let jsz = try json(server.monitor("/jsz"))
        let config = try #require(jsz["config"] as? [String: Any])
        #expect(config["store_dir"] as? String == server.storeDirectory + "/jetstream")
        #expect(server.logTail().contains("Server is ready"))
    }

    @Test func restartKeepsPortAndStoreDirectory() throws {
        let server = try NATSServer()
        let (port, monitorPort, store) = (server.port, server.monitorPort, server.storeDirectory)
        let firstPid = try #require(server.pid)
        let marker = store + "/jetstream/marker"
        try "kept".write(toFile: marker, atomically: true, encoding: .utf8)

        // nats-server handles SIGTERM by shutting down and exiting (with status 1), not by dying of the signal.
        let stopped = server.stop()
        #expect(stopped == .exited(1) || stopped == .exited(0), "clean shutdown: \(String(describing: stopped))")
        #expect(server.logTail().contains("Server Exiting"))
        #expect(server.pid == nil && !server.isRunning)
        #expect(throws: (any Error).self, "nothing listens while stopped") { try server.monitor("/healthz") }

        try server.restart()
        let secondPid = try #require(server.pid)
        #expect(secondPid != firstPid)
        #expect(server.port == port && server.monitorPort == monitorPort && server.storeDirectory == store)
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == "kept")
        let jsz = try json(server.monitor("/jsz"))
        #expect((jsz["config"] as? [String: Any])?["store_dir"] as? String == store + "/jetstream")
    }

    @Test func killNineThenRestart() throws {
        let server = try NATSServer()
        let port = server.port
        let pid = try #require(server.pid)
        #expect(server.kill() == .signaled(SIGKILL))
        #expect(!processExists(pid), "killed and reaped")
        #expect(server.pid == nil)
        try server.restart()
        #expect(server.port == port)
        #expect(try server.monitor("/healthz?js-enabled=true").contains("ok"))
        // Restarting a running server stops it first.
        let running = try #require(server.pid)
        try server.restart()
        #expect(server.pid != running && server.isRunning)
    }

    @Test func optionsReachTheServer() throws {
        let server = try NATSServer(options: .init(token: "s3cret", maxPayload: 4096, extraConfiguration: "max_connections: 17"))
        let varz = try json(server.monitor("/varz"))
        #expect(varz["auth_required"] as? Bool == true)
        #expect(varz["max_payload"] as? Int == 4096)
        #expect(varz["max_connections"] as? Int == 17)
        let config = try String(contentsOfFile: server.configurationPath, encoding: .utf8)
        #expect(config.contains("token: \"s3cret\""))
    }

    @Test func userAndPasswordWithoutJetStream() throws {
        let server = try NATSServer(options: .init(jetStream: false, user: "alice", password: "pw"))
        let varz = try json(server.monitor("/varz"))
        #expect(varz["auth_required"] as? Bool == true)
        #expect(try server.monitor("/healthz").contains("ok"))
        #expect(!FileManager.default.fileExists(atPath: server.storeDirectory), "no JetStream, no store")
    }

    @Test func aServerThatCannotStartReportsItsLog() throws {
        do {
            _ = try NATSServer(options: .init(extraConfiguration: "this_is { not valid"))
            Issue.record("a broken configuration should not start")
        } catch let error as NATSServerError {
            guard case .notReady(_, let reason, let logTail) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(reason.contains("exited"))
            #expect(!logTail.isEmpty)
            #expect("\(error)".contains("last lines of its log"))
        }
    }

    @Test func deinitStopsTheServerAndRemovesItsDirectory() throws {
        var server: NATSServer? = try NATSServer()
        let pid = try #require(server?.pid)
        let directory = try #require(server?.directory)
        #expect(FileManager.default.fileExists(atPath: directory))
        server = nil
        #expect(!processExists(pid))
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test func notInstalledSaysHowToInstall() {
        #expect(NATSServerError.notInstalled.description.contains("apt-get install nats-server"))
    }
}

@Suite("Leftovers of dead test processes", .enabled(if: NATSServer.isInstalled, notInstalledComment))
struct LeftoverTests {
    @Test func serversAndDirectoriesOfADeadOwnerAreRemoved() throws {
        // The first server of a process sweeps leftovers once; make sure that has happened (here or
        // in a parallel test) before faking leftovers, or that sweep could remove them mid-test.
        let live = try NATSServer(options: .init(jetStream: false))
        // As a test process that was killed would leave them: pid 4194303 (above the default pid_max) is never alive.
        let directory = NSTemporaryDirectory() + "shmmb-nats-4194303-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "listen: \"127.0.0.1:-1\"\n".write(toFile: directory + "/server.conf", atomically: true, encoding: .utf8)
        let orphan = try SpawnedProcess(executable: try #require(NATSServer.executablePath),
                                        arguments: ["-c", directory + "/server.conf"],
                                        standardOutputPath: "/dev/null", standardErrorPath: "/dev/null")
        defer { orphan.killAndWait() }
        // Wait until its command line shows (posix_spawn returns during the exec; /proc/PID/cmdline
        // stays empty for a moment after that, even once /proc/PID/comm names the new program).
        let deadline = ContinuousClock.now + .seconds(5)
        while !String(decoding: FileManager.default.contents(atPath: "/proc/\(orphan.pid)/cmdline") ?? Data(), as: UTF8.self)
                .contains(directory), ContinuousClock.now < deadline { usleep(5_000) }

        NATSServer.removeLeftovers()

        #expect(orphan.wait(timeout: .seconds(5)) == .signaled(SIGKILL))
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(live.isRunning && FileManager.default.fileExists(atPath: live.directory), "live owners' servers are kept")
    }
}
