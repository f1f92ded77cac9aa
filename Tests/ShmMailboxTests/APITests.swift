import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

@Suite("Mailbox API")
struct APITests {
    @Test(arguments: ["", ".hidden", "a/b", "../escape", "space here", "ümlaut", "tab\t",
                      String(repeating: "x", count: 201)])
    func invalidNamesAreRejected(name: String) {
        expectError({ $0.isInvalidName }) { try Mailbox.create(name) }
        expectError({ $0.isInvalidName }) { try Mailbox.open(name) }
        expectError({ $0.isInvalidName }) { try Mailbox.delete(name) }
    }

    @Test("zero copy through spans: storeBytes in, unsafeLoadUnaligned and withUnsafeBytes out")
    func zeroCopySpans() throws {
        try withMailbox("spans", MailboxOptions(capacity: 8, maxMessageSize: 64)) { _, box in
            let orderID: UInt64 = 0x1122_3344_5566_7788
            let quantity: Int32 = -300
            try box.send(count: 12) { span in
                #expect(span.byteCount == 12)
                span.storeBytes(of: orderID, toByteOffset: 0, as: UInt64.self)
                span.storeBytes(of: quantity, toByteOffset: 8, as: Int32.self)
            }
            #expect(try box.trySend(count: 3) { span in
                span.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, from: [7, 8, 9]) }
            })
            try box.send([UInt8](arrayLiteral: 1, 2, 3, 4).span.bytes)
            let (id, count) = try box.receive { bytes, sender in
                #expect(sender.pid == getpid())
                return (bytes.unsafeLoadUnaligned(fromByteOffset: 0, as: UInt64.self),
                        bytes.unsafeLoadUnaligned(fromByteOffset: 8, as: Int32.self))
            }
            #expect(id == orderID && count == quantity)
            #expect(try box.tryReceive { bytes, _ in bytes.withUnsafeBytes { Array($0) } } == [7, 8, 9])
            var batch: [[UInt8]] = []
            #expect(try box.tryReceiveBatch { bytes, _ in batch.append(bytes.withUnsafeBytes { Array($0) }) } == 1)
            #expect(batch == [[1, 2, 3, 4]])
        }
    }

    @Test func longestValidNameWorks() throws {
        let prefix = uniqueName("n")
        let name = prefix + String(repeating: "z", count: 200 - prefix.utf8.count)
        #expect(name.utf8.count == 200)
        let box = try Mailbox.create(name)
        defer { try? Mailbox.delete(name) }
        try box.send("ok")
        #expect(try Mailbox.open(name).receive().string == "ok")
    }

    @Test(arguments: [
        MailboxOptions(capacity: 0, kind: .oneToOne), MailboxOptions(capacity: -1), MailboxOptions(capacity: .bounded(1 << 25)),
        MailboxOptions(capacity: .unbounded, kind: .oneToOne), MailboxOptions(capacity: .unbounded(segmentCapacity: 0)),
        MailboxOptions(maxMessageSize: 0), MailboxOptions(maxMessageSize: (1 << 30) + 1),
        MailboxOptions(permissions: 0o400), MailboxOptions(permissions: 0o1777),
    ])
    func invalidOptionsAreRejected(options: MailboxOptions) {
        withName("options") { name in
            expectError({ $0.isInvalidOptions }) { try Mailbox.create(name, options: options) }
            #expect(!FileManager.default.fileExists(atPath: "/dev/shm/shmmb." + name), "nothing may be left behind")
        }
    }

    @Test func createOpenDeleteLifecycle() throws {
        try withName("lifecycle") { name in
            expectError(.notFound(name)) { try Mailbox.open(name) }
            expectError(.notFound(name)) { try Mailbox.delete(name) }
            let box = try Mailbox.create(name, options: MailboxOptions(capacity: 3, maxMessageSize: 100))
            expectError(.alreadyExists(name)) { try Mailbox.create(name) }
            let other = try Mailbox.open(name)
            #expect(other.capacity == 3 && other.maxMessageSize == 100 && other.kind == .shared)
            try box.send("still here")
            try Mailbox.delete(name)
            expectError(.notFound(name)) { try Mailbox.open(name) }
            // Handles opened before the delete keep working.
            #expect(try other.receive().string == "still here")
            box.close()
            expectError(.closed) { try box.send("x") }
            expectError(.closed) { try box.tryReceive() }
        }
    }

    @Test(arguments: MailboxOptions.RingKind.allCases)
    func oversizedMessageIsRefusedAndNothingIsLost(kind: MailboxOptions.RingKind) throws {
        try withMailbox("oversized", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: kind)) { _, box throws in
            let kept = TestMessages.make(sender: 1, sequence: 0, length: 64)
            try box.send(kept)
            expectError(.messageTooLarge(size: 65, limit: 64)) { try box.send([UInt8](repeating: 1, count: 65)) }
            expectError(.messageTooLarge(size: 65, limit: 64)) { try box.trySend([UInt8](repeating: 1, count: 65)) }
            #expect(throws: MailboxError.messageTooLarge(size: 1000, limit: 64)) {
                try box.send(count: 1000) { _ in Issue.record("fill must not run") }
            }
            #expect(box.depth == 1)
            #expect(try box.receive().bytes == kept)
        }
    }

    /// A receive called from inside another receive's closure on the same handle throws
    /// `receiveInProgress` (single and batch receives, both ring kinds, and unbounded): the
    /// message in hand is consumed when the closure returns, and reading on would hand it over
    /// again (a one-to-one ring did: the same message twice). Nothing is lost or doubled.
    @Test(arguments: [MailboxOptions(capacity: 8, maxMessageSize: 64, kind: .oneToOne),
                      MailboxOptions(capacity: 8, maxMessageSize: 64, kind: .shared),
                      MailboxOptions(capacity: .unbounded, maxMessageSize: 64, kind: .shared)])
    func aReceiveInsideAReceiveOnTheSameHandleIsRefused(options: MailboxOptions) throws {
        try withMailbox("nested", options) { _, box throws in
            for value in 0..<4 { try box.send([UInt8(value)]) }
            var seen: [UInt8] = []
            try box.receive { outer, _ in
                seen.append(outer.withUnsafeBytes { $0[0] })
                expectError(.receiveInProgress) { try box.tryReceive() }
                expectError(.receiveInProgress) { try box.receive(timeout: .milliseconds(1)) }
            }
            _ = try box.receiveBatch(limit: 2) { bytes, _ in
                seen.append(bytes.withUnsafeBytes { $0[0] })
                expectError(.receiveInProgress) { try box.tryReceive() }
            }
            #expect(try box.receive(timeout: .seconds(2)).bytes == [3])
            #expect(seen == [0, 1, 2])
            #expect(try box.tryReceive() == nil)
        }
    }

    /// Capacity counts messages exactly, whatever their size, in both ring kinds.
    @Test(arguments: MailboxOptions.RingKind.allCases, [1, 3, 64])
    func capacityIsExact(kind: MailboxOptions.RingKind, capacity: Int) throws {
        try withMailbox("capacity", MailboxOptions(capacity: .bounded(capacity), maxMessageSize: 512, kind: kind)) { _, box throws in
            for index in 0..<capacity { #expect(try box.trySend([UInt8(index % 256)])) }
            #expect(try box.trySend([0]) == false)
            #expect(box.depth == capacity)
            for index in 0..<capacity { #expect(try box.tryReceive()?.bytes == [UInt8(index % 256)]) }
            #expect(try box.tryReceive() == nil)
            // Full-size messages fit `capacity` times too.
            for _ in 0..<capacity { #expect(try box.trySend([UInt8](repeating: 9, count: 512))) }
            #expect(try box.trySend([0]) == false)
        }
    }

    @Test(arguments: MailboxOptions.RingKind.allCases)
    func payloadForms(kind: MailboxOptions.RingKind) throws {
        struct Point: BitwiseCopyable, Equatable { var x: Double; var y: Int32 }
        try withMailbox("forms", MailboxOptions(capacity: 16, maxMessageSize: 256, kind: kind)) { _, box throws in
            try box.send("héllo")
            try box.send([1, 2, 3] as [UInt8])
            try box.send(ArraySlice<UInt8>([9, 8, 7, 6])[1...])
            try box.send(value: Point(x: 1.5, y: -7))
            try [UInt8](repeating: 42, count: 10).withUnsafeBytes { try box.send($0) }
            try box.send(count: 5) { buffer in
                for index in 0..<5 { buffer.storeBytes(of: UInt8(100 + index), toByteOffset: index, as: UInt8.self) }
            }
            try box.send([] as [UInt8])
            try box.send(Set<UInt8>([5]))

            let text = try box.receive()
            #expect(text.string == "héllo")
            #expect(text.sender.pid == getpid())
            #expect(try box.receive().bytes == [1, 2, 3])
            #expect(try box.receive().bytes == [8, 7, 6])
            let point = try box.receive()
            #expect(try point.load(as: Point.self) == Point(x: 1.5, y: -7))
            expectError(.sizeMismatch(expected: MemoryLayout<UInt64>.size, actual: MemoryLayout<Point>.size)) {
                try point.load(as: UInt64.self)
            }
            #expect(try box.receive { bytes, _ in bytes.withUnsafeBytes { Array($0) } } == [UInt8](repeating: 42, count: 10))
            #expect(try box.receive().bytes == [100, 101, 102, 103, 104])
            #expect(try box.receive().bytes == [])
            #expect(try box.tryReceive { bytes, sender in (bytes.withUnsafeBytes { Array($0) }, sender) }.map { $0.0 } == [5])
            #expect(try box.tryReceive { _, _ in 1 } == nil)
        }
    }

    /// A zero-copy send whose closure throws delivers nothing; a zero-copy receive whose
    /// closure throws still consumes its message. Both leave the mailbox consistent.
    @Test(arguments: MailboxOptions.RingKind.allCases)
    func throwingClosures(kind: MailboxOptions.RingKind) throws {
        struct Oops: Error {}
        try withMailbox("throwing", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: kind)) { _, box throws in
            #expect(throws: Oops.self) { try box.send(count: 10) { _ in throw Oops() } }
            try box.send("a")
            try box.send("b")
            #expect(throws: Oops.self) { try box.receive { _, _ in throw Oops() } }
            #expect(try box.receive().string == "b")
            #expect(try box.tryReceive() == nil)
        }
    }

    /// A batch's messages arrive in order, nested batches are one batch, `receiveBatch` respects
    /// its limit, and a batch larger than the mailbox cannot wait on itself.
    @Test(arguments: MailboxOptions.RingKind.allCases)
    func batchSemantics(kind: MailboxOptions.RingKind) throws {
        try withMailbox("batch-api", MailboxOptions(capacity: 8, maxMessageSize: 32, kind: kind)) { name, box throws in
            let reader = try Mailbox.open(name)
            try box.batch {
                try box.send("one")
                try box.batch { try box.send("two") }   // nested: still one batch
            }
            try box.send("three")
            var seen: [String] = []
            #expect(try reader.receiveBatch(limit: 2) { bytes, _ in seen.append(bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }) } == 2)
            #expect(try reader.receiveBatch { bytes, _ in seen.append(bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }) } == 1)
            #expect(seen == ["one", "two", "three"])
            #expect(try reader.tryReceiveBatch { _, _ in } == 0)
            expectError(.timedOut) { try reader.receiveBatch(timeout: .milliseconds(20)) { _, _ in } }
            // A batch larger than the mailbox publishes what it has when it finds the mailbox
            // full; a non-blocking send inside it then reports full instead of waiting forever.
            var accepted = 0
            try box.batch {
                while try box.trySend("x") { accepted += 1 }
            }
            #expect(accepted == 8)
            #expect(try reader.tryReceiveBatch { _, _ in } == 8)
        }
    }

    /// A batch many times larger than the ring, with a receiver that keeps up, never finds the
    /// ring full; its positions must still look consistent to the receiver (found by ringbench:
    /// the unpublished tail fell more than a ring behind the head).
    @Test(arguments: MailboxOptions.RingKind.allCases)
    func longBatchWithAReceiverThatKeepsUp(kind: MailboxOptions.RingKind) throws {
        try withMailbox("long-batch", MailboxOptions(capacity: 2, maxMessageSize: 1024, kind: kind)) { name, box throws in
            let reader = try Mailbox.open(name)
            try box.batch {
                for index in 0..<100 {
                    let message = [UInt8](repeating: UInt8(index), count: 1000)
                    try box.send(message)
                    #expect(try reader.tryReceive()?.bytes == message)
                }
                #expect(try reader.tryReceive() == nil)
            }
            #expect(try reader.tryReceive() == nil)
            try box.send("after")
            #expect(try reader.receive().string == "after")
        }
    }

    @Test func participantsAreRecorded() throws {
        try withMailbox("participants") { _, box throws in
            #expect(box.participants.isEmpty)
            try box.send("x")
            _ = try box.receive()
            let me = try #require(box.participants.first)
            #expect(box.participants.count == 1)
            #expect(me.process.pid == getpid())
            #expect(me.hasSent && me.hasReceived && me.isAlive)
        }
    }
}

extension MultiProcess {
    @Suite("One-to-one roles")
    struct Roles {
        /// A second live sending process on a one-to-one mailbox is refused with `roleTaken`;
        /// the first sender's messages are untouched.
        @Test func secondSenderIsRefused() throws {
            try withMailbox("roles", MailboxOptions(capacity: 4, maxMessageSize: 64, kind: .oneToOne)) { name, box throws in
                try box.send("mine")
                let intruder = try Peer(["send", name, "5", "1", "1", "8"])
                let result = intruder.finish(timeout: .seconds(30))
                #expect(result.status == 1)
                #expect(result.stderr.contains("already has a sender (process \(getpid()))"), "stderr: \(result.stderr)")
                #expect(try box.receive().string == "mine")
                #expect(try box.tryReceive() == nil)
            }
        }
    }
}
