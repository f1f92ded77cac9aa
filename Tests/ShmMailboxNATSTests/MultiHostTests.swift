import Foundation
import MailboxTestSupport
import NATSTestSupport
import ShmMailbox
import ShmMailboxNATS
import Testing

/// Real hosts: three network namespaces joined by a bridge, one nats-server per host in one
/// JetStream cluster (routes), and `NATSTestPeer` processes on each host. Every message is
/// self-checking (sender, sequence, checksum) and every receiver verifies every byte.
@Suite(.serialized, .enabled(if: natsInstalled, "nats-server is not installed (apt-get install nats-server)"),
       .enabled(if: NetworkHosts.availability.isAvailable, "network namespaces: \(NetworkHosts.availability)"))
struct MultiHostTests {
    let hosts: NetworkHosts
    let cluster: NATSCluster

    init() throws {
        hosts = try NetworkHosts(count: 3)
        cluster = try NATSCluster(hosts: hosts)
    }

    /// A host's peer, listing its own server first (then the others: libnats fails over).
    func peer(on host: Int, _ command: String, _ name: String, _ rest: [String] = []) throws -> SpawnedProcess {
        let urls = ([cluster.urls[host]] + cluster.urls.enumerated().filter { $0.offset != host }.map(\.element)).joined(separator: ",")
        return try hosts.run(host: host, executable: buildDirectory + "/NATSTestPeer", arguments: [command, urls, name] + rest)
    }

