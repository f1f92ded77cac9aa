#if canImport(Glibc)
import Glibc
#endif
import CNATS
import ShmMailbox

/// Sending: the public calls and the one engine under them (`sendBuffer`).
///
/// A send is a JetStream publish carrying a message id unique to this handle; the call returns
/// once the server (every replica's quorum) has stored the message (inside a `batch`, an untimed
/// send returns at once and the batch waits for the acknowledgements; see `batch`). A publish whose answer does
/// not come (server lost, leader failing over) is retried under the same id until the call's
/// deadline, so a retried send is never stored twice.
extension RemoteMailbox {
    /// Sends `buffer`, waiting while the mailbox is full, at most `timeout` (forever if nil).
    ///
    /// - Parameter messageID: the id the server de-duplicates by (default: a new one). Sending
    ///   again under the same id within the mailbox's `duplicateWindow` stores nothing new: the
    ///   way to retry after `sendUnconfirmed` without doubling the message.
    /// - Throws: `timedOut` (nothing sent), `sendUnconfirmed` (the server did not answer in time:
    ///   the message may be stored), `messageTooLarge`, `outOfSpace`, `deleted`, `closed`.
    public func send(_ buffer: UnsafeRawBufferPointer, timeout: Duration? = nil, messageID: String? = nil) throws(RemoteMailboxError) {
        if try sendBuffer(buffer, deadline: Self.deadline(timeout), completion: .queued, messageID: messageID) == .full {
            throw .timedOut
        }
    }

    /// `send(_:timeout:messageID:)` for an `Array`, a slice or any collection of bytes.
    public func send<Bytes: Collection<UInt8>>(_ bytes: Bytes, timeout: Duration? = nil, messageID: String? = nil) throws(RemoteMailboxError) {
        try withContiguousBytes(bytes) { (buffer) throws(RemoteMailboxError) in try send(buffer, timeout: timeout, messageID: messageID) }
    }

    /// `send(_:timeout:messageID:)` for the UTF-8 bytes of `text`.
    public func send(_ text: String, timeout: Duration? = nil, messageID: String? = nil) throws(RemoteMailboxError) {
        try send(Array(text.utf8), timeout: timeout, messageID: messageID)
    }

    /// `send(_:timeout:messageID:)` for the bytes of a `BitwiseCopyable` value (`load(as:)` on the
    /// receiving side).
    public func send<T: BitwiseCopyable>(value: T, timeout: Duration? = nil) throws(RemoteMailboxError) {
        var value = value
        try Result { () throws(RemoteMailboxError) in
            try withUnsafeBytes(of: &value) { buffer in Result { () throws(RemoteMailboxError) in try send(buffer, timeout: timeout) } }.get()
        }.get()
    }

    /// Sends `buffer` if there is room now; returns `false` (sending nothing) when the mailbox is
    /// full. Still waits for the server's answer (one round trip).
    public func trySend(_ buffer: UnsafeRawBufferPointer) throws(RemoteMailboxError) -> Bool {
        try sendBuffer(buffer, deadline: .now, completion: .queued, messageID: nil) != .full
    }

    /// `trySend(_:)` for an `Array`, a slice or any collection of bytes.
    public func trySend<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(RemoteMailboxError) -> Bool {
        try withContiguousBytes(bytes) { (buffer) throws(RemoteMailboxError) in try trySend(buffer) }
    }

    /// `trySend(_:)` for the UTF-8 bytes of `text`.
    public func trySend(_ text: String) throws(RemoteMailboxError) -> Bool {
        try trySend(Array(text.utf8))
    }

