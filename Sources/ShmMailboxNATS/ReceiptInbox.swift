import CNATS

/// A synchronous send's side of its handshake with receivers, on a private inbox subject.
///
/// A receiver that fetched a receipt-bearing message first asks the inbox for the go-ahead (a
/// request); the waiting sender answers each request with "go", which commits it to wait for the
/// receipt. The receiver handles the message, acknowledges it to the stream, and then publishes
/// its identity to the inbox: the receipt. A sender whose deadline passes before any go-ahead
/// unsubscribes first (later requests find no responder, and their receivers drop the message)
/// and then withdraws the message from the stream: both sides agree it was not sent. Every
/// answer comes from the one waiting thread, so "gave up" and "said go" cannot both happen. Only
/// "no responders" means "gave up" to a receiver: an unanswered request (a busy sender answers
/// late, already committed) is asked again, and in the end the message goes back to the stream.
final class ReceiptInbox {
    let subject: String
    private let connection: NATSConnection
    private var subscription: OpaquePointer?

    init(connection: NATSConnection) throws(RemoteMailboxError) {
        self.connection = connection
        var inbox: UnsafeMutablePointer<natsInbox>?
        try NATSStatus.check(natsInbox_Create(&inbox), "creating an inbox")
        subject = String(cString: UnsafeRawPointer(inbox!).assumingMemoryBound(to: CChar.self))
        natsInbox_Destroy(inbox)
        try NATSStatus.check(natsConnection_SubscribeSync(&subscription, connection.connection, subject), "subscribing to the receipt inbox")
    }

    deinit { natsSubscription_Destroy(subscription) }

    /// Answers go-ahead requests and returns the receipt, or gives up at `deadline` (nil: never):
    /// `timedOut` after `withdraw` if no receiver was told to go, `deliveryUnconfirmed` if one was.
    func awaitDelivery(until deadline: ContinuousClock.Instant?,
                       onGiveUp withdraw: () throws(RemoteMailboxError) -> Void) throws(RemoteMailboxError) -> RemoteMailbox.SendOutcome {
        var committed = false
        while true {
            let wait = deadline.map { $0 - .now } ?? .seconds(1)
            if wait <= .zero { break }
            var message: OpaquePointer?
            let status = natsSubscription_NextMsg(&message, subscription, wait.milliseconds)
            // A slow consumer (libnats dropped requests or receipts for lack of room) loses
            // nothing for good: a receiver whose go-ahead request went unanswered asks again
            // (then puts the message back), and a lost receipt ends in `deliveryUnconfirmed` at
            // the deadline.
            if status == NATS_TIMEOUT || status == NATS_SLOW_CONSUMER { continue }
            if status == NATS_CONNECTION_CLOSED || status == NATS_INVALID_SUBSCRIPTION { throw .closed }
            try NATSStatus.check(status, "waiting for a receipt")
            defer { natsMsg_Destroy(message) }
            if let reply = natsMsg_GetReply(message) {
                // A receiver asks for the go-ahead (also a second one after the first died and the
                // server redelivered the message).
                committed = true
                _ = natsConnection_PublishString(connection.connection, reply, "go")
                continue
            }
            let length = Int(natsMsg_GetDataLength(message))
            let text = natsMsg_GetData(message).map { data in
                String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            } ?? ""
            if let receiver = RemoteSender(encoded: text) { return .delivered(receiver) }
        }
        // Out of time. Unsubscribe before anything else: from here on no request is answered.
        natsSubscription_Unsubscribe(subscription)
        if committed { throw .deliveryUnconfirmed }
        try withdraw()
        throw .timedOut
    }
}
