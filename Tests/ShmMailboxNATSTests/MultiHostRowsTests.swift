import Foundation
import MailboxTestSupport
import NATSTestSupport
import ShmMailbox
import ShmMailboxNATS
import Testing

/// A `NATSTestPeer session` on one host: a mailbox handle the test drives step by step, so that
/// what processes on several hosts do can be interleaved (see `Tests/NATSTestPeer/Session.swift`).
final class PeerSession {
    /// One step's outcome: its output lines, how long it took, and `OK` or `ERROR case description`.
    struct Step: CustomStringConvertible {
        let lines: [String]
        let milliseconds: Int
        let outcome: String
        var isOK: Bool { outcome == "OK" }
        /// The error's case name (`receiverBusy`, `timedOut`, …), nil if the step succeeded.
        var error: String? { outcome.hasPrefix("ERROR ") ? String(outcome.split(separator: " ")[1]) : nil }
        /// The `GOT sender sequence redelivered` lines.
        var records: [(sender: UInt32, sequence: UInt64, redelivered: Bool)] { receivedRecords(lines.joined(separator: "\n")) }
        var description: String { "\(lines) in \(milliseconds) ms: \(outcome)" }
    }

    let process: SpawnedProcess
    private let control: String
    private var issued = 0

    init(process: SpawnedProcess, control: String) {
        self.process = process
        self.control = control
    }

    deinit { try? FileManager.default.removeItem(atPath: control) }

    var pid: Int32 { process.pid }

    /// Hands the peer its next step; returns its number for `finish`.
    @discardableResult
    func start(_ step: String) -> Int {
        let text = "\(issued) \(step)\n"
        guard let file = fopen(control, "a") else { fatalError("cannot append to \(control)") }
        _ = text.withCString { fputs($0, file) }
        fclose(file)
        issued += 1
        return issued - 1
    }

