/// Sending: the public send calls and the one engine under them.
extension Mailbox {
    // MARK: Sending

    /// Sends the bytes of `buffer`, waiting for space for at most `timeout` (forever if nil).
    ///
    /// - Throws: `messageTooLarge`, `timedOut`, `closed`, `roleTaken`, `deleted`, `corrupted`.
    public func send(_ buffer: UnsafeRawBufferPointer, timeout: Duration? = nil) throws(MailboxError) {
        _ = try sendBuffer(buffer, deadline: Self.deadline(timeout))
    }

    /// Sends the bytes `span` views (`array.span.bytes`, an `InlineArray`'s, another message's),
    /// waiting for space for at most `timeout` (forever if nil).
    ///
    /// - Throws: as `send(_:timeout:)` for a buffer.
    public func send(_ span: RawSpan, timeout: Duration? = nil) throws(MailboxError) {
        _ = try span.withUnsafeBytes { (buffer) throws(MailboxError) in try sendBuffer(buffer, deadline: Self.deadline(timeout)) }
    }

    /// Sends `bytes` (an `Array`, `Data`, a slice…), waiting at most `timeout` (forever if nil).
    @inlinable
    public func send<Bytes: Collection<UInt8>>(_ bytes: Bytes, timeout: Duration? = nil) throws(MailboxError) {
        _ = try sendContents(of: bytes, deadline: Self.deadline(timeout))
    }

    /// Sends the UTF-8 bytes of `text`, waiting at most `timeout` (forever if nil).
    public func send(_ text: String, timeout: Duration? = nil) throws(MailboxError) {
        var text = text
        let deadline = Self.deadline(timeout)
        _ = try text.withUTF8 { bytes in
            Result { () throws(MailboxError) -> Bool in try sendBuffer(UnsafeRawBufferPointer(bytes), deadline: deadline) }
        }.get()
    }

    /// Sends the bytes of `value` (read back with `Message.load(as:)`), waiting at most `timeout`.
    @inlinable
    public func send<T: BitwiseCopyable>(value: T, timeout: Duration? = nil) throws(MailboxError) {
        let deadline = Self.deadline(timeout)
        _ = try withUnsafeBytes(of: value) { (bytes) throws(MailboxError) -> Bool in try sendBuffer(bytes, deadline: deadline) }
    }

    /// Sends the bytes of `buffer` and, with `until: .received`, returns only once a receiver has
    /// taken the message, naming it (a receipt). On a `.shared` mailbox, a message nobody took
    /// within `timeout` is taken back and its slot freed at once (`timedOut`: nothing sent); one a
    /// receiver took but had not finished with when `timeout` passed stays with it
    /// (`deliveryUnconfirmed`: it will be received). On a `.oneToOne` mailbox a message not
    /// received in time stays queued (`deliveryUnconfirmed`). `timeout: .zero` sends only if a
    /// receiver takes the message at once — on a zero-capacity mailbox, a receiver already
    /// waiting in a blocking `receive` counts (the rendezvous).
    ///
    /// - Throws: `timedOut`, `deliveryUnconfirmed`, `receiverDied` (the receiver that took it died
    ///   while reading it; the message was withdrawn), or what `send(_:timeout:)` throws.
    @discardableResult
    public func send(_ buffer: UnsafeRawBufferPointer, timeout: Duration? = nil, until completion: Completion) throws(MailboxError) -> Delivery? {
        try sendBuffer(buffer, deadline: Self.deadline(timeout), completion: completion).delivery
    }

    /// `send(_:timeout:until:)` for an `Array`, `Data`, a slice or any collection of bytes.
    @discardableResult
    @inlinable
    public func send<Bytes: Collection<UInt8>>(_ bytes: Bytes, timeout: Duration? = nil, until completion: Completion) throws(MailboxError) -> Delivery? {
        let deadline = Self.deadline(timeout)
        let copy = Array(bytes)
        return try copy.withUnsafeBytes { buffer in
            Result { () throws(MailboxError) -> SendResult in try sendBuffer(buffer, deadline: deadline, completion: completion) }
        }.get().delivery
    }

