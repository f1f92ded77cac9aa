import Foundation
import MailboxTestSupport
import NATSTestSupport
import ShmMailbox
import ShmMailboxNATS
import Testing

/// Receiver policies and ownership across machines, each carried by a lease: the exclusive
/// receive turn, the pair's roles, the process owner; and what happens when a holder dies.
@Suite(.enabled(if: natsInstalled, "nats-server is not installed (apt-get install nats-server)"))
struct RoleTests {
    let server: NATSServer
    let connection: NATSConnection

    init() throws {
        server = try NATSServer()
        connection = try NATSConnection(server.url)
    }

    @Test func anExclusiveMailboxHasOneReceiverAtATime() throws {
        let name = uniqueRemoteName("exclusive")
        let box = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(receiverPolicy: .exclusive))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        for index in 0..<3 { try box.send("e\(index)") }
        #expect(try box.receive(timeout: .seconds(5)).string == "e0")
        let other = try RemoteMailbox.open(name, on: connection)
        expectRemoteError({ error in
            guard case .receiverBusy(let holder) = error else { return false }
            return holder.contains("pid \(getpid())")
        }) { try other.tryReceive() }
        // A waiting receiver gets the turn once the holder closes its handle.
        other.whenReceiverBusy = .wait
        let handoff = Handoff(other)
        let waiter = Background { try handoff.value.receive(timeout: .seconds(10)).string }
        Thread.sleep(forTimeInterval: 0.3)
        box.close()
        #expect(try waiter.join() == "e1")
        #expect(try other.receive(timeout: .seconds(5)).string == "e2")
    }

    @Test func aDeadHoldersTurnAndMessageGoToTheNextReceiver() throws {
        let name = uniqueRemoteName("exclusive-dead")
        let box = try RemoteMailbox.create(name, on: connection,
                                           options: RemoteMailboxOptions(receiverPolicy: .exclusive, redeliveryDelay: .seconds(1)))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try sendTestMessages(box, sender: 8, count: 2)
        let holder = try startPeer(["hold", server.url, name])
        #expect(waitForOutput(holder, "HOLDING 8 0"), "\(holder.standardOutput())")
        expectRemoteError({ error in
            guard case .receiverBusy(let who) = error else { return false }
            return who.contains("pid \(holder.pid)")
        }) { try box.tryReceive() }
        _ = holder.killAndWait()
        // Free once the dead holder's lease expires (LeaseTable.ttl, 4 s); its message comes back.
        box.whenReceiverBusy = .wait
        let start = ContinuousClock.now
        let first = try box.receive(timeout: .seconds(15))
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(first.isRedelivered)
        #expect(try first.bytes.withUnsafeBytes { try TestMessages.verify($0) } == (8, 0))
        let second = try box.receive(timeout: .seconds(5))
        #expect(try second.bytes.withUnsafeBytes { try TestMessages.verify($0) } == (8, 1) && !second.isRedelivered)
    }

    @Test func aPairHasOneSenderAndOneReceiver() throws {
        let name = uniqueRemoteName("pair")
        let box = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(receiverPolicy: .pair))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try box.send("from the sender")
        let intruder = try RemoteMailbox.open(name, on: connection)
        expectRemoteError({ if case .roleTaken("sender", _) = $0 { true } else { false } }) { try intruder.send("second sender") }
        let receiver = try RemoteMailbox.open(name, on: connection)
        #expect(try receiver.receive(timeout: .seconds(5)).string == "from the sender")
        expectRemoteError({ if case .receiverBusy = $0 { true } else { false } }) { try intruder.tryReceive() }
        box.close()
        try intruder.send("now the sender")
        #expect(try receiver.receive(timeout: .seconds(5)).string == "now the sender")
    }

    @Test func onlyTheOwnerReceivesAndItsCloseEndsTheMailbox() throws {
        let name = uniqueRemoteName("owned")
        let owner = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(ownership: .process))
        let sender = try RemoteMailbox.open(name, on: connection)
        try sender.send("to the owner")
        expectRemoteError({ if case .notPermitted = $0 { true } else { false } }) { try sender.tryReceive() }
        #expect(try owner.receive(timeout: .seconds(5)).string == "to the owner")
        owner.close()
        expectRemoteError({ $0 == .ownerTerminated(name) }) { try sender.send("too late", timeout: .seconds(5)) }
        expectRemoteError({ $0 == .notFound(name) }) { try RemoteMailbox.open(name, on: connection) }
    }

    @Test func aKilledOwnersMailboxEndsForItsSenders() throws {
        let name = uniqueRemoteName("owner-killed")
        let ownerProcess = try startPeer(["own", server.url, name])
        #expect(waitForOutput(ownerProcess, "OWNING"), "\(ownerProcess.standardOutput())")
        let sender = try RemoteMailbox.open(name, on: connection)
        try sender.send("while alive")
        _ = ownerProcess.killAndWait()
        // Within the lease's lifetime and one look, a send finds the owner gone.
        let start = ContinuousClock.now
        expectRemoteError({ $0 == .ownerTerminated(name) }) {
            while ContinuousClock.now - start < .seconds(15) {
                try sender.send("after death", timeout: .seconds(5))
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        #expect(ContinuousClock.now - start < .seconds(10))
        expectRemoteError({ $0 == .notFound(name) }) { try RemoteMailbox.open(name, on: connection) }
    }

    @Test func roundRobinAndSystemOwnershipAreRefusedNotWeakened() throws {
        expectRemoteError({ if case .unsupported(let why) = $0 { why.contains("roundRobin") } else { false } }) {
            try RemoteMailbox.create(uniqueRemoteName("rr"), on: connection, options: RemoteMailboxOptions(receiverPolicy: .roundRobin))
        }
        expectRemoteError({ if case .unsupported(let why) = $0 { why.contains("system") } else { false } }) {
            try RemoteMailbox.create(uniqueRemoteName("sys"), on: connection, options: RemoteMailboxOptions(ownership: .system))
        }
    }
}
