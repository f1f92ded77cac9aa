import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

/// Small links for the tests (the peer uses the same), so that links take little of /dev/shm.
let smallLinks = Endpoint.Options(linkCapacity: 64, maxMessageSize: 1024)

/// Unique endpoint names for one test; every segment of theirs (endpoints and links to or from
/// them) is removed when `body` returns.
func withEndpointNames<R>(_ labels: [String], _ body: ([String]) throws -> R) rethrows -> R {
    let names = labels.map { "ep-\($0)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }
    defer { removeEndpointObjects(names) }
    return try body(names)
}

/// Unlinks the segments of `names` and every link from or to one of them.
func removeEndpointObjects(_ names: [String]) {
    let wanted = Set(names)
    for object in (try? SharedSegment.objectNames()) ?? [] {
        switch EndpointName.parse(objectName: object) {
        case .endpoint(let name) where wanted.contains(name),
             .link(from: let name, to: _) where wanted.contains(name),
             .link(from: _, to: let name) where wanted.contains(name):
            try? SharedSegment.unlink(MailboxName(derived: object))
        default:
            break
        }
    }
}

/// The `shmmb.` objects (endpoint segments and links) that involve one of `names`, sorted.
func endpointObjects(_ names: [String]) -> [String] {
    let wanted = Set(names)
    return ((try? SharedSegment.objectNames()) ?? []).filter { object in
        switch EndpointName.parse(objectName: object) {
        case .endpoint(let name): return wanted.contains(name)
        case .link(let from, let to): return wanted.contains(from) || wanted.contains(to)
        case nil: return false
        }
    }
}

/// Waits until a live process holds endpoint `name`; returns its pid.
@discardableResult
func waitForHolder(_ name: String, timeout: Duration = .seconds(20)) -> Int32? {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let segment = try? EndpointSegment.open(name) {
            let holder = segment.currentHolder
            if holder != 0 && ProcessIdentity.isAlive(packed: holder) { return ProcessIdentity(packed: holder).pid }
        }
        usleep(5_000)
    }
    Issue.record("nobody joined endpoint \(name) within \(timeout)")
    return nil
}

/// The message `sequence` of sender `id`, as the peer's endpoint commands make it.
func endpointTestMessage(id: UInt32, sequence: UInt64) -> [UInt8] {
    TestMessages.make(sender: id, sequence: sequence,
                      length: TestMessages.length(sender: id, sequence: sequence, minSize: TestMessages.headerSize, maxSize: 300))
}

/// Checks every byte of `bytes` and that it is message `sequence` of sender `id`.
func expectEndpointMessage(_ bytes: [UInt8], id: UInt32, sequence: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(bytes == endpointTestMessage(id: id, sequence: sequence),
            "expected message \(sequence) of sender \(id)", sourceLocation: sourceLocation)
    #expect(throws: Never.self, sourceLocation: sourceLocation) {
        let (sender, seq) = try bytes.withUnsafeBytes { try TestMessages.verify($0) }
        #expect(sender == id && seq == sequence, sourceLocation: sourceLocation)
    }
}

/// `send` that retries while the receiver has not joined yet (it is another process starting up).
func sendWhenJoined(_ endpoint: Endpoint, to receiver: String, _ bytes: [UInt8]) throws {
    let deadline = ContinuousClock.now + .seconds(20)
    while true {
        do {
            try endpoint.send(to: receiver, bytes, timeout: .seconds(20))
            return
        } catch MailboxError.noSuchEndpoint where ContinuousClock.now < deadline {
            usleep(5_000)
        }
    }
}

extension MultiProcess {
    @Suite("Endpoints (direct naming)")
    struct Endpoints {
        /// Three processes each send 300 messages to the two others and take 300 from each by
        /// name (`receive(from:)`), checking every byte and the order of each sender.
        @Test func threeProcessesSymmetric() throws {
            try withEndpointNames(["a", "b", "c"]) { names in
                let peers = try (0..<3).map { index in
                    let others = (0..<3).filter { $0 != index }.map { "\(names[$0]):\($0 + 1)" }
                    return try Peer(["ep-exchange", names[index], String(index + 1), "300", "from"] + others)
                }
                for peer in peers {
                    #expect(peer.expectSuccess(timeout: .seconds(90)).contains("received 600"))
                }
                // Six ordered pairs, six links, plus three endpoint segments.
                #expect(endpointObjects(names).count == 9, "\(endpointObjects(names))")
            }
        }

