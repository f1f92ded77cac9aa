#if canImport(Glibc)
import Glibc
#endif
import CNATS

/// Receiving: the public calls and the one engine under them (`receiveMessages`).
///
/// Every receiver, on every host, fetches from the mailbox's one durable pull consumer, so each
/// message goes to exactly one of them. A message is acknowledged to the server only after the
/// receive call is done with it (the copy made, or the closure returned or threw): a receiver
/// that dies or loses its connection before that leaves it to be redelivered to another receiver,
/// marked redelivered, after the mailbox's `redeliveryDelay`.
extension RemoteMailbox {
    /// Takes the oldest message, waiting at most `timeout` for one (forever if nil).
    ///
    /// - Throws: `timedOut`, `deleted`, `closed`, or a connection error. A failed
    ///   acknowledgement throws too, and the message is then redelivered, not lost.
    public func receive(timeout: Duration? = nil) throws(RemoteMailboxError) -> RemoteMessage {
        guard let message = try receiveCopy(deadline: Self.deadline(timeout)) else { throw .timedOut }
        return message
    }

    /// Takes the oldest message if one is waiting; nil at once (after one round trip) otherwise.
    public func tryReceive() throws(RemoteMailboxError) -> RemoteMessage? {
        try receiveCopy(deadline: .now)
    }

    /// Zero-copy receive: hands the message's bytes (valid only inside `body`) and its sender to
    /// `body`, then acknowledges it, also when `body` throws. Waits at most `timeout` (forever if
    /// nil).
    public func receive<R>(timeout: Duration? = nil, _ body: (RawSpan, _ sender: RemoteSender?) throws -> R) throws -> R {
        try receive(timeout: timeout) { bytes, sender, _ in try body(bytes, sender) }
    }

    /// Zero-copy receive that also says whether the message is a redelivery (a receiver that took
    /// it before died or lost its connection while handling it).
    public func receive<R>(timeout: Duration? = nil, _ body: (RawSpan, _ sender: RemoteSender?, _ redelivered: Bool) throws -> R) throws -> R {
        var result: R?
        let count = try receiveMessages(limit: 1, deadline: Self.deadline(timeout)) { bytes, sender, redelivered, _, _ in
            result = try body(RawSpan(_unsafeBytes: bytes), sender, redelivered)
        }
        guard count == 1, let result else { throw RemoteMailboxError.timedOut }
        return result
    }

    /// Zero-copy receive if a message is waiting; nil otherwise.
    public func tryReceive<R>(_ body: (RawSpan, _ sender: RemoteSender?) throws -> R) throws -> R? {
        var result: R?
        _ = try receiveMessages(limit: 1, deadline: .now) { bytes, sender, _, _, _ in result = try body(RawSpan(_unsafeBytes: bytes), sender) }
        return result
    }

    /// Hands up to `limit` messages to `body`, one call each, in one fetch from the server (one
    /// round trip for the batch, and one for all its acknowledgements). Waits at most `timeout`
    /// for the first (forever if nil); returns how many it handed over.
    public func receiveBatch(limit: Int = 256, timeout: Duration? = nil,
                             _ body: (RawSpan, _ sender: RemoteSender?) throws -> Void) throws -> Int {
        let count = try receiveMessages(limit: limit, deadline: Self.deadline(timeout)) { bytes, sender, _, _, _ in try body(RawSpan(_unsafeBytes: bytes), sender) }
        if count == 0 { throw RemoteMailboxError.timedOut }
        return count
    }

    /// `receiveBatch` that returns 0 at once when no message waits.
    public func tryReceiveBatch(limit: Int = 256, _ body: (RawSpan, _ sender: RemoteSender?) throws -> Void) throws -> Int {
        try receiveMessages(limit: limit, deadline: .now) { bytes, sender, _, _, _ in try body(RawSpan(_unsafeBytes: bytes), sender) }
    }

    // MARK: The engine