    /// `send(_:timeout:until:)` for the UTF-8 bytes of `text`.
    @discardableResult
    public func send(_ text: String, timeout: Duration? = nil, until completion: Completion) throws(MailboxError) -> Delivery? {
        var text = text
        let deadline = Self.deadline(timeout)
        return try text.withUTF8 { bytes in
            Result { () throws(MailboxError) -> SendResult in
                try sendBuffer(UnsafeRawBufferPointer(bytes), deadline: deadline, completion: completion)
            }
        }.get().delivery
    }

    /// Sends `buffer` if there is room now; returns `false` (sending nothing) when the mailbox is full.
    public func trySend(_ buffer: UnsafeRawBufferPointer) throws(MailboxError) -> Bool {
        try sendBuffer(buffer, deadline: 0)
    }

    /// Sends the bytes `span` views if there is room now; returns `false` when the mailbox is full.
    public func trySend(_ span: RawSpan) throws(MailboxError) -> Bool {
        try span.withUnsafeBytes { (buffer) throws(MailboxError) in try sendBuffer(buffer, deadline: 0) }
    }

    /// Sends `bytes` if there is room now; returns `false` when the mailbox is full.
    @inlinable
    public func trySend<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(MailboxError) -> Bool {
        try sendContents(of: bytes, deadline: 0)
    }

    /// Sends `text` as UTF-8 if there is room now; returns `false` when the mailbox is full.
    public func trySend(_ text: String) throws(MailboxError) -> Bool {
        var text = text
        return try text.withUTF8 { bytes in
            Result { () throws(MailboxError) -> Bool in try sendBuffer(UnsafeRawBufferPointer(bytes), deadline: 0) }
        }.get()
    }

    /// Sends the bytes of `value` if there is room now; returns `false` when the mailbox is full.
    @inlinable
    public func trySend<T: BitwiseCopyable>(value: T) throws(MailboxError) -> Bool {
        try withUnsafeBytes(of: value) { (bytes) throws(MailboxError) -> Bool in try sendBuffer(bytes, deadline: 0) }
    }

    /// Zero-copy send: reserves `count` bytes in the mailbox and lets `fill` write the message
    /// straight into shared memory through a span of exactly `count` bytes
    /// (`storeBytes(of:toByteOffset:as:)`, or `withUnsafeMutableBytes` to hand it to C); the
    /// message is published when `fill` returns. `fill` must write all `count` bytes. If `fill`
    /// throws, nothing is delivered and its error is rethrown. Waits for space at most `timeout`
    /// (forever if nil).
    ///
    /// ```swift
    /// try box.send(count: 12) { span in
    ///     span.storeBytes(of: orderID, toByteOffset: 0, as: UInt64.self)
    ///     span.storeBytes(of: quantity, toByteOffset: 8, as: Int32.self)
    /// }
    /// ```
    ///
    /// - Throws: what `fill` throws, or a `MailboxError`.
    public func send(count: Int, timeout: Duration? = nil, _ fill: (inout MutableRawSpan) throws -> Void) throws {
        _ = try sendReserving(count: count, deadline: Self.deadline(timeout), completion: .queued) { buffer in
            var span = MutableRawSpan(_unsafeBytes: buffer)
            try fill(&span)
        }
    }

    /// Zero-copy send if there is room now; returns `false` (without calling `fill`) when full.
    public func trySend(count: Int, _ fill: (inout MutableRawSpan) throws -> Void) throws -> Bool {
        try sendReserving(count: count, deadline: 0, completion: .queued) { buffer in
            var span = MutableRawSpan(_unsafeBytes: buffer)
            try fill(&span)
        } != .full
    }

