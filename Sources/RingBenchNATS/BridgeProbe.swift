import RingBenchKit
import ShmMailbox

/// Readiness of one direction of a `nats-bridge` run: a message sent into the direction's entry
/// mailbox that comes out of its exit, byte for byte, has passed both bridges and the server, so
/// both relays are running. (shmbox-bridge says nothing when it is ready; this asks the path
/// itself.)
enum BridgeProbe {
    /// How long the probe waits for its message.
    static let timeout: Duration = .seconds(30)

    /// Sends one `size`-byte message into `entry` and waits for it on `exit`. Throws if it does
    /// not come within `timeout`, comes altered, or `bridges` has one that ended meanwhile (with
    /// that bridge's log).
    static func run(entry: Mailbox, exit: Mailbox, size: Int, bridges: [BridgeProcess]) throws {
        let probe = (0..<max(1, size)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        do {
            try probe.withUnsafeBytes { try entry.send($0, timeout: .seconds(5)) }
        } catch {
            throw BenchError.mailbox(operation: "send (bridge readiness probe into \(entry.name))", description: "\(error)")
        }
        let deadline = Deadline(after: timeout)
        while true {
            do {
                let arrived = try exit.receive(timeout: .milliseconds(100)) { bytes, _ in bytes.withUnsafeBytes { $0.elementsEqual(probe) } }
                guard arrived else {
                    throw BenchError.protocolViolation("the bridges' readiness probe came out of \(exit.name) altered")
                }
                return
            } catch MailboxError.timedOut {
                for bridge in bridges { try bridge.checkRunning() }
                guard !deadline.hasPassed else {
                    throw BenchError.timedOut("a message sent into \(entry.name) did not come out of \(exit.name) through the bridges within \(timeout)")
                }
            } catch let error as MailboxError {
                throw BenchError.mailbox(operation: "receive (bridge readiness probe from \(exit.name))", description: error.description)
            }
        }
    }
}