    private func receiveCopy(deadline: ContinuousClock.Instant?) throws(RemoteMailboxError) -> RemoteMessage? {
        var copy: RemoteMessage?
        do {
            _ = try receiveMessages(limit: 1, deadline: deadline) { bytes, sender, redelivered, sequence, index in
                copy = RemoteMessage(bytes: Array(bytes), sender: sender, isRedelivered: redelivered, sequence: sequence, index: index)
            }
        } catch let error as RemoteMailboxError {
            throw error
        } catch {
            preconditionFailure("the copying body throws nothing")
        }
        return copy
    }

    /// Fetches up to `limit` messages (waiting until `deadline` for the first; nil: forever, now:
    /// not at all) and hands each to `handle` with its sender, redelivery flag, stream sequence
    /// and index within its pack (0 for a message that is not one), acknowledging each once
    /// `handle` is done with it. Messages fetched but not yet handed over when `handle` throws
    /// (or, with packs, beyond `limit`) stay with this handle for its next receive, unacknowledged,
    /// for up to half the redelivery delay; then the handle gives them back, as the server may
    /// soon hand them to another receiver.
    ///
    /// A pack (see `Pack`) is handed over message by message. A call that ends part-way through
    /// one records how far it got in the progress bucket (the commit point of the messages it
    /// handed from the pack), tells the server it is still at work on the pack, and keeps it for
    /// its next call; a holder that dies leaves the pack to be redelivered, and whoever gets it
    /// skips what was recorded. The messages handed from a pack since its last record are its
    /// "in hand" part: they come again, marked redelivered, if the call dies (as the messages of
    /// a local `receiveBatch`, released together at its end).
    func receiveMessages(limit: Int, deadline: ContinuousClock.Instant?,
                         _ handle: (UnsafeRawBufferPointer, RemoteSender?, Bool, UInt64, Int) throws -> Void) throws -> Int {
        guard !isClosed else { throw RemoteMailboxError.closed }
        guard limit >= 1 else { throw RemoteMailboxError.invalidOptions("limit must be at least 1") }
        try claimReceiveRight(deadline: deadline)
        if let pack = packInHand, isStale(since: pack.touched) {
            // Kept too long between calls: the server may soon hand it (or has handed it) to
            // another receiver, and this handle would then repeat what that one hands. Let go;
            // whoever takes it next (this handle too) skips what was recorded.
            letGo(pack.message, since: pack.touched)
            packInHand = nil
        }
        while true {
            if prefetched.isEmpty, packInHand == nil {
                try fetch(limit: limit, deadline: deadline)
                if prefetched.isEmpty { return 0 }
            }
            var handed = 0
            // The message handed over last, not yet acknowledged. Earlier ones are acknowledged
            // without waiting; the last one synchronously, so that when the call returns the
            // server has every acknowledgement of the call (they travel in order on one
            // connection). Those sent without waiting are kept until the call ends: if the
            // connection was lost meanwhile (a lost server, a slow consumer cut off), they may
            // have been lost with it, and are sent again, waiting, on the new one.
            var unacknowledged: (message: OpaquePointer, sequence: UInt64)?
            var sentWithoutWaiting: [OpaquePointer] = []
            // libnats's reconnect count before the first of them (a single receive sends none,
            // and reads no count).
            var reconnectsBefore: UInt64 = 0
            // Packs finished in this call whose progress key is to be removed once their
            // acknowledgements are confirmed (removed before, a lost acknowledgement would bring
            // the whole pack back).
            var finishedPacks: [UInt64] = []
            defer { for message in sentWithoutWaiting { natsMsg_Destroy(message) } }
            func confirmAcknowledgements() throws(RemoteMailboxError) {
                guard !sentWithoutWaiting.isEmpty else { return }
                var replaced = connection.reconnects != reconnectsBefore
                #if DEBUG
                replaced = replaced || testingLosesAcknowledgementsSentWithoutWaiting
                #endif
                guard replaced else { return }
                // Published to each message's reply subject (libnats's own acknowledgement calls
                // do nothing for a message they already acknowledged), then one flush: when the
                // server answers it, it has read them all, on the new connection.
                for message in sentWithoutWaiting {
                    guard let reply = natsMsg_GetReply(message) else { continue }
                    try NATSStatus.check(natsConnection_PublishString(connection.connection, reply, "+ACK"),
                                         "acknowledging a message again after a reconnect")
                }
                try NATSStatus.check(natsConnection_FlushTimeout(connection.connection, connection.options.requestTimeout.milliseconds),
                                     "confirming acknowledgements after a reconnect")
            }
            // Another message is about to be handed over: the one before it is done.
            func acknowledgePrevious() throws(RemoteMailboxError) {
                guard let previous = unacknowledged else { return }
                unacknowledged = nil
                if sentWithoutWaiting.isEmpty { reconnectsBefore = connection.reconnects }
                sentWithoutWaiting.append(previous.message)
                try acknowledge(previous.message, sequence: previous.sequence, waiting: false)
            }
            do {
                while handed < limit {
                    if packInHand != nil {
                        try acknowledgePrevious()
                        keepPackInHand()
                        let bytes = packInHand!.reader.next()!
                        let pack = packInHand!
                        if pack.reader.isExhausted {
                            // Its last message: from here on the pack is acknowledged as any
                            // message is.
                            packInHand = nil
                            unacknowledged = (pack.message, pack.sequence)
                            if pack.hasProgressKey { finishedPacks.append(pack.sequence) }
                        }
                        handed += 1
                        try handle(bytes, pack.sender, pack.redelivered, pack.sequence, pack.reader.index - 1)
                        #if DEBUG
                        testingPackPoint?("handed")
                        #endif
                        continue
                    }
                    guard !prefetched.isEmpty else { break }
                    // `prefetched` is kept newest first: the next message is its last.
                    let message = prefetched.removeLast()
                    if isStale(since: fetchedAt) {
                        // Fetched long ago (kept from an earlier call, or behind a long hand-over
                        // of packs): the server may have handed it to another receiver by now.
                        letGo(message, since: fetchedAt)
                        continue
                    }
                    let (redelivered, sequence) = deliveryFacts(of: message)
                    if wasHanded(sequence) || (sequence != 0 && unacknowledged?.sequence == sequence) {
                        // This handle handed it over already; the server sent it again because
                        // the acknowledgement was lost with a connection, or because it counted
                        // a delivery to a client it cut off as never made (then the copy is not
                        // even marked redelivered, and may come in the same fetch right behind
                        // the original, which is handed over but not yet acknowledged: CI saw
                        // one such copy handed over twice). Drop it.
                        _ = try? acknowledge(message, sequence: sequence)
                        continue
                    }
                    if let count = header(Pack.header, of: message) {
                        try takePack(message, count: count, sequence: sequence, redelivered: redelivered)
                        continue
                    }
                    let receipt = header(Headers.receipt, of: message)
                    let goAhead: GoAhead
                    do { goAhead = try mayHandle(receipt: receipt, deadline: deadline) } catch {
                        prefetched.append(message)
                        throw error
                    }
                    switch goAhead {
                    case .go:
                        break
                    case .drop:
                        // A synchronous send's message whose sender gave up: drop it.
                        _ = try? acknowledge(message, sequence: sequence)
                        continue
                    case .later:
                        // Its sender did not answer: back to the stream, for another try a
                        // request timeout later (by any receiver), rather than a guess either way.
                        _ = natsMsg_NakWithDelay(message, handshakeTimeout.milliseconds, nil)
                        natsMsg_Destroy(message)
                        continue
                    }
                    try acknowledgePrevious()
                    unacknowledged = (message, sequence)
                    lastPackCount = 1
                    handed += 1
                    let length = Int(natsMsg_GetDataLength(message))
                    let bytes = UnsafeRawBufferPointer(start: natsMsg_GetData(message).map { UnsafeRawPointer($0) }, count: length)
                    try handle(bytes, sender(of: message), redelivered, sequence, 0)
                    if let receipt {
                        // Acknowledged before the receipt: a sender holding its receipt never sees
                        // the message handed to anyone else.
                        unacknowledged = nil
                        try acknowledge(message, sequence: sequence)
                        sendReceipt(to: receipt)
                    }
                }
            } catch {
                // `handle` threw: the message it had is consumed all the same (as locally).
                try? recordPackProgress()
                var confirmed = true
                if let (message, sequence) = unacknowledged {
                    let receipt = header(Headers.receipt, of: message)
                    confirmed = (try? acknowledge(message, sequence: sequence)) != nil
                    if let receipt { sendReceipt(to: receipt) }
                }
                confirmed = confirmed && (try? confirmAcknowledgements()) != nil
                if confirmed { forgetProgress(of: finishedPacks) }
                throw error
            }
            try recordPackProgress()
            if let (message, sequence) = unacknowledged { try acknowledge(message, sequence: sequence) }
            try confirmAcknowledgements()
            #if DEBUG
            if !finishedPacks.isEmpty { testingPackPoint?("acknowledged") }
            #endif
            forgetProgress(of: finishedPacks)
            if handed > 0 { return handed }
            // Every fetched message was a synchronous one whose sender had given up (or a pack
            // handed over completely before): fetch again.
        }
    }