    /// Zero-copy sends of up to `messages` messages of `bytesEach` bytes, as many as there is room
    /// for now, without waiting: `fill` writes message `index` (0, 1, …) straight into shared
    /// memory, as for `trySend(count:_:)`. Returns how many were sent (0 when the mailbox is
    /// full); they are announced together, like sends inside `batch` (and inside a `batch`, with
    /// it). The per-call checks (the handle, the mailbox's state, the size) run once for the
    /// whole call, so on a bounded mailbox each further message costs only its write into the
    /// ring. An unbounded mailbox takes them all; a zero-capacity one only what a waiting receiver
    /// takes at once. Where a bounded mailbox fills up, call again once a receiver has made room,
    /// or send the next message with `send`, which waits.
    ///
    /// ```swift
    /// var sent = 0
    /// while sent < ticks.count {
    ///     let first = sent
    ///     sent += try box.trySendBatch(messages: ticks.count - first, bytesEach: 16) { index, span in
    ///         span.storeBytes(of: ticks[first + index].price, toByteOffset: 0, as: Double.self)
    ///         span.storeBytes(of: ticks[first + index].time, toByteOffset: 8, as: UInt64.self)
    ///     }
    ///     if sent < ticks.count { try box.send(value: ticks[sent]); sent += 1 }   // full: wait
    /// }
    /// ```
    ///
    /// - Throws: `messageTooLarge` (before sending any), another `MailboxError` as `trySend`, or
    ///   what `fill` throws: then messages `0 ..< index` (the index `fill` threw for) are sent
    ///   and announced, and that one is not.
    public func trySendBatch(messages: Int, bytesEach count: Int,
                             _ fill: (_ index: Int, inout MutableRawSpan) throws -> Void) throws -> Int {
        guard messages > 0 else { return 0 }
        try checkCanSend(count: count)
        // Everything below is one batch: published and announced once, when it ends (also when
        // `fill` throws), or at once where a send finds the mailbox full.
        enterBatch()
        defer { leaveBatch() }
        var sent = 0
        // A bounded ring with room: only the writes. Anything else (full, a stuck slot to track,
        // a chain, a rendezvous) takes the whole path of one `trySend` per message below.
        if let ring = oneToOne, !isRendezvous {
            let sender = UInt32(bitPattern: me.pid)
            while sent < messages {
                let index = sent
                let written = try ring.tryWrite(length: count, sender: sender, publish: false) { buffer in
                    var span = MutableRawSpan(_unsafeBytes: buffer)
                    try fill(index, &span)
                }
                guard written else { break }
                hasUnnotifiedSends = true
                sent += 1
            }
        }
        while sent < messages {
            let index = sent
            func fillMessage(_ buffer: UnsafeMutableRawBufferPointer) throws {
                var span = MutableRawSpan(_unsafeBytes: buffer)
                try fill(index, &span)
            }
            if !isRendezvous, case .shared(let ring) = ring,
               case .written(let position) = try ring.tryWrite(length: count, lease: leaseReference, identity: packedMe, receipt: false, fillMessage) {
                noteWrite(at: position, in: ring)
                hasUnnotifiedSends = true
            } else if try sendReserving(count: count, deadline: 0, completion: .queued, fillMessage) == .full {
                break
            }
            sent += 1
        }
        return sent
    }

    /// Sends made inside `body` on this handle are announced together when `body` returns: at most
    /// one wake-up (and, on a `.oneToOne` mailbox, one store of the published tail) for the whole
    /// batch instead of one per message. Each message can be taken as soon as it is written by a
    /// receiver that is not asleep; a sleeping receiver wakes when the batch ends. A send that
    /// finds the mailbox full first announces what came before it, so a batch never waits on
    /// itself. Use it for bursts; calls may nest.
    ///
    /// ```swift
    /// try box.batch {
    ///     for order in orders { try box.send(value: order) }
    /// }
    /// ```
    public func batch<R>(_ body: () throws -> R) rethrows -> R {
        enterBatch()
        defer { leaveBatch() }
        return try body()
    }

    /// Starts a batch (see `batch`); every call must be matched by `leaveBatch()`.
    func enterBatch() {
        batchDepth += 1
    }

    /// Ends a batch started with `enterBatch()`; the outermost end publishes and announces it.
    func leaveBatch() {
        batchDepth -= 1
        if batchDepth == 0 { flushSends() }
    }

