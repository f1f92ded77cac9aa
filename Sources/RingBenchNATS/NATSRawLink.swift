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
/// - `sendBatch`: the messages go in packs, the wire format RemoteMailbox adopts: one JetStream
///   message with header `Shmmb-Pack: <count>` whose body is the messages back to back, each a
///   little-endian UInt32 length then its bytes (at most `packMessages` messages and
///   `packBytes` bytes). Each pack is a `js_PublishMsgAsync` with a message id (libnats keeps at
///   most `--batch` packs outstanding), then `js_PublishAsyncComplete`: `nats bench`'s way of
///   publishing. A batch of one, or a message too large for an empty pack, goes alone, unpacked;
/// - `receive`/`receiveBatch`: a one-shot fetch (no-wait with an expiry) of 1 or up to `limit`
///   JetStream messages from the durable pull consumer; packs are checked (they are untrusted
///   input) and unpacked. At most `limit` messages are handed per call: the rest of a fetch,
///   down to the middle of a pack, waits here for the next call (not durably: a baseline).
///   Every JetStream message is acknowledged once all its messages were handed, the last of a
///   call synchronously (`natsMsg_AckSync`), the others without waiting, as RemoteMailbox does.
///
/// A refused or unacknowledged publish fails the run (the streams are unbounded: none is).
final class NATSRawLink: Link {
    /// The header that makes a JetStream message a pack; its value is the number of messages.
    static let packHeader = "Shmmb-Pack"
    /// The most messages in a pack.
    static let packMessages = 4096
    /// The largest pack body in bytes (length prefixes included).
    static let packBytes = 65536

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
    /// The pack `sendBatch` fills, reused for every pack (sending links only).
    private let pack: UnsafeMutableRawBufferPointer?
    /// The last fetch's JetStream messages; `fetched.Msgs[next...]` are not all handed yet (the
    /// others are acknowledged and destroyed, their slots nil).
    private var fetched = natsMsgList()
    private var next = 0
    /// Messages of `fetched.Msgs[next]` still to hand; 0 while it is not opened.
    private var left = 0
    /// Where its next record starts; -1 when it is a message alone, not a pack.
    private var cursor = 0
    private var closed = false