        /// The same with `receive()` from anyone: each peer checks that the reported sender
        /// name matches the sender id inside each message, and every sender's order.
        @Test func threeProcessesAsymmetric() throws {
            try withEndpointNames(["a", "b", "c"]) { names in
                let peers = try (0..<3).map { index in
                    let others = (0..<3).filter { $0 != index }.map { "\(names[$0]):\($0 + 1)" }
                    return try Peer(["ep-exchange", names[index], String(index + 1), "300", "any"] + others)
                }
                for peer in peers {
                    #expect(peer.expectSuccess(timeout: .seconds(90)).contains("received 600"))
                }
            }
        }

        /// Two sending processes, this process receives from anyone: every message comes with
        /// its sender's name, each sender's messages in order, every byte checked. Both senders
        /// finish first (their links hold all they send), so fair service must alternate.
        @Test func receiveFromAnyoneNamesTheSenderAndTakesTurns() throws {
            try withEndpointNames(["r", "s1", "s2"]) { names in
                let receiver = try Endpoint.join(names[0], options: smallLinks)
                let count = 40
                let senders = try [1, 2].map { index in
                    try Peer(["ep-send", names[index], names[0], String(index), String(count)])
                }
                for sender in senders { #expect(sender.expectSuccess().contains("sent \(count)")) }
                var next = [names[1]: UInt64(0), names[2]: UInt64(0)]
                var last = ""
                for index in 0..<(2 * count) {
                    let message = try receiver.receive(timeout: .seconds(30))
                    guard let expected = next[message.from] else {
                        Issue.record("message from unknown sender \(message.from)")
                        continue
                    }
                    let senderIndex = message.from == names[1] ? 0 : 1
                    expectEndpointMessage(message.bytes, id: UInt32(senderIndex + 1), sequence: expected)
                    #expect(message.message.sender.pid == senders[senderIndex].pid)
                    #expect(message.from != last, "message \(index) came from \(message.from) again: links must take turns")
                    next[message.from] = expected + 1
                    last = message.from
                }
                #expect(next[names[1]] == UInt64(count) && next[names[2]] == UInt64(count))
                #expect(try receiver.tryReceive() == nil)
                #expect(Set(try receiver.incomingLinks()) == Set([names[1], names[2]]))
            }
        }

        /// Two processes send in `Endpoint.batch`es larger than their links while this process,
        /// with `.block`, sleeps on its doorbell between messages: a batch that fills its link
        /// publishes what it has and rings the doorbell, so nothing waits on itself; every message
        /// arrives once, intact, in its sender's order.
        @Test func batchesLargerThanTheLinkReachASleepingReceiver() throws {
            try withEndpointNames(["batch-rx", "batch-1", "batch-2"]) { names in
                let receiver = try Endpoint.join(names[0], options: Endpoint.Options(linkCapacity: 8, maxMessageSize: 512, waitStrategy: .block))
                let count = 2_000
                let senders = try [1, 2].map { index in
                    try Peer(["ep-send", names[index], names[0], String(index), String(count), "0", "100"])
                }
                var next = [names[1]: UInt64(0), names[2]: UInt64(0)]
                for _ in 0..<(2 * count) {
                    let message = try receiver.receive(timeout: .seconds(30))
                    guard let expected = next[message.from] else {
                        Issue.record("message from unknown sender \(message.from)")
                        continue
                    }
                    expectEndpointMessage(message.bytes, id: message.from == names[1] ? 1 : 2, sequence: expected)
                    next[message.from] = expected + 1
                }
                for sender in senders { #expect(sender.expectSuccess().contains("sent \(count)")) }
                #expect(next[names[1]] == UInt64(count) && next[names[2]] == UInt64(count))
                #expect(try receiver.tryReceive() == nil)
            }
        }

        /// This process blocks in `receive()` before the sender even exists; the sender joins
        /// later, creates its link while we sleep, and the doorbell wakes us promptly.
        @Test func receiveFromAnyoneWakesForALinkCreatedWhileAsleep() throws {
            try withEndpointNames(["sleeper", "late"]) { names in
                let receiver = try Endpoint.join(names[0], options: Endpoint.Options(linkCapacity: 8, maxMessageSize: 512, waitStrategy: .block))
                let sender = try Peer(["ep-send", names[1], names[0], "5", "3", "400"])
                #expect(!endpointObjects([names[1]]).contains("@\(names[1])>\(names[0])"), "the link must not exist before we sleep")
                let (first, seconds) = try timed { try receiver.receive(timeout: .seconds(20)) }
                var clock = timespec()
                clock_gettime(CLOCK_MONOTONIC, &clock)
                let wokeAt = UInt64(clock.tv_sec) * 1_000_000_000 + UInt64(clock.tv_nsec)
                #expect(first.from == names[1])
                expectEndpointMessage(first.bytes, id: 5, sequence: 0)
                for sequence in 1..<3 {
                    let message = try receiver.receive(timeout: .seconds(10))
                    #expect(message.from == names[1])
                    expectEndpointMessage(message.bytes, id: 5, sequence: UInt64(sequence))
                }
                let output = sender.expectSuccess()
                #expect(seconds >= 0.3, "the receiver should have slept until the sender joined (\(seconds) s)")
                let sentAt = output.split(separator: "\n").first { $0.hasPrefix("at ") }.flatMap { UInt64($0.dropFirst(3)) }
                #expect(sentAt != nil, "sender output: \(output)")
                if let sentAt {
                    let latency = Double(wokeAt &- sentAt) / 1e9
                    #expect(sentAt < wokeAt && latency < 2, "woke \(latency) s after the send")
                }
            }
        }

        /// Repeated sends both ways between A (this process) and B (an echo process, run twice:
        /// the second one takes over B's name) use exactly one link per ordered pair, and each
        /// incoming-link table lists one entry.
        @Test func exactlyOneLinkPerOrderedPair() throws {
            try withEndpointNames(["a", "b"]) { names in
                let (a, b) = (names[0], names[1])
                let endpoint = try Endpoint.join(a, options: smallLinks)
                var sequence: UInt64 = 0
                for _ in 0..<2 {
                    let echo = try Peer(["ep-echo", b, a, "40"])
                    for _ in 0..<40 {
                        let bytes = endpointTestMessage(id: 9, sequence: sequence)
                        try sendWhenJoined(endpoint, to: b, bytes)
                        let reply = try endpoint.receive(from: b, timeout: .seconds(20))
                        expectEndpointMessage(reply.bytes, id: 9, sequence: sequence)
                        #expect(reply.sender.pid == echo.pid)
                        sequence += 1
                    }
                    #expect(echo.expectSuccess().contains("echoed 40"))
                }
                #expect(endpointObjects(names) == ["@\(a)", "@\(a)>\(b)", "@\(b)", "@\(b)>\(a)"].sorted())
                #expect(try endpoint.incomingLinks() == [b])
                #expect(try EndpointSegment.open(b).senders() == [a])
                #expect(try EndpointSegment.open(a).entries().count == 1)
                #expect(try EndpointSegment.open(b).entries().count == 1)
            }
        }

        /// Sending to a name nobody holds, to one whose holder closed it, and to one whose holder
        /// was killed is `noSuchEndpoint`; so is a send blocked on a full link when the receiver
        /// is killed meanwhile.
        /// The send fast path recognises the latest receiver by its string's raw bits: the same
        /// name in another `String` (or alternating receivers) takes the lookup and still arrives
        /// in order, and a receiver that left and came back under the same name is reached through
        /// a fresh link (the cached one was dropped with it, never used after it was closed).
        @Test func latestReceiverCacheFollowsNamesNotStrings() throws {
            try withEndpointNames(["s", "a", "b"]) { names in
                let sender = try Endpoint.join(names[0], options: smallLinks)
                var a = try Endpoint.join(names[1], options: smallLinks)
                let b = try Endpoint.join(names[2], options: smallLinks)
                for index in 0..<20 {
                    // A new String with the same contents every other time, and b in between.
                    let to = index % 2 == 0 ? names[1] : String(decoding: Array(names[1].utf8), as: UTF8.self)
                    #expect(try sender.trySend(to: to, [UInt8(index)]))
                    if index % 5 == 0 { #expect(try sender.trySend(to: names[2], [UInt8(100 + index)])) }
                }
                for index in 0..<20 { #expect(try a.tryReceive(from: names[0])?.bytes == [UInt8(index)]) }
                for index in stride(from: 0, to: 20, by: 5) { #expect(try b.tryReceive(from: names[0])?.bytes == [UInt8(100 + index)]) }

                // a leaves; after the liveness interval the sender finds it gone, and once a new a
                // joins, sends reach it.
                a.close()
                usleep(20_000)
                expectError(.noSuchEndpoint(names[1])) { try sender.send(to: names[1], "gone") }
                a = try Endpoint.join(names[1], options: smallLinks)
                for index in 0..<3 { #expect(try sender.trySend(to: names[1], [UInt8(50 + index)])) }
                for index in 0..<3 { #expect(try a.tryReceive(from: names[0])?.bytes == [UInt8(50 + index)]) }
                #expect(try a.tryReceive(from: names[0]) == nil)
            }
        }

        /// A receive's closure may receive again or close its endpoint. A receive from inside it
        /// never hands over the message in hand a second time: receive-from-anyone serves the
        /// other links, receive from that same sender throws `receiveInProgress` (before, both
        /// handed the message in hand over again). Closing the endpoint inside the closure drops
        /// every link, yet the message in hand stays readable until the closure returns.
        @Test func aReceiveInsideAReceiveNeverHandsTheMessageInHandAgain() throws {
            try withEndpointNames(["s", "t", "r"]) { names in
                let s = try Endpoint.join(names[0], options: smallLinks)
                let t = try Endpoint.join(names[1], options: smallLinks)
                let r = try Endpoint.join(names[2], options: smallLinks)
                #expect(try s.trySend(to: names[2], [1]))
                #expect(try t.trySend(to: names[2], [2]))
                #expect(try s.trySend(to: names[2], [3]))
                var seen: [[UInt8]] = []
                try r.receive(timeout: .seconds(5)) { outer, _, from in
                    seen.append(outer.withUnsafeBytes { Array($0) })
                    #expect(from == names[0])
                    expectError(.receiveInProgress) { try r.tryReceive(from: names[0]) }
                    let inner = try r.receive(timeout: .seconds(5))
                    seen.append(inner.bytes)
                    #expect(inner.from == names[1])
                    #expect(try r.tryReceive() == nil, "s's next message waits for this closure to return")
                }
                try r.receive(timeout: .seconds(5)) { bytes, _, from in
                    r.close()
                    seen.append(bytes.withUnsafeBytes { Array($0) })
                    #expect(from == names[0])
                }
                #expect(seen == [[1], [2], [3]])
                expectError(.closed) { try r.tryReceive() }
            }
        }

        @Test func sendingToAMissingOrDeadEndpointIsATypedError() throws {
            try withEndpointNames(["s", "nobody", "killed", "closes", "blocked"]) { names in
                let endpoint = try Endpoint.join(names[0], options: Endpoint.Options(linkCapacity: 2, maxMessageSize: 64))
                expectError(.noSuchEndpoint(names[1])) { try endpoint.send(to: names[1], "hello?") }
                expectError(.noSuchEndpoint(names[1])) { try endpoint.trySend(to: names[1], "hello?") }
                expectError({ $0.isInvalidName }) { try endpoint.send(to: "bad/name", "x") }

                let killed = try Peer(["ep-hold", names[2]])
                waitForHolder(names[2])
                try endpoint.send(to: names[2], "while it lives")
                killed.kill9()
                #expect(killed.finish().signaled)
                // Liveness is rechecked at most every 10 ms.
                usleep(20_000)
                expectError(.noSuchEndpoint(names[2])) { try endpoint.send(to: names[2], "after its death") }
                let fresh = try Peer(["ep-send-once", "ep-fresh-\(getpid())", names[2], "x"]).finish()
                #expect(fresh.status == 9, "a new sender to a dead endpoint: \(fresh.stdout)")
                removeEndpointObjects(["ep-fresh-\(getpid())"])

                let closes = try Peer(["ep-hold", names[3], "300"])
                waitForHolder(names[3])
                #expect(closes.expectSuccess().contains("closed"))
                expectError(.noSuchEndpoint(names[3])) { try endpoint.send(to: names[3], "after close") }

                let blocked = try Peer(["ep-hold", names[4]])
                waitForHolder(names[4])
                #expect(try endpoint.trySend(to: names[4], "one"))
                #expect(try endpoint.trySend(to: names[4], "two"))
                #expect(try endpoint.trySend(to: names[4], "three") == false, "the link holds two")
                let pid = blocked.pid
                Thread.detachNewThread {
                    usleep(300_000)
                    kill(pid, SIGKILL)
                }
                let (_, seconds) = timed {
                    expectError(.noSuchEndpoint(names[4])) { try endpoint.send(to: names[4], "blocks", timeout: .seconds(20)) }
                }
                #expect(seconds >= 0.25 && seconds < 2, "blocked send noticed the death after \(seconds) s")
                #expect(blocked.finish().signaled)
            }
        }

        /// Inside a batch a sender looks at whether its receiver's liveness check is due once
        /// every `batchSendsBetweenChecks` sends on the link, not on every send: a receiver
        /// killed in the middle of a long batch is still `noSuchEndpoint`, within that many sends.
        @Test func aLongBatchNoticesAReceiverKilledInTheMiddle() throws {
            try withEndpointNames(["s", "killed"]) { names in
                let endpoint = try Endpoint.join(names[0], options: Endpoint.Options(linkCapacity: 1024, maxMessageSize: 64))
                let killed = try Peer(["ep-hold", names[1]])
                waitForHolder(names[1])
                var sent = 0
                expectError(.noSuchEndpoint(names[1])) {
                    try endpoint.batch {
                        for _ in 0..<10 {
                            try endpoint.send(to: names[1], "alive")
                            sent += 1
                        }
                        killed.kill9()
                        #expect(killed.finish().signaled)
                        // Past the liveness interval (10 ms).
                        usleep(20_000)
                        for _ in 0..<1000 {
                            try endpoint.send(to: names[1], "dead?")
                            sent += 1
                        }
                    }
                }
                #expect(sent >= 10 && sent <= Endpoint.batchSendsBetweenChecks, "noticed after \(sent) sends")
            }
        }

        /// A live holder keeps its name (`nameTaken` naming its pid, in this process and in
        /// another); once it is killed, `join` takes the name over, and messages sent to the
        /// name reach the new holder.
        @Test func joinTakenNameFailsAndDeadHoldersNameIsTakenOver() throws {
            try withEndpointNames(["n", "s"]) { names in
                let holder = try Peer(["ep-hold", names[0]])
                #expect(waitForHolder(names[0]) == holder.pid)
                expectError(.nameTaken(names[0], pid: holder.pid)) { try Endpoint.join(names[0]) }
                let other = try Peer(["ep-join", names[0]]).finish()
                #expect(other.status == 10 && other.stdout.contains("process \(holder.pid)"), "\(other.stdout)")
                holder.kill9()
                #expect(holder.finish().signaled)

                let endpoint = try Endpoint.join(names[0], options: smallLinks)
                #expect(waitForHolder(names[0]) == getpid())
                expectError(.nameTaken(names[0], pid: getpid())) { try Endpoint.join(names[0]) }
                let sender = try Peer(["ep-send", names[1], names[0], "4", "3"])
                for sequence in 0..<3 {
                    let message = try endpoint.receive(timeout: .seconds(20))
                    #expect(message.from == names[1])
                    expectEndpointMessage(message.bytes, id: 4, sequence: UInt64(sequence))
                }
                #expect(sender.expectSuccess().contains("sent 3"))
                // Giving the name up lets another process join it.
                endpoint.close()
                expectError(.closed) { try endpoint.tryReceive() }
                #expect(try Peer(["ep-join", names[0]]).finish().status == 0)
            }
        }

        /// Endpoint names: the mailbox rules, at most 100 characters.
        /// Zero-copy receive from anyone hands over the bytes, the sender's pid and its endpoint
        /// name; a body that throws still consumes its message; links are served in turn.
        @Test func zeroCopyReceiveFromAnyone() throws {
            try withEndpointNames(["zc-a", "zc-b", "zc-c"]) { names in
                let a = try Endpoint.join(names[0], options: smallLinks)
                let b = try Endpoint.join(names[1], options: smallLinks)
                let c = try Endpoint.join(names[2], options: smallLinks)
                for index in 0..<3 {
                    try a.send(to: names[2], endpointTestMessage(id: 1, sequence: UInt64(index)))
                    try b.send(to: names[2], endpointTestMessage(id: 2, sequence: UInt64(index)))
                }
                var order: [String] = []
                for _ in 0..<4 {
                    let taken = try c.receive(timeout: .seconds(5)) { bytes, sender, from -> String in
                        #expect(sender.pid == getpid())
                        let (id, sequence) = try TestMessages.verify(bytes)
                        #expect(from == names[Int(id) - 1])
                        return "\(from):\(sequence)"
                    }
                    order.append(taken)
                }
                // Each sender's messages in order, the two links in turn.
                #expect(order == ["\(names[0]):0", "\(names[1]):0", "\(names[0]):1", "\(names[1]):1"])
                struct Refused: Error {}
                #expect(throws: Refused.self) { try c.tryReceive { _, _, _ in throw Refused() } }
                let rest = try #require(try c.tryReceive { bytes, _, from in (from, try TestMessages.verify(bytes).sequence) })
                #expect(rest == (names[0], 2) || rest == (names[1], 2))
                #expect(try c.tryReceive() == nil)
            }
        }

        /// `receiveBatch` takes what one link holds (up to the limit), with sender names and
        /// every byte intact; links take turns between calls; `tryReceiveBatch` returns 0 when
        /// nothing waits.
        @Test func receiveBatchTakesOneLinkAtATime() throws {
            try withEndpointNames(["rb-a", "rb-b", "rb-c"]) { names in
                let a = try Endpoint.join(names[0], options: smallLinks)
                let b = try Endpoint.join(names[1], options: smallLinks)
                let c = try Endpoint.join(names[2], options: smallLinks)
                for index in 0..<5 {
                    try a.send(to: names[2], endpointTestMessage(id: 1, sequence: UInt64(index)))
                    try b.send(to: names[2], endpointTestMessage(id: 2, sequence: UInt64(index)))
                }
                var batches: [[String]] = []
                for limit in [3, 10, 10] {
                    var batch: [String] = []
                    let taken = try c.receiveBatch(limit: limit, timeout: .seconds(5)) { bytes, _, from in
                        let (id, sequence) = try TestMessages.verify(bytes)
                        #expect(from == names[Int(id) - 1])
                        batch.append("\(id):\(sequence)")
                    }
                    #expect(taken == batch.count)
                    batches.append(batch)
                }
                #expect(batches == [["1:0", "1:1", "1:2"], ["2:0", "2:1", "2:2", "2:3", "2:4"], ["1:3", "1:4"]])
                #expect(try c.tryReceiveBatch { _, _, _ in Issue.record("nothing should be waiting") } == 0)
            }
        }

        @Test func endpointNamesAreChecked() throws {
            expectError({ $0.isInvalidName }) { try Endpoint.join(String(repeating: "x", count: 101)) }
            expectError({ $0.isInvalidName }) { try Endpoint.join("a>b") }
            expectError({ $0.isInvalidName }) { try Endpoint.join("") }
            expectError({ $0.isInvalidOptions }) { try Endpoint.join("ok", options: Endpoint.Options(linkCapacity: 0)) }
        }

        /// `Endpoint.remove` unlinks one endpoint's segment and every link from or to it, held or
        /// not, and nothing of anyone else's; open handles carry on, a new sender finds nobody.
        @Test func removeUnlinksOneEndpointAndItsLinks() throws {
            try withEndpointNames(["a", "b", "x"]) { names in
                let (a, b, x) = (names[0], names[1], names[2])
                let ea = try Endpoint.join(a, options: smallLinks)
                let eb = try Endpoint.join(b, options: smallLinks)
                let ex = try Endpoint.join(x, options: smallLinks)
                try ea.send(to: b, "a to b")
                try eb.send(to: a, "b to a")
                try ex.send(to: b, "x to b")
                #expect(endpointObjects(names).count == 6, "\(endpointObjects(names))")
                #expect(try ea.receive(timeout: .seconds(5)).string == "b to a")
                #expect(try eb.receive(from: a, timeout: .seconds(5)).string == "a to b")

                let removed = try Endpoint.remove(a)
                #expect(removed.sorted() == ["@\(a)", "@\(a)>\(b)", "@\(b)>\(a)"].sorted())
                #expect(endpointObjects(names) == ["@\(b)", "@\(x)", "@\(x)>\(b)"].sorted())
                // Handles opened before go on working; a sender without a link finds nobody.
                try ea.send(to: b, "still linked")
                #expect(try eb.receive(from: a, timeout: .seconds(5)).string == "still linked")
                try eb.send(to: a, "back")
                #expect(try ea.receive(timeout: .seconds(5)).string == "back")
                expectError(.noSuchEndpoint(a)) { try ex.send(to: a, "too late") }
                #expect(try Endpoint.remove(a).isEmpty)
                expectError({ $0.isInvalidName }) { try Endpoint.remove("a>b") }
                ea.close()
                eb.close()
                ex.close()
            }
        }

        /// Garbage in an endpoint segment (table count, entry state, name length, name bytes,
        /// table geometry) is `corrupted`, never a crash; repaired, the message gets through.
        @Test func hostileEndpointSegmentIsCorrupted() throws {
            try withEndpointNames(["h", "s", "t"]) { names in
                let endpoint = try Endpoint.join(names[0], options: smallLinks)
                #expect(try Peer(["ep-send", names[1], names[0], "6", "1"]).expectSuccess().contains("sent 1"))
                let object = "@" + names[0]
                let entry = EndpointLayout.tableOffset
                // Each change also bumps the table's change count, so the holder reads it again.
                func poke<T: BitwiseCopyable>(_ value: T, at offset: Int) {
                    scribble(on: object) { base, _ in
                        base.storeBytes(of: value, toByteOffset: offset, as: T.self)
                        let changes = base.load(fromByteOffset: EndpointLayout.tableChangesOffset, as: UInt32.self)
                        base.storeBytes(of: changes &+ 1, toByteOffset: EndpointLayout.tableChangesOffset, as: UInt32.self)
                    }
                }
                let published = UInt64(1) << 2 | EndpointLayout.entryPublished
                poke(UInt64(3), at: entry + EndpointLayout.entryStateOffset)
                expectError({ $0.isCorrupted }) { try endpoint.tryReceive() }
                expectError({ $0.isCorrupted }) { try endpoint.incomingLinks() }
                let sender = try Endpoint.join(names[2], options: smallLinks)
                expectError({ $0.isCorrupted }) { try sender.send(to: names[0], "registers into a bad table") }
                poke(published, at: entry + EndpointLayout.entryStateOffset)

                poke(UInt32(5000), at: entry + EndpointLayout.entryLengthOffset)
                expectError({ $0.isCorrupted }) { try endpoint.tryReceive() }
                poke(UInt32(0), at: entry + EndpointLayout.entryLengthOffset)
                expectError({ $0.isCorrupted }) { try endpoint.tryReceive() }
                poke(UInt32(names[1].utf8.count), at: entry + EndpointLayout.entryLengthOffset)
                poke(UInt8(ascii: "/"), at: entry + EndpointLayout.entryNameOffset)
                expectError({ $0.isCorrupted }) { try endpoint.tryReceive() }
                poke(names[1].utf8.first!, at: entry + EndpointLayout.entryNameOffset)
                poke(UInt64(7), at: entry + EndpointLayout.entryStateOffset)
                expectError({ $0.isCorrupted }) { try endpoint.tryReceive() }
                poke(published, at: entry + EndpointLayout.entryStateOffset)

                let message = try #require(try endpoint.tryReceive())
                #expect(message.from == names[1])
                expectEndpointMessage(message.bytes, id: 6, sequence: 0)

                poke(UInt32(0x7FFF_FFFF), at: EndpointLayout.tableCapacityOffset)
                expectError({ $0.isCorrupted }) { try Endpoint.join(names[0]) }
                expectError({ $0.isCorrupted }) { try sender.send(to: names[0], "to a bad header") }
                poke(UInt64(0x1234), at: EndpointLayout.magicOffset)
                expectError({ $0.isCorrupted }) { try EndpointSegment.open(names[0]) }
            }
        }

        /// `shmbox send --as P --to Q` and `shmbox receive --as Q [--from P]` end to end, the
        /// validation errors, and `shmbox gc` removing what the finished commands left behind.
        @Test func shmboxSendAndReceiveByName() throws {
            try withEndpointNames(["p", "q", "x"]) { names in
                let (p, q) = (names[0], names[1])
                let anyone = try Peer(["receive", "--as", q, "--count", "3", "--timeout", "20"], executable: "shmbox")
                waitForHolder(q)
                let send = try Peer(["send", "--as", p, "--to", q, "hello", "wörld", "third one"], executable: "shmbox").finish()
                #expect(send.status == 0 && send.stderr.isEmpty, "\(send)")
                #expect(anyone.expectSuccess() == "\(p): hello\n\(p): wörld\n\(p): third one\n")

                let fromP = try Peer(["receive", "--as", q, "--from", p, "--count", "2", "--timeout", "20"], executable: "shmbox")
                waitForHolder(q)
                let other = try Endpoint.join(names[2], options: smallLinks)
                try other.send(to: q, "not from p")
                #expect(try Peer(["send", "--as", p, "--to", q, "only", "p"], executable: "shmbox").finish().status == 0)
                #expect(fromP.expectSuccess() == "only\np\n")

                let nobody = try Peer(["send", "--as", p, "--to", "ep-nobody-\(getpid())", "x"], executable: "shmbox").finish()
                #expect(nobody.status == 69 && nobody.stderr.contains("no process holds endpoint"), "\(nobody.stderr)")
                let noAs = try Peer(["send", "--to", q, "x"], executable: "shmbox").finish()
                #expect(noAs.status != 0 && noAs.stderr.contains("--as"), "\(noAs.stderr)")
                let fromWithoutAs = try Peer(["receive", "--from", p], executable: "shmbox").finish()
                #expect(fromWithoutAs.status != 0 && fromWithoutAs.stderr.contains("--as"), "\(fromWithoutAs.stderr)")
                let noMailbox = try Peer(["receive"], executable: "shmbox").finish()
                #expect(noMailbox.status != 0 && noMailbox.stderr.contains("MAILBOX"), "\(noMailbox.stderr)")

                // gc: p and q are gone (their commands ended); x (this process) lives on, so
                // its link to q stays while q's other links go.
                let gc = try Peer(["gc"], executable: "shmbox").finish()
                #expect(gc.status == 0)
                let removed = Set(gc.stdout.split(separator: "\n").map(String.init))
                #expect(removed.isSuperset(of: ["@\(p)", "@\(q)", "@\(p)>\(q)"]), "\(gc.stdout)")
                #expect(!removed.contains("@\(names[2])") && !removed.contains("@\(names[2])>\(q)"))
                #expect(endpointObjects(names) == ["@\(names[2])", "@\(names[2])>\(q)"].sorted())
                // q joins again under a new segment: x's waiting message is still on its link,
                // and x, looking q up afresh, registers in q's new table.
                let q2 = try Endpoint.join(q, options: smallLinks)
                #expect(try q2.tryReceive(from: names[2])?.string == "not from p")
                try other.send(to: q, "after gc")
                let again = try q2.receive(timeout: .seconds(5))
                #expect(again.from == names[2] && again.string == "after gc")
                #expect(try q2.incomingLinks() == [names[2]])
            }
        }
    }
}
