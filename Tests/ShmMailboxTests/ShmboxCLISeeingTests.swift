import Foundation
import PeerProcess
import Testing
@testable import ShmMailbox

/// End-to-end tests of the `shmbox` commands for seeing what is there: `list --json`/`--all`,
/// `inspect --json`, `peek` and `top --json`, run as the real executable.
@Suite struct ShmboxCLISeeingTests {
    let cli = ShmboxCLITests()

    /// Standard output parsed as one JSON object.
    func object(_ run: ShmboxCLITests.Run, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        cli.expectSuccess(run, sourceLocation: sourceLocation)
        let parsed = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8))
        return try #require(parsed as? [String: Any], "not an object: \(run.stdout)", sourceLocation: sourceLocation)
    }

    /// `list --json` and `inspect --json` describe two known mailboxes with the documented fields.
    @Test func listAndInspectAsJSON() throws {
        let shared = ShmboxCLITests.uniqueName("json-shared")
        let pair = ShmboxCLITests.uniqueName("json-pair")
        defer { try? Mailbox.delete(shared); try? Mailbox.delete(pair) }
        cli.expectSuccess(try cli.shmbox("create", shared, "--capacity", "8", "--max-message-size", "100"))
        cli.expectSuccess(try cli.shmbox("create", pair, "--kind", "one-to-one", "--capacity", "16"))
        let box = try Mailbox.open(shared)
        try box.send("one")
        try box.send("two")

        let list = try object(try cli.shmbox("list", "--json"))
        let mailboxes = try #require(list["mailboxes"] as? [[String: Any]])
        let first = try #require(mailboxes.first { $0["name"] as? String == shared })
        #expect(first["kind"] as? String == "shared")
        #expect(first["buffering"] as? String == "bounded")
        #expect(first["capacity"] as? Int == 8)
        #expect(first["maxMessageSize"] as? Int == 100)
        #expect(first["depth"] as? Int == 2)
        let second = try #require(mailboxes.first { $0["name"] as? String == pair })
        #expect(second["kind"] as? String == "one-to-one")
        #expect(second["capacity"] as? Int == 16)
        #expect(second["depth"] as? Int == 0)
        #expect(list["endpoints"] == nil, "endpoints only with --all")

        let info = try object(try cli.shmbox("inspect", shared, "--json"))
        #expect(info["name"] as? String == shared)
        #expect(info["kind"] as? String == "shared")
        #expect(info["capacity"] as? Int == 8)
        #expect(info["maxMessageSize"] as? Int == 100)
        #expect(info["depth"] as? Int == 2)
        #expect(info["segments"] as? Int == 1)
        #expect((info["memoryBytes"] as? Int ?? 0) >= 12288 + 8 * 128)
        #expect(info["mode"] as? String == "0600")
        #expect(info["uid"] as? Int == Int(getuid()))
        #expect(info["ownership"] as? String == "none")
        #expect(info["owner"] is NSNull)
        #expect(info["receiverPolicy"] as? String == "competing")
        let creator = try #require(info["creator"] as? [String: Any])
        #expect(creator["alive"] as? Bool == false, "the shmbox create process has exited")
        #expect((creator["pid"] as? Int ?? 0) > 0)
        let created = try #require(info["createdAt"] as? String)
        #expect(created.hasSuffix("Z") && created.count == 20, "\(created)")
        let nanos = try #require(info["createdAtUnixNanos"] as? Int)
        #expect(abs(Double(nanos) / 1e9 - Date().timeIntervalSince1970) < 600)
        #expect(info["deleted"] as? Bool == false)
        #expect(info["sentTotal"] as? Int == 2)
        #expect(info["receivedTotal"] as? Int == 0)
        #expect(info["repairs"] as? Int == 0)
        #expect(info["fullWaits"] as? Int == 0)
        #expect(info["sleepingReceivers"] as? Int == 0)
        #expect(info["sleepingSenders"] as? Int == 0)
        let participants = try #require(info["participants"] as? [[String: Any]])
        #expect(participants.count == 1, "this test process sent: \(participants)")
        #expect(participants.first?["pid"] as? Int == Int(getpid()))
        #expect(participants.first?["roles"] as? [String] == ["sent"])
        #expect(info["deadParticipants"] as? Int == 0)

        let pairInfo = try object(try cli.shmbox("inspect", pair, "--json"))
        #expect(pairInfo["kind"] as? String == "one-to-one")
        #expect(pairInfo["receiverPolicy"] as? String == "pair")
        #expect(pairInfo["sentTotal"] as? Int == 0)
        #expect(pairInfo["receivedTotal"] as? Int == 0)
    }

    /// `inspect` shows sent/received totals for every kind of ring: send N through the real
    /// `shmbox send`, take M with `shmbox receive`, and `inspect --json` says N and M (and the
    /// text form says the same).
    @Test(arguments: [
        ("shared", ["--capacity", "16"]),
        ("one-to-one", ["--kind", "one-to-one", "--capacity", "16"]),
        ("unbounded", ["--capacity", "unbounded"]),
        // Three segments of 4: the totals add up over the generations and stop at each seal.
        ("chained", ["--capacity", "unbounded:4"]),
    ])
    func inspectShowsTotalsForEveryKind(kind: String, options: [String]) throws {
        let name = ShmboxCLITests.uniqueName("totals-\(kind)")
        defer { try? Mailbox.delete(name) }
        cli.expectSuccess(try cli.shmbox(["create", name] + options))
        let sent = 11
        let received = 4
        cli.expectSuccess(try cli.shmbox(["send", name], input: (1...sent).map { "message \($0)\n" }.joined()))
        let receive = try cli.shmbox(["receive", name, "--count", "\(received)"])
        cli.expectSuccess(receive)
        #expect(receive.lines == (1...received).map { "message \($0)" })

        let info = try object(try cli.shmbox(["inspect", name, "--json"]))
        #expect(info["depth"] as? Int == sent - received)
        #expect(info["sentTotal"] as? Int == sent, "\(info)")
        #expect(info["receivedTotal"] as? Int == received, "\(info)")
        if kind == "chained" { #expect(info["segments"] as? Int == 3) }
        let text = try cli.shmbox(["inspect", name])
        cli.expectSuccess(text)
        #expect(cli.fields(text)["totals"] == "\(sent) sent, \(received) received")
    }

    /// An unbounded mailbox that has given drained segments back still knows its totals: each
    /// segment records the messages before it when it is created (`messagesBefore`).
    @Test func inspectTotalsSurviveSegmentsGivenBack() throws {
        let name = ShmboxCLITests.uniqueName("totals-given-back")
        defer { try? Mailbox.delete(name) }
        cli.expectSuccess(try cli.shmbox(["create", name, "--capacity", "unbounded:4"]))
        cli.expectSuccess(try cli.shmbox(["send", name], input: (1...9).map { "m\($0)\n" }.joined()))
        cli.expectSuccess(try cli.shmbox(["receive", name, "--count", "9"]))
        let info = try object(try cli.shmbox(["inspect", name, "--json"]))
        #expect(info["depth"] as? Int == 0)
        #expect(info["sentTotal"] as? Int == 9, "\(info)")
        #expect(info["receivedTotal"] as? Int == 9, "\(info)")
        #expect(cli.fields(try cli.shmbox(["inspect", name]))["totals"] == "9 sent, 9 received")
    }

    /// A one-to-one ring counts bytes: once its sender has gone around the ring, the first records
    /// are overwritten and the message totals cannot be counted any more; `inspect` says unknown.
    @Test func oneToOneTotalsUnknownAfterTheRingWrapped() throws {
        let name = ShmboxCLITests.uniqueName("totals-wrapped")
        defer { try? Mailbox.delete(name) }
        cli.expectSuccess(try cli.shmbox(["create", name, "--kind", "one-to-one", "--capacity", "2", "--max-message-size", "100"]))
        let box = try Mailbox.open(name)
        // 128-byte records through a 4096-byte data area: around it three times.
        for index in 0..<100 {
            try box.send([UInt8](repeating: UInt8(index), count: 100))
            #expect(try box.receive(timeout: .seconds(5)).bytes.count == 100)
        }
        let info = try object(try cli.shmbox(["inspect", name, "--json"]))
        #expect(info["depth"] as? Int == 0)
        #expect(info["sentTotal"] is NSNull, "\(info)")
        #expect(info["receivedTotal"] is NSNull, "\(info)")
    }

    /// `list --all` shows an endpoint and the link it sent through, as text and as JSON.
    @Test func listAllShowsEndpointsAndLinks() throws {
        let sender = "see\(getpid())a\(UInt16.random(in: 0...UInt16.max))"
        let receiver = "see\(getpid())b\(UInt16.random(in: 0...UInt16.max))"
        defer { _ = try? Endpoint.remove(sender); _ = try? Endpoint.remove(receiver) }
        let a = try Endpoint.join(sender)
        let b = try Endpoint.join(receiver)
        try a.send(to: receiver, "hello")

        let text = try cli.shmbox("list", "--all")
        cli.expectSuccess(text)
        #expect(text.lines.contains("endpoint \(sender)"), "\(text.lines)")
        #expect(text.lines.contains("endpoint \(receiver)"))
        #expect(text.lines.contains("link \(sender)>\(receiver) depth=1"), "\(text.lines)")
        #expect(try !cli.shmbox("list").stdout.contains(sender), "plain list shows mailboxes only")

        let json = try object(try cli.shmbox("list", "--all", "--json"))
        let endpoints = try #require(json["endpoints"] as? [[String: Any]]).compactMap { $0["name"] as? String }
        #expect(endpoints.contains(sender) && endpoints.contains(receiver))
        let links = try #require(json["links"] as? [[String: Any]])
        let link = try #require(links.first { $0["from"] as? String == sender })
        #expect(link["to"] as? String == receiver)
        #expect(link["object"] as? String == "shmmb.@\(sender)>\(receiver)")
        #expect(link["depth"] as? Int == 1, "\(link)")
        #expect(try Endpoint.links().first { $0.from == sender }?.depth() == 1)
        try a.send(to: receiver, "again")
        #expect(try b.receive(timeout: .seconds(5)).string == "hello")
        let after = try object(try cli.shmbox("list", "--all", "--json"))
        let linkAfter = try #require((after["links"] as? [[String: Any]])?.first { $0["from"] as? String == sender })
        #expect(linkAfter["depth"] as? Int == 1, "one sent since, one received: \(linkAfter)")
        #expect(try b.receive(timeout: .seconds(5)).string == "again")
        #expect(try cli.shmbox("list", "--all").lines.contains("link \(sender)>\(receiver) depth=0"))
        a.close()
        b.close()
    }

    /// A link's depth is read from an untrusted segment: an object named like a link that is not a
    /// mailbox is reported as an error for that link (`list --all` still succeeds), and a name
    /// that is not an endpoint name is refused before anything is opened.
    @Test func linkDepthRefusesWhatIsNotALink() throws {
        let from = "see\(getpid())c\(UInt16.random(in: 0...UInt16.max))"
        let to = "see\(getpid())d\(UInt16.random(in: 0...UInt16.max))"
        let path = "/dev/shm/shmmb.@\(from)>\(to)"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0xA5, count: 16384),
                                               attributes: [.posixPermissions: 0o600]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var link = try #require(try Endpoint.links().first { $0.from == from && $0.to == to })
        #expect(throws: MailboxError.notAMailbox("@\(from)>\(to)")) { try link.depth() }

        let text = try cli.shmbox("list", "--all")
        cli.expectSuccess(text)
        let line = try #require(text.lines.first { $0.hasPrefix("link \(from)>\(to) ") }, "\(text.lines)")
        #expect(line.hasPrefix("link \(from)>\(to) error: ") && !line.contains("depth="), "\(line)")
        let json = try object(try cli.shmbox("list", "--all", "--json"))
        let entry = try #require((json["links"] as? [[String: Any]])?.first { $0["from"] as? String == from })
        #expect(entry["depth"] == nil && (entry["error"] as? String)?.isEmpty == false, "\(entry)")

        link.from = "../\(from)"
        do {
            _ = try link.depth()
            Issue.record("a name with '/' was opened")
        } catch {
            guard case .invalidName = error else { Issue.record("expected invalidName, got \(error)"); return }
        }
    }

    /// `peek` shows the waiting messages, oldest first, and leaves them there: the depth is the
    /// same afterwards and a receiver still gets the first one.
    @Test(arguments: [MailboxOptions.RingKind.shared, .oneToOne])
    func peekLeavesMessages(kind: MailboxOptions.RingKind) throws {
        let name = ShmboxCLITests.uniqueName("peek")
        defer { try? Mailbox.delete(name) }
        let box = try Mailbox.create(name, options: MailboxOptions(capacity: 8, maxMessageSize: 64, kind: kind))
        for text in ["first", "second", "third"] { try box.send(text) }

        let two = try cli.shmbox("peek", name, "--count", "2")
        cli.expectSuccess(two)
        #expect(two.lines == ["first", "second"])
        let all = try object(try cli.shmbox("peek", name, "--json"))
        #expect(all["depth"] as? Int == 3)
        let messages = try #require(all["messages"] as? [[String: Any]])
        #expect(messages.compactMap { $0["text"] as? String } == ["first", "second", "third"])
        #expect(messages.allSatisfy { $0["sender"] as? Int == Int(getpid()) && $0["size"] as? Int != nil })

        #expect(try object(try cli.shmbox("inspect", name, "--json"))["depth"] as? Int == 3)
        #expect(box.depth == 3)
        let receiver = kind == .shared ? box : try Mailbox.open(name)
        if kind == .oneToOne { box.close() }
        #expect(try receiver.receive(timeout: .seconds(5)).string == "first")
        let rest = try cli.shmbox("peek", name)
        #expect(rest.lines == ["second", "third"])
    }

    /// `top --json --count 2 --interval 1` while a peer sends 400 messages a second and another
    /// receives them: two JSON lines, each reporting about 400 in and out per second (±10 %).
    @Test(arguments: [MailboxOptions.RingKind.shared, .oneToOne])
    func topReportsRates(kind: MailboxOptions.RingKind) throws {
        let name = ShmboxCLITests.uniqueName("top")
        defer { try? Mailbox.delete(name) }
        let rate = 400
        _ = try Mailbox.create(name, options: MailboxOptions(capacity: 4096, maxMessageSize: 64, kind: kind))
        let sender = try Peer(["send-rate", name, "\(rate)", "\(rate * 4)"])
        let receiver = try Peer(["sleep-then-receive", name, "0", "\(rate * 4)"])
        usleep(500_000)
        let top = try cli.shmbox("top", name, "--json", "--count", "2", "--interval", "1")
        cli.expectSuccess(top)
        #expect(top.lines.count == 2, "\(top.lines)")
        for line in top.lines {
            let sample = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let interval = try #require(sample["intervalSeconds"] as? Double)
            #expect(abs(interval - 1) < 0.2)
            let rows = try #require(sample["mailboxes"] as? [[String: Any]])
            let row = try #require(rows.first { $0["name"] as? String == name })
            let incoming = try #require(row["inPerSecond"] as? Double)
            let outgoing = try #require(row["outPerSecond"] as? Double)
            #expect(abs(incoming - Double(rate)) <= Double(rate) / 10, "in \(incoming)/s: \(line)")
            #expect(abs(outgoing - Double(rate)) <= Double(rate) / 10, "out \(outgoing)/s: \(line)")
            #expect(row["senders"] as? Int == 1)
            #expect(row["receivers"] as? Int == 1)
            #expect(row["kind"] as? String == (kind == .shared ? "shared" : "one-to-one"))
        }
        #expect(sender.expectSuccess(timeout: .seconds(30)).contains("sent \(rate * 4)"))
        _ = receiver.expectSuccess(timeout: .seconds(30))
    }
}
