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

    @Test func roundRobinIsRefusedNotWeakened() throws {
        expectRemoteError({ if case .unsupported(let why) = $0 { why.contains("roundRobin") } else { false } }) {
            try RemoteMailbox.create(uniqueRemoteName("rr"), on: connection, options: RemoteMailboxOptions(receiverPolicy: .roundRobin))
        }
    }

    @Test func aSystemMailboxsOwnerReceivesGrantsAndTransfers() throws {
        let name = uniqueRemoteName("system")
        let owner = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(ownership: .system))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        let me = RemoteSender.current
        #expect(try owner.owner.map { $0.host == me.host && $0.pid == me.pid } == true)
        // Another process (as it declares itself) may send but not receive until granted.
        let other = try RemoteMailbox.open(name, on: connection)
        other.identity = RemoteSender(host: "host-b", pid: 4242)
        try other.send("one")
        try other.send("two")
        expectRemoteError({ if case .notPermitted(let why) = $0 { why.contains("owned by") } else { false } }) { try other.tryReceive() }
        expectRemoteError({ if case .notPermitted = $0 { true } else { false } }) { try other.grantReceive(to: other.identity) }
        #expect(try owner.receive(timeout: .seconds(5)).string == "one")
        try owner.grantReceive(to: other.identity)
        #expect(try other.receive(timeout: .seconds(5)).string == "two")
        // Ownership passes on: the old owner, never granted, may no longer receive.
        try owner.transferOwnership(to: other.identity)
        #expect(try owner.owner == RemoteSender(host: "host-b", pid: 4242))
        try other.send("three")
        expectRemoteError({ if case .notPermitted = $0 { true } else { false } }) { try owner.tryReceive() }
        #expect(try other.receive(timeout: .seconds(5)).string == "three")
        expectRemoteError({ if case .notPermitted = $0 { true } else { false } }) { try owner.transferOwnership(to: me) }
    }

    /// A process made owner by a transfer counts as present while it has the mailbox open,
    /// before it first receives: a reclaim is refused until it has gone. Before, the new owner
    /// took its owner lease only at its first receive, so another process could reclaim the
    /// mailbox from a live owner in between.
    @Test func anOwnerByTransferThatHasNotReceivedYetCannotBeReclaimedFrom() throws {
        let name = uniqueRemoteName("system-transfer")
        let box = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(ownership: .system))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        let control = NSTemporaryDirectory() + "session-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        _ = FileManager.default.createFile(atPath: control, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: control) }
        let newOwner = try startPeer(["session", server.url, name, control])
        defer { _ = newOwner.killAndWait() }
        #expect(waitForOutput(newOwner, "READY"), "\(newOwner.standardOutput()) \(newOwner.standardError())")
        try box.transferOwnership(to: RemoteSender(host: RemoteSender.current.host, pid: newOwner.pid))
        expectRemoteError({ if case .notPermitted(let why) = $0 { why.contains("still holds it") } else { false } }) {
            try box.reclaimOwnership()
        }
        _ = newOwner.killAndWait()
        _ = try reclaimOnceTheOwnerHasGone(box)
        #expect(try box.owner.map { $0.pid == getpid() } == true)
    }

    @Test func aDeadOwnersSystemMailboxLivesOnAndIsReclaimed() throws {
        let name = uniqueRemoteName("system-dead")
        let ownerProcess = try startPeer(["own-system", server.url, name])
        #expect(waitForOutput(ownerProcess, "OWNING"), "\(ownerProcess.standardOutput())")
        defer { try? RemoteMailbox.delete(name, on: connection) }
        let box = try RemoteMailbox.open(name, on: connection)
        try box.send("kept")
        expectRemoteError({ if case .notPermitted(let why) = $0 { why.contains("still holds") } else { false } }) { try box.reclaimOwnership() }
        _ = ownerProcess.killAndWait()
        // Still there after its creator died; reclaimable once the owner's lease expired.
        #expect(try reclaimOnceTheOwnerHasGone(box) < .seconds(10))
        #expect(try box.owner.map { $0.pid == getpid() } == true)
        #expect(try box.receive(timeout: .seconds(5)).string == "kept")
    }

    /// Reclaims `box` as soon as its owner's leases have expired (refused with `notPermitted`
    /// until then, for at most 15 s); returns how long that took.
    private func reclaimOnceTheOwnerHasGone(_ box: RemoteMailbox) throws -> Duration {
        let start = ContinuousClock.now
        // (A `catch .notPermitted where …` pattern here crashes the Swift 6.3 compiler.)
        while true {
            let outcome = Result { () throws(RemoteMailboxError) in try box.reclaimOwnership() }
            guard case .failure(let error) = outcome else { return ContinuousClock.now - start }
            guard case .notPermitted = error, ContinuousClock.now - start < .seconds(15) else { throw error }
            Thread.sleep(forTimeInterval: 0.25)
        }
    }
}
