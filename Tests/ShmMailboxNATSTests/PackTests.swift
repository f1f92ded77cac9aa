import CNATS
import Foundation
import MailboxTestSupport
import NATSTestSupport
@testable import ShmMailboxNATS
import Testing

/// Packs: a `batch` on an unbounded mailbox stores consecutive sends as one JetStream message,
/// and receivers hand them over one by one with every per-message promise kept: each message
/// once, in order, content intact; a receiver that dies part-way through a pack repeats at most
/// what it had in hand since its last record, and loses nothing.
@Suite(.enabled(if: natsInstalled, "nats-server is not installed (apt-get install nats-server)"), .serialized)
struct PackTests {
    let server: NATSServer
    let connection: NATSConnection

    init() throws {
        server = try NATSServer()
        connection = try NATSConnection(server.url)
    }

    /// Packs are made for unbounded mailboxes only.
    static func unbounded(redeliveryDelay: Duration = .seconds(30)) -> RemoteMailboxOptions {
        RemoteMailboxOptions(capacity: .unbounded, redeliveryDelay: redeliveryDelay)
    }

    /// Sends `count` test messages from `sender` (sequence `from`…) in one batch.
    private func sendBatch(_ box: RemoteMailbox, sender: UInt32, from: UInt64 = 0, count: Int, maxSize: Int = 300) throws {
        try box.batch {
            for sequence in from..<from + UInt64(count) {
                let length = TestMessages.length(sender: sender, sequence: sequence, minSize: 24, maxSize: maxSize)
                try box.send(TestMessages.make(sender: sender, sequence: sequence, length: length))
            }
        }
    }

    /// Receives until nothing comes for `idle`: (sender, sequence, redelivered) of each message.
    private func drain(_ box: RemoteMailbox, idle: Duration = .milliseconds(1500)) throws -> [(UInt32, UInt64, Bool)] {
        var got: [(UInt32, UInt64, Bool)] = []
        while true {
            do {
                try box.receive(timeout: idle) { bytes, _, redelivered in
                    let (sender, sequence) = try bytes.withUnsafeBytes { try TestMessages.verify($0) }
                    got.append((sender, sequence, redelivered))
                }
            } catch RemoteMailboxError.timedOut {
                return got
            }
        }
    }

    @Test func aBatchTravelsAsFewPacksAndArrivesWholeAndInOrder() throws {
        let name = uniqueRemoteName("pack")
        let box = try RemoteMailbox.create(name, on: connection, options: Self.unbounded())
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try sendBatch(box, sender: 3, count: 1000)
        // 1000 messages of 24–300 bytes: about 165 kB, so three or four packs of at most 64 KiB.
        let stored = try box.depth
        #expect(stored >= 2 && stored <= 5, "\(stored) stream messages")
        let receiver = try RemoteMailbox.open(name, on: connection)
        var sequences: [UInt64] = []
        var indexes: [Int] = []
        while sequences.count < 1000 {
            _ = try receiver.receiveBatch(limit: 256, timeout: .seconds(5)) { bytes, sender, redelivered, _, index in
                let (from, sequence) = try TestMessages.verify(bytes)
                #expect(from == 3 && !redelivered)
                #expect(sender == RemoteSender.current)
                sequences.append(sequence)
                indexes.append(index)
            }
        }
        #expect(sequences == Array(0..<1000), "each once, in order")
        #expect(indexes.first == 0 && indexes.max()! > 200, "handed from packs: \(indexes.max()!)")
        #expect(try receiver.tryReceive() == nil)
        #expect(try box.depth == 0)
    }

