#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

/// `shm-endpoint`: ShmMailbox endpoints (direct naming). The parent joins `rb-PID-RANDOM-p`, peer
/// `i` joins `rb-PID-RANDOM-s<i>`; each side sends with `send(to:)` to the other's name (on a
/// one-to-one link per ordered pair, which the first send creates) and receives from anyone
/// (`receive()`: its doorbell, then a scan of its incoming links). A fan-in is one link per
/// sender into the parent's endpoint.
///
/// The links appear only with the first messages, after the peers are ready, so the names
/// cannot go as early as the mailboxes' do: `tearDown` removes the endpoints and every link
/// from or to them (`Endpoint.remove`) when the run ends, also when it fails or a peer dies.
/// Each peer removes its own endpoint and links when it closes its link, and the parent's too
/// if the parent is gone, so a killed parent leaves nothing behind either (once its peers
/// notice, within a second).
final class EndpointSetup: TransportSetup {
    private let plan: LinkPlan
    private let options: Endpoint.Options
    private let parentName: String
    private let peerNames: [String]
    private var parent: Endpoint?

    init(_ plan: LinkPlan) throws {
        self.plan = plan
        options = Self.options(plan)
        let base = uniqueName("rb")
        parentName = base + "-p"
        peerNames = (0..<plan.shape.peers).map { "\(base)-s\($0)" }
        do {
            parent = try Endpoint.join(parentName, options: options)
        } catch {
            throw BenchError.mailbox(operation: "Endpoint.join", description: error.description)
        }
    }

    /// The same link capacity as the mailboxes' rings; messages of exactly the run's size.
    static func options(_ plan: LinkPlan) -> Endpoint.Options {
        Endpoint.Options(linkCapacity: MailboxSetup.capacity(plan),
                         maxMessageSize: plan.size, waitStrategy: plan.strategy.waitStrategy)
    }

    var note: String {
        var parts = ["one-to-one link per sender, capacity \(options.linkCapacity)",
                     "receive from anyone (doorbell, scan of the links)"]
        if plan.shape != .pingPong { parts.append("batch \(plan.batch) (Endpoint.trySendBatch, copying in)") }
        parts.append("receiver copies each message out")
        return parts.joined(separator: ", ")
    }

    func endpoint(forPeer index: Int) throws -> PeerEndpoint {
        var endpoint = PeerEndpoint()
        endpoint["parent"] = parentName
        endpoint["name"] = peerNames[index]
        return endpoint
    }

    func peerSpawned(_ index: Int) {}

    func parentLink(watchdog: Watchdog) throws -> Link {
        guard let parent else { throw BenchError.protocolViolation("the endpoint setup was torn down") }
        return EndpointLink(endpoint: parent, peer: plan.shape == .pingPong ? peerNames[0] : nil,
                            size: plan.size, watchdog: watchdog)
    }

    /// Nothing to do yet: the links are created by the first sends.
    func peersReady() {}

    func tearDown() {
        parent?.close()
        parent = nil
        for name in [parentName] + peerNames { _ = try? Endpoint.remove(name) }
    }

    static func connect(_ plan: LinkPlan, _ endpoint: PeerEndpoint, watchdog: Watchdog) throws -> Link {
        let me: Endpoint
        do {
            me = try Endpoint.join(try endpoint.string("name"), options: options(plan))
        } catch let error as MailboxError {
            throw BenchError.mailbox(operation: "Endpoint.join", description: error.description)
        }
        let own = try endpoint.string("name")
        let parent = try endpoint.string("parent")
        return EndpointLink(endpoint: me, peer: parent, size: plan.size, watchdog: watchdog) {
            (try? watchdog.checkPeer()) == nil ? [own, parent] : [own]
        }
    }
}

