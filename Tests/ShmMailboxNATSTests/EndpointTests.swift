import Foundation
import MailboxTestSupport
import NATSTestSupport
import ShmMailbox
import ShmMailboxNATS
import Testing

/// Direct naming across machines: endpoint names held as leases, one bounded link per sender,
/// receive from one sender or from anyone with the sender's name.
@Suite(.enabled(if: natsInstalled, "nats-server is not installed (apt-get install nats-server)"))
struct EndpointTests {
    let server: NATSServer
    let connection: NATSConnection

    init() throws {
        server = try NATSServer()
        connection = try NATSConnection(server.url)
    }

    @Test func aNameIsHeldByOneEndpointAndSendingNeedsAHolder() throws {
        let q = try RemoteEndpoint.join("Q", on: connection)
        expectRemoteError({ if case .nameTaken("Q", let holder) = $0 { holder.contains("pid \(getpid())") } else { false } }) {
            try RemoteEndpoint.join("Q", on: connection)
        }
        let p = try RemoteEndpoint.join("P", on: connection)
        expectRemoteError({ $0 == .noSuchEndpoint("nobody") }) { try p.send(to: "nobody", "hello") }
        try p.send(to: "Q", "hello")
        #expect(try q.receive(timeout: .seconds(5)).string == "hello")
        q.close()
        expectRemoteError({ $0 == .noSuchEndpoint("Q") }) {
            // The sender looks again at most once a second.
            Thread.sleep(forTimeInterval: 1.1)
            try p.send(to: "Q", "anyone there?")
        }
        _ = try RemoteEndpoint.join("Q", on: connection)
    }

    @Test func receiveFromOneSenderOrFromAnyoneWithTheSendersName() throws {
        let q = try RemoteEndpoint.join("Q", on: connection)
        let p = try RemoteEndpoint.join("P", on: connection)
        let r = try RemoteEndpoint.join("R", on: connection)
        for index in 0..<20 {
            try p.send(to: "Q", "p\(index)")
            try r.send(to: "Q", "r\(index)")
        }
        // Only R's, in order, although P's came first.
        #expect(try (0..<20).map { _ in try q.receive(from: "R", timeout: .seconds(5)).string } == (0..<20).map { "r\($0)" })
        #expect(try q.tryReceive(from: "R") == nil)
        // The rest, from anyone: all P's, each naming its sender.
        var fromAnyone: [String] = []
        for _ in 0..<20 {
            let message = try q.receive(timeout: .seconds(5))
            #expect(message.sender?.name == "P")
            fromAnyone.append(message.string)
        }
        #expect(fromAnyone == (0..<20).map { "p\($0)" })
        #expect(try q.tryReceive() == nil)
    }

    @Test func aFullLinkBlocksOnlyItsOwnSender() throws {
        let q = try RemoteEndpoint.join("Q", on: connection, options: .init(linkCapacity: 3))
        let p = try RemoteEndpoint.join("P", on: connection)
        let r = try RemoteEndpoint.join("R", on: connection)
        for index in 0..<3 { try p.send(to: "Q", "p\(index)") }
        #expect(try p.trySend(to: "Q", "p3") == false)
        expectRemoteError({ $0 == .timedOut }) { try p.send(to: "Q", "p3", timeout: .milliseconds(200)) }
        #expect(try r.trySend(to: "Q", "r0"))
        #expect(try q.receive(from: "P", timeout: .seconds(5)).string == "p0")
        #expect(try p.trySend(to: "Q", "p3"))
        #expect(try q.receive(from: "R", timeout: .seconds(5)).string == "r0")
        #expect(try (0..<3).map { _ in try q.receive(from: "P", timeout: .seconds(5)).string } == ["p1", "p2", "p3"])
    }

    @Test func messagesWaitForTheNamesNextHolder() throws {
        let p = try RemoteEndpoint.join("P", on: connection)
        var q: RemoteEndpoint? = try RemoteEndpoint.join("Q", on: connection)
        try p.send(to: "Q", "one")
        try p.send(to: "Q", "two")
        q?.close()
        q = nil
        let next = try RemoteEndpoint.join("Q", on: connection)
        #expect(try next.receive(timeout: .seconds(5)).string == "one")
        #expect(try next.receive(from: "P", timeout: .seconds(5)).string == "two")
    }

    @Test func sendersInOtherProcessesAreNamedAndInOrderEveryByteChecked() throws {
        let q = try RemoteEndpoint.join("Q", on: connection)
        let count = 200
        let senders = try [("A", 1), ("B", 2)].map { try startPeer(["endpoint-send", server.url, $0.0, "Q", "\($0.1)", "\(count)"]) }
        var next: [String: UInt64] = ["A": 0, "B": 0]
        for _ in 0..<(2 * count) {
            try q.receive(timeout: .seconds(30)) { bytes, from in
                let (sender, sequence) = try TestMessages.verify(bytes)
                #expect(sender == (from == "A" ? 1 : 2))
                #expect(sequence == next[from], "from \(from): \(sequence), expected \(next[from] ?? 0)")
                next[from] = sequence + 1
            }
        }
        #expect(next == ["A": UInt64(count), "B": UInt64(count)])
        for peer in senders { #expect(peer.wait(timeout: .seconds(30)) == .exited(0), "\(peer.standardOutput())") }
        #expect(try q.tryReceive() == nil)
    }
}
