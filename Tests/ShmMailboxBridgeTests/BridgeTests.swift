import CNATS
import Foundation
import MailboxTestSupport
import NATSTestSupport
import ShmMailbox
import ShmMailboxNATS
import Testing

/// End-to-end tests of `shmbox bridge`: a real nats-server, the built `shmbox-bridge` as a child
/// process, self-checking messages (every byte, no duplicate, per-sender order, none missing).
@Suite(.serialized, .enabled(if: NATSServer.isInstalled, "nats-server is not installed"))
struct BridgeTests {
    static let senders: [UInt32] = [1, 2]

    /// Sends `perSender` test messages from each sender into local mailbox `name`, one thread
    /// per sender; returns a group to wait on.
    func sendLocally(_ name: String, perSender: Int) -> DispatchGroup {
        sendFromThreads("local", perSender: perSender) { sender in
            let box = try Mailbox.open(name)
            defer { box.close() }
            for sequence in 0..<UInt64(perSender) { try box.send(bridgeMessage(sender: sender, sequence: sequence)) }
        }
    }

    /// Sends `perSender` test messages from each sender into remote mailbox `name`.
    /// `packed`: in batches of 50 (packs, on an unbounded mailbox).
    func sendRemotely(_ name: String, url: String, perSender: Int, packed: Bool = false) -> DispatchGroup {
        sendFromThreads("remote", perSender: perSender) { sender in
            let box = try RemoteMailbox.open(name, nats: [url])
            defer { box.close() }
            guard packed else {
                for sequence in 0..<UInt64(perSender) { try box.send(bridgeMessage(sender: sender, sequence: sequence)) }
                return
            }
            for start in stride(from: 0, to: perSender, by: 50) {
                try box.batch {
                    for sequence in UInt64(start)..<UInt64(min(start + 50, perSender)) {
                        try box.send(bridgeMessage(sender: sender, sequence: sequence))
                    }
                }
            }
        }
    }

