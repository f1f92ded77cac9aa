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
    @Test func aBoundedMailboxRefusesExactlyTheNextMessageAcrossHostsAndLosesNothing() throws {
        let capacity = 40, first = 200, second = 100
        try create("bounded", capacity: "\(capacity)")
        let sender = try session(on: 0, "bounded")
        let tried = sender.run("try-send 1 0 \(capacity + 1)")
        #expect(tried.isOK && tried.lines == ["ACCEPTED \(capacity)"], "\(tried)")
        let timed = sender.run("send 1 \(capacity) 1 300")
        #expect(timed.error == "timedOut" && timed.milliseconds >= 300 && timed.milliseconds < 5000, "\(timed)")
        #expect(sender.run("depth").lines == ["DEPTH \(capacity)"])
        // Blocked senders on two hosts; nobody receives yet.
        let rest = sender.start("send 1 \(capacity) \(first - capacity)")
        let other = try peer(on: 2, "send", "bounded", ["2", "\(second)"])
        Thread.sleep(forTimeInterval: 1)
        #expect(other.isRunning && !other.standardOutput().contains("SENT"), "\(other.standardOutput()) \(other.standardError())")
        #expect(sender.finish(rest, timeout: .zero).outcome.hasPrefix("NO END"), "the host 0 sender is still blocked")
        let receiver = try peer(on: 1, "receive", "bounded", ["\(first + second)", "10000"])
        let sent = sender.finish(rest)
        #expect(sent.isOK, "\(sent)")
        expectExit(other)
        expectExit(receiver)
        let records = expectExactlyOnce([receiver.standardOutput()], counts: [1: first, 2: second])
        #expect(records.allSatisfy { !$0.redelivered })
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
}