    init(url: String, ends: NATSSetup.Ends, plan: LinkPlan, watchdog: Watchdog) throws {
        self.watchdog = watchdog
        subject = ends.sendTo.map(RawStreams.subject)
        pack = ends.sendTo == nil ? nil : .allocate(byteCount: Self.packBytes, alignment: 16)
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

    deinit {
        close()
        pack?.deallocate()
    }

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
        guard let subject, let pack else { throw BenchError.protocolViolation("this nats-raw link only receives") }
        let record = 4 + buffer.count
        var packed = 0, used = 0
        for index in 0..<count {
            try fill(index, buffer)
            if count == 1 || record > Self.packBytes {
                try publishAsync(UnsafeRawBufferPointer(buffer), packed: nil, subject: subject)
                continue
            }
            if packed == Self.packMessages || used + record > Self.packBytes {
                try publishAsync(UnsafeRawBufferPointer(rebasing: pack[..<used]), packed: packed, subject: subject)
                packed = 0
                used = 0
            }
            pack.storeBytes(of: UInt32(buffer.count).littleEndian, toByteOffset: used, as: UInt32.self)
            UnsafeMutableRawBufferPointer(rebasing: pack[(used + 4)...]).copyMemory(from: UnsafeRawBufferPointer(buffer))
            used += record
            packed += 1
        }
        if packed > 0 {
            try publishAsync(UnsafeRawBufferPointer(rebasing: pack[..<used]), packed: packed, subject: subject)
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

    /// Publishes `bytes` with the next message id without waiting for the acknowledgement: a
    /// pack of `packed` messages, or one message alone when nil.
    private func publishAsync(_ bytes: UnsafeRawBufferPointer, packed: Int?, subject: String) throws {
        // natsMsg_Create copies the bytes: the pack can be refilled at once.
        var message: OpaquePointer?
        if let packed {
            try RawStreams.check(natsMsg_Create(&message, subject, nil, bytes.baseAddress, Int32(bytes.count)), "natsMsg_Create")
            try RawStreams.check(natsMsgHeader_Set(message, Self.packHeader, String(packed)), "natsMsgHeader_Set")
        }
        // Destroys it unless libnats took it (which clears `message`).
        defer { natsMsg_Destroy(message) }
        var options = jsPubOptions()
        jsPubOptions_Init(&options)
        try nextID().withCString { id in
            options.MsgId = id
            while true {
                let status = packed == nil
                    ? js_PublishAsync(context, subject, bytes.baseAddress, Int32(bytes.count), &options)
                    : js_PublishMsgAsync(context, &message, &options)
                // NATS_TIMEOUT: the window stayed full for libnats's stall wait (200 ms); nothing
                // was published, so the same id is sent again.
                if status == NATS_TIMEOUT {
                    try watchdog.checkPeer()
                    continue
                }
                try RawStreams.check(status, packed == nil ? "js_PublishAsync" : "js_PublishMsgAsync")
                return
            }
        }
    }

    // MARK: Receiving

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        _ = try receiveBatch(limit: 1, body)
    }

    func receiveBatch(limit: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        guard let subscription else { throw BenchError.protocolViolation("this nats-raw link only sends") }
        if next == Int(fetched.Count) { try fetch(limit, subscription) }
        // The last JetStream message all of whose messages were handed: acknowledged when the
        // next one is (after its turn), or synchronously at the end of the call.
        var done: OpaquePointer?
        var handed = 0
        do {
            while handed < max(1, limit), next < Int(fetched.Count) {
                guard let message = fetched.Msgs[next] else {
                    next += 1
                    continue
                }
                let whole = UnsafeRawBufferPointer(start: natsMsg_GetData(message).map { UnsafeRawPointer($0) },
                                                   count: Int(natsMsg_GetDataLength(message)))
                if left == 0 { try open(message, whole) }
                let bytes: UnsafeRawBufferPointer
                if cursor < 0 {
                    bytes = whole
                } else {
                    let length = Int(UInt32(littleEndian: whole.loadUnaligned(fromByteOffset: cursor, as: UInt32.self)))
                    bytes = UnsafeRawBufferPointer(rebasing: whole[(cursor + 4)..<(cursor + 4 + length)])
                    cursor += 4 + length
                }
                // Counted as handed before `body` runs, so that a throwing `body` does not get it again.
                left -= 1
                handed += 1
                if left == 0 {
                    if let done {
                        _ = natsMsg_Ack(done, nil)
                        natsMsg_Destroy(done)
                    }
                    // Its bytes stay valid: it is destroyed only once acknowledged.
                    done = message
                    fetched.Msgs[next] = nil
                    next += 1
                }
                try body(bytes)
            }
        } catch {
            if let done {
                _ = natsMsg_Ack(done, nil)
                natsMsg_Destroy(done)
            }
            throw error
        }
        if let done {
            let status = natsMsg_AckSync(done, nil, nil)
            natsMsg_Destroy(done)
            try RawStreams.check(status, "natsMsg_AckSync")
        }
        return handed
    }

    /// Replaces the handed fetch by a new one of 1 to `limit` JetStream messages, waiting for one.
    private func fetch(_ limit: Int, _ subscription: OpaquePointer) throws {
        natsMsgList_Destroy(&fetched)
        next = 0
        left = 0
        while true {
            var request = jsFetchRequest()
            jsFetchRequest_Init(&request)
            request.Batch = Int32(clamping: max(1, limit))
            request.NoWait = true
            request.Expires = 1_000_000_000
            let status = natsSubscription_FetchRequest(&fetched, subscription, &request)
            if status == NATS_OK, fetched.Count > 0 { return }
            natsMsgList_Destroy(&fetched)
            guard status == NATS_OK || status == NATS_TIMEOUT || status == NATS_NOT_FOUND else {
                try RawStreams.check(status, "natsSubscription_FetchRequest")
                return
            }
            try watchdog.checkPeer()
        }
    }

    /// Sets `left` and `cursor` for a JetStream message not yet opened: one message alone, or a
    /// pack, whose records are checked all before any is handed (the bytes are untrusted).
    private func open(_ message: OpaquePointer, _ whole: UnsafeRawBufferPointer) throws {
        var value: UnsafePointer<CChar>?
        let status = natsMsgHeader_Get(message, Self.packHeader, &value)
        if status == NATS_NOT_FOUND {
            left = 1
            cursor = -1
            return
        }
        try RawStreams.check(status, "natsMsgHeader_Get(\(Self.packHeader))")
        let text = value.map { String(cString: $0) } ?? ""
        guard let count = Int(text), (1...Self.packMessages).contains(count) else {
            throw BenchError.protocolViolation("nats-raw: a pack's \(Self.packHeader) header is \"\(text)\", not a count of 1...\(Self.packMessages) messages")
        }
        var offset = 0
        for index in 0..<count {
            guard whole.count - offset >= 4 else {
                throw BenchError.protocolViolation("nats-raw: a pack of \(count) messages ends (\(whole.count) bytes) before message \(index)'s length")
            }
            let length = Int(UInt32(littleEndian: whole.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            guard length <= whole.count - offset - 4 else {
                throw BenchError.protocolViolation("nats-raw: message \(index) of a pack of \(count) claims \(length) bytes, but only \(whole.count - offset - 4) remain")
            }
            offset += 4 + length
        }
        guard offset == whole.count else {
            throw BenchError.protocolViolation("nats-raw: a pack of \(count) messages has \(whole.count - offset) bytes after its last message")
        }
        left = count
        cursor = 0
    }

    func close() {
        guard !closed else { return }
        closed = true
        // Unhanded messages are redelivered after the ack wait.
        natsMsgList_Destroy(&fetched)
        next = 0
        left = 0
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
