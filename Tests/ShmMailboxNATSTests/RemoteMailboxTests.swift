import Foundation
import MailboxTestSupport
import NATSTestSupport
import ShmMailbox
import ShmMailboxNATS
import Testing

/// The remote mailbox's model on one real nats-server: naming, capacity, content, order,
/// competing receivers, redelivery, synchronous sends.
@Suite(.enabled(if: natsInstalled, "nats-server is not installed (apt-get install nats-server)"))
struct RemoteMailboxTests {
    let server: NATSServer
    let connection: NATSConnection

    init() throws {
        server = try NATSServer()
        connection = try NATSConnection(server.url)
    }

    @Test func createOpenListDelete() throws {
        let name = uniqueRemoteName("life")
        let options = RemoteMailboxOptions(capacity: 7, maxMessageSize: 2000)
        let box = try RemoteMailbox.create(name, on: connection, options: options)
        #expect(box.capacity == .bounded(7) && box.maxMessageSize == 2000 && box.receiverPolicy == .competing)
        expectRemoteError({ $0 == .alreadyExists(name) }) { try RemoteMailbox.create(name, on: connection, options: options) }
        expectRemoteError({ $0 == .alreadyExists(name) }) { try RemoteMailbox.create(name, on: connection) }
        let opened = try RemoteMailbox.open(name, on: connection)
        #expect(opened.capacity == .bounded(7) && opened.maxMessageSize == 2000)
        #expect(try RemoteMailbox.list(on: connection).contains(name))
        try RemoteMailbox.delete(name, on: connection)
        expectRemoteError({ $0 == .notFound(name) }) { try RemoteMailbox.open(name, on: connection) }
        expectRemoteError({ $0 == .notFound(name) }) { try RemoteMailbox.delete(name, on: connection) }
        expectRemoteError({ $0 == .deleted(name) }) { try box.send("after delete", timeout: .seconds(2)) }
        #expect(try !RemoteMailbox.list(on: connection).contains(name))
    }

    @Test func namesAndOptionsAreChecked() throws {
        expectRemoteError({ if case .invalidName = $0 { true } else { false } }) { try RemoteMailbox.create("a.b", on: connection) }
        expectRemoteError({ if case .invalidName = $0 { true } else { false } }) { try RemoteMailbox.create("", on: connection) }
        expectRemoteError({ if case .invalidOptions = $0 { true } else { false } }) {
            try RemoteMailbox.create(uniqueRemoteName("big"), on: connection,
                                     options: RemoteMailboxOptions(maxMessageSize: connection.maxPayload))
        }
        expectRemoteError({ if case .unsupported = $0 { true } else { false } }) {
            try RemoteMailbox.create(uniqueRemoteName("rr"), on: connection, options: RemoteMailboxOptions(receiverPolicy: .roundRobin))
        }
        #expect(try RemoteMailbox.list(on: connection).isEmpty)
    }

