import CNATS

/// What a relay between a local and a remote mailbox (`shmbox bridge`) needs beyond the ordinary
/// calls: a receive that names each message's stream sequence, the identity of the stream behind
/// the mailbox, and removing one message by sequence. With these a relay can remember which
/// remote messages it already delivered locally and settle them after a crash.
extension RemoteMailbox {
    /// `receiveBatch(limit:timeout:_:)`, also handing each message's redelivery flag, its
    /// sequence in the mailbox's stream and its index in its pack (0 for a message not sent
    /// packed; the pair is unique within one `incarnation` of the mailbox).
    ///
    /// As with every receive, a message is acknowledged only after `body` returned for it (the
    /// last one of the batch synchronously, before this call returns), and also when `body`
    /// throws: a caller that must not consume a message it could not handle has to stop inside
    /// `body` (the message then stays unacknowledged and is redelivered).
    public func receiveBatch(limit: Int = 256, timeout: Duration? = nil,
                             _ body: (UnsafeRawBufferPointer, _ sender: RemoteSender?, _ redelivered: Bool, _ sequence: UInt64, _ index: Int) throws -> Void) throws -> Int {
        let count = try receiveMessages(limit: limit, deadline: Self.deadline(timeout), body)
        if count == 0 { throw RemoteMailboxError.timedOut }
        return count
    }

    /// The identity of the stream behind this mailbox (the nonce made at `create`): a mailbox
    /// deleted and created again under the same name has another one, and its sequences start
    /// over.
    public var incarnation: String {
        get throws(RemoteMailboxError) {
            let info = try Self.streamInfo(mapping, connection: connection)
            defer { jsStreamInfo_Destroy(info) }
            guard let config = info.pointee.Config, let description = config.pointee.Description,
                  let settings = StreamMapping.Settings(description: String(cString: description))
            else { throw .notAMailbox(name) }
            return settings.nonce
        }
    }

    /// Removes the message stored under `sequence` if it is still in the mailbox (no receiver has
    /// acknowledged it yet); returns whether it was there. A receiver that took it and has not
    /// finished is not told: its acknowledgement will find the message gone.
    @discardableResult
    public func discard(sequence: UInt64) throws(RemoteMailboxError) -> Bool {
        guard !isClosed else { throw .closed }
        return try deleteMessage(sequence)
    }

    /// Settles a relay's delivery of the first `count` messages stored under `sequence`: a
    /// message that is not a pack, or a pack all of whose messages are among them, is removed if
    /// it is still there; a pack has its recorded progress raised to `count` (never lowered:
    /// another receiver may have got further), so that whoever takes it next skips them. Returns
    /// whether the message was still there.
    @discardableResult
    public func discard(sequence: UInt64, handed count: Int) throws(RemoteMailboxError) -> Bool {
        guard !isClosed else { throw .closed }
        guard let packed = try storedCount(sequence) else { return false }
        if count >= packed { return try deleteMessage(sequence) }
        let table = try connection.packProgress()
        let key = progressKey(sequence)
        // A few rounds: a receiver may record its own progress between our read and our write.
        for _ in 0..<8 {
            if let (revision, value) = try table.read(key) {
                if let recorded = Int(value), recorded >= count { return true }
                if table.update(key, String(count), revision: revision) { return true }
            } else if table.create(key, String(count)) {
                return true
            }
        }
        throw .nats(status: "progress contention", detail: "could not record the progress of pack \(sequence) of \(name)")
    }

    /// How many messages the message stored under `sequence` carries (1 unless it is a pack);
    /// nil if it is gone.
    private func storedCount(_ sequence: UInt64) throws(RemoteMailboxError) -> Int? {
        var message: OpaquePointer?
        let (status, code) = connection.jetStreamRequest { code in
            js_GetMsg(&message, connection.jetStream, mapping.streamName, sequence, nil, &code)
        }
        defer { natsMsg_Destroy(message) }
        if status == NATS_NOT_FOUND || code == JSNoMessageFoundErr || code == JSSequenceNotFoundErr { return nil }
        if code == JSStreamNotFoundErr { throw goneError }
        try NATSStatus.check(status, errorCode: code, "reading message \(sequence) of \(mapping.streamName)")
        var value: UnsafePointer<CChar>?
        guard natsMsgHeader_Get(message, Pack.header, &value) == NATS_OK, let value else { return 1 }
        return Int(String(cString: value)) ?? 1
    }

    /// Deletes the message stored under `sequence`; false if it was already gone. The one place
    /// that deletes single messages (a handled endpoint message, a withdrawn synchronous one, a
    /// relay's discard), retried while the cluster elects leaders.
    func deleteMessage(_ sequence: UInt64) throws(RemoteMailboxError) -> Bool {
        let (status, code) = connection.jetStreamRequest { code in
            js_DeleteMsg(connection.jetStream, mapping.streamName, sequence, nil, &code)
        }
        if status == NATS_OK { return true }
        // No message under this sequence: already acknowledged and removed (or deleted by an
        // earlier attempt whose answer was lost). The server says so with 10037; nats-server 2.9
        // also with 10057 "message delete failed" and the text "no message found" (or "stream
        // store EOF" past the last sequence), and with 10043 "sequence not found" once the
        // sequence is below the stream's first one.
        let text = NATSStatus.lastErrorText()
        if code == JSNoMessageFoundErr || code == JSSequenceNotFoundErr || status == NATS_NOT_FOUND
            || (code == JSStreamMsgDeleteFailed && (text.contains("no message found") || text.contains("store EOF"))) { return false }
        if code == JSStreamNotFoundErr { throw goneError }
        throw NATSStatus.error(status, errorCode: code, "removing message \(sequence) from \(mapping.streamName)")
    }
}