    /// Runs `send` for each sender on a thread of its own, noting its error; a group to wait on.
    private func sendFromThreads(_ label: String, perSender: Int, _ send: @escaping @Sendable (UInt32) throws -> Void) -> DispatchGroup {
        let group = DispatchGroup()
        for sender in Self.senders {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    try send(sender)
                } catch {
                    SenderErrors.shared.note("\(label) sender \(sender): \(error)")
                }
            }.start()
        }
        return group
    }

    /// Receives from `remote` until `total` messages came (or 60 s), then looks `extra` longer
    /// for duplicates.
    func drain(_ remote: RemoteMailbox, total: Int, extra: Duration) -> DeliveryLedger {
        drain(total: total, extra: extra) { timeout, note in
            _ = try? remote.receiveBatch(limit: 256, timeout: timeout) { bytes, _ in bytes.withUnsafeBytes { note($0) } }
        }
    }

    /// Receives from local mailbox `local` as `drain(_:total:extra:)` does.
    func drain(_ local: Mailbox, total: Int, extra: Duration) -> DeliveryLedger {
        drain(total: total, extra: extra) { timeout, note in
            _ = try? local.receiveBatch(limit: 256, timeout: timeout) { bytes, _ in bytes.withUnsafeBytes { note($0) } }
        }
    }

    /// The drain loop, over one batch receive (`batch(timeout, note)`).
    private func drain(total: Int, extra: Duration,
                       _ batch: (Duration, (UnsafeRawBufferPointer) -> Void) -> Void) -> DeliveryLedger {
        var ledger = DeliveryLedger()
        let deadline = ContinuousClock.now + .seconds(60)
        while ledger.count < total && ContinuousClock.now < deadline {
            batch(.milliseconds(500)) { ledger.note($0) }
        }
        let end = ContinuousClock.now + extra
        while ContinuousClock.now < end {
            batch(.milliseconds(200)) { ledger.note($0) }
        }
        return ledger
    }

    /// Every message exactly once, intact; in per-sender order when `ordered` (an import's
    /// redelivery after a kill comes after later messages, as JetStream redelivers).
    func expectExact(_ ledger: DeliveryLedger, perSender: Int, ordered: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(ledger.failures.isEmpty, "\(ledger.failures.prefix(3))", sourceLocation: sourceLocation)
        #expect(ledger.duplicates == 0, "duplicates: \(ledger.duplicateKeys)", sourceLocation: sourceLocation)
        #expect(ledger.missing(senders: Self.senders, perSender: perSender) == 0, "lost", sourceLocation: sourceLocation)
        let senderErrors = SenderErrors.shared.take()
        #expect(senderErrors.isEmpty, "\(senderErrors)", sourceLocation: sourceLocation)
        if ordered { #expect(ledger.outOfOrder == 0, "out of per-sender order", sourceLocation: sourceLocation) }
    }

    /// Starts a bridge with `arguments` and kills it (SIGKILL) 150-600 ms later, five times.
    func killRepeatedly(_ harness: BridgeHarness, _ arguments: [String]) throws {
        for _ in 0..<5 {
            let bridge = try harness.startBridge(arguments)
            usleep(UInt32.random(in: 150_000...600_000))
            _ = bridge.killAndWait()
        }
    }

    /// SIGTERM: the bridge finishes and exits 0 within a few seconds.
    func expectGracefulStop(_ bridge: SpawnedProcess, sourceLocation: SourceLocation = #_sourceLocation) {
        bridge.send(SIGTERM)
        let status = bridge.wait(timeout: .seconds(15))
        #expect(status == .exited(0), "bridge: \(bridge.standardError())", sourceLocation: sourceLocation)
    }

    @Test func exportRelaysEveryMessage() throws {
        let harness = try BridgeHarness()
        let name = harness.localName("e")
        let local = try Mailbox.create(name, options: MailboxOptions(capacity: 128, maxMessageSize: 1024))
        defer { local.close() }
        let bridge = try harness.startBridge(["--export", name, "--create", "--capacity", "8192", "--max-message-size", "1024"])
        let perSender = 1500
        let sending = sendLocally(name, perSender: perSender)
        let ledger = drain(try harness.openRemote(name), total: perSender * Self.senders.count, extra: .milliseconds(500))
        sending.wait()
        expectExact(ledger, perSender: perSender)
        expectGracefulStop(bridge)
        #expect(local.depth == 0)
    }

    @Test func importRelaysEveryMessage() throws {
        let harness = try BridgeHarness()
        let name = harness.localName("i")
        let local = try Mailbox.create(name, options: MailboxOptions(capacity: 4096, maxMessageSize: 1024))
        defer { local.close() }
        _ = try RemoteMailbox.create(name, on: harness.connection, options: RemoteMailboxOptions(capacity: 8192, maxMessageSize: 1024))
        let bridge = try harness.startBridge(["--import", name])
        let perSender = 1500
        let sending = sendRemotely(name, url: harness.server.url, perSender: perSender)
        let ledger = drain(local, total: perSender * Self.senders.count, extra: .milliseconds(500))
        sending.wait()
        expectExact(ledger, perSender: perSender)
        expectGracefulStop(bridge)
    }

    @Test func fullLocalMailboxHoldsRemoteSendersBack() throws {
        let harness = try BridgeHarness()
        let name = harness.localName("p")
        let local = try Mailbox.create(name, options: MailboxOptions(capacity: 10, maxMessageSize: 1024))
        defer { local.close() }
        let remote = try RemoteMailbox.create(name, on: harness.connection,
                                              options: RemoteMailboxOptions(capacity: 40, maxMessageSize: 1024))
        let bridge = try harness.startBridge(["--import", name, "--batch", "8"])
        // Nobody receives locally: accepted sends stop at the remote capacity plus what the full
        // local mailbox took.
        var accepted: UInt64 = 0
        var refusedSince: ContinuousClock.Instant?
        while refusedSince.map({ ContinuousClock.now - $0 < .seconds(2) }) ?? true, accepted < 500 {
            let message = bridgeMessage(sender: 1, sequence: accepted)
            let sent = Result { () throws(RemoteMailboxError) in
                try remote.send(message, timeout: .milliseconds(100), messageID: "pushback-\(accepted)")
            }
            switch sent {
            case .success:
                accepted += 1
                refusedSince = nil
            case .failure(.timedOut):
                refusedSince = refusedSince ?? .now
            case .failure(let error):
                throw error
            }
        }
        #expect(accepted >= 40 && accepted <= 40 + 10 + 1, "accepted \(accepted)")
        #expect(local.depth == 10)
        // Draining the local mailbox lets everything through, each message once.
        var ledger = DeliveryLedger()
        let deadline = ContinuousClock.now + .seconds(30)
        while ledger.count < Int(accepted) && ContinuousClock.now < deadline {
            _ = try? local.receiveBatch(limit: 64, timeout: .milliseconds(300)) { bytes, _ in bytes.withUnsafeBytes { ledger.note($0) } }
        }
        #expect(ledger.count == Int(accepted) && ledger.duplicates == 0 && ledger.failures.isEmpty)
        expectGracefulStop(bridge)
    }

    @Test(arguments: 1...2) func killedExportBridgeLosesAndDoublesNothing(round: Int) throws {
        let harness = try BridgeHarness()
        let name = harness.localName("ke")
        let local = try Mailbox.create(name, options: MailboxOptions(capacity: 64, maxMessageSize: 1024))
        defer { local.close() }
        let arguments = ["--export", name, "--create", "--capacity", "8192", "--max-message-size", "1024"]
        let perSender = 2000
        let sending = sendLocally(name, perSender: perSender)
        try killRepeatedly(harness, arguments)
        let bridge = try harness.startBridge(arguments)
        let ledger = drain(try harness.openRemote(name), total: perSender * Self.senders.count, extra: .seconds(1))
        sending.wait()
        // A message a killed bridge held may come back after up to capacity - 1 later ones (and
        // after later restarts): the journal keeps its entry until it does.
        expectExact(ledger, perSender: perSender, ordered: false)
        expectGracefulStop(bridge)
    }

    @Test(arguments: 1...2) func killedImportBridgeLosesAndDoublesNothing(round: Int) throws {
        try importThroughKills("ki", localCapacity: 8192, remoteCapacity: 8192, packed: false)
    }

    /// The same with packs of 50 (an unbounded remote mailbox, senders sending in batches)
    /// imported 32 at a time: most receives end part-way through a pack, and kills land between
    /// a pack's journal entries and its progress record (the restarted bridge raises it). The
    /// local mailbox is small, and not drained until the kills are over: every kill finds the
    /// bridge blocked part-way through a receive, its journal holding part of a pack.
    @Test func killedImportBridgeOfPackedBatchesLosesAndDoublesNothing() throws {
        try importThroughKills("kp", localCapacity: 100, remoteCapacity: nil, packed: true)
    }

    /// Remote senders send 2000 messages each (`packed`: in batches of 50) into a remote mailbox
    /// (`remoteCapacity` nil: unbounded) that `--import --batch 32` bridges, killed five times,
    /// into a local one; every message arrives exactly once.
    private func importThroughKills(_ label: String, localCapacity: Int, remoteCapacity: Int?, packed: Bool) throws {
        let harness = try BridgeHarness()
        let name = harness.localName(label)
        let local = try Mailbox.create(name, options: MailboxOptions(capacity: .bounded(localCapacity), maxMessageSize: 1024))
        defer { local.close() }
        let remote = try RemoteMailbox.create(name, on: harness.connection,
                                              options: RemoteMailboxOptions(capacity: remoteCapacity.map { .bounded($0) } ?? .unbounded,
                                                                            maxMessageSize: 1024, redeliveryDelay: .seconds(1)))
        let perSender = 2000
        let sending = sendRemotely(name, url: harness.server.url, perSender: perSender, packed: packed)
        try killRepeatedly(harness, ["--import", name, "--batch", "32"])
        let bridge = try harness.startBridge(["--import", name, "--batch", "32"])
        // Past the redelivery delay, so that a doubled redelivery would show.
        let ledger = drain(local, total: perSender * Self.senders.count, extra: .milliseconds(2500))
        sending.wait()
        expectExact(ledger, perSender: perSender, ordered: false)
        if ledger.duplicates > 0 || ledger.count < perSender * Self.senders.count {
            print(harness.bridgeLogs)
            print("remote depth:", (try? remote.depth) ?? -1, "local depth:", local.depth)
            print((try? harness.server.monitor("/jsz?consumers=true")) ?? "")
        }
        if packed { #expect(try remote.depth == 0) }
        expectGracefulStop(bridge)
    }

    /// A remote message that is not a readable pack (published here by hand, bypassing
    /// ShmMailboxNATS) is reported on one line and removed; the import goes on with the next.
    @Test func anImportedMalformedPackIsReportedAndTheRestArrives() throws {
        let harness = try BridgeHarness()
        let name = harness.localName("mp")
        let local = try Mailbox.create(name, options: MailboxOptions(capacity: 64, maxMessageSize: 1024))
        defer { local.close() }
        let remote = try RemoteMailbox.create(name, on: harness.connection, options: RemoteMailboxOptions(capacity: .unbounded, maxMessageSize: 1024))
        var connection: OpaquePointer?
        #expect(natsConnection_ConnectTo(&connection, harness.server.url) == NATS_OK)
        defer { natsConnection_Destroy(connection) }
        var message: OpaquePointer?
        let body: [UInt8] = [9, 0, 0, 0, 65]           // one record claiming 9 bytes; 1 follows
        #expect(body.withUnsafeBytes { natsMsg_Create(&message, "shmmb.\(name)", nil, $0.baseAddress?.assumingMemoryBound(to: CChar.self),
                                                       Int32($0.count)) } == NATS_OK)
        defer { natsMsg_Destroy(message) }
        #expect(natsMsgHeader_Set(message, "Shmmb-Pack", "2") == NATS_OK)
        #expect(natsConnection_PublishMsg(connection, message) == NATS_OK && natsConnection_Flush(connection) == NATS_OK)
        try remote.batch { for text in ["after", "and more"] { try remote.send(text) } }
        let bridge = try harness.startBridge(["--import", name])
        #expect(try local.receive(timeout: .seconds(20)).string == "after", "\(harness.bridgeLogs)")
        #expect(try local.receive(timeout: .seconds(5)).string == "and more")
        #expect(bridge.isRunning)
        #expect(bridge.standardError().contains("was malformed and has been removed"), "\(bridge.standardError())")
        // The bridge acknowledges the pack only after the local mailbox holds its messages, so
        // the remote depth reaches 0 shortly after the receives above, not necessarily before.
        #expect(try eventually { try remote.depth == 0 }, "remote depth \((try? remote.depth) ?? -1)")
        expectGracefulStop(bridge)
    }

    @Test func sigtermMidStreamFinishesTheMessageAndExitsZero() throws {
        let harness = try BridgeHarness()
        let name = harness.localName("t")
        let local = try Mailbox.create(name, options: MailboxOptions(capacity: 64, maxMessageSize: 1024))
        defer { local.close() }
        let arguments = ["--export", name, "--create", "--capacity", "8192", "--max-message-size", "1024"]
        let perSender = 1500
        let sending = sendLocally(name, perSender: perSender)
        for _ in 0..<3 {
            let bridge = try harness.startBridge(arguments)
            usleep(UInt32.random(in: 150_000...400_000))
            expectGracefulStop(bridge)
        }
        let bridge = try harness.startBridge(arguments)
        let ledger = drain(try harness.openRemote(name), total: perSender * Self.senders.count, extra: .milliseconds(500))
        sending.wait()
        expectExact(ledger, perSender: perSender)
        expectGracefulStop(bridge)
    }

    @Test func unreachableServerIsOneLineNamingTheURL() throws {
        // Through `shmbox bridge`, which runs shmbox-bridge.
        let directory = BridgeHarness.buildDirectory
        let log = NSTemporaryDirectory() + "shmmb-bridge-unreachable-\(getpid()).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let url = "nats://127.0.0.1:1"
        let process = try SpawnedProcess(executable: directory + "/shmbox",
                                         arguments: ["bridge", "--nats", url, "--export", "x", "--state-dir", NSTemporaryDirectory() + "shmmb-bridge-unreachable"],
                                         standardOutputPath: log + ".out", standardErrorPath: log)
        defer { try? FileManager.default.removeItem(atPath: log + ".out") }
        #expect(process.wait(timeout: .seconds(20)) == .exited(69), "unavailable, as in shmbox")
        let error = process.standardError()
        #expect(error.hasPrefix("shmbox: error: ") && error.contains(url), "\(error)")
        #expect(error.split(separator: "\n").count == 1, "\(error)")
        try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "shmmb-bridge-unreachable")
    }

    @Test func missingBridgeExecutableIsOneClearLine() throws {
        let directory = NSTemporaryDirectory() + "shmmb-bridge-alone-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: BridgeHarness.buildDirectory + "/shmbox", toPath: directory + "/shmbox")
        let process = try SpawnedProcess(executable: directory + "/shmbox", arguments: ["bridge", "--nats", "nats://127.0.0.1:1", "--export", "x"],
                                         standardOutputPath: directory + "/out", standardErrorPath: directory + "/err")
        #expect(process.wait(timeout: .seconds(10)) == .exited(69), "unavailable, as in shmbox")
        #expect(process.standardError() == "shmbox: error: shmbox bridge needs the NATS module: build it with 'swift build -c release --product shmbox-bridge' (needs apt package libnats-dev)\n")
    }
}

/// Errors of the sending threads, reported by the test that waits for them.
final class SenderErrors: @unchecked Sendable {
    static let shared = SenderErrors()
    private let lock = NSLock()
    private var errors: [String] = []

    func note(_ error: String) { lock.withLock { errors.append(error) } }

    /// The errors so far, forgetting them.
    func take() -> [String] { lock.withLock { defer { errors = [] }; return errors } }
}
