import ShmMailbox
import ShmboxCLISupport

/// One received message, from a mailbox or an endpoint.
struct ReceivedMessage {
    /// The payload.
    var bytes: [UInt8]
    /// The sending process.
    var sender: Int32
    /// Whether it was delivered before to a receiver that died.
    var redelivered: Bool
    /// The sending endpoint's name, when receiving as an endpoint from anyone.
    var from: String?
}

/// Takes messages and writes them to standard output in a `MessageFormat`: up to a count, all
/// that are waiting (`--nonblocking`), or until SIGINT/SIGTERM (`--follow`).
struct ReceiveLoop {
    /// How to end.
    enum Mode {
        /// Wait for `count` messages, until an optional deadline.
        case count(Int, deadline: ContinuousClock.Instant?, timeout: Double?)
        /// Take what is waiting now, at most `limit` (nil: all).
        case drain(limit: Int?)
        /// Wait for messages until a stop signal.
        case follow
    }

    /// How each message is written.
    var format: MessageFormat
    /// When to stop.
    var mode: Mode
    /// What is received from, for timeout messages (`mailbox "jobs"`).
    var source: String
    /// Takes one message, waiting at most the duration (nil: forever; zero: not at all);
    /// returns nil when none came. Throws `MailboxError` other than `timedOut`.
    var take: (Duration?) throws -> ReceivedMessage?

    /// How long `--follow` waits at a time before looking for a stop signal.
    static let followSlice = Duration.milliseconds(100)

    func run() throws {
        var received = 0
        switch mode {
        case .count(let count, let deadline, let timeout):
            while received < count {
                let remaining = deadline.map { max(.zero, $0 - ContinuousClock.now) }
                guard let message = try take(remaining) else {
                    throw TimeoutCause.receive(source: source, timeout: timeout, received: received, wanted: count)
                }
                write(message)
                received += 1
            }
        case .drain(let limit):
            while limit.map({ received < $0 }) ?? true, let message = try take(.zero) {
                write(message)
                received += 1
            }
        case .follow:
            StopSignals.install()
            while !StopSignals.requested {
                guard let message = try take(Self.followSlice) else { continue }
                write(message)
            }
        }
    }

    /// Writes `message` in the chosen format (a `from` name first, when there is one).
    func write(_ message: ReceivedMessage) {
        var output = format.output(for: message.bytes, sender: message.sender, redelivered: message.redelivered)
        if let from = message.from {
            if format == .json {
                output.insert(contentsOf: Array("\"from\":\(JSONText.quote(from)),".utf8), at: 1)
            } else {
                output.insert(contentsOf: Array("\(from): ".utf8), at: 0)
            }
        }
        StandardStream.output.write(output)
    }
}
