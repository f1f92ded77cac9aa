#if canImport(Glibc)
import Glibc
#endif
import CNATS
import RingBenchKit
import Synchronization

/// `nats-raw`: a link through plain libnats, doing the work `nats` does with nothing of
/// ShmMailboxNATS in between (no sender header, no receipt or redelivery checks):
///
/// - `send`: `js_Publish` with a message id, waiting for the acknowledgement;
/// - `sendBatch`: `js_PublishAsync` of each message with a message id (libnats keeps at most
///   `--batch` outstanding), then `js_PublishAsyncComplete`: `nats bench`'s way of publishing;
/// - `receive`/`receiveBatch`: a one-shot fetch (no-wait with an expiry) of 1 or up to `limit`
///   messages from the durable pull consumer; every message acknowledged after its turn, the last
///   of a fetch synchronously (`natsMsg_AckSync`), the others without waiting, as RemoteMailbox
///   does.
///
/// A refused or unacknowledged publish fails the run (the streams are unbounded: none is).
final class NATSRawLink: Link {
    /// Publishes libnats's error handler reported, counted on its thread.
    final class FailureCount: Sendable {
        let count = Atomic<Int>(0)
        let firstError = Mutex<String?>(nil)
    }

    private var connection: OpaquePointer?
    private var context: OpaquePointer?
    private var subscription: OpaquePointer?
    private let subject: String?
    private let failures = FailureCount()
    private let failuresPointer: UnsafeMutableRawPointer
    private let watchdog: Watchdog
    /// Message ids `<random>.<n>`, unique to this link, as RemoteMailbox makes them.
    private let idPrefix = String(UInt64.random(in: .min ... .max), radix: 16)
    private var sent: UInt64 = 0
    private var closed = false

    init(url: String, ends: NATSSetup.Ends, plan: LinkPlan, watchdog: Watchdog) throws {
        self.watchdog = watchdog
        subject = ends.sendTo.map(RawStreams.subject)
        failuresPointer = Unmanaged.passRetained(failures).toOpaque()
        do {
            connection = try RawStreams.connect(url)
            var options = jsOptions()
            jsOptions_Init(&options)
            options.PublishAsync.MaxPending = Int64(max(1, plan.batch))
            options.PublishAsync.ErrHandler = { _, failure, closure in
                guard let failure, let closure else { return }
                let counter = Unmanaged<FailureCount>.fromOpaque(closure).takeUnretainedValue()
                if counter.count.add(1, ordering: .relaxed).oldValue == 0 {
                    let text = failure.pointee.ErrText.map { String(cString: $0) } ?? ""
                    counter.firstError.withLock { $0 = "\(String(cString: natsStatus_GetText(failure.pointee.Err))) \(text)" }
                }
            }
            options.PublishAsync.ErrHandlerClosure = failuresPointer
            try RawStreams.check(natsConnection_JetStream(&context, connection, &options), "natsConnection_JetStream")
            if let name = ends.receiveFrom {
                try RawStreams.stream(name).withCString { cStream in
                    try RawStreams.consumer.withCString { cConsumer in
                        var subscribeOptions = jsSubOptions()
                        jsSubOptions_Init(&subscribeOptions)
                        subscribeOptions.Stream = cStream
                        subscribeOptions.Consumer = cConsumer
                        subscribeOptions.ManualAck = true
                        var code = jsErrCode(0)
                        try RawStreams.check(js_PullSubscribe(&subscription, context, RawStreams.subject(name), RawStreams.consumer, nil,
                                                              &subscribeOptions, &code), "js_PullSubscribe", code: code)
                    }
                }
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    // MARK: Sending

    private func nextID() -> String {
        sent &+= 1
        return "\(idPrefix).\(sent)"
    }

    func send(_ message: UnsafeRawBufferPointer) throws {
        guard let subject else { throw BenchError.protocolViolation("this nats-raw link only receives") }
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        var code = jsErrCode(0)
        var ack: UnsafeMutablePointer<jsPubAck>?
        let status = nextID().withCString { id in
            options.MsgId = id
            return js_Publish(&ack, context, subject, message.baseAddress, Int32(message.count), &options, &code)
        }
        jsPubAck_Destroy(ack)
        try RawStreams.check(status, "js_Publish", code: code)
    }

    func sendBatch(count: Int, buffer: UnsafeMutableRawBufferPointer,
                   fill: (Int, UnsafeMutableRawBufferPointer) throws -> Void) throws {
        guard let subject else { throw BenchError.protocolViolation("this nats-raw link only receives") }
        for index in 0..<count {
            try fill(index, buffer)
            var options = jsPubOptions()
            jsPubOptions_Init(&options)
            while true {
                let status = nextID().withCString { id in
                    options.MsgId = id
                    return js_PublishAsync(context, subject, buffer.baseAddress, Int32(buffer.count), &options)
                }
                // NATS_TIMEOUT: the window stayed full for libnats's stall wait (200 ms).
                if status == NATS_TIMEOUT {
                    sent &-= 1
                    try watchdog.checkPeer()
                    continue
                }
                try RawStreams.check(status, "js_PublishAsync")
                break
            }
        }
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        options.MaxWait = 10_000
        try RawStreams.check(js_PublishAsyncComplete(context, &options), "js_PublishAsyncComplete")
        if failures.count.load(ordering: .relaxed) > 0 {
            let text = failures.firstError.withLock { $0 } ?? ""
            throw BenchError.mailbox(operation: "js_PublishAsync", description: "the server refused a message: \(text)")
        }
    }

    // MARK: Receiving

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        _ = try receiveBatch(limit: 1, body)
    }

    func receiveBatch(limit: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        guard let subscription else { throw BenchError.protocolViolation("this nats-raw link only sends") }
        var list = natsMsgList()
        while true {
            var request = jsFetchRequest()
            jsFetchRequest_Init(&request)
            request.Batch = Int32(clamping: limit)
            request.NoWait = true
            request.Expires = 1_000_000_000
            let status = natsSubscription_FetchRequest(&list, subscription, &request)
            if status == NATS_OK, list.Count > 0 { break }
            natsMsgList_Destroy(&list)
            guard status == NATS_OK || status == NATS_TIMEOUT || status == NATS_NOT_FOUND else {
                try RawStreams.check(status, "natsSubscription_FetchRequest")
                return 0
            }
            try watchdog.checkPeer()
        }
        defer { natsMsgList_Destroy(&list) }
        let count = Int(list.Count)
        for index in 0..<count {
            guard let message = list.Msgs[index] else { continue }
            let length = Int(natsMsg_GetDataLength(message))
            let bytes = UnsafeRawBufferPointer(start: natsMsg_GetData(message).map { UnsafeRawPointer($0) }, count: length)
            do {
                try body(bytes)
            } catch {
                _ = natsMsg_Ack(message, nil)
                throw error
            }
            if index == count - 1 {
                try RawStreams.check(natsMsg_AckSync(message, nil, nil), "natsMsg_AckSync")
            } else {
                _ = natsMsg_Ack(message, nil)
            }
        }
        return count
    }

    func close() {
        guard !closed else { return }
        closed = true
        if let subscription { natsSubscription_Destroy(subscription) }
        subscription = nil
        if let context { jsCtx_Destroy(context) }
        context = nil
        if let connection {
            natsConnection_Close(connection)
            natsConnection_Destroy(connection)
        }
        connection = nil
        Unmanaged<FailureCount>.fromOpaque(failuresPointer).release()
    }
}
