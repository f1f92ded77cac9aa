import Foundation
import PeerProcess
import Testing
@testable import ShmMailbox

/// Waits until a mailbox named `name` can be opened (its creator is another process).
func waitForMailbox(_ name: String, timeout: Duration = .seconds(20)) throws -> Mailbox {
    let deadline = ContinuousClock.now + timeout
    while !segmentExists(name) && ContinuousClock.now < deadline {
        usleep(5_000)
    }
    return try Mailbox.open(name)
}

func segmentExists(_ name: String) -> Bool {
    FileManager.default.fileExists(atPath: "/dev/shm/shmmb." + name)
}

extension MultiProcess {
    @Suite("Ownership")
    struct Ownership {
        /// The owner of a process-owned mailbox is killed while senders in three processes block
        /// on it: every sender wakes with `ownerTerminated` within a bounded time, the segment is
        /// gone, and `shmbox gc` finds nothing left.
        @Test func ownerKilledWakesEveryBlockedSender() throws {
            try withName("owner-killed") { name in
                let owner = try Peer(["own", name, "2"])
                _ = try waitForMailbox(name)
                let senders = try (1...3).map { try Peer(["send", name, String($0), "-1", "20", "64"]) }
                usleep(300_000)
                #expect(senders.allSatisfy { $0.process.isRunning }, "senders should be blocked on the full mailbox")
                owner.kill9()
                let killedAt = ContinuousClock.now
                var slowest = Duration.zero
                for sender in senders {
                    let result = sender.finish(timeout: .seconds(10))
                    slowest = max(slowest, ContinuousClock.now - killedAt)
                    #expect(result.status == 1 && result.stderr.contains("has gone"), "sender: \(result.stderr)")
                }
                #expect(slowest < .seconds(2), "slowest sender noticed after \(slowest)")
                #expect(owner.finish().signaled)
                #expect(!segmentExists(name))
                expectError({ if case .notFound = $0 { true } else { false } }) { try Mailbox.open(name) }
                let gc = try Peer(["gc"], executable: "shmbox").finish()
                #expect(gc.status == 0 && !gc.stdout.contains(name))
            }
        }

        /// The owner closes its mailbox while this process is blocked sending to it: the send
        /// fails with `ownerTerminated` as soon as the owner is gone.
        @Test func ownerClosingWakesABlockedSend() throws {
            try withName("owner-closes") { name in
                let owner = try Peer(["own", name, "1", "400"])
                let box = try waitForMailbox(name)
                try box.send("fills it")
                let (_, seconds) = timed {
                    expectError(.ownerTerminated(name)) { try box.send("blocks", timeout: .seconds(20)) }
                }
                #expect(seconds < 5)
                #expect(owner.expectSuccess().contains("closed"))
                #expect(!segmentExists(name))
                expectError({ if case .notFound = $0 { true } else { false } }) { try Mailbox.open(name) }
            }
        }

        /// Only the owner receives from a process-owned mailbox; others may send.
        @Test func onlyTheOwnerReceives() throws {
            try withName("owner-only") { name in
                let owner = try Peer(["own", name, "4"])
                defer { owner.kill9(); owner.finish() }
                let box = try waitForMailbox(name)
                #expect(box.ownership == .process)
                #expect(box.owner?.pid == owner.pid)
                try box.send("to the owner")
                expectError({ if case .notPermitted = $0 { true } else { false } }) { try box.tryReceive() }
                #expect(box.depth == 1, "the refused receive must not take the message")
            }
        }

        /// System ownership: the creator is the only receiver at first; a grant lets another
        /// process receive; a transfer moves ownership (and the old owner loses its rights).
        @Test func grantAndTransferAcrossProcesses() throws {
            try withMailbox("system", MailboxOptions(capacity: 4, maxMessageSize: 64, ownership: .system)) { name, box throws in
                #expect(box.owner == ProcessIdentity.current())
                try box.send("only the owner")
                let refused = try Peer(["receive-one", name]).finish()
                #expect(refused.status == 6, "ungranted receiver: \(refused.stdout)")
                #expect(try box.receive().string == "only the owner")

                let granted = try Peer(["sleep-then-receive", name, "300", "1"])
                try box.grantReceive(to: granted.pid)
                try box.send("granted")
                #expect(granted.expectSuccess() == "granted\n")

                let heir = try Peer(["sleep-then-receive", name, "300", "1"])
                try box.transferOwnership(to: heir.pid)
                #expect(box.owner?.pid == heir.pid)
                try box.send("for the new owner")
                #expect(heir.expectSuccess() == "for the new owner\n")
                try box.send("not for the old one")
                expectError({ if case .notPermitted = $0 { true } else { false } }) { try box.tryReceive() }
                expectError({ if case .notPermitted = $0 { true } else { false } }) { try box.grantReceive(to: getpid()) }
            }
        }

        @Test func grantsNeedARunningProcessAndASystemOwner() throws {
            try withMailbox("grant-checks", MailboxOptions(capacity: 2, maxMessageSize: 8, ownership: .system)) { _, box throws in
                expectError(.noSuchProcess(Int32.max)) { try box.grantReceive(to: Int32.max) }
                expectError(.noSuchProcess(-1)) { try box.transferOwnership(to: -1) }
            }
            try withMailbox("grant-none", MailboxOptions(capacity: 2, maxMessageSize: 8)) { _, box throws in
                #expect(box.owner == nil)
                expectError({ if case .notPermitted = $0 { true } else { false } }) { try box.grantReceive(to: getpid()) }
            }
        }