    func expectExit(_ process: SpawnedProcess, timeout: Duration = .seconds(120), sourceLocation: SourceLocation = #_sourceLocation) {
        let status = process.wait(timeout: timeout)
        #expect(status == .exited(0), "\(process.commandLine.suffix(4)): \(status.map { "\($0)" } ?? "still running") \(process.standardOutput()) \(process.standardError())",
                sourceLocation: sourceLocation)
    }

    /// Creates `name` from host 0 (`options`: the peer's `KEY=VALUE` mailbox options).
    func create(_ name: String, capacity: String = "10000", replicas: Int = 3, redeliveryMilliseconds: Int = 30_000,
                options: [String] = []) throws {
        let maker = try peer(on: 0, "create", name, [capacity, "\(replicas)", "\(redeliveryMilliseconds)"] + options)
        expectExit(maker, timeout: .seconds(30))
    }

    /// Checks the receivers' `GOT` lines: every sender's messages exactly once, each receiver
    /// seeing each sender in order.
    func expectExactlyOnce(_ receivers: [SpawnedProcess], senders: [UInt32], count: Int,
                           sourceLocation: SourceLocation = #_sourceLocation) -> [(sender: UInt32, sequence: UInt64, redelivered: Bool)] {
        expectExactlyOnce(receivers.map { $0.standardOutput() }, counts: Dictionary(uniqueKeysWithValues: senders.map { ($0, count) }),
                          sourceLocation: sourceLocation)
    }

    /// Checks the `GOT` lines of each receiver's output: sender `s`'s messages `0..<counts[s]`
    /// exactly once, each receiver seeing each sender in order, and no other sender's.
    @discardableResult
    func expectExactlyOnce(_ outputs: [String], counts: [UInt32: Int],
                           sourceLocation: SourceLocation = #_sourceLocation) -> [(sender: UInt32, sequence: UInt64, redelivered: Bool)] {
        var all: [(sender: UInt32, sequence: UInt64, redelivered: Bool)] = []
        for output in outputs {
            let records = receivedRecords(output)
            for sender in counts.keys {
                let sequences = records.filter { $0.sender == sender }.map(\.sequence)
                #expect(sequences == sequences.sorted(), "a receiver saw sender \(sender) out of order", sourceLocation: sourceLocation)
            }
            all += records
        }
        for (sender, count) in counts {
            let sequences = all.filter { $0.sender == sender }.map(\.sequence).sorted()
            #expect(sequences == Array(0..<UInt64(count)),
                    "sender \(sender): \(sequences.count) received, \(Set(sequences).count) distinct, expected \(count)",
                    sourceLocation: sourceLocation)
        }
        #expect(all.allSatisfy { counts[$0.sender] != nil }, "messages from unknown senders", sourceLocation: sourceLocation)
        return all
    }

    @Test func aMailboxOnThreeHostsCarriesEveryMessageExactlyOnce() throws {
        try create("jobs")
        let receivers = try [1, 2].map { try peer(on: $0, "receive", "jobs", ["100000", "4000"]) }
        let senders = try [(0, 1), (1, 2)].map { try peer(on: $0.0, "send", "jobs", ["\($0.1)", "400"]) }
        for process in senders + receivers { expectExit(process) }
        let records = expectExactlyOnce(receivers, senders: [1, 2], count: 400)
        #expect(records.allSatisfy { !$0.redelivered })
    }

    @Test func aServerKilledMidStreamLosesAndDoublesNothing() throws {
        try create("r3")
        let count = 1500
        let sender = try peer(on: 0, "send", "r3", ["7", "\(count)"])
        // Kill the sender's own server (host 0) while it sends; bring it back.
        Thread.sleep(forTimeInterval: 0.4)
        _ = cluster.kill(0)
        Thread.sleep(forTimeInterval: 1.0)
        try cluster.restart(0)
        let receiver = try peer(on: 2, "receive", "r3", ["\(count)", "30000"])
        let start = ContinuousClock.now
        expectExit(sender)
        expectExit(receiver)
        // Failover costs seconds, not a receiver's whole idle timeout (lost pull requests are
        // asked again every fetch slice).
        #expect(ContinuousClock.now - start < .seconds(25))
        _ = expectExactlyOnce([receiver], senders: [7], count: count)
    }

    @Test func aReceiverKilledBeforeFinishingIsReplacedOnAnotherHost() throws {
        try create("handover", redeliveryMilliseconds: 1000)
        let sender = try peer(on: 0, "send", "handover", ["4", "1"])
        expectExit(sender)
        let holder = try peer(on: 1, "hold", "handover")
        #expect(waitForOutput(holder, "HOLDING 4 0"), "\(holder.standardOutput()) \(holder.standardError())")
        _ = holder.killAndWait()
        let receiver = try peer(on: 2, "receive", "handover", ["1", "15000"])
        expectExit(receiver)
        let records = receivedRecords(receiver.standardOutput())
        #expect(records.count == 1 && records.first?.sender == 4 && records.first?.sequence == 0 && records.first?.redelivered == true)
    }

    /// Packed batches across hosts: host 0 sends 600 messages in batches of 50 (packs) into a
    /// three-replica unbounded mailbox; a receiver on host 1 is stopped right after recording
    /// its 5th message's progress and killed; fresh receivers on hosts 1 and 2 share the rest.
    /// Every message arrives exactly once, content-checked, and the packs' progress lives in the
    /// cluster (a bucket with three replicas).
    @Test func packedBatchesCrossHostsAndAKilledReceiversPackIsFinishedElsewhere() throws {
        try create("packs", capacity: "unbounded", redeliveryMilliseconds: 1000)
        let sender = try peer(on: 0, "send", "packs", ["5", "600", "24", "256", "50"])
        expectExit(sender)
        let stopped = try peer(on: 1, "pack-stop", "packs", ["recorded", "5"])
        #expect(waitForOutput(stopped, "AT recorded"), "\(stopped.standardOutput()) \(stopped.standardError())")
        _ = stopped.killAndWait()
        let receivers = try [1, 2].map { try peer(on: $0, "receive", "packs", ["600", "5000"]) }
        for receiver in receivers { expectExit(receiver) }
        let outputs = ([stopped] + receivers).map { $0.standardOutput() }
        let records = outputs.flatMap(receivedRecords)
        #expect(records.allSatisfy { $0.sender == 5 })
        #expect(receivedRecords(outputs[0]).map(\.sequence) == Array(0..<5))
        // Per-sender order is not checked: the killed receiver's pack comes back after the
        // redelivery delay, behind later packs.
        #expect(records.map(\.sequence).sorted() == Array(0..<600), "each once: \(records.count) received")
        #expect(receivers.allSatisfy { !receivedRecords($0.standardOutput()).isEmpty }, "both hosts received")
    }

    @Test func synchronousSendsGetReceiptsFromAnotherHost() throws {
        try create("sync")
        let receiver = try peer(on: 2, "receive", "sync", ["20", "20000"])
        let sender = try peer(on: 0, "sync-send", "sync", ["9", "20"])
        expectExit(sender)
        expectExit(receiver)
        let receipts = sender.standardOutput().split(separator: "\n").filter { $0.hasPrefix("RECEIPT ") }
        #expect(receipts.count == 20 && receipts.allSatisfy { $0 == "RECEIPT \(receiver.pid)" }, "\(receipts)")
        _ = expectExactlyOnce([receiver], senders: [9], count: 20)
    }

    @Test func endpointsOnThreeHostsNameEachOther() throws {
        let receiver = try peer(on: 2, "endpoint-receive", "Q", ["400", "20000"])
        #expect(waitForOutput(receiver, "JOINED"), "\(receiver.standardError())")
        let senders = try [(0, "A", 1), (1, "B", 2)].map { try peer(on: $0.0, "endpoint-send", $0.1, ["Q", "\($0.2)", "200"]) }
        for process in senders + [receiver] { expectExit(process) }
        let lines = receiver.standardOutput().split(separator: "\n").filter { $0.hasPrefix("GOT ") }.map { $0.split(separator: " ") }
        #expect(lines.count == 400)
        for (name, index) in [("A", "1"), ("B", "2")] {
            let mine = lines.filter { $0[3] == Substring(name) }
            #expect(mine.allSatisfy { $0[1] == Substring(index) }, "messages from \(name) carry sender \(index)")
            #expect(mine.map { UInt64($0[2])! } == Array(0..<200), "\(name)'s messages in order, each once")
        }
    }

    /// `shmbox bridge` on two hosts carries an unchanged local program's messages (host 0's
    /// mailbox exported, imported into host 2's) with the importing bridge killed -9 twice
    /// mid-stream and started again: every message once, content-checked.
    @Test func bridgesOnTwoHostsCarryUnchangedProgramsMessagesThroughImportKills() throws {
        try carryThroughBridgeKills(killing: .importer)
    }

    /// The same with the exporting bridge (host 0, reading the local mailbox an unchanged program
    /// sends into) killed -9 twice mid-stream: its journal and the messages' ids keep a message
    /// it had in hand from being lost or published twice.
    @Test func bridgesOnTwoHostsCarryUnchangedProgramsMessagesThroughExportKills() throws {
        try carryThroughBridgeKills(killing: .exporter)
    }

    enum BridgeSide { case exporter, importer }

    /// An exporting bridge on host 0 and an importing one on host 2 between unchanged local
    /// programs, the bridge on `side` killed -9 twice mid-stream and started again.
    func carryThroughBridgeKills(killing side: BridgeSide, sourceLocation: SourceLocation = #_sourceLocation) throws {
        // Local mailboxes with names of their own per host (the namespaces share /dev/shm here).
        let tag = "\(getpid())x\(UInt16.random(in: 0 ... .max))"
        let outbox = "h0out\(tag)", inbox = "h2in\(tag)", remote = "xjobs\(tag)"
        let state = NSTemporaryDirectory() + "shmmb-bridge-state-\(tag)"
        defer {
            try? Mailbox.delete(outbox)
            try? Mailbox.delete(inbox)
            try? FileManager.default.removeItem(atPath: state)
        }
        func bridge(on host: Int, _ direction: String, _ pair: String) throws -> SpawnedProcess {
            let urls = [cluster.urls[host]] + cluster.urls.enumerated().filter { $0.offset != host }.map(\.element)
            return try hosts.run(host: host, executable: buildDirectory + "/shmbox-bridge",
                                 arguments: urls.flatMap { ["--nats", $0] } + [direction, pair, "--create", "--replicas", "3",
                                            "--redelivery-delay", "2", "--state-dir", state + "/h\(host)"])
        }
        func waitForMailbox(_ name: String) -> Bool {
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                if FileManager.default.fileExists(atPath: "/dev/shm/shmmb.\(name)") { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return false
        }
        var exporter = try bridge(on: 0, "--export", "\(outbox):\(remote)")
        var importer = try bridge(on: 2, "--import", "\(remote):\(inbox)")
        #expect(waitForMailbox(outbox) && waitForMailbox(inbox), "\(exporter.standardError()) \(importer.standardError())")
        let count = 1500
        // Unchanged local programs: a sender on host 0, a receiver on host 2.
        let sender = try hosts.run(host: 0, executable: buildDirectory + "/MailboxTestPeer",
                                   arguments: ["send", outbox, "6", "\(count)", "24", "300"])
        let receiver = try hosts.run(host: 2, executable: buildDirectory + "/MailboxTestPeer",
                                     arguments: ["receive-log", inbox, "\(count)", "60000"])
        // The bridge on `side` killed -9 twice mid-stream (once a third, then two thirds, of the
        // messages came through) and started again.
        var killed: [SpawnedProcess] = []
        for third in 1...2 {
            let deadline = ContinuousClock.now + .seconds(60)
            var got = 0
            while got < third * count / 3 && ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 0.01)
                got = receivedRecords(receiver.standardOutput()).count
            }
            #expect(got >= third * count / 3 && got < count, "\(got) received at kill \(third)", sourceLocation: sourceLocation)
            switch side {
            case .importer:
                #expect(importer.killAndWait() == .signaled(SIGKILL), sourceLocation: sourceLocation)
                killed.append(importer)
                importer = try bridge(on: 2, "--import", "\(remote):\(inbox)")
            case .exporter:
                #expect(exporter.killAndWait() == .signaled(SIGKILL), sourceLocation: sourceLocation)
                killed.append(exporter)
                exporter = try bridge(on: 0, "--export", "\(outbox):\(remote)")
            }
        }
        expectExit(sender, sourceLocation: sourceLocation)
        expectExit(receiver, timeout: .seconds(180), sourceLocation: sourceLocation)
        // Nothing more comes after the last one: no duplicate was still on its way.
        let late = try hosts.run(host: 2, executable: buildDirectory + "/MailboxTestPeer", arguments: ["receive-log", inbox, "1", "3000"])
        expectExit(late, sourceLocation: sourceLocation)
        #expect(receivedRecords(late.standardOutput()).isEmpty, "\(late.standardOutput())", sourceLocation: sourceLocation)
        // A bridge installs its SIGTERM handler once started; the last one may be younger than
        // the rest of the run.
        Thread.sleep(forTimeInterval: 1)
        #expect(importer.terminate(grace: .seconds(10)) == .exited(0), sourceLocation: sourceLocation)
        #expect(exporter.terminate(grace: .seconds(10)) == .exited(0), sourceLocation: sourceLocation)
        let records = receivedRecords(receiver.standardOutput())
        let sequences = records.filter { $0.sender == 6 }.map(\.sequence).sorted()
        #expect(sequences == Array(0..<UInt64(count)),
                "\(sequences.count) received, \(Set(sequences).count) distinct, expected \(count); bridges said: \((killed + [importer, exporter]).map { $0.standardError() }.joined(separator: " | "))",
                sourceLocation: sourceLocation)
    }

    @Test(.enabled(if: NetworkHosts.netemAvailability.isAvailable || NetworkHosts.impairAvailability.isAvailable,
                   "neither netem (\(NetworkHosts.netemAvailability)) nor nftables (\(NetworkHosts.impairAvailability))"))
    func aLossySlowLinkStillCarriesEverything() throws {
        try create("lossy", redeliveryMilliseconds: 5000)
        // 5 % of host 1's packets dropped; 20 ms delay with netem, else a 2 Mbit/s link whose
        // queue delays (this kernel may lack netem).
        let impairment: String
        if NetworkHosts.netemAvailability.isAvailable {
            try hosts.netem(host: 1, delay: .milliseconds(20), loss: 0.05)
            impairment = "netem: 20 ms delay, 5 % loss"
        } else {
            try hosts.impair(host: 1, loss: 0.05, rate: 2_000_000)
            impairment = "nftables 5 % loss, tbf 2 Mbit/s"
        }
        defer {
            try? hosts.netem(host: 1)
            try? hosts.impair(host: 1)
        }
        let count = 300
        let start = ContinuousClock.now
        let sender = try peer(on: 1, "send", "lossy", ["11", "\(count)", "24", "2048"])
        let receiver = try peer(on: 2, "receive", "lossy", ["\(count)", "60000"])
        expectExit(sender, timeout: .seconds(240))
        expectExit(receiver, timeout: .seconds(240))
        let elapsed = ContinuousClock.now - start
        _ = expectExactlyOnce([receiver], senders: [11], count: count)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("lossy link (\(impairment), host 1 → host 2): \(count) messages in \(String(format: "%.2f", seconds)) s, \(Int(Double(count) / seconds)) messages/s")
    }
}
