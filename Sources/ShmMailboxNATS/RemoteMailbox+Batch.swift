import CNATS

/// Batches: sends that do not wait for their acknowledgements one by one.
extension RemoteMailbox {
    /// Sends what `body` sends as one pipelined batch, and returns once the server has stored
    /// every message of it.
    ///
    /// On an unbounded mailbox, an untimed queued send inside the batch (`send(_:)`,
    /// `send(count:_:)` and their collection, text and value forms, without a timeout) hands its
    /// message to libnats and returns without waiting for the server's acknowledgement; at most
    /// `window` messages are unacknowledged at a time (a send beyond that waits for room). When
    /// `body` returns, the batch waits for every acknowledgement. A message the server did not
    /// acknowledge in time (a lost connection) is published again under its same message id,
    /// after a pause of 1 ms doubling to 20 ms, until stored; the server's de-duplication stores
    /// it at most once, but it may then be stored after messages sent later in the batch.
    ///
    /// Those sends are also packed: consecutive ones travel, and are stored, as one JetStream
    /// message (up to 4096 messages or 64 KiB; see `Pack`), which is what lets small messages
    /// stream fast (the server's cost is per stored message). Receivers hand them over one by
    /// one, each with its sender, in order. A receive call that ends part-way through a pack
    /// records how far it got (one key-value write), so that a receiver killed part-way hands
    /// over again only the messages it handed since its last record, marked redelivered (as a
    /// local `receiveBatch` releases its messages together). A send with its own `messageID`
    /// (de-duplicated by it) travels alone, in its place. `depth` counts a waiting pack once.
    ///
    /// On a bounded or zero-capacity mailbox every send inside a batch waits for its own
    /// acknowledgement, as outside it: a message refused because the mailbox was full and
    /// published again would land after later ones, and messages from one sender must arrive in
    /// the order sent. So do `trySend`, timed and synchronous sends, everywhere. Nested batches
    /// are part of the outermost one (its window applies).
    ///
    /// If `body` throws, the messages it sent are still confirmed before its error is rethrown.
    ///
    /// - Throws: what `body` throws; `outOfSpace`, `deleted`, `closed`, or a server error for a
    ///   message that cannot be stored (the messages before it may be stored).
    public func batch<R>(window: Int = 256, _ body: () throws -> R) throws -> R {
        guard !isClosed else { throw RemoteMailboxError.closed }
        guard window >= 1 else { throw RemoteMailboxError.invalidOptions("window must be at least 1") }
        if let pipeline, pipeline.depth > 0 { return try body() }
        if pipeline?.window != window { pipeline = try SendPipeline(connection: connection, window: window) }
        let pipeline = self.pipeline!
        pipeline.depth = 1
        let result = Result { try body() }
        pipeline.depth = 0
        try settle(pipeline)
        return try result.get()
    }

    /// Waits for every acknowledgement of the batch, publishing failed messages again.
    private func settle(_ pipeline: SendPipeline) throws(RemoteMailboxError) {
        try pipeline.flushPack(subject: mapping.subject, senderID: senderID, isClosed: { connection.isClosed })
        var pause = Duration.milliseconds(1)
        while true {
            let failed = try pipeline.complete(wait: connection.options.requestTimeout)
            if failed.isEmpty { return }
            for failure in failed { try checkRetryable(failure) }
            sleepFor(pause)
            pause = min(pause * 2, .milliseconds(20))
            for failure in failed { try republish(failure, on: pipeline) }
        }
    }

    /// Throws unless `failure` is one that publishing again can cure (a full mailbox, a lost
    /// acknowledgement): the same classification as a single send's.
    private func checkRetryable(_ failure: SendPipeline.Failure) throws(RemoteMailboxError) {
        if failure.code == JSStreamStoreFailedErr || failure.text.contains("maximum messages") || failure.text.contains("maximum bytes") {
            if failure.text.contains("maximum bytes") && capacity.kind == .unbounded { throw .outOfSpace(name) }
        } else if failure.status == NATS_TIMEOUT || failure.status == NATS_NO_RESPONDERS
                    || failure.status == NATS_CONNECTION_DISCONNECTED || natsConnection_IsReconnecting(connection.connection) {
            if failure.status == NATS_NO_RESPONDERS, try !streamExists() { throw .deleted(name) }
        } else if failure.status == NATS_CONNECTION_CLOSED || connection.isClosed {
            throw .closed
        } else if failure.code == JSStreamNotFoundErr {
            throw .deleted(name)
        } else if failure.code.rawValue != 0 {
            throw .server(code: Int(failure.code.rawValue), description: "publishing to \(mapping.subject): \(failure.text)")
        } else {
            throw .nats(status: NATSStatus.name(failure.status), detail: "publishing to \(mapping.subject): \(failure.text)")
        }
    }

    private func republish(_ failure: SendPipeline.Failure, on pipeline: SendPipeline) throws(RemoteMailboxError) {
        var message: OpaquePointer?
        try NATSStatus.check(failure.bytes.withUnsafeBytes { bytes in
            natsMsg_Create(&message, mapping.subject, nil, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }, "creating a message")
        defer { natsMsg_Destroy(message) }
        if let sender = failure.sender {
            try NATSStatus.check(natsMsgHeader_Set(message, Headers.sender, sender), "setting the sender header")
        }
        if let pack = failure.pack {
            try NATSStatus.check(natsMsgHeader_Set(message, Pack.header, pack), "setting the pack header")
        }
        try pipeline.publish(&message, id: failure.id, isClosed: { connection.isClosed })
    }
}