    // MARK: Engine

    // The public generic calls are thin inlinable wrappers over these non-generic entry points,
    // so a client module specializes the wrapper and never pays for generic metadata here.

    /// Copies `buffer` into the mailbox. Returns false only for a non-blocking call that found it full.
    @usableFromInline
    func sendBuffer(_ buffer: UnsafeRawBufferPointer, deadline: UInt64) throws(MailboxError) -> Bool {
        try sendBuffer(buffer, deadline: deadline, completion: .queued) != .full
    }

    /// Copies `buffer` into the mailbox and, for `.received`, waits until a receiver took it.
    @usableFromInline
    func sendBuffer(_ buffer: UnsafeRawBufferPointer, deadline: UInt64, completion: Completion) throws(MailboxError) -> SendResult {
        try sendCopy(of: buffer, deadline: deadline, completion: completion)
    }

    /// `trySend(buffer)` in line, for a caller in this module that sends many messages in a row
    /// (an endpoint's link): one call frame instead of two on its hot path.
    @inline(__always)
    func trySendInline(_ buffer: UnsafeRawBufferPointer) throws(MailboxError) -> Bool {
        try sendCopy(of: buffer, deadline: 0, completion: .queued) != .full
    }

    @inline(__always)
    private func sendCopy(of buffer: UnsafeRawBufferPointer, deadline: UInt64, completion: Completion) throws(MailboxError) -> SendResult {
        try typed {
            try sendReserving(count: buffer.count, deadline: deadline, completion: completion) { target in
                if let source = buffer.baseAddress, !target.isEmpty {
                    target.baseAddress!.copyMemory(from: source, byteCount: buffer.count)
                }
            }
        }
    }