    /// Whether a message delivered no later than `since` has had its redelivery timer run half
    /// the delay: past that, this handle no longer counts on it being its own.
    func isStale(since: ContinuousClock.Instant) -> Bool {
        ContinuousClock.now - since >= redeliveryDelay / 2
    }

    /// Gives up a delivered message this handle has not finished: given back at once (NAK)
    /// while the server surely still counts it as this handle's; past the whole delay it may be
    /// another receiver's delivery by now, which a word about it could disturb: only freed.
    func letGo(_ message: OpaquePointer, since: ContinuousClock.Instant) {
        if ContinuousClock.now - since < redeliveryDelay { natsMsg_Nak(message, nil) }
        natsMsg_Destroy(message)
    }

    // MARK: Packs

    /// Starts handing over a fetched pack: checks it, reads how far earlier holders got, and
    /// keeps it in hand; one with nothing left is acknowledged; an unreadable one is taken out
    /// of the mailbox and reported.
    private func takePack(_ message: OpaquePointer, count: String, sequence: UInt64, redelivered: Bool) throws(RemoteMailboxError) {
        let length = Int(natsMsg_GetDataLength(message))
        var reader: PackReader
        do {
            reader = try PackReader(base: natsMsg_GetData(message).map { UnsafeRawPointer($0) }, length: length, count: count)
        } catch {
            // It would fail every receiver the same way: removed (acknowledged), so that the
            // messages after it still flow, and reported once.
            try acknowledge(message, sequence: sequence)
            throw .malformedMessage(name, sequence: sequence, reason: error.reason)
        }
        var (recorded, hasProgressKey) = (0, false)
        do {
            // Progress is recorded only by a receiver that had the pack, and a pack another
            // receiver had comes marked redelivered (or was given back: marked too). Unmarked
            // copies come after a lost connection (see `wasHanded`): then every pack is looked up.
            if redelivered || connection.reconnects > 0, let (_, value) = try connection.packProgress().read(progressKey(sequence)) {
                // Written by receivers, but read with care all the same.
                recorded = min(max(Int(value) ?? 0, 0), reader.count)
                hasProgressKey = true
            }
        } catch {
            // Unknown: give it back for a later try rather than guess.
            letGo(message, since: fetchedAt)
            throw error
        }
        reader.skip(to: recorded)
        if reader.isExhausted {
            // Every message was handed over; only the acknowledgement was missing.
            try acknowledge(message, sequence: sequence)
            forgetProgress(of: [sequence])
            return
        }
        lastPackCount = reader.count
        packInHand = PackInHand(message: message, sequence: sequence, redelivered: redelivered, sender: sender(of: message),
                                reader: reader, recorded: recorded, hasProgressKey: hasProgressKey, touched: fetchedAt)
    }

