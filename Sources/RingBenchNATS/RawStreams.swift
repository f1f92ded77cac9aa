import CNATS
import RingBenchKit

/// `nats-raw`'s streams, made with plain libnats with the settings RemoteMailbox gives an
/// unbounded mailbox (see `NATSSetup`): stream `RAW_<name>` on subject `raw.<name>`, durable pull
/// consumer `receivers`. The largest message is at least a full pack (`NATSRawLink.packBytes`),
/// so that small messages can be packed.
enum RawStreams {
    static let consumer = "receivers"

    static func stream(_ name: String) -> String { "RAW_" + name }
    static func subject(_ name: String) -> String { "raw." + name }

    /// Creates the streams `names` and their consumers on the server at `url`.
    static func create(_ names: [String], url: String, maxMessageSize: Int) throws {
        let connection = try connect(url)
        defer { natsConnection_Destroy(connection) }
        var context: OpaquePointer?
        try check(natsConnection_JetStream(&context, connection, nil), "natsConnection_JetStream")
        defer { jsCtx_Destroy(context) }
        for name in names {
            try addStream(name, context: context, maxMessageSize: maxMessageSize)
            try addConsumer(name, context: context)
        }
    }

    private static func addStream(_ name: String, context: OpaquePointer?, maxMessageSize: Int) throws {
        let streamName = stream(name), subjectName = subject(name)
        try streamName.withCString { cName in
            try subjectName.withCString { cSubject in
                var subjects: UnsafePointer<CChar>? = cSubject
                var config = jsStreamConfig()
                jsStreamConfig_Init(&config)
                config.Name = cName
                config.SubjectsLen = 1
                config.Retention = js_WorkQueuePolicy
                config.Discard = js_DiscardNew
                config.Storage = js_FileStorage
                config.Replicas = 1
                config.MaxMsgSize = Int32(max(maxMessageSize, NATSRawLink.packBytes) + 1024)
                config.Duplicates = 120_000_000_000
                config.MaxMsgs = -1
                config.MaxBytes = -1
                var code = jsErrCode(0)
                let status = withUnsafeMutablePointer(to: &subjects) { pointer in
                    config.Subjects = UnsafeMutablePointer(mutating: pointer)
                    return js_AddStream(nil, context, &config, nil, &code)
                }
                try check(status, "js_AddStream(\(streamName))", code: code)
            }
        }
    }

    private static func addConsumer(_ name: String, context: OpaquePointer?) throws {
        let subjectName = subject(name)
        try consumer.withCString { cDurable in
            try subjectName.withCString { cSubject in
                var config = jsConsumerConfig()
                jsConsumerConfig_Init(&config)
                config.Durable = cDurable
                config.AckPolicy = js_AckExplicit
                config.AckWait = 30_000_000_000
                config.MaxDeliver = -1
                config.DeliverPolicy = js_DeliverAll
                config.FilterSubject = cSubject
                var code = jsErrCode(0)
                try check(js_AddConsumer(nil, context, stream(name), &config, nil, &code), "js_AddConsumer(\(stream(name)))", code: code)
            }
        }
    }

    /// A plain connection to `url`.
    static func connect(_ url: String) throws -> OpaquePointer {
        var connection: OpaquePointer?
        try check(natsConnection_ConnectTo(&connection, url), "natsConnection_ConnectTo(\(url))")
        guard let connection else { throw BenchError.protocolViolation("libnats returned no connection") }
        return connection
    }

    /// Throws unless `status` is NATS_OK, with libnats's last error text.
    static func check(_ status: natsStatus, _ operation: String, code: jsErrCode = jsErrCode(0)) throws {
        guard status != NATS_OK else { return }
        var last = NATS_OK
        let text = nats_GetLastError(&last).map { String(cString: $0) } ?? ""
        throw BenchError.mailbox(operation: operation, description: "\(String(cString: natsStatus_GetText(status)))"
            + (code.rawValue != 0 ? " (JetStream error \(code.rawValue))" : "") + (text.isEmpty ? "" : ": \(text)"))
    }
}