    /// Synchronous send: returns only once a receiver (on any host) has taken and finished with
    /// the message, naming it; `.queued` behaves as `send(_:timeout:)` and returns nil.
    ///
    /// Out of time before any receiver took the message: it is withdrawn (`timedOut`, nothing
    /// sent). Out of time after a receiver took it: `deliveryUnconfirmed`. A receiver that dies
    /// while handling it is replaced: the message is redelivered (marked so) after the mailbox's
    /// `redeliveryDelay` and the receipt names the receiver that finished it. A synchronous
    /// message is only ever handed to a receiver while its sender still waits.
    @discardableResult
    public func send(_ buffer: UnsafeRawBufferPointer, timeout: Duration? = nil, until completion: Mailbox.Completion) throws(RemoteMailboxError) -> RemoteDelivery? {
        let outcome = try sendBuffer(buffer, deadline: Self.deadline(timeout), completion: completion, messageID: nil)
        if outcome == .full { throw .timedOut }
        return outcome.delivery
    }

    /// `send(_:timeout:until:)` for an `Array`, a slice or any collection of bytes.
    @discardableResult
    public func send<Bytes: Collection<UInt8>>(_ bytes: Bytes, timeout: Duration? = nil, until completion: Mailbox.Completion) throws(RemoteMailboxError) -> RemoteDelivery? {
        try withContiguousBytes(bytes) { (buffer) throws(RemoteMailboxError) in try send(buffer, timeout: timeout, until: completion) }
    }

    /// `send(_:timeout:until:)` for the UTF-8 bytes of `text`.
    @discardableResult
    public func send(_ text: String, timeout: Duration? = nil, until completion: Mailbox.Completion) throws(RemoteMailboxError) -> RemoteDelivery? {
        try send(Array(text.utf8), timeout: timeout, until: completion)
    }

    /// Zero-copy send: `fill` writes the message's `count` bytes, through a span, straight into
    /// the buffer libnats sends from (no intermediate array). Waits like `send(_:timeout:)`. If
    /// `fill` throws, nothing is sent.
    public func send(count: Int, timeout: Duration? = nil, _ fill: (inout MutableRawSpan) throws -> Void) throws {
        let filled = try sendFilled(count: count, deadline: Self.deadline(timeout)) { buffer in
            var span = MutableRawSpan(_unsafeBytes: buffer)
            try fill(&span)
        }
        if filled == .full { throw RemoteMailboxError.timedOut }
    }

    /// Zero-copy `trySend`: returns `false` without calling `fill` when the mailbox is full.
    public func trySend(count: Int, _ fill: (inout MutableRawSpan) throws -> Void) throws -> Bool {
        try sendFilled(count: count, deadline: .now) { buffer in
            var span = MutableRawSpan(_unsafeBytes: buffer)
            try fill(&span)
        } != .full
    }

    // MARK: The engine

    /// What a send achieved.
    enum SendOutcome: Equatable {
        /// Not sent: the mailbox was full until the deadline.
        case full
        /// Stored in the mailbox under this stream sequence.
        case stored(UInt64)
        /// Taken and finished by this receiver (synchronous sends).
        case delivered(RemoteSender)
        /// Handed to a batch's pipeline: stored once the batch completes.
        case pending

        var delivery: RemoteDelivery? {
            if case .delivered(let receiver) = self { return RemoteDelivery(receiver: receiver) }
            return nil
        }
    }