    /// Tells the server the pack in hand is still being worked on, when its redelivery timer has
    /// run a quarter of the delay (a long call through a big pack).
    private func keepPackInHand() {
        guard let touched = packInHand?.touched, ContinuousClock.now - touched >= redeliveryDelay / 4 else { return }
        packInHand!.touched = .now
        natsMsg_InProgress(packInHand!.message, nil)
    }

    /// Records how far this handle got through the pack in hand, if it got further since the last
    /// record (the commit point of those messages), then restarts the pack's redelivery timer.
    /// If the record fails, the pack goes back to the stream and the error is thrown: what was
    /// handed since the last record comes again, as after a failed acknowledgement.
    private func recordPackProgress() throws(RemoteMailboxError) {
        guard var pack = packInHand, pack.reader.index > pack.recorded else { return }
        do {
            try connection.packProgress().put(progressKey(pack.sequence), String(pack.reader.index))
        } catch {
            letGo(pack.message, since: pack.touched)
            packInHand = nil
            throw error
        }
        #if DEBUG
        testingPackPoint?("recorded")
        #endif
        pack.recorded = pack.reader.index
        pack.hasProgressKey = true
        // Taken before the notice leaves: the server's timer restarts later than this.
        pack.touched = .now
        natsMsg_InProgress(pack.message, nil)
        packInHand = pack
    }