    @Test func singleReceivesGoThroughAPackAndAnotherHandleGetsTheRestAfterAClose() throws {
        let name = uniqueRemoteName("pack-close")
        let box = try RemoteMailbox.create(name, on: connection, options: Self.unbounded())
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try sendBatch(box, sender: 4, count: 100)
        #expect(try box.depth == 1)
        let first = try RemoteMailbox.open(name, on: connection)
        var sequence: UInt64 = 0
        for _ in 0..<30 {
            let message = try first.receive(timeout: .seconds(5))
            #expect(try message.bytes.withUnsafeBytes { try TestMessages.verify($0) } == (4, sequence))
            #expect(message.index == Int(sequence) && !message.isRedelivered)
            sequence += 1
        }
        // How far the first handle got is recorded after each call.
        #expect(try connection.packProgress().read(first.progressKey(first.packInHand!.sequence))?.1 == "30")
        let key = first.progressKey(first.packInHand!.sequence)
        first.close()
        let rest = try drain(try RemoteMailbox.open(name, on: connection))
        #expect(rest.map(\.1) == Array(30..<100), "the rest, once, in order")
        #expect(rest.allSatisfy { $0.0 == 4 })
        // Finished: the progress key is gone with the pack.
        #expect(try connection.packProgress().read(key) == nil)
    }

    /// A receiver is stopped at each point of the pack protocol and killed (`kill -9`); a
    /// receiver in this process takes over once the redelivery delay has passed.
    /// - `handed`: its last message was handed over, not yet recorded: that message (only)
    ///   comes again, marked redelivered;
    /// - `recorded`: progress recorded, the server not yet told: nothing comes twice;
    /// - `acknowledged`: the finished pack acknowledged, its key not yet removed: nothing comes
    ///   again (the key is left, harmless).
    @Test(arguments: ["handed", "recorded", "acknowledged"])
    func aReceiverKilledAtAPointOfThePackProtocolLosesNothing(point: String) throws {
        let name = uniqueRemoteName("pack-kill")
        let box = try RemoteMailbox.create(name, on: connection, options: Self.unbounded(redeliveryDelay: .seconds(1)))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try sendBatch(box, sender: 6, count: 40)
        try sendBatch(box, sender: 6, from: 40, count: 40)
        #expect(try box.depth == 2)
        // `handed` and `recorded` stop after the 10th message; `acknowledged` once the first pack
        // is finished.
        let peer = try startPeer(["pack-stop", server.url, name, point, point == "acknowledged" ? "1" : "10"])
        #expect(waitForOutput(peer, "AT \(point)"), "\(peer.standardOutput())")
        _ = peer.killAndWait()
        let before = receivedRecords(peer.standardOutput())
        let expectedBefore = point == "acknowledged" ? 40 : 10
        #expect(before.map(\.sequence) == (0..<UInt64(expectedBefore)).map { $0 }, "\(before.map(\.sequence))")
        let after = try drain(try RemoteMailbox.open(name, on: connection))
        let again = point == "handed" ? [UInt64(9)] : []
        // The rest of the first pack (redelivered after the delay, so after the second pack).
        #expect(after.filter { $0.1 < 40 }.map(\.1) == again + Array(UInt64(expectedBefore)..<40), "\(after.map(\.1))")
        #expect(after.filter { $0.1 >= 40 }.map(\.1) == Array(40..<80), "\(after.map(\.1))")
        // The first pack, redelivered, comes marked so; the second was never taken.
        #expect(after.filter { $0.1 < 40 }.allSatisfy { $0.2 })
        #expect(after.filter { $0.1 >= 40 }.allSatisfy { !$0.2 })
    }