/// A link over an endpoint: sends go to `peer` (`send(to:)`), receives take from anyone
/// (`receive(timeout:_:)`, zero-copy), and each message is copied out into the link's own
/// buffer (as `recv` copies out of the kernel, and as `MailboxLink` does) before `body` sees it. Closing the link closes the endpoint, then removes the
/// names `removeOnClose` gives (the peer's side; the parent's `tearDown` removes its own).
///
/// Blocking calls wait in slices of a second and ask the watchdog in between, so a peer that died
/// cannot strand this side (a send also notices a dead receiver by itself: `noSuchEndpoint`).
final class EndpointLink: Link {
    private let endpoint: Endpoint
    private let peer: String?
    private let size: Int
    private let buffer: ByteBuffer
    private let watchdog: Watchdog
    private var removeOnClose: (() -> [String])?

    init(endpoint: Endpoint, peer: String?, size: Int, watchdog: Watchdog, removeOnClose: (() -> [String])? = nil) {
        self.endpoint = endpoint
        self.peer = peer
        self.size = size
        self.buffer = ByteBuffer(count: size)
        self.watchdog = watchdog
        self.removeOnClose = removeOnClose
    }

    func send(_ message: UnsafeRawBufferPointer) throws {
        guard let peer else { throw BenchError.protocolViolation("this endpoint link only receives") }
        do {
            if try endpoint.trySend(to: peer, message) { return }
        } catch {
            throw Self.failure("send", error)
        }
        while true {
            do {
                try endpoint.send(to: peer, message, timeout: MailboxLink.slice)
                return
            } catch .timedOut {
                try watchdog.checkPeer()
            } catch {
                throw Self.failure("send", error)
            }
        }
    }

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let target = buffer
        let copyOut = { (bytes: RawSpan, _: ProcessIdentity, _: String) throws -> Int in
            try target.copyIn(bytes).count
        }
        let length: Int
        do {
            if let taken = try endpoint.tryReceive(copyOut) {
                length = taken
            } else {
                length = try receiveWaiting(copyOut)
            }
        } catch let error as MailboxError {
            throw Self.failure("receive", error)
        }
        try body(target.bytes(length))
    }

    /// The next message from anyone, waiting in slices of a second.
    private func receiveWaiting(_ copyOut: (RawSpan, ProcessIdentity, String) throws -> Int) throws -> Int {
        while true {
            do {
                return try endpoint.receive(timeout: MailboxLink.slice, copyOut)
            } catch MailboxError.timedOut {
                try watchdog.checkPeer()
            }
        }
    }

    func sendBatch(count: Int, buffer message: UnsafeMutableRawBufferPointer,
                   fill: (Int, UnsafeMutableRawBufferPointer) throws -> Void) throws {
        guard let peer else { throw BenchError.protocolViolation("this endpoint link only receives") }
        // `Endpoint.trySendBatch`: the checks once, one publication and one doorbell ring per call.
        try sendInBatches(count: count, buffer: message, fill: fill) { messages, fillOne in
            do {
                return try endpoint.trySendBatch(to: peer, messages: messages, bytesEach: message.count, fillOne)
            } catch let error as MailboxError {
                throw Self.failure("send", error)
            }
        }
    }

    func receiveBatch(limit: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        let target = buffer
        // Each message is copied out (as `recv` would) before `body` sees it; the link's space
        // for the whole batch is released together.
        let copyOut = { (bytes: RawSpan, _: ProcessIdentity, _: String) throws in
            try body(try target.copyIn(bytes))
        }
        do {
            let taken = try endpoint.tryReceiveBatch(limit: limit, copyOut)
            if taken > 0 { return taken }
            while true {
                do {
                    return try endpoint.receiveBatch(limit: limit, timeout: MailboxLink.slice, copyOut)
                } catch MailboxError.timedOut {
                    try watchdog.checkPeer()
                }
            }
        } catch let error as MailboxError {
            throw Self.failure("receive", error)
        }
    }

    /// A receiver that is gone is the peer's loss (its own error is the one to report).
    private static func failure(_ operation: String, _ error: MailboxError) -> BenchError {
        if case .noSuchEndpoint(let name) = error { return .peerClosed("endpoint \(name) is gone") }
        return .mailbox(operation: operation, description: error.description)
    }

    func close() {
        endpoint.close()
        if let names = removeOnClose?() {
            for name in names { _ = try? Endpoint.remove(name) }
        }
        removeOnClose = nil
    }
}