    /// Removes the progress keys of packs acknowledged for good (a key left behind by a crash is
    /// harmless: its sequence is never handed out again in this incarnation).
    private func forgetProgress(of sequences: [UInt64]) {
        guard !sequences.isEmpty, let table = try? connection.packProgress() else { return }
        for sequence in sequences { table.remove(progressKey(sequence)) }
    }

    /// The progress key of the pack stored under `sequence`.
    func progressKey(_ sequence: UInt64) -> String { "\(name).\(nonce).\(sequence)" }

    /// Whether this handle handed over the message with this stream sequence lately (0: unknown).
    private func wasHanded(_ sequence: UInt64) -> Bool {
        sequence != 0 && handed.sequences.contains(sequence)
    }

    /// Notes a message acknowledged, forgetting the oldest beyond `HandedSequences.kept`.
    private func rememberHanded(_ sequence: UInt64) {
        guard sequence != 0, handed.sequences.insert(sequence).inserted else { return }
        if handed.order.count < HandedSequences.kept {
            handed.order.append(sequence)
        } else {
            handed.sequences.remove(handed.order[handed.next])
            handed.order[handed.next] = sequence
            handed.next = (handed.next + 1) % HandedSequences.kept
        }
    }

    /// What a synchronous send's sender says when asked for the go-ahead.
    private enum GoAhead {
        /// Handle the message (other messages: always).
        case go
        /// The sender gave up (and withdraws the message) or died: drop the message.
        case drop
        /// No answer: give the message back for a later try.
        case later
    }

