import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

/// `Mailbox.peek` while a sender and a receiver in other processes run flat out: every message a
/// peek returns is intact (its bytes verify) and in order, and the receiver still gets every
/// message, in order — peeking never disturbs the ring.
@Suite("Peek under traffic") struct PeekTests {
    @Test(arguments: [MailboxOptions.RingKind.shared, .oneToOne])
    func peekedMessagesAreIntact(kind: MailboxOptions.RingKind) throws {
        try withMailbox("peek-traffic", MailboxOptions(capacity: 64, maxMessageSize: 256, kind: kind)) { name, box in
            let count = 20_000
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).log").path
            defer { unlink(log) }
            let receiver = try Peer(["receive", name, "\(count)", log])
            let sender = try Peer(["send", name, "7", "\(count)", "32", "256"])
            var peeks = 0
            var seen = 0
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let messages = box.peek(limit: 64)
                peeks += 1
                var last: UInt64?
                for message in messages {
                    let (from, sequence) = try message.bytes.withUnsafeBytes { bytes in try TestMessages.verify(bytes) }
                    #expect(from == 7)
                    if let last { #expect(sequence > last, "peeked out of order") }
                    last = sequence
                    seen += 1
                }
                if seen > 5000 && peeks > 2000 { break }
            }
            #expect(sender.expectSuccess(timeout: .seconds(60)).contains("sent \(count)"))
            #expect(receiver.expectSuccess(timeout: .seconds(60)).contains("received \(count)"))
            #expect(seen > 0, "\(peeks) peeks saw nothing")
            #expect(box.depth == 0)
        }
    }
}