    /// A handle that keeps a pack part-way through for longer than the redelivery delay does not
    /// hand over what the server meanwhile gave another receiver: it lets the pack go.
    @Test func aPackKeptLongerThanTheRedeliveryDelayIsNotHandedOverTwice() throws {
        let name = uniqueRemoteName("pack-stale")
        let box = try RemoteMailbox.create(name, on: connection, options: Self.unbounded(redeliveryDelay: .seconds(1)))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try sendBatch(box, sender: 8, count: 60)
        let slow = try RemoteMailbox.open(name, on: connection)
        func sequence(_ message: RemoteMessage) throws -> UInt64 {
            try message.bytes.withUnsafeBytes { try TestMessages.verify($0).sequence }
        }
        var sequences = try (0..<10).map { _ in try sequence(slow.receive(timeout: .seconds(5))) }
        Thread.sleep(forTimeInterval: 1.6)
        // The server gave the pack up (1 s without a word) and hands it to another receiver,
        // which starts where the slow one's record says.
        let other = try RemoteMailbox.open(name, on: connection)
        let taken = try other.receive(timeout: .seconds(5))
        #expect(taken.isRedelivered)
        sequences.append(try sequence(taken))
        // The slow handle's next receive lets the pack go instead of going on with message 10.
        #expect(try slow.tryReceive() == nil)
        sequences += try drain(other).map(\.1)
        #expect(sequences == Array(0..<60), "\(sequences)")
    }

