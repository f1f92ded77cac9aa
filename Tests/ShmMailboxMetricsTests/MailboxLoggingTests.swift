import Foundation
import PeerProcess
import Logging
import ShmMailbox
import ShmMailboxMetrics
import Testing

/// `MailboxLogging`: slow-path events of real repairs, takeovers and removals reach a swift-log
/// `Logger`, with the mailbox name, this pid and the event as metadata.
@Suite("Mailbox events to swift-log")
struct MailboxLoggingTests {
    /// Logs to a fresh in-memory handler while `body` runs.
    func logging(_ body: (CapturedLogs) throws -> Void) rethrows {
        let logs = CapturedLogs()
        let registration = MailboxLogging.bootstrap(logger: logs.logger())
        defer { MailboxLogging.stop(registration) }
        try body(logs)
    }

    /// A sender killed between claiming a slot and filling it: the receiver behind it frees
    /// the claim and reports it (warning, `slot-repaired`, `claimFreed`).
    @Test func deadSendersClaimRepaired() throws {
        try logging { logs in
            try withMailbox("claim", MailboxOptions(capacity: 8, maxMessageSize: 128)) { name, box in
                try box.send("before")
                #expect(try runPeerUntilKilled(["die-in-send", name]))
                try box.send("after")
                #expect(try box.receive(timeout: .seconds(5)).string == "before")
                #expect(try box.receive(timeout: .seconds(5)).string == "after")
                let records = logs.records(of: name)
                #expect(records.count == 1, "\(records)")
                let record = try #require(records.first)
                #expect(record.level == .warning)
                #expect(record.metadata["event"] == "slot-repaired")
                #expect(record.metadata["repair"] == "claimFreed")
                #expect(record.metadata["position"] == "1")
                #expect(record.metadata["pid"] == .string("\(getpid())"))
                #expect(record.message.contains(name))
            }
        }
    }

    /// A receiver killed while reading a message: a receiver adopts it (redelivered) and
    /// reports it (`messageAdopted`).
    @Test func deadReceiversMessageAdopted() throws {
        try logging { logs in
            try withMailbox("adopt", MailboxOptions(capacity: 4, maxMessageSize: 64)) { name, box in
                try box.send("m0")
                #expect(try runPeerUntilKilled(["die-in-receive", name]))
                let message = try box.receive(timeout: .seconds(5))
                #expect(message.string == "m0" && message.isRedelivered)
                let records = logs.records(of: name)
                #expect(records.map(\.metadata["repair"]) == ["messageAdopted"], "\(records)")
                #expect(records.first?.metadata["event"] == "slot-repaired")
            }
        }
    }

    /// A one-to-one receiver killed holding its role: the next receiver takes the role over and
    /// reports it with the dead holder's pid.
    @Test func roleTakenOverFromADeadReceiver() throws {
        try logging { logs in
            try withMailbox("role", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .oneToOne)) { name, box in
                try box.send("m0")
                #expect(try runPeerUntilKilled(["die-in-receive", name]))
                let receiver = try Mailbox.open(name)
                defer { receiver.close() }
                #expect(try receiver.receive(timeout: .seconds(5)).string == "m0")
                let records = logs.records(of: name)
                #expect(records.map(\.metadata["event"]) == ["role-taken-over"], "\(records)")
                #expect(records.first?.metadata["role"] == "receiver")
                #expect(records.first?.level == .warning)
            }
        }
    }

    /// The owner of a process-owned mailbox killed: the process that notices (here, an opener)
    /// removes the name and reports the mailbox gone (warning, `ownerDied`).
    @Test func ownerDied() throws {
        try logging { logs in
            let name = uniqueName("owner")
            defer { try? Mailbox.delete(name) }
            let owner = try Peer(["own", name, "4"])
            let deadline = ContinuousClock.now + .seconds(30)
            while !FileManager.default.fileExists(atPath: "/dev/shm/shmmb.\(name)"), ContinuousClock.now < deadline {
                usleep(2_000)
            }
            owner.kill9()
            #expect(killedBySIGKILL(owner))
            #expect(throws: MailboxError.ownerTerminated(name)) { _ = try Mailbox.open(name) }
            let records = logs.records(of: name)
            #expect(records.map(\.metadata["ending"]) == ["ownerDied"], "\(records)")
            #expect(records.first?.level == .warning)
        }
    }

    /// An unbounded mailbox growing and giving segments back, and its deletion, are logged.
    @Test func growingGivingBackAndDeleting() throws {
        try logging { logs in
            let name = uniqueName("grow")
            let box = try Mailbox.create(name, options: MailboxOptions(capacity: .unbounded(segmentCapacity: 4), maxMessageSize: 64))
            for index in 0..<12 { try box.send("\(index)") }
            for _ in 0..<12 { _ = try box.receive(timeout: .seconds(5)) }
            _ = try box.tryReceive()
            try Mailbox.delete(name)
            let records = logs.records(of: name)
            let grown = records.filter { $0.metadata["event"] == "segment-grown" }.compactMap(\.metadata["generation"])
            #expect(grown == ["1", "2"], "\(records.map(\.message))")
            #expect(records.contains { $0.metadata["event"] == "segments-given-back" && $0.level == .info })
            #expect(records.last?.metadata["event"] == "mailbox-gone")
            #expect(records.last?.metadata["ending"] == "deleted")
            #expect(records.last?.level == .notice)
        }
    }
}