    /// For a synchronous send's message: asks its sender for the go-ahead.
    ///
    /// Only "no responders" (the sender's inbox is gone: it gave up, or died) drops the message.
    /// An unanswered request is no refusal: a loaded sender, or one whose publish is still being
    /// acknowledged (it answers only after that), answers late, and by then it has committed to
    /// the delivery; dropping the message then lost it (seen under load across hosts). The
    /// request is asked again, for up to three request timeouts (or until the call's deadline),
    /// then the message goes back.
    private func mayHandle(receipt inbox: String?, deadline: ContinuousClock.Instant?) throws(RemoteMailboxError) -> GoAhead {
        guard let inbox else { return .go }
        // A call that may not wait (a try receive) asks once, as before.
        var giveUp = ContinuousClock.now + handshakeTimeout * 3
        if let deadline { giveUp = min(giveUp, max(deadline, .now)) }
        while true {
            var reply: OpaquePointer?
            let status = natsConnection_RequestString(&reply, connection.connection, inbox, "take", handshakeTimeout.milliseconds)
            natsMsg_Destroy(reply)
            switch status {
            case NATS_OK: return .go
            case NATS_NO_RESPONDERS: return .drop
            case NATS_TIMEOUT: if ContinuousClock.now >= giveUp { return .later }
            case NATS_CONNECTION_CLOSED: throw .closed
            default: throw NATSStatus.error(status, "asking a synchronous sender for the go-ahead")
            }
        }
    }

    /// Acknowledges `message` and waits for the server to confirm it, then frees it. On failure
    /// the message will be redelivered; the error says the call's result is not final.
    ///
    /// On an endpoint's stream the message is first deleted (the commit point: the other
    /// consumer skips it, and the link has room again), then acknowledged; `waiting: false`
    /// sends the acknowledgement without waiting for the server's confirmation (a later
    /// synchronous one on the same connection confirms it too: they travel in order) and leaves
    /// the message to the caller.
    private func acknowledge(_ message: OpaquePointer, sequence: UInt64, waiting: Bool = true) throws(RemoteMailboxError) {
        // Sent without waiting: the caller keeps the message (to acknowledge it again after a
        // reconnect) and frees it.
        defer { if waiting { natsMsg_Destroy(message) } }
        if mapping.isEndpoint {
            // Already gone is fine: deleted through the other consumer by an earlier, interrupted
            // receive.
            _ = try deleteMessage(deliveryFacts(of: message).sequence)
        }
        #if DEBUG
        if !waiting && testingLosesAcknowledgementsSentWithoutWaiting {
            rememberHanded(sequence)
            return
        }
        #endif
        let status = waiting ? natsMsg_AckSync(message, nil, nil) : natsMsg_Ack(message, nil)
        try NATSStatus.check(status, "acknowledging a message")
        // Only a message whose acknowledgement was accepted is one a copy of is dropped: after a
        // failed one, the call throws, and the copy that comes again is handed over again.
        rememberHanded(sequence)
    }

    private func sendReceipt(to inbox: String) {
        _ = natsConnection_PublishString(connection.connection, inbox, identity.encoded)
        _ = natsConnection_Flush(connection.connection)
    }

    /// The message's sender, parsed once per distinct header (a stream mostly comes from few
    /// senders).
    private func sender(of message: OpaquePointer) -> RemoteSender? {
        var value: UnsafePointer<CChar>?
        guard natsMsgHeader_Get(message, Headers.sender, &value) == NATS_OK, let value else { return nil }
        if let (text, sender) = lastSender, strcmp(text, value) == 0 { return sender }
        let text = String(cString: value)
        let sender = RemoteSender(encoded: text)
        lastSender = (text, sender)
        return sender
    }

    private func header(_ name: String, of message: OpaquePointer) -> String? {
        var value: UnsafePointer<CChar>?
        guard natsMsgHeader_Get(message, name, &value) == NATS_OK, let value else { return nil }
        return String(cString: value)
    }

    private func deliveryFacts(of message: OpaquePointer) -> (redelivered: Bool, sequence: UInt64) {
        #if DEBUG
        if let facts = testingCopies.removeValue(forKey: message) { return facts }
        #endif
        var meta: UnsafeMutablePointer<jsMsgMetaData>?
        guard natsMsg_GetMetaData(&meta, message) == NATS_OK, let meta else { return (false, 0) }
        defer { jsMsgMetaData_Destroy(meta) }
        return (meta.pointee.NumDelivered > 1, meta.pointee.Sequence.Stream)
    }