    /// Waits for step `index` to end (an `outcome` of `NO END` with the peer's output if it did not).
    func finish(_ index: Int, timeout: Duration = .seconds(60)) -> Step {
        let deadline = ContinuousClock.now + timeout
        while true {
            let lines = process.standardOutput().split(separator: "\n").map(String.init)
            if let begin = lines.firstIndex(of: "BEGIN \(index)"),
               let end = lines[begin...].firstIndex(where: { $0.hasPrefix("END \(index) ") }) {
                let words = lines[end].split(separator: " ", maxSplits: 3).map(String.init)
                return Step(lines: Array(lines[(begin + 1)..<end]), milliseconds: Int(words[2]) ?? -1, outcome: words[3])
            }
            if ContinuousClock.now >= deadline || !process.isRunning {
                return Step(lines: [], milliseconds: -1, outcome: "NO END: \(process.standardOutput()) \(process.standardError())")
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    /// Runs one step to its end.
    func run(_ step: String, timeout: Duration = .seconds(60)) -> Step { finish(start(step), timeout: timeout) }

    /// Runs `step` again (every 100 ms) while it fails with `error`, for at most `timeout`; returns
    /// the first other outcome and how long the whole took.
    func retry(_ step: String, while error: String, timeout: Duration = .seconds(20)) -> (Step, Duration) {
        let start = ContinuousClock.now
        while true {
            let outcome = run(step)
            guard outcome.error == error, ContinuousClock.now - start < timeout else { return (outcome, ContinuousClock.now - start) }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }
}

/// Every row of the mailbox model across hosts (issue 8, item 5): capacities, receiver
/// policies and ownerships, each with processes on different hosts of the three-server cluster,
/// every message content-checked (sequence and checksum) and each sender's order kept.
extension MultiHostTests {
    /// A session peer on `host` for `name`, created with `options` (`KEY=VALUE`) if any, else opened.
    func session(on host: Int, _ name: String, _ options: [String] = [],
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> PeerSession {
        let control = NSTemporaryDirectory() + "natspeer-session-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        #expect(FileManager.default.createFile(atPath: control, contents: nil), sourceLocation: sourceLocation)
        let process = try peer(on: host, "session", name, [control] + options)
        #expect(waitForOutput(process, "READY"), "\(process.standardOutput()) \(process.standardError())", sourceLocation: sourceLocation)
        return PeerSession(process: process, control: control)
    }

    /// `.bounded(n)`: a sender on host 0 is refused exactly when n messages wait, as locally
    /// (n try-sends accepted, the next refused; a timed send times out after its timeout), and a
    /// second sender on host 2 blocks too; once a receiver on host 1, started late, makes room,
    /// both go on, and every message of both arrives once, content-checked, each sender in order.
    /// (One copy of the mailbox, on one of the three servers; three copies: the next test.)
    @Test func aBoundedMailboxRefusesExactlyTheNextMessageAcrossHostsAndLosesNothing() throws {
        let received = try fillBoundedMailboxAndDrain(replicas: 1)
        expectExactlyOnce([received], counts: [1: 200, 2: 100])
    }

    /// The same with three copies. Known to lose a message here (most runs): with nats-server
    /// 2.9.10 the replicas of the work-queue stream diverge near its discard-new limit (seen in
    /// /jsz: the stream leader holding sequence 300 unconsumed, the consumer leader's copy
    /// ending at 299, the third copy at 337), and the consumer never delivers the message whose
    /// send was acknowledged. The likely cause: each replica enforces the limit against its own
    /// state, which acknowledgements' deletions reach at different times (nats-server #4365
    /// and #7607 moved such decisions to the leader; #4771, a related loss, is open). Every
    /// check but the exactly-once one must hold.
    @Test func aReplicatedBoundedMailboxRefusesExactlyTheNextMessageAcrossHosts() throws {
        let received = try fillBoundedMailboxAndDrain(replicas: 3)
        withKnownIssue("nats-server 2.9.10: replicas enforce discard-new limits on their own state and diverge", isIntermittent: true) {
            expectExactlyOnce([received], counts: [1: 200, 2: 100])
        }
    }

    /// Fills a `.bounded(40)` mailbox from host 0 (checking the refusals), blocks a second sender
    /// on host 2, then drains both from host 1 (200 messages of sender 1, 100 of sender 2);
    /// returns the receiver's output.
    func fillBoundedMailboxAndDrain(replicas: Int, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let capacity = 40, first = 200, second = 100
        try create("bounded", capacity: "\(capacity)", replicas: replicas)
        let sender = try session(on: 0, "bounded")
        let tried = sender.run("try-send 1 0 \(capacity + 1)")
        #expect(tried.isOK && tried.lines == ["ACCEPTED \(capacity)"], "\(tried)", sourceLocation: sourceLocation)
        let timed = sender.run("send 1 \(capacity) 1 300")
        #expect(timed.error == "timedOut" && timed.milliseconds >= 300 && timed.milliseconds < 5000, "\(timed)", sourceLocation: sourceLocation)
        #expect(sender.run("depth").lines == ["DEPTH \(capacity)"], sourceLocation: sourceLocation)
        // Blocked senders on two hosts; nobody receives yet.
        let rest = sender.start("send 1 \(capacity) \(first - capacity)")
        let other = try peer(on: 2, "send", "bounded", ["2", "\(second)"])
        Thread.sleep(forTimeInterval: 1)
        #expect(other.isRunning && !other.standardOutput().contains("SENT"), "\(other.standardOutput()) \(other.standardError())",
                sourceLocation: sourceLocation)
        #expect(sender.finish(rest, timeout: .zero).outcome.hasPrefix("NO END"), "the host 0 sender is still blocked", sourceLocation: sourceLocation)
        let receiver = try peer(on: 1, "receive", "bounded", ["\(first + second)", "5000"])
        let sent = sender.finish(rest)
        #expect(sent.isOK, "\(sent)", sourceLocation: sourceLocation)
        expectExit(other, sourceLocation: sourceLocation)
        expectExit(receiver, sourceLocation: sourceLocation)
        #expect(receivedRecords(receiver.standardOutput()).allSatisfy { !$0.redelivered }, sourceLocation: sourceLocation)
        return receiver.standardOutput()
    }

    /// `.unbounded` with a byte limit: a sender on host 0 gets `outOfSpace` once the messages
    /// waiting fill it, and so does the next send of a sender on host 1; a receiver on host 2
    /// drains every accepted message, content-checked and in order, and then there is room again.
    @Test func anUnboundedMailboxsByteLimitStopsSendersOnEveryHostAndLosesNothing() throws {
        try create("bytes", capacity: "unbounded", options: ["maxbytes=20000", "size=1000"])
        let filler = try peer(on: 0, "send", "bytes", ["1", "1000", "1000", "1000"])
        #expect(filler.wait(timeout: .seconds(60)) == .exited(1))
        #expect(filler.standardOutput().contains("ERROR outOfSpace remote mailbox 'bytes' reached its byte limit"),
                "\(filler.standardOutput()) \(filler.standardError())")
        let accepted = filler.standardOutput().split(separator: "\n").compactMap { $0.hasPrefix("SENT ") ? Int($0.dropFirst(5)) : nil }.first ?? -1
        #expect(accepted >= 10 && accepted < 20, "\(accepted) messages of 1000 bytes in 20000")
        let refused = try peer(on: 1, "send", "bytes", ["2", "5", "1000", "1000"])
        #expect(refused.wait(timeout: .seconds(60)) == .exited(1))
        #expect(refused.standardOutput().contains("SENT 0\nERROR outOfSpace "), "\(refused.standardOutput())")
        // Drained from the third host: every accepted message, nothing else (it waits 2 s more).
        let drain = try peer(on: 2, "receive", "bytes", ["\(accepted + 1)", "2000"])
        expectExit(drain)
        expectExactlyOnce([drain.standardOutput()], counts: [1: accepted])
        // Room again: host 1's messages go in and come out.
        let again = try peer(on: 1, "send", "bytes", ["2", "5", "1000", "1000"])
        expectExit(again)
        let receiver = try peer(on: 2, "receive", "bytes", ["5", "10000"])
        expectExit(receiver)
        expectExactlyOnce([receiver.standardOutput()], counts: [2: 5])
    }

    /// `.exclusive`: while a receiver on host 1 holds the receive turn (and a message), a receiver
    /// on host 2 gets `receiverBusy` naming it; once it is killed -9, host 2 takes the turn, gets
    /// the held message again (redelivered) and the rest in order.
    @Test func anExclusiveMailboxsTurnPassesToAnotherHostWhenItsHolderIsKilled() throws {
        try create("turn", redeliveryMilliseconds: 1000, options: ["policy=exclusive"])
        expectExit(try peer(on: 0, "send", "turn", ["8", "3"]))
        let holder = try peer(on: 1, "hold", "turn")
        #expect(waitForOutput(holder, "HOLDING 8 0"), "\(holder.standardOutput()) \(holder.standardError())")
        let other = try session(on: 2, "turn")
        let busy = other.run("receive 1 1000")
        #expect(busy.error == "receiverBusy" && busy.outcome.contains("pid \(holder.pid)") && busy.records.isEmpty, "\(busy)")
        #expect(holder.killAndWait() == .signaled(SIGKILL))
        // Free once the dead holder's lease expires (LeaseTable.ttl, 4 s).
        _ = other.run("wait-busy")
        let taken = other.run("receive 3 15000")
        #expect(taken.isOK && taken.milliseconds < 10_000, "\(taken)")
        #expect(taken.records.map { "\($0.sender) \($0.sequence) \($0.redelivered)" } == ["8 0 true", "8 1 false", "8 2 false"], "\(taken)")
    }

    /// `.pair`: a second sender on host 1 gets `roleTaken` while host 0's sender lives, and a second
    /// receiver `receiverBusy` while host 2's receiver lives; each role passes to another host once
    /// its holder is killed -9, and every message arrives once, content-checked, in order.
    @Test func aPairsRolesPassToAnotherHostWhenTheirHoldersAreKilled() throws {
        try create("pair", options: ["policy=pair"])
        let sender = try session(on: 0, "pair")
        #expect(sender.run("send 1 0 3").isOK)
        let intruder = try session(on: 1, "pair")
        let taken = intruder.run("send 2 0 1")
        #expect(taken.error == "roleTaken" && taken.outcome.contains("the sender role is held by") && taken.outcome.contains("pid \(sender.pid)"),
                "\(taken)")
        let receiver = try session(on: 2, "pair")
        let first = receiver.run("receive 3")
        #expect(first.isOK && first.records.map { "\($0.sender) \($0.sequence)" } == ["1 0", "1 1", "1 2"], "\(first)")
        let busy = intruder.run("receive 1 1000")
        #expect(busy.error == "receiverBusy" && busy.outcome.contains("pid \(receiver.pid)"), "\(busy)")
        // The sender killed: host 1 becomes the sender once its lease expired.
        #expect(sender.process.killAndWait() == .signaled(SIGKILL))
        let (sent, waited) = intruder.retry("send 2 0 1", while: "roleTaken")
        #expect(sent.isOK && waited < .seconds(10), "\(sent) after \(waited)")
        #expect(intruder.run("send 2 1 2").isOK)
        let second = receiver.run("receive 3")
        #expect(second.isOK && second.records.map { "\($0.sender) \($0.sequence)" } == ["2 0", "2 1", "2 2"], "\(second)")
        // The receiver killed: host 0 becomes the receiver.
        #expect(intruder.run("send 2 3 1").isOK)
        #expect(receiver.process.killAndWait() == .signaled(SIGKILL))
        let successor = try session(on: 0, "pair")
        _ = successor.run("wait-busy")
        let last = successor.run("receive 1 15000")
        #expect(last.isOK && last.milliseconds < 10_000 && last.records.map { "\($0.sender) \($0.sequence)" } == ["2 3"], "\(last)")
    }

    /// `.process` ownership: the owner on host 0 alone receives (host 2 gets `notPermitted`); once
    /// it is killed -9, a sender on host 1 gets `ownerTerminated` within the lease's lifetime, and
    /// the mailbox is gone for every host (`notFound`).
    @Test func aProcessOwnedMailboxEndsForOtherHostsWhenItsOwnerIsKilled() throws {
        let owner = try session(on: 0, "owned", ["ownership=process", "replicas=3"])
        let sender = try session(on: 1, "owned")
        #expect(sender.run("send 3 0 5").isOK)
        let got = owner.run("receive 5")
        #expect(got.isOK && got.records.map(\.sequence) == Array(0..<5) && got.records.allSatisfy { $0.sender == 3 }, "\(got)")
        let stranger = try session(on: 2, "owned")
        #expect(stranger.run("receive 1 1000").error == "notPermitted")
        #expect(owner.process.killAndWait() == .signaled(SIGKILL))
        var sequence = 5
        let start = ContinuousClock.now
        var outcome = sender.run("send 3 \(sequence) 1 5000")
        while outcome.isOK && ContinuousClock.now - start < .seconds(15) {
            sequence += 1
            Thread.sleep(forTimeInterval: 0.1)
            outcome = sender.run("send 3 \(sequence) 1 5000")
        }
        #expect(outcome.error == "ownerTerminated" && outcome.outcome.contains("'owned'"), "\(outcome)")
        #expect(ContinuousClock.now - start < .seconds(10))
        expectNotFound("owned", on: 2)
    }

    /// `.process` ownership: when the owner on host 0 closes its handle (its process living on),
    /// a sender on host 1 gets `ownerTerminated` at once, and the mailbox is gone (`notFound`).
    @Test func aProcessOwnedMailboxEndsForOtherHostsWhenItsOwnerCloses() throws {
        let owner = try session(on: 0, "closed", ["ownership=process", "replicas=3"])
        let sender = try session(on: 1, "closed")
        #expect(sender.run("send 3 0 2").isOK)
        let got = owner.run("receive 2")
        #expect(got.isOK && got.records.map { "\($0.sender) \($0.sequence)" } == ["3 0", "3 1"], "\(got)")
        #expect(owner.run("close").isOK)
        let late = sender.run("send 3 2 1 5000")
        #expect(late.error == "ownerTerminated" && late.milliseconds < 5000, "\(late)")
        #expect(owner.process.isRunning)
        expectNotFound("closed", on: 2)
    }

    /// `.system` ownership across hosts: the owner on host 0 grants receiving to a process on
    /// host 1 (refused before, and refused to grant itself), then transfers ownership to it (host 0
    /// may no longer receive); a process on host 2 may not reclaim it from the new owner, even
    /// before that one first receives as owner; once it is killed -9, the host-2 process reclaims
    /// the mailbox and receives what is left, nothing lost.
    @Test func aSystemMailboxIsGrantedTransferredAndReclaimedAcrossHosts() throws {
        let owner = try session(on: 0, "system", ["ownership=system", "replicas=3"])
        #expect(owner.run("owner").lines == ["OWNER \(owner.pid)"])
        let other = try session(on: 1, "system")
        let third = try session(on: 2, "system")
        #expect(third.run("send 5 0 4").isOK)
        let refused = other.run("receive 1 1000")
        #expect(refused.error == "notPermitted" && refused.outcome.contains("owned by") && refused.outcome.contains("pid \(owner.pid)"), "\(refused)")
        #expect(other.run("grant \(other.pid)").error == "notPermitted")
        #expect(owner.run("receive 1").records.map(\.sequence) == [0])
        #expect(owner.run("grant \(other.pid)").isOK)
        #expect(other.run("receive 1").records.map(\.sequence) == [1])
        #expect(owner.run("transfer \(other.pid)").isOK)
        #expect(other.run("owner").lines == ["OWNER \(other.pid)"])
        #expect(owner.run("receive 1 1000").error == "notPermitted")
        // The new owner has the mailbox open: it counts as present before it receives as owner.
        let alive = third.run("reclaim")
        #expect(alive.error == "notPermitted" && alive.outcome.contains("still holds"), "\(alive)")
        #expect(other.run("receive 1").records.map(\.sequence) == [2])
        #expect(other.process.killAndWait() == .signaled(SIGKILL))
        let (reclaimed, waited) = third.retry("reclaim", while: "notPermitted")
        #expect(reclaimed.isOK && waited < .seconds(10), "\(reclaimed) after \(waited)")
        #expect(third.run("owner").lines == ["OWNER \(third.pid)"])
        let rest = third.run("receive 1")
        #expect(rest.isOK && rest.records.map { "\($0.sender) \($0.sequence)" } == ["5 3"], "\(rest)")
        #expect(third.run("receive 1 1000").error == "timedOut")
    }

    /// `.roundRobin` is refused with the typed `unsupported` error from every host, and nothing
    /// is created.
    @Test func roundRobinIsRefusedFromEveryHost() throws {
        for host in 0..<3 {
            let maker = try peer(on: host, "create", "rr\(host)", ["10", "3", "30000", "policy=roundRobin"])
            #expect(maker.wait(timeout: .seconds(30)) == .exited(1))
            #expect(maker.standardOutput().hasPrefix("ERROR unsupported ") && maker.standardOutput().contains("roundRobin"),
                    "host \(host): \(maker.standardOutput()) \(maker.standardError())")
            expectNotFound("rr\(host)", on: host)
        }
    }

    /// Opening `name` on `host` fails with `notFound`.
    func expectNotFound(_ name: String, on host: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let opener = try peer(on: host, "receive", name, ["1", "100"])
            #expect(opener.wait(timeout: .seconds(30)) == .exited(1), sourceLocation: sourceLocation)
            #expect(opener.standardOutput().hasPrefix("ERROR notFound "), "\(opener.standardOutput())", sourceLocation: sourceLocation)
        } catch {
            Issue.record(error, sourceLocation: sourceLocation)
        }
    }
}
