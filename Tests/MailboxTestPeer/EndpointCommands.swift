// Endpoint (direct naming) commands of the test peer, called from the `default:` branch of
// main.swift's switch. Each joins an endpoint, does one job, reports on stdout and exits 0, or
// 1 with a reason on stderr; commands that report an error exit with `endpointExitCode(for:)`.
//
//   ep-hold NAME [MILLIS]                      join NAME, print "ready", then sleep (forever, or
//                                              MILLIS and then close and exit)
//   ep-exchange NAME ID COUNT MODE PEER:ID...  join NAME; send messages 0..<COUNT (sender ID) to
//                                              every peer and take COUNT from each, verifying
//                                              every byte and the order; MODE `from` receives
//                                              with receive(from:), `any` with receive() and
//                                              checks the reported sender names
//   ep-echo NAME PEER COUNT                    join NAME; COUNT times receive(from: PEER) and
//                                              send the same bytes back
//   ep-send NAME TO ID COUNT [DELAY] [BATCH [many]]   after DELAY ms (default 0) join NAME, send
//                                              messages 0..<COUNT (sender ID) to TO (waiting up to
//                                              20 s for TO to join), BATCH at a time inside
//                                              `Endpoint.batch` if given, or (`many`) through
//                                              `trySendBatch`, 64 bytes each, waiting in `send` for
//                                              room whenever it sends fewer; prints "at T", T the
//                                              CLOCK_MONOTONIC time in ns just before the first send
//   ep-send-once NAME TO TEXT                  join NAME, send TEXT once; print "sent" or the error
//   ep-join NAME                               join NAME; print "joined" or the error

#if canImport(Glibc)
import Glibc
#endif
import MailboxTestSupport
import ShmMailbox

/// Exit statuses the endpoint tests read: 9 no such endpoint, 10 name taken, 11 corrupted,
/// 12 timed out, else `exitCode(for:)`.
func endpointExitCode(for error: MailboxError) -> Int32 {
    switch error {
    case .noSuchEndpoint: return 9
    case .nameTaken: return 10
    case .corrupted: return 11
    case .timedOut: return 12
    default: return exitCode(for: error)
    }
}

/// `Endpoint.trySendBatch` of messages `first ..< first + messages` of sender `id`, 64 bytes each.
func typedSendBatch(_ endpoint: Endpoint, to receiver: String, messages: Int, id: UInt32, first: UInt64) throws(MailboxError) -> Int {
    do {
        return try endpoint.trySendBatch(to: receiver, messages: messages, bytesEach: 64) { index, span in
            TestMessages.fill(&span, sender: id, sequence: first + UInt64(index))
        }
    } catch let error as MailboxError {
        throw error
    } catch {
        fail("trySendBatch: \(error)")
    }
}

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Small links, so that a test's links take little of /dev/shm.
let testEndpointOptions = Endpoint.Options(linkCapacity: 64, maxMessageSize: 1024, waitStrategy: strategy())

func joinEndpoint(_ name: String) -> Endpoint {
    do {
        return try Endpoint.join(name, options: testEndpointOptions)
    } catch {
        fail("join \(name): \(error)")
    }
}

/// Runs `body` until it stops throwing `noSuchEndpoint` (the peer has not joined yet), for at
/// most 20 s.
func untilJoined<R>(_ body: () throws(MailboxError) -> R) throws(MailboxError) -> R {
    let deadline = monotonicNanos() + 20_000_000_000
    while true {
        do {
            return try body()
        } catch .noSuchEndpoint(let name) {
            if monotonicNanos() > deadline { throw .noSuchEndpoint(name) }
            sleepMillis(5)
        }
    }
}

/// The message `sequence` of sender `id`: its length varies with the sequence (20…300 bytes).
func endpointMessage(id: UInt32, sequence: UInt64) -> [UInt8] {
    TestMessages.make(sender: id, sequence: sequence,
                      length: TestMessages.length(sender: id, sequence: sequence, minSize: TestMessages.headerSize, maxSize: 300))
}

/// Checks every byte of `bytes` and that it is message `expected` of sender `id`.
func verifyEndpointMessage(_ bytes: [UInt8], id: UInt32, expected: UInt64, from peer: String) {
    let outcome = bytes.withUnsafeBytes { raw in Result { () throws(TestMessages.Failure) in try TestMessages.verify(raw) } }
    switch outcome {
    case .failure(let failure):
        fail("message from \(peer): \(failure)")
    case .success(let (sender, sequence)):
        guard sender == id else { fail("message from \(peer) carries sender id \(sender), expected \(id)") }
        guard sequence == expected else { fail("from \(peer): message \(sequence) arrived, expected \(expected)") }
        let length = TestMessages.length(sender: id, sequence: sequence, minSize: TestMessages.headerSize, maxSize: 300)
        guard bytes.count == length else { fail("from \(peer): message \(sequence) has \(bytes.count) bytes, expected \(length)") }
    }
}