    /// `sendBuffer` for any collection of bytes: in place when it is contiguous, else via a copy.
    @inlinable
    func sendContents<Bytes: Collection<UInt8>>(of bytes: Bytes, deadline: UInt64) throws(MailboxError) -> Bool {
        var outcome: Result<Bool, MailboxError>?
        _ = bytes.withContiguousStorageIfAvailable { buffer in
            outcome = Result { () throws(MailboxError) -> Bool in try sendBuffer(UnsafeRawBufferPointer(buffer), deadline: deadline) }
        }
        if let outcome { return try outcome.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBytes { buffer in
            Result { () throws(MailboxError) -> Bool in try sendBuffer(buffer, deadline: deadline) }
        }.get()
    }

    /// Writes one message of `count` bytes, filled by `fill`, waiting for room until `deadline`,
    /// and for `.received` (or on a zero-capacity mailbox) until a receiver has taken it. Returns
    /// `.full` only for a non-blocking call (deadline 0) that found the mailbox full (or, for a
    /// synchronous send, found no receiver to take the message at once). With
    /// `collectingReceipt: false` a synchronous send returns `.queued` once written, leaving
    /// where it wrote in the handle's state for the caller to await (the async send).
    @inline(__always)
    func sendReserving(count: Int, deadline: UInt64, completion: Completion, collectingReceipt: Bool = true,
                       _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> SendResult {
        try checkCanSend(count: count)
        let publish = batchDepth == 0
        let waits = completion == .received || isRendezvous
        // The common case first, in line: a bounded ring with room and nobody to wait for.
        if !waits {
            var written = false
            if let ring = oneToOne {
                written = try ring.tryWrite(length: count, sender: UInt32(bitPattern: me.pid), publish: publish, fill)
            } else if case .shared(let ring) = ring,
                      case .written(let position) = try ring.tryWrite(length: count, lease: leaseReference, identity: packedMe, receipt: false, fill) {
                written = true
                noteWrite(at: position, in: ring)
            }
            if written {
                if publish {
                    notifyReceivers()
                } else {
                    hasUnnotifiedSends = true
                }
                return .queued
            }
        }
        if waits { state.pointee.writtenTo = nil }
        func attempt(_ phase: Waiter.Phase) throws -> Bool {
            if let ring = oneToOne {
                guard try ring.tryWrite(length: count, sender: UInt32(bitPattern: me.pid), publish: publish, fill) else {
                    if phase == .aboutToSleep { try checkNotGone() }
                    return false
                }
                // Only a synchronous send needs where its message ends.
                if waits { state.pointee.written = ring.lastMessageEnd }
                return true
            }
            switch ring {
            case .oneToOne:
                preconditionFailure("handled above")
            case .shared(let ring):
                switch try ring.tryWrite(length: count, lease: leaseReference, identity: packedMe, receipt: waits, fill) {
                case .written(let position):
                    if waits {
                        state.pointee.written = position
                        state.pointee.writtenTo = ring
                        state.pointee.writtenLease = leaseReference
                    }
                    return true
                case .full(let word, let position):
                    noteStall(word: word, position: position, in: ring, phase: phase)
                    if phase == .aboutToSleep { try checkNotGone() }
                    return false
                case .sealed:
                    throw MailboxError.corrupted(reason: "a bounded ring reads as sealed")
                }
            case .chained(let chain):
                // Never full: the chain grows instead (or throws `outOfSharedMemory`).
                guard case .written(let position) = try chain.tryWrite(length: count, identity: packedMe, receipt: waits, fill) else {
                    return false
                }
                if waits {
                    state.pointee.written = position
                    state.pointee.writtenTo = chain.writer.ring
                    state.pointee.writtenLease = chain.writer.lease.reference
                }
                return true
            }
        }
        if deadline == 0 { startOneShotAttempt() }
        if try !attempt(.spinning) {
            // Full: whatever this handle has batched must become visible before it waits for
            // room, or its receiver could never make any.
            flushSends()
            if deadline == 0 { return .full }
            countFullWait()
            try wait(on: spaceEvent, deadline: deadline, attempt)
        }
        if publish {
            notifyReceivers()
        } else {
            hasUnnotifiedSends = true
        }
        guard waits else { return .queued }
        flushSends()
        guard collectingReceipt else { return .queued }
        let written = state.pointee.written
        if let writtenTo = state.pointee.writtenTo {
            return try awaitReceipt(at: written, in: writtenTo, lease: state.pointee.writtenLease, deadline: deadline)
        }
        return try awaitConsumption(upTo: written, deadline: deadline)
    }

    /// Notes a write in line at `position` of a shared ring: a sender writing one position after
    /// another is streaming on its own, and asks for the lines it will write next.
    @inline(__always)
    private func noteWrite(at position: UInt64, in ring: SharedRing) {
        if position == state.pointee.lastWrite &+ 1 { ring.prefetchForWrite(after: position) }
        state.pointee.lastWrite = position
    }

    /// The checks every send makes before it writes: the handle is usable, a message of `count`
    /// bytes fits, this handle holds the sender role, and the mailbox is neither gone nor
    /// (process-owned) left by its owner.
    @inline(__always)
    private func checkCanSend(count: Int) throws {
        try checkUsable()
        guard count >= 0, count <= maxMessageSize else {
            throw MailboxError.messageTooLarge(size: count, limit: maxMessageSize)
        }
        if roles & LeaseTable.roleSent == 0 { try takeRole(LeaseTable.roleSent, deadline: 0) }
        if ownership == .process { try checkOwner(force: false) }
        try checkNotGone()
    }

    /// Publishes batched sends and wakes receivers that sleep, once for the whole batch.
    func flushSends() {
        if let ring = oneToOne, ring.hasUnpublishedWrites { ring.publishWrites() }
        guard hasUnnotifiedSends else { return }
        hasUnnotifiedSends = false
        notifyReceivers()
    }

    /// Wakes a receiver asleep on the message event (every one under round robin, where only the
    /// receiver whose turn it is may take the message).
    @inline(__always)
    func notifyReceivers() {
        if let woken = messageEvent.notify(all: receiverPolicy == .roundRobin), woken == 0 {
            withdrawDeadSleepers(of: messageEvent)
        }
    }
}
