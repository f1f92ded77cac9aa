import Foundation
import NATSTestSupport
import ShmMailbox
import ShmMailboxNATS
import Testing

/// `shmbox bridge` and `shmbox-bridge` fail as every `shmbox` command does: exactly one
/// `shmbox: error: …` line on standard error and a sysexits-style status (64 usage, 65 data,
/// 69 unavailable, 73 cannot create, 75 temporary, 77 permission). Each case runs the real
/// executables and provokes its failure deterministically.
@Suite(.serialized, .enabled(if: NATSServer.isInstalled, "nats-server is not installed"))
struct BridgeExitStatusTests {
    /// What a finished run left: its status and standard error.
    struct Run {
        var status: NATSTestSupport.ExitStatus?
        var stderr: String
    }

    /// Runs `executable` (`shmbox` or `shmbox-bridge`, from the build directory) to its end.
    func run(_ executable: String, _ arguments: [String]) throws -> Run {
        let log = NSTemporaryDirectory() + "shmmb-bridge-status-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer {
            try? FileManager.default.removeItem(atPath: log + ".out")
            try? FileManager.default.removeItem(atPath: log + ".err")
        }
        let process = try SpawnedProcess(executable: BridgeHarness.buildDirectory + "/" + executable, arguments: arguments,
                                         standardOutputPath: log + ".out", standardErrorPath: log + ".err")
        let status = process.wait(timeout: .seconds(20))
        if status == nil { _ = process.killAndWait() }
        return Run(status: status, stderr: process.standardError())
    }

    /// The run exited with `code` and wrote one `shmbox: error:` line that contains `text`.
    func expectFailure(_ run: Run, _ code: Int32, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == .exited(code), "\(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("shmbox: error: ") && run.stderr.hasSuffix("\n"), "\(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.split(separator: "\n").count == 1, "one line: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.contains(text), "\(run.stderr)", sourceLocation: sourceLocation)
    }

    @Test func usageErrorsExit64() throws {
        expectFailure(try run("shmbox-bridge", []), 64, containing: "--nats")
        expectFailure(try run("shmbox-bridge", ["--nats", "nats://127.0.0.1:1", "--export", "x", "--bogus"]), 64, containing: "--bogus")
        // Through shmbox, which passes the arguments on; a negative number is named by its flag.
        expectFailure(try run("shmbox", ["bridge", "--nats", "nats://127.0.0.1:1", "--export", "x", "--batch", "-3"]), 64, containing: "--batch")
        expectFailure(try run("shmbox", ["bridge", "--nats", "nats://127.0.0.1:1", "--export", "a:b:c"]), 64, containing: "a:b:c")
    }

    @Test func stateDirectoryThatCannotBeCreatedExits73() throws {
        let file = NSTemporaryDirectory() + "shmmb-bridge-notadir-\(getpid())"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        defer { try? FileManager.default.removeItem(atPath: file) }
        expectFailure(try run("shmbox-bridge", ["--nats", "nats://127.0.0.1:1", "--export", "x", "--state-dir", file + "/state"]),
                      73, containing: "cannot create the state directory")
    }

    /// Unreachable server, missing local mailbox (without --create): 69.
    @Test func unavailableExits69() throws {
        expectFailure(try run("shmbox-bridge", ["--nats", "nats://127.0.0.1:1", "--export", "x",
                                                "--state-dir", NSTemporaryDirectory() + "shmmb-bridge-status"]),
                      69, containing: "nats://127.0.0.1:1")
        let harness = try BridgeHarness()
        let missing = harness.localName("missing")
        expectFailure(try run("shmbox-bridge", ["--nats", harness.server.url, "--state-dir", harness.stateDirectory, "--export", missing]),
                      69, containing: "local mailbox \"\(missing)\" does not exist")
        try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "shmmb-bridge-status")
    }

    /// A local name whose object is not a mailbox (65) and a mailbox others may write (77).
    @Test func badLocalMailboxesExit65And77() throws {
        let harness = try BridgeHarness()
        let foreign = harness.localName("foreign")
        let path = "/dev/shm/shmmb." + foreign
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x5A, count: 4096),
                                               attributes: [.posixPermissions: 0o600]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        expectFailure(try run("shmbox-bridge", ["--nats", harness.server.url, "--state-dir", harness.stateDirectory, "--export", foreign]),
                      65, containing: foreign)

        let open = harness.localName("open")
        let box = try Mailbox.create(open, options: MailboxOptions(capacity: 4, permissions: 0o666))
        defer {
            box.close()
            try? FileManager.default.removeItem(atPath: "/dev/shm/shmmb." + open)
        }
        expectFailure(try run("shmbox-bridge", ["--nats", harness.server.url, "--state-dir", harness.stateDirectory, "--export", open]),
                      77, containing: open)
    }

    /// A failure while relaying (not only at start) is one line and a status too: the remote
    /// mailbox an import feeds from is deleted under it, and the bridge ends with 69.
    @Test func remoteMailboxDeletedWhileImportingExits69() throws {
        let harness = try BridgeHarness()
        let name = harness.localName("gone")
        let bridge = try harness.startBridge(["--import", name, "--create", "--capacity", "64", "--max-message-size", "64"])
        let remote = try harness.openRemote(name)
        try remote.send(Array("first".utf8))
        remote.close()
        // Once the message is in the local mailbox, the bridge is relaying.
        let deadline = ContinuousClock.now + .seconds(20)
        var local: Mailbox?
        while local == nil, ContinuousClock.now < deadline {
            local = try? Mailbox.open(name)
            if local == nil { usleep(20_000) }
        }
        let box = try #require(local, "\(harness.bridgeLogs)")
        defer { box.close() }
        #expect(try box.receive(timeout: .seconds(20)).string == "first", "\(harness.bridgeLogs)")
        try RemoteMailbox.delete(name, on: harness.connection)
        let status = bridge.wait(timeout: .seconds(20))
        expectFailure(Run(status: status, stderr: bridge.standardError()), 69, containing: "remote mailbox '\(name)'")
    }

    /// A second bridge on the same journal while the first relays: 75 (try again later, or
    /// give it another --state-dir).
    @Test func secondBridgeOnTheSameJournalExits75() throws {
        let harness = try BridgeHarness()
        let name = harness.localName("busy")
        let local = try Mailbox.create(name, options: MailboxOptions(capacity: 8, maxMessageSize: 64))
        defer { local.close() }
        let arguments = ["--export", name, "--create", "--capacity", "64", "--max-message-size", "64"]
        let first = try harness.startBridge(arguments)
        // Once a message went through, the first bridge holds its journal.
        try local.send("through")
        let remote = try harness.openRemote(name)
        defer { remote.close() }
        #expect(try remote.receive(timeout: .seconds(20)).string == "through", "\(harness.bridgeLogs)")
        expectFailure(try run("shmbox", ["bridge", "--nats", harness.server.url, "--state-dir", harness.stateDirectory] + arguments),
                      75, containing: "another bridge is relaying")
        #expect(first.isRunning, "the first bridge goes on")
    }
}
