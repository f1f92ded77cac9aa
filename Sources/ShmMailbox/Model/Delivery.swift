extension Mailbox {
    /// When a send returns (the textbook's blocking send: "until the message is received by the
    /// receiving process or by the mailbox").
    public enum Completion: Sendable, Equatable {
        /// As soon as the message is in the mailbox (the default).
        case queued
        /// Only once a receiver has taken the message: a synchronous send. With a blocking receive on
        /// the other side this is a rendezvous.
        case received
    }

    /// A receipt: which process took a message sent with `until: .received`.
    public struct Delivery: Sendable, Equatable, CustomStringConvertible {
        /// The receiving process.
        public let receiver: ProcessIdentity

        /// A receipt naming `receiver` as the process that took the message.
        public init(receiver: ProcessIdentity) {
            self.receiver = receiver
        }

        /// `delivered to process PID`.
        public var description: String { "delivered to process \(receiver.pid)" }
    }
}

/// What a send achieved (internal; the public calls turn it into `Bool` or `Delivery?`).
@usableFromInline
enum SendResult: Equatable {
    /// Not sent: the mailbox was full, or (synchronous, non-blocking) nobody took it at once.
    case full
    /// In the mailbox.
    case queued
    /// Taken by this receiver.
    case delivered(ProcessIdentity)

    @usableFromInline
    var delivery: Mailbox.Delivery? {
        if case .delivered(let receiver) = self { return Mailbox.Delivery(receiver: receiver) }
        return nil
    }
}
