import Foundation
import NATSTestSupport
import Testing
@testable import ShmMailboxNATS

/// A receiver that opens a remote mailbox while its creator is between making the stream and
/// making its consumer (`RemoteMailbox.create` does one, then the other).
@Suite(.enabled(if: natsInstalled, "nats-server is not installed (apt-get install nats-server)"))
struct CreationRaceTests {
    @Test("a receive on a mailbox whose consumer comes a moment later waits for it")
    func receiveWaitsForTheConsumer() throws {
        let server = try NATSServer()
        let connection = try NATSConnection(server.url)
        let name = uniqueRemoteName("race")
        let options = RemoteMailboxOptions()
        let mapping = try StreamMapping(name: name)
        let settings = StreamMapping.Settings(capacity: options.capacity, maxMessageSize: options.maxMessageSize,
                                              receiverPolicy: options.receiverPolicy, ownership: options.ownership,
                                              nonce: "0123456789abcdef", redeliveryDelay: options.redeliveryDelay)
        // The creator's first step only: the stream exists, its consumer not yet.
        try RemoteMailbox.makeStream(mapping, settings: settings, options: options, connection: connection)
        let receiver = try RemoteMailbox.open(name, on: connection)
        let sender = try RemoteMailbox.open(name, on: connection)
        try sender.send(Array("early".utf8))
        // The creator's second step, 300 ms later, while the receive below waits for it.
        let creator = Thread {
            usleep(300_000)
            try? RemoteMailbox.addConsumer(mapping, redeliveryDelay: options.redeliveryDelay, connection: connection)
        }
        creator.start()
        #expect(try receiver.receive(timeout: .seconds(10)).string == "early")
        try RemoteMailbox.delete(name, on: connection)
    }
}