        /// A message received from another process names it in full (pid and start time, what
        /// the peer reports as its `ProcessIdentity`), on both ring kinds, and that identity can be
        /// granted and made the owner as it is. On a one-to-one mailbox, a message whose sender has
        /// given up the sender role since carries only its pid (start time 0); a shared slot keeps
        /// its sender's identity.
        @Test(arguments: [MailboxOptions.RingKind.oneToOne, .shared])
        func receivedMessagesNameTheirSendersIdentity(kind: MailboxOptions.RingKind) throws {
            try withMailbox("identity", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: kind, ownership: .system)) { name, box throws in
                try withMailbox("identity-go", MailboxOptions(capacity: 2, maxMessageSize: 16)) { goName, go throws in
                    let peer = try Peer(["send-then-hold", name, goName, "first", "second"])
                    var released = false
                    defer { if !released { peer.kill9(); peer.finish() } }
                    let first = try box.receive(timeout: .seconds(60))
                    #expect(first.string == "first")
                    // The peer holds its handle (and the sender role) until told otherwise.
                    let running = try #require(ProcessIdentity.live(pid: peer.pid))
                    #expect(first.sender == running)
                    #expect(first.sender.pid == peer.pid && first.sender.startTime != 0)

                    try box.grantReceive(to: first.sender)
                    let impostor = ProcessIdentity(pid: peer.pid, startTime: first.sender.startTime + 1)
                    expectError(.noSuchProcess(peer.pid)) { try box.grantReceive(to: impostor) }
                    expectError(.noSuchProcess(peer.pid)) { try box.transferOwnership(to: impostor) }

                    let expectedOutput: String
                    switch kind {
                    case .shared:
                        // The grant lets the peer receive.
                        try box.send("granted")
                        try go.send("receive")
                        expectedOutput = "granted\n"
                    default:
                        try go.send("close")
                        expectedOutput = "closed\n"
                    }
                    released = true
                    let output = peer.expectSuccess()
                    #expect(output == "identity \(first.sender.pid) \(first.sender.startTime)\n" + expectedOutput)
                    guard kind == .oneToOne else { return }

                    // Sent by the peer just before it gave up the role (and exited): pid only.
                    let second = try box.receive(timeout: .seconds(10))
                    #expect(second.string == "second")
                    #expect(second.sender == ProcessIdentity(pid: peer.pid, startTime: 0))
                    // Not alive any more: refused, with or without its start time.
                    expectError(.noSuchProcess(peer.pid)) { try box.grantReceive(to: first.sender) }
                    expectError(.noSuchProcess(peer.pid)) { try box.transferOwnership(to: first.sender) }
                }
            }
        }

        /// `transferOwnership(to:)` takes a received message's sender as it is: the new owner is
        /// that identity, start time included.
        @Test func ownershipGoesToAMessagesSender() throws {
            try withMailbox("identity-owner", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .shared, ownership: .system)) { name, box throws in
                try withMailbox("identity-owner-go", MailboxOptions(capacity: 2, maxMessageSize: 16)) { goName, go throws in
                    let peer = try Peer(["send-then-hold", name, goName, "hello"])
                    var released = false
                    defer { if !released { peer.kill9(); peer.finish() } }
                    let hello = try box.receive(timeout: .seconds(60))
                    try box.transferOwnership(to: hello.sender)
                    #expect(box.owner == hello.sender)
                    #expect(box.owner == ProcessIdentity.live(pid: peer.pid))
                    try box.send("for the new owner")
                    try go.send("receive")
                    released = true
                    let output = peer.expectSuccess()
                    #expect(output == "identity \(hello.sender.pid) \(hello.sender.startTime)\nfor the new owner\n")
                }
            }
        }

        /// A live pid with a different start time is not the owner: a reused pid never keeps a
        /// dead owner's mailbox alive.
        @Test func reusedPidIsNotMistakenForTheOwner() throws {
            try withName("pid-reuse") { name in
                let box = try Mailbox.create(name, options: MailboxOptions(capacity: 4, maxMessageSize: 64, ownership: .process))
                // Pretend the owner is a process with our pid that started at another time.
                let impostor = ProcessIdentity(pid: getpid(), startTime: ProcessIdentity.current().startTime + 12_345).packed
                scribble(on: name) { base, _ in
                    base.storeBytes(of: impostor, toByteOffset: SegmentLayout.ownerOffset, as: UInt64.self)
                }
                let result = try Peer(["open", name]).finish()
                #expect(result.status == 5, "open of a mailbox whose owner is gone: \(result.stdout)")
                #expect(!segmentExists(name))
                _ = box
            }
        }

        /// `shmbox gc` removes a mailbox whose owner died and lists it.
        @Test func gcRemovesAbandonedMailboxes() throws {
            try withName("gc") { name in
                let owner = try Peer(["own", name, "4"])
                _ = try waitForMailbox(name)
                owner.kill9()
                owner.finish()
                #expect(segmentExists(name))
                let gc = try Peer(["gc"], executable: "shmbox").finish()
                #expect(gc.status == 0)
                #expect(gc.stdout.split(separator: "\n").contains(Substring(name)))
                #expect(!segmentExists(name))
                let again = try Peer(["gc"], executable: "shmbox").finish()
                #expect(!again.stdout.contains(name))
            }
        }

        /// `shmbox receive NAME --create --owner process` owns its mailbox for as long as it runs.
        @Test func shmboxReceiveCanOwnAMailbox() throws {
            try withName("cli-owner") { name in
                let receiver = try Peer(["receive", name, "--create", "--owner", "process", "--count", "1"], executable: "shmbox")
                let box = try waitForMailbox(name)
                #expect(box.ownership == .process)
                #expect(box.owner?.pid == receiver.pid)
                try box.send("hi")
                #expect(receiver.expectSuccess() == "ready\nhi\n")
                #expect(!segmentExists(name))
            }
        }
    }
}
