import Foundation
import PeerProcess
import MailboxTestSupport
import Testing
@testable import ShmMailbox

/// How long the soak runs per mailbox kind (`SHMMB_SOAK_SECONDS`, default 8; the long run
/// is `SHMMB_SOAK_SECONDS=600 swift test --filter Soak`).
let soakSeconds: Int = ProcessInfo.processInfo.environment["SHMMB_SOAK_SECONDS"].flatMap { Int($0) } ?? 8

extension MultiProcess {
    /// Chaos: four senders and four receivers on one mailbox, with a random one of them killed
    /// (SIGKILL, anywhere — not at a chosen point) and restarted every 50–250 ms. Every message
    /// whose send returned is received; a message is received more than once only with all but
    /// one copy marked redelivered; each receiver gets each sender's fresh messages in order;
    /// every byte is checked (in the receivers).
    @Suite("Soak: random kill -9s")
    struct Soak {
        @Test(arguments: [MailboxOptions.Capacity.bounded(16), .unbounded(segmentCapacity: 8)])
        func randomKills(capacity: MailboxOptions.Capacity) throws {
            try withMailbox("soak", MailboxOptions(capacity: capacity, maxMessageSize: 200, kind: .shared)) { name, box throws in
                let directory = NSTemporaryDirectory() + "shmmb-soak-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: directory) }
                var senders: [(peer: Peer, id: UInt32, log: String)] = []
                var receivers: [(peer: Peer, log: String)] = []
                var senderLogs: [(id: UInt32, log: String)] = []
                var receiverLogs: [String] = []
                var logs = 0
                func newLog() -> String {
                    logs += 1
                    return "\(directory)/\(logs).log"
                }
                /// The next sequence a restarted sender starts at: after every one it may have
                /// got into the mailbox (the one in flight when it was killed may be there).
                var nextSequence: [UInt32: UInt64] = [:]
                func startSender(_ id: UInt32) throws {
                    let log = newLog()
                    senders.append((try Peer(["soak-send", name, String(id), String(nextSequence[id, default: 0]), log]), id, log))
                    senderLogs.append((id, log))
                }
                func startReceiver() throws {
                    let log = newLog()
                    receivers.append((try Peer(["soak-receive", name, log]), log))
                    receiverLogs.append(log)
                }
                func sent(_ log: String) -> [UInt64] {
                    guard let data = FileManager.default.contents(atPath: log) else { return [] }
                    return data.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) }
                }
                for id in 1...4 { try startSender(UInt32(id)) }
                for _ in 0..<4 { try startReceiver() }
                var kills = 0
                let end = ContinuousClock.now + .seconds(soakSeconds)
                while ContinuousClock.now < end {
                    usleep(UInt32.random(in: 50_000...250_000))
                    kills += 1
                    if Bool.random() {
                        let index = Int.random(in: 0..<senders.count)
                        let victim = senders.remove(at: index)
                        victim.peer.kill9()
                        let result = victim.peer.finish()
                        #expect(result.signaled, "sender \(victim.id) failed: \(result.stderr)")
                        let last = sent(victim.log).last ?? (nextSequence[victim.id, default: 0] &- 1)
                        nextSequence[victim.id] = last &+ 2
                        try startSender(victim.id)
                    } else {
                        let victim = receivers.remove(at: Int.random(in: 0..<receivers.count))
                        victim.peer.kill9()
                        let result = victim.peer.finish()
                        #expect(result.signaled, "receiver failed: \(result.stderr)")
                        try startReceiver()
                    }
                }
                // Stop the senders, then let the receivers (and this process) drain.
                for sender in senders {
                    sender.peer.kill9()
                    _ = sender.peer.finish()
                }
                let drained = try drain(box) { _ in true }
                usleep(300_000)
                for receiver in receivers {
                    receiver.peer.kill9()
                    _ = receiver.peer.finish()
                }
                let rest = try drain(box) { _ in true }

                // Every sequence whose send returned, per sender.
                var returned: [UInt32: Set<UInt64>] = [:]
                for sender in senderLogs { returned[sender.id, default: []].formUnion(sent(sender.log)) }
                // Every copy received, per receiver stream.
                var streams: [[Received]] = receiverLogs.map { log in
                    guard let data = FileManager.default.contents(atPath: log) else { return [] }
                    return data.withUnsafeBytes { raw in
                        let words = raw.bindMemory(to: UInt64.self)
                        return stride(from: 0, to: words.count - 1, by: 2).map { index in
                            Received(sender: UInt32(words[index]), sequence: words[index + 1] & ~(1 << 63), redelivered: words[index + 1] >> 63 == 1)
                        }
                    }
                }
                streams.append(drained + rest)
                var copies: [UInt64: [Bool]] = [:]
                for stream in streams {
                    for message in stream { copies[UInt64(message.sender) << 48 | message.sequence, default: []].append(message.redelivered) }
                    // Within one receiver, each sender's fresh messages come in order.
                    for id in 1...4 {
                        let fresh = stream.filter { $0.sender == UInt32(id) && !$0.redelivered }.map(\.sequence)
                        #expect(fresh == fresh.sorted(), "sender \(id) out of order at a receiver")
                    }
                }
                var lost = 0
                for (id, sequences) in returned {
                    for sequence in sequences where copies[UInt64(id) << 48 | sequence] == nil { lost += 1 }
                }
                let duplicatedUnmarked = copies.values.filter { $0.count > 1 && $0.filter { !$0 }.count > 1 }.count
                let redelivered = copies.values.filter { $0.count > 1 || $0.contains(true) }.count
                let total = returned.values.reduce(0) { $0 + $1.count }
                print("soak \(capacity): \(soakSeconds) s, \(kills) kills, \(total) messages sent, \(copies.count) received, \(redelivered) redelivered, \(lost) lost, \(duplicatedUnmarked) duplicated unmarked")
                #expect(lost == 0, "\(lost) messages whose send returned never arrived")
                #expect(duplicatedUnmarked == 0)
                #expect(total > 100)
                #expect(box.depth == 0)
            }
        }
    }
}