    /// Messages a handle fetched but did not hand over (a body threw; packs beyond the limit)
    /// are given back once half the redelivery delay has passed, not handed over after another
    /// receiver got them. Before, the handle handed its stale copies too.
    @Test(arguments: [false, true]) func messagesKeptFromAnEarlierCallAreNotHandedOverTwice(packed: Bool) throws {
        struct Stop: Error {}
        let name = uniqueRemoteName("stale-prefetch")
        let box = try RemoteMailbox.create(name, on: connection, options: Self.unbounded(redeliveryDelay: .seconds(1)))
        defer { try? RemoteMailbox.delete(name, on: connection) }
        if packed {
            // Five packs of two.
            for start in stride(from: UInt64(0), to: 10, by: 2) { try sendBatch(box, sender: 9, from: start, count: 2) }
        } else {
            try sendTestMessages(box, sender: 9, count: 10)
        }
        let first = try RemoteMailbox.open(name, on: connection)
        var sequences: [UInt64] = []
        // One fetch of five stream messages; the body stops at the third message.
        #expect(throws: Stop.self) {
            _ = try first.receiveBatch(limit: 5, timeout: .seconds(5)) { bytes, _ in
                sequences.append(try TestMessages.verify(bytes).sequence)
                if sequences.count == 3 { throw Stop() }
            }
        }
        Thread.sleep(forTimeInterval: 1.6)
        let other = try drain(try RemoteMailbox.open(name, on: connection))
        // What the first handle had fetched comes redelivered (all five packs; the first five
        // messages unpacked).
        #expect(other.filter { $0.1 < (packed ? 10 : 5) }.allSatisfy { $0.2 }, "redelivered")
        sequences += other.map(\.1)
        sequences += try drain(first, idle: .milliseconds(500)).map(\.1)
        #expect(sequences.sorted() == Array(0..<10), "each once: \(sequences)")
    }

    @Test func aReceiveBodyThatThrowsPartWayThroughAPackConsumesOnlyItsMessage() throws {
        struct Stop: Error {}
        let name = uniqueRemoteName("pack-throw")
        let box = try RemoteMailbox.create(name, on: connection, options: Self.unbounded())
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try sendBatch(box, sender: 2, count: 20)
        var seen: [UInt64] = []
        #expect(throws: Stop.self) {
            _ = try box.receiveBatch(limit: 100, timeout: .seconds(5)) { bytes, _ in
                seen.append(try TestMessages.verify(bytes).sequence)
                if seen.count == 6 { throw Stop() }
            }
        }
        #expect(seen == Array(0..<6))
        // Another handle starts after the consumed message, as this one does.
        let rest = try drain(try RemoteMailbox.open(name, on: connection), idle: .milliseconds(300))
        #expect(rest.isEmpty, "the pack stays with the handle that has it in hand")
        #expect(try drain(box).map(\.1) == Array(6..<20))
    }

    @Test func sendsThatCannotBePackedKeepTheirPlaceAndBoundedMailboxesAreNotPacked() throws {
        let name = uniqueRemoteName("pack-order")
        let box = try RemoteMailbox.create(name, on: connection, options: Self.unbounded())
        defer { try? RemoteMailbox.delete(name, on: connection) }
        try box.batch {
            for sequence in UInt64(0)..<10 { try box.send(TestMessages.make(sender: 1, sequence: sequence, length: 40)) }
            // A timed send and one with its own message id are not packed; they come in order.
            try box.send(TestMessages.make(sender: 1, sequence: 10, length: 40), timeout: .seconds(5))
            try box.send(TestMessages.make(sender: 1, sequence: 11, length: 40), messageID: "own-id")
            for sequence in UInt64(12)..<20 { try box.send(TestMessages.make(sender: 1, sequence: sequence, length: 40)) }
        }
        #expect(try box.depth == 4, "pack, timed, own id, pack")
        #expect(try drain(box).map(\.1) == Array(0..<20))

        // Small messages still travel in full packs; a message over the limit is still refused.
        let smallName = uniqueRemoteName("pack-small")
        let small = try RemoteMailbox.create(smallName, on: connection, options: RemoteMailboxOptions(capacity: .unbounded, maxMessageSize: 64))
        defer { try? RemoteMailbox.delete(smallName, on: connection) }
        try small.batch {
            for sequence in UInt64(0)..<100 { try small.send(TestMessages.make(sender: 1, sequence: sequence, length: 64)) }
            expectRemoteError({ $0 == .messageTooLarge(size: 65, limit: 64) }) { try small.send([UInt8](repeating: 1, count: 65)) }
        }
        #expect(try small.depth == 1)
        #expect(try drain(small).map(\.1) == Array(0..<100))

        let boundedName = uniqueRemoteName("pack-bounded")
        let bounded = try RemoteMailbox.create(boundedName, on: connection, options: RemoteMailboxOptions(capacity: 100))
        defer { try? RemoteMailbox.delete(boundedName, on: connection) }
        try sendBatch(bounded, sender: 1, count: 30)
        #expect(try bounded.depth == 30, "a bounded mailbox counts messages: never packed")
    }

    /// A pack whose records do not add up (here published by hand) is removed and reported; the
    /// message after it is received as usual.
    @Test(arguments: [("3", [UInt8]([2, 0, 0, 0, 65, 66])), ("2", [1, 0, 0, 0, 65, 9, 0, 0, 0, 66]),
                      ("2", [1, 0, 0, 0, 65, 1, 0, 0, 0, 66, 67]), ("1", [1, 0, 0, 0, 65]), ("lots", [])])
    func aMalformedPackIsRemovedAndReported(count: String, body: [UInt8]) throws {
        let name = uniqueRemoteName("pack-bad")
        let box = try RemoteMailbox.create(name, on: connection, options: Self.unbounded())
        defer { try? RemoteMailbox.delete(name, on: connection) }
        var message: OpaquePointer?
        #expect(body.withUnsafeBytes { natsMsg_Create(&message, box.mapping.subject, nil, $0.baseAddress?.assumingMemoryBound(to: CChar.self),
                                                       Int32($0.count)) } == NATS_OK)
        defer { natsMsg_Destroy(message) }
        #expect(natsMsgHeader_Set(message, Pack.header, count) == NATS_OK)
        var ack: UnsafeMutablePointer<jsPubAck>?
        #expect(js_PublishMsg(&ack, connection.jetStream, message, nil, nil) == NATS_OK)
        jsPubAck_Destroy(ack)
        try box.send("after")
        expectRemoteError({ if case .malformedMessage(name, sequence: 1, _) = $0 { true } else { false } }) {
            try box.receive(timeout: .seconds(5))
        }
        #expect(try box.receive(timeout: .seconds(5)).string == "after")
        #expect(try box.depth == 0)
    }
}