/// Runs endpoint command `command` with `arguments` (the command first); false if unknown.
func runEndpointCommand(_ arguments: [String]) -> Bool {
    let command = arguments[0]
    let words = PeerArguments(arguments)
    func argument(_ index: Int) -> String { words.string(index) }
    func number(_ index: Int) -> Int { words.number(index) }

    switch command {
    case "ep-hold":
        let endpoint = joinEndpoint(argument(1))
        say("ready")
        if arguments.count > 2 {
            sleepMillis(number(2))
            endpoint.close()
            say("closed")
        } else {
            while true { pause() }
        }

    case "ep-join":
        do {
            _ = try Endpoint.join(argument(1), options: testEndpointOptions)
            say("joined")
        } catch {
            say("\(error)")
            exit(endpointExitCode(for: error))
        }

    case "ep-exchange":
        let endpoint = joinEndpoint(argument(1))
        let id = UInt32(number(2))
        let count = UInt64(number(3))
        let mode = argument(4)
        var peers: [(name: String, id: UInt32)] = []
        for spec in arguments.dropFirst(5) {
            let parts = spec.split(separator: ":")
            guard parts.count == 2, let peerID = UInt32(parts[1]) else { fail("bad peer \(spec)") }
            peers.append((String(parts[0]), peerID))
        }
        var nextExpected = [String: UInt64]()
        var received = 0
        func take(_ message: Mailbox.Message, from peer: String) {
            guard let peerID = peers.first(where: { $0.name == peer })?.id else { fail("message from unknown endpoint \(peer)") }
            let expected = nextExpected[peer, default: 0]
            verifyEndpointMessage(message.bytes, id: peerID, expected: expected, from: peer)
            nextExpected[peer] = expected + 1
            received += 1
        }
        /// Takes whatever is waiting, without blocking.
        func drain() {
            do {
                if mode == "any" {
                    while let message = try endpoint.tryReceive() { take(message.message, from: message.from) }
                } else {
                    for peer in peers {
                        while let message = try endpoint.tryReceive(from: peer.name) { take(message, from: peer.name) }
                    }
                }
            } catch {
                fail("receive: \(error)")
            }
        }
        do {
            for sequence in 0..<count {
                for peer in peers {
                    let bytes = endpointMessage(id: id, sequence: sequence)
                    // Never block on a full link while our own links fill: take what is waiting.
                    while try !untilJoined({ () throws(MailboxError) -> Bool in try endpoint.trySend(to: peer.name, bytes) }) {
                        drain()
                        sleepMillis(1)
                    }
                }
                drain()
            }
            let total = Int(count) * peers.count
            while received < total {
                if mode == "any" {
                    let message = try endpoint.receive(timeout: .seconds(30))
                    take(message.message, from: message.from)
                } else {
                    for peer in peers where nextExpected[peer.name, default: 0] < count {
                        take(try endpoint.receive(from: peer.name, timeout: .seconds(30)), from: peer.name)
                    }
                }
            }
        } catch {
            fail("exchange after \(received) received: \(error)")
        }
        say("received \(received)")
        // Stay until every peer has taken our messages: a peer may still be sending to us.
        sleepMillis(200)

    case "ep-echo":
        let endpoint = joinEndpoint(argument(1))
        let peer = argument(2)
        say("ready")
        do {
            for _ in 0..<number(3) {
                let message = try endpoint.receive(from: peer, timeout: .seconds(30))
                try endpoint.send(to: peer, message.bytes, timeout: .seconds(30))
            }
        } catch {
            fail("echo: \(error)")
        }
        say("echoed \(number(3))")

    case "ep-send":
        if arguments.count > 5 { sleepMillis(number(5)) }
        let endpoint = joinEndpoint(argument(1))
        let receiver = argument(2)
        let id = UInt32(number(3))
        let count = UInt64(number(4))
        let batch = arguments.count > 6 ? UInt64(number(6)) : 1
        do {
            say("at \(monotonicNanos())")
            var sequence: UInt64 = 0
            func sendNext() throws(MailboxError) {
                let bytes = endpointMessage(id: id, sequence: sequence)
                try untilJoined { () throws(MailboxError) in try endpoint.send(to: receiver, bytes, timeout: .seconds(30)) }
                sequence += 1
            }
            let many = arguments.count > 7 && argument(7) == "many"
            while sequence < count {
                let end = min(count, sequence + batch)
                if many {
                    let first = sequence
                    let sent = try untilJoined { () throws(MailboxError) in
                        try typedSendBatch(endpoint, to: receiver, messages: Int(end - first), id: id, first: first)
                    }
                    sequence += UInt64(sent)
                    if sequence < end {   // full: wait for room
                        let bytes = TestMessages.make(sender: id, sequence: sequence, length: 64)
                        try endpoint.send(to: receiver, bytes, timeout: .seconds(30))
                        sequence += 1
                    }
                } else if batch == 1 {
                    try sendNext()
                } else {
                    try endpoint.batch { while sequence < end { try sendNext() } }
                }
            }
        } catch {
            fail("send: \(error)")
        }
        say("sent \(count)")

    case "ep-send-once":
        let endpoint = joinEndpoint(argument(1))
        do {
            try endpoint.send(to: argument(2), argument(3), timeout: .seconds(10))
            say("sent")
        } catch {
            say("\(error)")
            exit(endpointExitCode(for: error))
        }

    default:
        return false
    }
    return true
}
