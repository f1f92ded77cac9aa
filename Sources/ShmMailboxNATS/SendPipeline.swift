#if canImport(Glibc)
import Glibc
#endif
import CNATS
import Synchronization

/// The asynchronous publishing behind `RemoteMailbox.batch`: a JetStream context of its own
/// whose publishes do not wait for their acknowledgements (libnats keeps at most `window` of
/// them outstanding), and the list of messages the server refused or did not acknowledge, to be
/// published again under the same message ids when the batch completes. Consecutive sends are
/// packed (see `Pack`): a pack is published when the next message does not fit, when a send
/// that is not packed comes, and when the batch completes.
///
/// One per mailbox handle, made at its first batch and kept (its reply subscription is reused).
final class SendPipeline {
    /// A message to publish again: its id, sender and pack headers and bytes, and why it failed.
    struct Failure: Sendable {
        var id: String
        var sender: String?
        var pack: String?
        var bytes: [UInt8]
        var status: natsStatus
        var code: jsErrCode
        var text: String
    }

    /// Failures reported by libnats's thread (the error handler), taken by the sending thread.
    final class FailureList: Sendable {
        let items = Mutex<[Failure]>([])
    }

    let window: Int
    let context: OpaquePointer
    private let failures: FailureList
    private let failuresPointer: UnsafeMutableRawPointer
    /// `batch` calls under way on this handle (nested batches are one batch).
    var depth = 0
    /// The messages packed and not yet published.
    var pack = PackBuilder()

    init(connection: NATSConnection, window: Int) throws(RemoteMailboxError) {
        self.window = window
        let failures = FailureList()
        self.failures = failures
        failuresPointer = Unmanaged.passRetained(failures).toOpaque()
        var options = jsOptions()
        jsOptions_Init(&options)
        options.Wait = connection.options.requestTimeout.milliseconds
        options.PublishAsync.MaxPending = Int64(window)
        // A publish beyond the window waits this long for room before trying again.
        options.PublishAsync.StallWait = connection.options.requestTimeout.milliseconds
        options.PublishAsync.ErrHandler = { _, failure, closure in
            guard let failure, let closure else { return }
            Unmanaged<FailureList>.fromOpaque(closure).takeUnretainedValue().items.withLock { list in
                list.append(SendPipeline.failure(failure.pointee))
            }
        }
        options.PublishAsync.ErrHandlerClosure = failuresPointer
        var made: OpaquePointer?
        let status = natsConnection_JetStream(&made, connection.connection, &options)
        guard status == NATS_OK, let made else {
            Unmanaged<FailureList>.fromOpaque(failuresPointer).release()
            throw NATSStatus.error(status, "creating the batch publishing context")
        }
        context = made
    }

    deinit {
        // Every batch waited for all its acknowledgements: no error handler call is pending.
        jsCtx_Destroy(context)
        Unmanaged<FailureList>.fromOpaque(failuresPointer).release()
    }

    /// Hands `message` to libnats with message id `id` and returns without waiting for its
    /// acknowledgement (waiting only while `window` are outstanding). libnats owns the message
    /// afterwards (`message` becomes nil).
    func publish(_ message: inout OpaquePointer?, id: String, isClosed: () -> Bool) throws(RemoteMailboxError) {
        while true {
            var options = jsPubOptions()
            jsPubOptions_Init(&options)
            let status = id.withCString { cID in
                options.MsgId = cID
                return js_PublishMsgAsync(context, &message, &options)
            }
            switch status {
            case NATS_OK: return
            // The window stayed full for StallWait: the server is slow or gone; keep waiting
            // (an untimed send waits for room), unless the connection is closed.
            case NATS_TIMEOUT where !isClosed(): continue
            case NATS_CONNECTION_CLOSED, NATS_TIMEOUT: throw .closed
            default: throw NATSStatus.error(status, "publishing asynchronously")
            }
        }
    }

    /// Publishes what is packed, if anything (`Shmmb-Pack` header; a pack of one message goes
    /// as that message alone), under the message id of its first send.
    func flushPack(subject: String, senderID: String, isClosed: () -> Bool) throws(RemoteMailboxError) {
        guard pack.count > 0, let sender = pack.sender else { return }
        defer { pack.reset() }
        let skipped = pack.count == 1 ? Pack.recordOverhead : 0
        var message: OpaquePointer?
        try NATSStatus.check(pack.body.withUnsafeBytes { body in
            natsMsg_Create(&message, subject, nil, body.baseAddress.map { ($0 + skipped).assumingMemoryBound(to: CChar.self) },
                           Int32(body.count - skipped))
        }, "creating a message")
        defer { natsMsg_Destroy(message) }
        try NATSStatus.check(natsMsgHeader_Set(message, Headers.sender, sender.encoded), "setting the sender header")
        if pack.count > 1 {
            try NATSStatus.check(natsMsgHeader_Set(message, Pack.header, String(pack.count)), "setting the pack header")
        }
        try publish(&message, id: "\(senderID).\(pack.firstSend)", isClosed: isClosed)
    }

    /// Waits until every message published so far is acknowledged or failed, and returns the
    /// failed ones (refused by the server, or not acknowledged within `wait`).
    func complete(wait: Duration) throws(RemoteMailboxError) -> [Failure] {
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        options.MaxWait = wait.milliseconds
        let status = js_PublishAsyncComplete(context, &options)
        var failed = failures.items.withLock { list in
            defer { list.removeAll() }
            return list
        }
        if status == NATS_TIMEOUT {
            // Still unacknowledged: take them back from libnats; they are published again.
            var pending = natsMsgList()
            if js_PublishAsyncGetPendingList(&pending, context) == NATS_OK {
                for index in 0..<Int(pending.Count) {
                    guard let message = pending.Msgs[index] else { continue }
                    var failure = Self.copy(message)
                    failure.status = NATS_TIMEOUT
                    failed.append(failure)
                }
                natsMsgList_Destroy(&pending)
            }
        } else if status == NATS_CONNECTION_CLOSED {
            throw .closed
        } else if status != NATS_OK {
            throw NATSStatus.error(status, "waiting for publish acknowledgements")
        }
        return failed
    }

    /// What a failed publish needs to be published again (copied: libnats frees the message).
    private static func failure(_ report: jsPubAckErr) -> Failure {
        var failure = report.Msg.map(copy) ?? Failure(id: "", sender: nil, pack: nil, bytes: [], status: NATS_OK, code: jsErrCode(0), text: "")
        failure.status = report.Err
        failure.code = report.ErrCode
        failure.text = report.ErrText.map { String(cString: $0) } ?? ""
        return failure
    }

    private static func copy(_ message: OpaquePointer) -> Failure {
        func header(_ name: String) -> String? {
            var value: UnsafePointer<CChar>?
            guard natsMsgHeader_Get(message, name, &value) == NATS_OK, let value else { return nil }
            return String(cString: value)
        }
        let length = Int(natsMsg_GetDataLength(message))
        let bytes = natsMsg_GetData(message).map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
        return Failure(id: header("Nats-Msg-Id") ?? "", sender: header(Headers.sender), pack: header(Pack.header), bytes: bytes, status: NATS_OK,
                       code: jsErrCode(0), text: "")
    }
}