    /// Fetches into `prefetched` up to `limit` messages, returning as soon as any came, or empty
    /// at `deadline` (nil: never; now: after a short look).
    ///
    /// Each request is JetStream's one-shot pull (`no_wait` with an expiry): the server answers
    /// with what is there, or with the first messages to come, up to `limit`, and never sits on
    /// messages until the batch is full. A try receive still waits `tryWindow`: the server counts
    /// a just-stored message for its consumers a moment after acknowledging it to the sender.
    private func fetch(limit: Int, deadline: ContinuousClock.Instant?) throws(RemoteMailboxError) {
        let subscription = try pullSubscription()
        while true {
            // Long waits are asked for in slices: a pull request can be lost with the server
            // or consumer leader that held it (failover), and between slices a deleted
            // mailbox is noticed.
            let expires = min(deadline.map { max($0 - .now, Self.tryWindow) } ?? Self.fetchSlice, Self.fetchSlice)
            var request = jsFetchRequest()
            jsFetchRequest_Init(&request)
            // In stored messages: where they are packs, as many as carry about twice `limit`
            // messages (judged by the last one; the next call's then comes without a fetch), so
            // that a receiver does not take packs it would keep unused while others wait.
            request.Batch = Int32(clamping: lastPackCount == 1 ? limit : 2 * ((limit + lastPackCount - 1) / lastPackCount))
            // At most half the subscription's room: with what a late answer to an earlier
            // request may still bring, the client never holds more than it has room for.
            request.MaxBytes = Int64(requestBytes)
            request.NoWait = true
            request.Expires = expires.nanoseconds
            var list = natsMsgList()
            let reconnects = connection.reconnects
            fetchedAt = .now
            let status = natsSubscription_FetchRequest(&list, subscription, &request)
            if connection.reconnects != reconnects {
                // The connection was lost while the answer came. If the server cut this client
                // off for asking more than it would buffer (its `max_pending`), asking for the
                // same again would be cut off again: ask for half, down to one message. What
                // was cut off was not acknowledged, and comes back after the redelivery delay.
                requestBytes = max(requestBytes / 2, connection.maxPayload + NATSConnection.headerAllowance)
            }
            if status == NATS_OK {
                // Newest first, so that taking the next one is `removeLast`.
                for index in (0..<Int(list.Count)).reversed() {
                    if let message = list.Msgs[index] {
                        #if DEBUG
                        if testingDeliversFetchedTwice, let copy = Self.testingCopy(of: message) {
                            testingCopies[copy] = deliveryFacts(of: message)
                            prefetched.append(copy)
                        }
                        #endif
                        prefetched.append(message)
                    }
                    list.Msgs[index] = nil
                }
                natsMsgList_Destroy(&list)
                if !prefetched.isEmpty { return }
            } else if status == NATS_TIMEOUT || status == NATS_NOT_FOUND {
                // Nothing came in time. Once per slice of waiting, however short the calls
                // that make it up (a relay's quarter-second receives): is the mailbox still
                // there, and still the one this handle opened?
                if ContinuousClock.now - lastPresenceCheck >= Self.fetchSlice {
                    lastPresenceCheck = .now
                    try checkPresence()
                }
            } else if status == NATS_SLOW_CONSUMER {
                // libnats dropped messages for lack of room (not from our own requests, which fit):
                // they were not acknowledged, so the server hands them out again after the
                // redelivery delay. Nothing is lost; fetch again.
            } else if status == NATS_CONNECTION_CLOSED || connection.isClosed {
                throw .closed
            } else if try !streamExists() {
                throw goneError
            } else if status != NATS_CONNECTION_DISCONNECTED && !natsConnection_IsReconnecting(connection.connection) {
                throw NATSStatus.error(status, "fetching from \(mapping.streamName)")
            } else {
                sleepFor(.milliseconds(50))
            }
            if let deadline, ContinuousClock.now >= deadline { return }
        }
    }

