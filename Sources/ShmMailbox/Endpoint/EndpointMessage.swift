extension Endpoint {
    /// A message received by an `Endpoint` from any sender, with the sender's endpoint name
    /// (the textbook's asymmetric `receive(id, message)`).
    public struct Message: Sendable, Equatable {
        /// The endpoint name of the process that sent it (the link it came on, `@from>me`).
        public var from: String
        /// The payload and the sending process (`Mailbox.Message.sender`).
        public var message: Mailbox.Message

        /// A message `message` that came from the endpoint named `from`.
        public init(from: String, message: Mailbox.Message) {
            self.from = from
            self.message = message
        }

        /// The payload, exactly as sent.
        public var bytes: [UInt8] { message.bytes }
        /// The payload decoded as UTF-8.
        public var string: String { message.string }
    }
}