    private func sendFilled(count: Int, deadline: ContinuousClock.Instant?, _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> SendOutcome {
        guard count >= 0, count <= maxMessageSize else { throw RemoteMailboxError.messageTooLarge(size: count, limit: maxMessageSize) }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        defer { storage.deallocate() }
        let buffer = UnsafeMutableRawBufferPointer(rebasing: storage[0..<count])
        try fill(buffer)
        return try sendBuffer(UnsafeRawBufferPointer(buffer), deadline: deadline, completion: .queued, messageID: nil)
    }

    /// Publishes `buffer` until stored or `deadline` (nil: forever; now: one attempt), then, for
    /// a synchronous send, waits for a receiver's receipt.
    func sendBuffer(_ buffer: UnsafeRawBufferPointer, deadline: ContinuousClock.Instant?, completion: Mailbox.Completion,
                    messageID: String?) throws(RemoteMailboxError) -> SendOutcome {
        guard !isClosed else { throw .closed }
        guard buffer.count <= maxMessageSize else { throw .messageTooLarge(size: buffer.count, limit: maxMessageSize) }
        try claimSendRight()
        let synchronous = completion == .received || capacity.kind == .zero
        let immediate = deadline.map { $0 <= .now } ?? false
        // Pipelined only where the server never refuses for lack of room (unbounded): a refused
        // message published again would land after later ones, out of the order sent.
        let pipelined = pipeline.map { $0.depth > 0 } ?? false
        let queuedInBatch = pipelined && !synchronous && deadline == nil && capacity.kind == .unbounded
        if let pipeline, pipelined {
            // Packed: an untimed queued send of a batch without a message id of its own (which
            // must stay a message of its own to be de-duplicated) on a mailbox (not an endpoint
            // link, whose per-link limit counts messages).
            let limit = packLimit
            if queuedInBatch, messageID == nil, !mapping.isEndpoint, Pack.recordOverhead + buffer.count <= limit {
                let sender = identity
                if !pipeline.pack.admits(length: buffer.count, from: sender, limit: limit) {
                    try pipeline.flushPack(subject: mapping.subject, senderID: senderID, isClosed: { connection.isClosed })
                }
                sendCount &+= 1
                pipeline.pack.append(buffer, send: sendCount, from: sender)
                return .pending
            }
            // Anything else goes after the messages packed so far.
            try pipeline.flushPack(subject: mapping.subject, senderID: senderID, isClosed: { connection.isClosed })
        }
        sendCount &+= 1
        let id = messageID ?? "\(senderID).\(sendCount)"

        var message: OpaquePointer?
        try NATSStatus.check(natsMsg_Create(&message, mapping.subject, nil, buffer.baseAddress?.assumingMemoryBound(to: CChar.self),
                                            Int32(buffer.count)), "creating a message")
        defer { natsMsg_Destroy(message) }
        try NATSStatus.check(natsMsgHeader_Set(message, Headers.sender, identity.encoded), "setting the sender header")

        var receipts: ReceiptInbox?
        if synchronous {
            receipts = try ReceiptInbox(connection: connection)
            try NATSStatus.check(natsMsgHeader_Set(message, Headers.receipt, receipts!.subject), "setting the receipt header")
        }

        if let pipeline, queuedInBatch {
            try pipeline.publish(&message, id: id, isClosed: { connection.isClosed })
            return .pending
        }
        guard case .stored(let sequence) = try publish(message, id: id, deadline: deadline) else { return .full }
        guard let receipts else { return .stored(sequence) }
        // A try-send still gives a receiver that is already waiting the time to take it.
        let receiptDeadline = deadline.map { max($0, .now + Self.immediateTakeWindow) }
        do {
            return try receipts.awaitDelivery(until: receiptDeadline, onGiveUp: { () throws(RemoteMailboxError) in
                // Nobody took it: withdraw it so no receiver gets it later (one that fetched it
                // already asks this inbox first, finds nobody and drops it).
                _ = try? deleteMessage(sequence)
            })
        } catch .timedOut where immediate {
            return .full
        }
    }

    /// How long a synchronous `trySend` (or a timeout of zero) waits for an already waiting
    /// receiver to take the message: about one fetch round trip.
    static let immediateTakeWindow = Duration.milliseconds(100)

    /// One message id, published until stored, full past the deadline, or a hard error.
    private func publish(_ message: OpaquePointer?, id: String, deadline: ContinuousClock.Instant?) throws(RemoteMailboxError) -> SendOutcome {
        var pause = Duration.milliseconds(1)
        // Each attempt waits the request timeout for the server's answer, cut short by a timed
        // call's deadline; a try-send (deadline already passed) still makes one whole attempt,
        // as it needs the answer to know whether the mailbox was full.
        let attempt = connection.options.requestTimeout
        let wholeAttempts = deadline.map { $0 <= .now } ?? true
        while true {
            let wait = wholeAttempts ? attempt : min(max(deadline! - .now, .milliseconds(1)), attempt)
            var options = jsPubOptions()
            jsPubOptions_Init(&options)
            options.MaxWait = wait.milliseconds
            var ack: UnsafeMutablePointer<jsPubAck>?
            var code = jsErrCode(0)
            let status = id.withCString { cID in
                options.MsgId = cID
                return js_PublishMsg(&ack, connection.jetStream, message, &options, &code)
            }
            if status == NATS_OK, let ack {
                // A duplicate means an earlier attempt under this id was stored: that is our message.
                let sequence = ack.pointee.Sequence
                jsPubAck_Destroy(ack)
                return .stored(sequence)
            }
            jsPubAck_Destroy(ack)
            let text = NATSStatus.lastErrorText()
            let expired = deadline.map { ContinuousClock.now >= $0 } ?? false
            if code == JSStreamStoreFailedErr || text.contains("maximum messages") || text.contains("maximum bytes") {
                // Refused, not stored: the mailbox is full (or, unbounded, out of bytes).
                if text.contains("maximum bytes") && capacity.kind == .unbounded { throw .outOfSpace(name) }
                // The server checks the message id before the limits: a refusal means no earlier
                // attempt under this id was stored either.
                if expired { return .full }
            } else if status == NATS_TIMEOUT || status == NATS_NO_RESPONDERS || status == NATS_CONNECTION_DISCONNECTED
                        || natsConnection_IsReconnecting(connection.connection) {
                // No answer: the message may or may not be stored. Retrying under the same id
                // settles it; past the deadline it stays unknown.
                if status == NATS_NO_RESPONDERS, try !streamExists() { throw goneError }
                if expired { throw .sendUnconfirmed(name) }
            } else if status == NATS_CONNECTION_CLOSED || connection.isClosed {
                throw .closed
            } else if code == JSStreamNotFoundErr {
                throw goneError
            } else {
                throw NATSStatus.error(status, errorCode: code, "publishing to \(mapping.subject)")
            }
            // Blocked: a process-owned mailbox whose owner is gone will never have room.
            try checkOwner(force: false)
            let remaining = deadline.map { $0 - .now } ?? pause
            if remaining > .zero { sleepFor(min(pause, remaining)) }
            pause = min(pause * 2, .milliseconds(20))
        }
    }

    /// What a call finding the mailbox's stream gone throws: `ownerTerminated` for a mailbox
    /// owned by a process (its owner is gone), else `deleted`.
    var goneError: RemoteMailboxError {
        ownership == .process && ownerLease == nil ? .ownerTerminated(name) : .deleted(name)
    }

    func streamExists() throws(RemoteMailboxError) -> Bool {
        do {
            let info = try Self.streamInfo(mapping, connection: connection)
            jsStreamInfo_Destroy(info)
            return true
        } catch .notFound {
            return false
        } catch {
            // Unknown (the server is unreachable too): keep trying rather than call it deleted.
            return true
        }
    }
}

/// Runs `body` on the bytes of `bytes`, in place when the collection is contiguous, keeping the
/// typed error.
func withContiguousBytes<Bytes: Collection<UInt8>, R>(_ bytes: Bytes, _ body: (UnsafeRawBufferPointer) throws(RemoteMailboxError) -> R) throws(RemoteMailboxError) -> R {
    let inPlace = bytes.withContiguousStorageIfAvailable { storage in
        Result { () throws(RemoteMailboxError) in try body(UnsafeRawBufferPointer(storage)) }
    }
    if let inPlace { return try inPlace.get() }
    return try Array(bytes).withUnsafeBytes { buffer in Result { () throws(RemoteMailboxError) in try body(buffer) } }.get()
}

/// The header names ShmMailboxNATS puts on messages.
enum Headers {
    /// `host;pid` or `host;pid;endpoint-name`.
    static let sender = "Shmmb-Sender"
    /// A synchronous send's inbox: a receiver asks it for the go-ahead, then reports there.
    static let receipt = "Shmmb-Receipt"
}

func sleepFor(_ duration: Duration) {
    let (seconds, attoseconds) = duration.components
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
}