    #if DEBUG
    /// Tests: a message like `message` (subject, reply subject, so the same stream sequence,
    /// headers and data), not bound to a subscription.
    static func testingCopy(of message: OpaquePointer) -> OpaquePointer? {
        var copy: OpaquePointer?
        guard natsMsg_Create(&copy, natsMsg_GetSubject(message), natsMsg_GetReply(message),
                             natsMsg_GetData(message), natsMsg_GetDataLength(message)) == NATS_OK, let copy else { return nil }
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var count: Int32 = 0
        if natsMsgHeader_Keys(message, &keys, &count) == NATS_OK, let keys {
            defer { free(keys) }
            for index in 0..<Int(count) {
                guard let key = keys[index] else { continue }
                var values: UnsafeMutablePointer<UnsafePointer<CChar>?>?
                var valueCount: Int32 = 0
                guard natsMsgHeader_Values(message, key, &values, &valueCount) == NATS_OK, let values else { continue }
                defer { free(values) }
                for value in 0..<Int(valueCount) { _ = natsMsgHeader_Add(copy, key, values[value]) }
            }
        }
        return copy
    }
    #endif

    /// Throws `goneError` when the mailbox's stream is gone or was deleted and created again
    /// (another nonce); an unreachable server is left to the fetches, which wait for it.
    private func checkPresence() throws(RemoteMailboxError) {
        let current: String
        do {
            current = try incarnation
        } catch .notFound, .notAMailbox {
            throw goneError
        } catch {
            return
        }
        if current != nonce { throw goneError }
    }

    /// The longest single pull request (see `fetch`).
    static let fetchSlice = Duration.seconds(2)

    /// How long a first receive waits for the consumer of a mailbox being created.
    static let consumerPatience = Duration.seconds(2)

    /// How long a try receive's look lasts (see `fetch`).
    static let tryWindow = Duration.milliseconds(2)

    private func pullSubscription() throws(RemoteMailboxError) -> OpaquePointer {
        if let subscription { return subscription }
        if mapping.isEndpoint, mapping.consumerName != "any" {
            // A `from-P` consumer is made at the first receive from P (adding an identical
            // durable consumer again is a no-op).
            try Self.addConsumer(mapping, redeliveryDelay: redeliveryDelay, connection: connection, deleteStreamOnFailure: false)
        }
        let strings = CStrings()
        var subscribeOptions = jsSubOptions()
        jsSubOptions_Init(&subscribeOptions)
        subscribeOptions.Stream = strings.make(mapping.streamName)
        subscribeOptions.Consumer = strings.make(mapping.consumerName)
        subscribeOptions.ManualAck = true
        var made: OpaquePointer?
        // `create` makes the stream, then its consumer: a handle opened in between (a receiver
        // started as the creator starts) finds no consumer yet, and waits a little for it.
        let patience = ContinuousClock.now + Self.consumerPatience
        var (status, code) = (NATS_OK, jsErrCode(0))
        while true {
            (status, code) = connection.jetStreamRequest { code in
                js_PullSubscribe(&made, connection.jetStream, mapping.consumerFilter, mapping.consumerName, nil, &subscribeOptions, &code)
            }
            guard status != NATS_OK, code == JSConsumerNotFoundErr, ContinuousClock.now < patience else { break }
            sleepFor(.milliseconds(20))
        }
        if status != NATS_OK {
            if try !streamExists() { throw goneError }
            throw NATSStatus.error(status, errorCode: code, "subscribing to \(mapping.streamName)")
        }
        // The room libnats keeps for fetched messages (see `NATSConnection.Options.receiveBufferSize`);
        // no limit on their number, which the bytes already bound.
        try NATSStatus.check(natsSubscription_SetPendingLimits(made, -1, Int32(clamping: connection.receiveBufferSize)),
                             "sizing the receive buffer")
        subscription = made
        return made!
    }
}