    @Test func boundedMailboxRefusesTheNextMessageExactlyAsLocally() throws {
        let name = uniqueRemoteName("bounded")
        let box = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(capacity: 3))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        for index in 0..<3 { try box.send("m\(index)") }
        #expect(try box.trySend("m3") == false)
        let start = ContinuousClock.now
        expectRemoteError({ $0 == .timedOut }) { try box.send("m3", timeout: .milliseconds(300)) }
        #expect(ContinuousClock.now - start >= .milliseconds(300))
        #expect(try box.depth == 3)
        // A blocked sender goes on as soon as a receiver makes room.
        let sender = Background { [connection] in
            let other = try RemoteMailbox.open(name, on: connection)
            try other.send("m3")
            return true
        }
        Thread.sleep(forTimeInterval: 0.2)
        #expect(try box.receive(timeout: .seconds(5)).string == "m0")
        #expect(try sender.join())
        #expect(try (1...3).map { _ in try box.receive(timeout: .seconds(5)).string } == ["m1", "m2", "m3"])
        #expect(try box.tryReceive() == nil)
    }

    @Test func unboundedMailboxStopsAtItsByteLimitWithOutOfSpace() throws {
        let name = uniqueRemoteName("unbounded")
        let box = try RemoteMailbox.create(name, on: connection,
                                           options: RemoteMailboxOptions(capacity: .unbounded, maxMessageSize: 1000, maxBytes: 20_000))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        var accepted = 0
        do {
            while accepted < 1000 {
                try box.send([UInt8](repeating: UInt8(accepted & 0xFF), count: 1000))
                accepted += 1
            }
            Issue.record("no byte limit reached after \(accepted) messages")
        } catch RemoteMailboxError.outOfSpace(let full) {
            #expect(full == name)
        }
        #expect(accepted >= 10 && accepted < 20)
        // Nothing accepted is lost: every one comes out, intact and in order.
        for index in 0..<accepted {
            let message = try box.receive(timeout: .seconds(5))
            #expect(message.bytes == [UInt8](repeating: UInt8(index & 0xFF), count: 1000))
        }
        #expect(try box.tryReceive() == nil)
    }

    @Test func tooLargeMessageIsRefusedBeforeAnythingIsSent() throws {
        let name = uniqueRemoteName("large")
        let box = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(maxMessageSize: 100))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        expectRemoteError({ $0 == .messageTooLarge(size: 101, limit: 100) }) { try box.send([UInt8](repeating: 1, count: 101)) }
        var filled = false
        expectRemoteError({ $0 == .messageTooLarge(size: 101, limit: 100) }) {
            try box.send(count: 101) { _ in filled = true }
        }
        #expect(!filled)
        try box.send([UInt8](repeating: 2, count: 100))
        #expect(try box.depth == 1)
    }

    @Test func everyByteAndTheSenderArriveInOrder() throws {
        let name = uniqueRemoteName("content")
        let box = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(capacity: 2000, maxMessageSize: 70_000))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try sendTestMessages(box, sender: 1, count: 300, minSize: 20, maxSize: 70_000)
        // Zero-copy sends, and a value.
        for sequence in 300..<UInt64(400) {
            let length = TestMessages.length(sender: 1, sequence: sequence, minSize: 20, maxSize: 4096)
            try box.send(count: length) { buffer in TestMessages.fill(&buffer, sender: 1, sequence: sequence) }
        }
        struct Tick: BitwiseCopyable, Equatable { var price: Double; var size: Int32 }
        try box.send(value: Tick(price: 101.25, size: 7))

        let receiver = try RemoteMailbox.open(name, on: connection)
        var next: UInt64 = 0
        let me = RemoteSender.current
        while next < 400 {
            _ = try receiver.receiveBatch(limit: min(64, Int(400 - next)), timeout: .seconds(5)) { bytes, sender in
                let (from, sequence) = try TestMessages.verify(bytes)
                #expect(from == 1 && sequence == next)
                #expect(sender?.host == me.host && sender?.pid == me.pid)
                next += 1
            }
        }
        #expect(try receiver.receive(timeout: .seconds(5)).load(as: Tick.self) == Tick(price: 101.25, size: 7))
        #expect(try receiver.tryReceive() == nil)
    }

    @Test func competingReceiversInOtherProcessesTakeEachMessageExactlyOnce() throws {
        let name = uniqueRemoteName("competing")
        _ = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(capacity: 100))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        let perSender = 400
        let receivers = try (0..<2).map { _ in try startPeer(["receive", server.url, name, "100000", "3000"]) }
        let senders = try (1...2).map { try startPeer(["send", server.url, name, "\($0)", "\(perSender)"]) }
        for peer in senders + receivers {
            let status = peer.wait(timeout: .seconds(90))
            #expect(status == .exited(0), "\(peer.commandLine): \(peer.standardOutput())")
        }
        var seen: [UInt32: Set<UInt64>] = [:]
        var total = 0
        for peer in receivers {
            let records = receivedRecords(peer.standardOutput())
            total += records.count
            // Each receiver sees every sender's messages in the order sent.
            for sender in [UInt32(1), 2] {
                let sequences = records.filter { $0.sender == sender }.map(\.sequence)
                #expect(sequences == sequences.sorted(), "receiver saw sender \(sender) out of order")
            }
            for record in records { seen[record.sender, default: []].insert(record.sequence) }
            #expect(records.allSatisfy { !$0.redelivered })
        }
        #expect(total == 2 * perSender, "duplicates or losses: \(total) received")
        #expect(seen[1] == Set(0..<UInt64(perSender)) && seen[2] == Set(0..<UInt64(perSender)))
    }

    @Test func aMessageWhoseReceiverIsKilledBeforeFinishingIsRedeliveredOnce() throws {
        let name = uniqueRemoteName("redeliver")
        let box = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(redeliveryDelay: .seconds(1)))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try sendTestMessages(box, sender: 5, count: 1)
        let holder = try startPeer(["hold", server.url, name])
        #expect(waitForOutput(holder, "HOLDING 5 0"), "\(holder.standardOutput())")
        // Held, not yet finished: nobody else gets it.
        #expect(try box.tryReceive() == nil)
        _ = holder.killAndWait()
        let start = ContinuousClock.now
        let again = try box.receive(timeout: .seconds(10))
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(again.isRedelivered)
        let (sender, sequence) = try again.bytes.withUnsafeBytes { try TestMessages.verify($0) }
        #expect(sender == 5 && sequence == 0)
        // Finished now: never delivered again.
        expectRemoteError({ $0 == .timedOut }) { try box.receive(timeout: .milliseconds(1500)) }
    }

    @Test func aSendRetriedUnderItsMessageIDIsStoredOnce() throws {
        let name = uniqueRemoteName("dedup")
        let box = try RemoteMailbox.create(name, on: connection)
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try box.send("once", messageID: "order-17")
        try box.send("once", messageID: "order-17")          // e.g. after sendUnconfirmed
        try RemoteMailbox.open(name, on: connection).send("once", messageID: "order-17")  // another handle too
        try box.send("next", messageID: "order-18")
        #expect(try box.depth == 2)
        #expect(try box.receive(timeout: .seconds(5)).string == "once")
        #expect(try box.receive(timeout: .seconds(5)).string == "next")
        // Remembered after it was received (within the duplicate window): still not stored again.
        try box.send("once", messageID: "order-17")
        #expect(try box.tryReceive() == nil)
    }

    @Test func discardingAMessageAlreadyGoneSaysSoWithoutFailing() throws {
        let name = uniqueRemoteName("discard")
        let box = try RemoteMailbox.create(name, on: connection)
        defer { try? RemoteMailbox.delete(name, on: connection) }
        for index in 0..<3 { try box.send("m\(index)") }
        let first = try box.receive(timeout: .seconds(5))
        // Acknowledged, so removed: now below the stream's first sequence (the server answers
        // 10043 "sequence not found" there, 10057 or 10037 elsewhere; all mean gone).
        #expect(try box.discard(sequence: first.sequence) == false)
        #expect(try box.discard(sequence: first.sequence + 1))
        #expect(try box.discard(sequence: first.sequence + 1) == false)
        #expect(try box.discard(sequence: 1_000_000) == false)
        #expect(try box.receive(timeout: .seconds(5)).string == "m2")
    }

    @Test func aReceiveWhoseClosureThrowsStillConsumesTheMessage() throws {
        struct Refused: Error {}
        let name = uniqueRemoteName("throws")
        let box = try RemoteMailbox.create(name, on: connection)
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try box.send("first")
        try box.send("second")
        #expect(throws: Refused.self) { try box.receive(timeout: .seconds(5)) { _, _ in throw Refused() } }
        #expect(try box.receive(timeout: .seconds(5)).string == "second")
        #expect(try box.tryReceive() == nil)
    }

    @Test func synchronousSendReturnsTheReceiversReceipt() throws {
        let name = uniqueRemoteName("sync")
        let box = try RemoteMailbox.create(name, on: connection)
        defer { try? RemoteMailbox.delete(name, on: connection) }
        let receiver = Background { [connection] in
            let other = try RemoteMailbox.open(name, on: connection)
            other.identity = RemoteSender(host: "receiver-host", pid: 4242, name: "R")
            return try other.receive(timeout: .seconds(10)).string
        }
        let delivery = try box.send("hello", timeout: .seconds(10), until: .received)
        #expect(delivery?.receiver == RemoteSender(host: "receiver-host", pid: 4242, name: "R"))
        #expect(try receiver.join() == "hello")
        #expect(try box.depth == 0)
    }

    @Test func synchronousSendThatNobodyTakesIsWithdrawn() throws {
        let name = uniqueRemoteName("withdrawn")
        let box = try RemoteMailbox.create(name, on: connection)
        defer { try? RemoteMailbox.delete(name, on: connection) }
        expectRemoteError({ $0 == .timedOut }) { try box.send("nobody", timeout: .milliseconds(300), until: .received) }
        #expect(try box.depth == 0)
        #expect(try box.tryReceive() == nil)
    }

    @Test func zeroCapacityIsARendezvous() throws {
        let name = uniqueRemoteName("zero")
        let box = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(capacity: .zero))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        // No receiver: a try-send sends nothing.
        #expect(try box.trySend("alone") == false)
        #expect(try box.depth == 0)
        let receiver = Background { [connection] in
            let other = try RemoteMailbox.open(name, on: connection)
            return try (0..<3).map { _ in try other.receive(timeout: .seconds(10)).string }
        }
        for index in 0..<3 { try box.send("r\(index)") }
        #expect(try receiver.join() == ["r0", "r1", "r2"])
        #expect(try box.depth == 0)
    }
}
