/// The async API: the same calls as the blocking ones, suspending the task instead of blocking
/// its thread.
///
/// Every async call first makes the non-blocking call (so an async receive on a busy mailbox
/// costs what `tryReceive` costs), then spins briefly on its thread (at most
/// `Waiter.asyncSpinCapNanos`, less under `.block`), then parks the task in the process's
/// `WaitReactor`, which watches the mailbox's event word with `futex_waitv` on a thread of its
/// own. No cooperative thread ever sleeps in a system call.
///
/// Cancellation: a cancelled call throws `CancellationError` at its next check (within a wake-up
/// of the reactor), and takes or sends nothing once it has seen the cancellation. A synchronous
/// send (`until: .received`) cancelled while it waits for its receipt takes the message back if
/// nobody has taken it yet (`CancellationError`: nothing sent); if a receiver has it, it behaves
/// as after a timeout (`deliveryUnconfirmed`: it will be received).
///
/// The calls are `nonisolated(nonsending)`: they run on the caller's executor, so a handle held
/// by an actor (or the main actor) is never sent anywhere and needs no `Sendable` conformance.
extension Mailbox {
    // MARK: Receiving

    /// Takes the oldest message, suspending the task (not blocking its thread) until one arrives,
    /// at most `timeout` (forever if nil).
    ///
    /// - Throws: `CancellationError` when the task is cancelled (no message taken), or what the
    ///   blocking `receive(timeout:)` throws.
    nonisolated(nonsending)
    public func receive(timeout: Duration? = nil) async throws -> Message {
        try await receive(timeout: timeout) { bytes, sender, redelivered in
            Message(bytes: bytes.withUnsafeBytes { [UInt8]($0) }, sender: sender, isRedelivered: redelivered)
        }
    }

    /// Zero-copy async receive: hands the oldest message's bytes (valid only inside `body`), its
    /// sender's identity and whether it is a redelivery to `body`, then frees its space, also when
    /// `body` throws. Suspends until a message arrives, at most `timeout` (forever if nil).
    @inlinable
    nonisolated(nonsending)
    public func receive<R>(timeout: Duration? = nil,
                           _ body: (RawSpan, _ sender: ProcessIdentity, _ redelivered: Bool) throws -> R) async throws -> R {
        var result: R?
        if try receiveAtOnce({ try receiveOne(deadline: 0, release: true) { result = try body(RawSpan(_unsafeBytes: $0), $1, $2) } }) {
            return result!
        }
        try await receiveAsync(timeout: timeout) { result = try body(RawSpan(_unsafeBytes: $0), $1, $2) }
        return result!
    }

    /// Async `receiveBatch`: suspends until a message arrives (at most `timeout`, forever if
    /// nil), then takes every waiting message up to `limit`, handing each to `body`, and frees
    /// their space together. Returns how many it took (at least 1).
    nonisolated(nonsending)
    public func receiveBatch(limit: Int = .max, timeout: Duration? = nil,
                             _ body: (RawSpan, _ sender: ProcessIdentity, _ redelivered: Bool) throws -> Void) async throws -> Int {
        guard limit > 0 else { return 0 }
        var count = 0
        if try receiveAtOnce({
            count = try receiveMany(limit: limit, deadline: 0) { try body(RawSpan(_unsafeBytes: $0), $1, $2) }
            return count > 0
        }) {
            return count
        }
        try await receiveAsync(timeout: timeout) { phase throws -> Bool in
            count = try receiveMany(limit: limit, deadline: 0, phase: phase) { try body(RawSpan(_unsafeBytes: $0), $1, $2) }
            return count > 0
        }
        return count
    }

    /// The mailbox's messages as an asynchronous sequence, oldest first:
    ///
    /// ```swift
    /// for try await message in box.messages {
    ///     print(message.string)
    /// }
    /// ```
    ///
    /// The sequence ends when the task is cancelled (a graceful shutdown), the mailbox is
    /// deleted, its owner terminates it, or the handle is closed; other errors are thrown.
    public var messages: Messages { Messages(mailbox: self) }

    /// The mailbox's messages in batches of up to `limit` (every message waiting when the task
    /// wakes, as `receiveBatch` takes them), for consumers that handle bursts together. Ends as
    /// `messages` does.
    public func messages(batchedUpTo limit: Int) -> MessageBatches {
        MessageBatches(mailbox: self, limit: max(1, limit))
    }

    /// The asynchronous sequence of `Mailbox.messages`.
    public struct Messages: AsyncSequence {
        /// Each element is one received message.
        public typealias Element = Message
        /// Receive errors other than the ones that end the sequence are thrown.
        public typealias Failure = any Error
        let mailbox: Mailbox

        /// An iterator that receives through the mailbox handle.
        public func makeAsyncIterator() -> Iterator { Iterator(mailbox: mailbox) }

        /// Receives the next message; nil once the sequence has ended.
        public struct Iterator: AsyncIteratorProtocol {
            let mailbox: Mailbox
            var ended = false

            /// The next message, suspending until one arrives; nil once the task is cancelled, the
            /// mailbox is deleted or terminated by its owner, or the handle is closed.
            nonisolated(nonsending)
            public mutating func next() async throws -> Message? {
                guard !ended else { return nil }
                do {
                    return try await mailbox.receive()
                } catch {
                    guard Mailbox.endsSequence(error) else { throw error }
                    ended = true
                    return nil
                }
            }
        }
    }

    /// The asynchronous sequence of `Mailbox.messages(batchedUpTo:)`.
    public struct MessageBatches: AsyncSequence {
        /// Each element is one batch of received messages, oldest first.
        public typealias Element = [Message]
        /// Receive errors other than the ones that end the sequence are thrown.
        public typealias Failure = any Error
        let mailbox: Mailbox
        let limit: Int

        /// An iterator that receives through the mailbox handle.
        public func makeAsyncIterator() -> Iterator { Iterator(mailbox: mailbox, limit: limit) }

        /// Receives the next batch (never empty); nil once the sequence has ended.
        public struct Iterator: AsyncIteratorProtocol {
            let mailbox: Mailbox
            let limit: Int
            var ended = false

            /// The next batch (at least one message), suspending until a message arrives; nil once
            /// the sequence has ended, as ``Mailbox/Messages/Iterator/next()`` ends.
            nonisolated(nonsending)
            public mutating func next() async throws -> [Message]? {
                guard !ended else { return nil }
                var batch: [Message] = []
                do {
                    _ = try await mailbox.receiveBatch(limit: limit) { bytes, sender, redelivered in
                        batch.append(Message(bytes: bytes.withUnsafeBytes { [UInt8]($0) }, sender: sender, isRedelivered: redelivered))
                    }
                    return batch
                } catch {
                    guard Mailbox.endsSequence(error) else { throw error }
                    ended = true
                    return nil
                }
            }
        }
    }

    /// Whether `error` ends a message sequence rather than being thrown from it.
    static func endsSequence(_ error: any Error) -> Bool {
        if error is CancellationError { return true }
        guard let error = error as? MailboxError else { return false }
        switch error {
        case .deleted, .ownerTerminated, .closed: return true
        default: return false
        }
    }

    // MARK: Sending

    /// Sends `bytes`, suspending the task (not blocking its thread) while the mailbox is full,
    /// at most `timeout` (forever if nil).
    ///
    /// - Throws: `CancellationError` when the task is cancelled before the message was written
    ///   (nothing sent), or what the blocking `send(_:timeout:)` throws.
    @inlinable
    nonisolated(nonsending)
    public func send<Bytes: Collection<UInt8>>(_ bytes: Bytes, timeout: Duration? = nil) async throws {
        try await send(bytes, timeout: timeout, until: .queued)
    }

    /// Sends the UTF-8 bytes of `text`, suspending while the mailbox is full.
    nonisolated(nonsending)
    public func send(_ text: String, timeout: Duration? = nil) async throws {
        try await send(text.utf8, timeout: timeout, until: .queued)
    }

    /// Sends the bytes of `value` (read back with `Message.load(as:)`), suspending while full.
    @inlinable
    nonisolated(nonsending)
    public func send<T: BitwiseCopyable>(value: T, timeout: Duration? = nil) async throws {
        if try sendAtOnce(count: MemoryLayout<T>.size, { target in withUnsafeBytes(of: value) { target.copyMemory(from: $0) } }) {
            return
        }
        _ = try await sendAsync(count: MemoryLayout<T>.size, timeout: timeout, completion: .queued) { target in
            withUnsafeBytes(of: value) { target.copyMemory(from: $0) }
        }
    }

    /// Async `send(_:timeout:until:)`: with `until: .received`, returns only once a receiver has
    /// taken the message, naming it, suspending meanwhile.
    @discardableResult
    @inlinable
    nonisolated(nonsending)
    public func send<Bytes: Collection<UInt8>>(_ bytes: Bytes, timeout: Duration? = nil,
                                               until completion: Completion) async throws -> Delivery? {
        let count = bytes.count
        if completion == .queued, try sendAtOnce(count: count, { target in
            if bytes.withContiguousStorageIfAvailable({ target.copyMemory(from: UnsafeRawBufferPointer($0)) }) == nil {
                _ = target.initializeMemory(as: UInt8.self, from: bytes)
            }
        }) {
            return nil
        }
        return try await sendAsync(count: count, timeout: timeout, completion: completion) { target in
            if bytes.withContiguousStorageIfAvailable({ target.copyMemory(from: UnsafeRawBufferPointer($0)) }) == nil {
                _ = target.initializeMemory(as: UInt8.self, from: bytes)
            }
        }.delivery
    }

    /// Async `send(_:timeout:until:)` for the UTF-8 bytes of `text`.
    @discardableResult
    nonisolated(nonsending)
    public func send(_ text: String, timeout: Duration? = nil, until completion: Completion) async throws -> Delivery? {
        try await send(text.utf8, timeout: timeout, until: completion)
    }

    /// Async zero-copy send: reserves `count` bytes, suspending while the mailbox is full, and
    /// lets `fill` (synchronous) write the message straight into shared memory; it is published
    /// when `fill` returns. If `fill` throws, nothing is delivered and its error is rethrown.
    @inlinable
    nonisolated(nonsending)
    public func send(count: Int, timeout: Duration? = nil, _ fill: (inout MutableRawSpan) throws -> Void) async throws {
        if try sendAtOnce(count: count, { buffer in
            var span = MutableRawSpan(_unsafeBytes: buffer)
            try fill(&span)
        }) {
            return
        }
        _ = try await sendAsync(count: count, timeout: timeout, completion: .queued) { buffer in
            var span = MutableRawSpan(_unsafeBytes: buffer)
            try fill(&span)
        }
    }

    // MARK: Engine

    // As for the blocking calls, the public generic calls are inlinable wrappers over these
    // non-generic entry points: a client specializes them, and an async call that need not wait
    // looks up no generic metadata.

    /// An async receive's first attempt, made before any async call so that a receive that need
    /// not wait costs what `tryReceive` costs (no task allocation, no suspension point): checks
    /// for cancellation, then runs `attempt` (a non-blocking take: true once it took something).
    /// False when the engine must take over: nothing waiting, or an exclusive mailbox whose turn
    /// another process holds and `whenReceiverBusy` says to wait.
    @usableFromInline
    func receiveAtOnce(_ attempt: () throws -> Bool) throws -> Bool {
        try Task.checkCancellation()
        do {
            return try attempt()
        } catch let failure as MailboxError where Self.isReceiverBusy(failure) && whenReceiverBusy == .wait {
            return false
        }
    }

    /// An async send's first attempt, made before any async call (as `receiveAtOnce`): checks for
    /// cancellation, then writes the message (filled by `fill`) if there is room and the send
    /// need not wait for a receiver. False when the engine must take over (full, or a
    /// zero-capacity mailbox, whose sends wait to be taken).
    @usableFromInline
    func sendAtOnce(count: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> Bool {
        try Task.checkCancellation()
        guard !isRendezvous else { return false }
        return try sendReserving(count: count, deadline: 0, completion: .queued, collectingReceipt: false, fill) != .full
    }

    /// Takes one message and hands it to `body`, suspending (at most `timeout`) while there is
    /// none.
    @inlinable
    nonisolated(nonsending)
    func receiveAsync(timeout: Duration?, _ body: (UnsafeRawBufferPointer, ProcessIdentity, Bool) throws -> Void) async throws {
        try await receiveAsync(timeout: timeout) { phase throws -> Bool in
            try receiveOne(deadline: 0, phase: phase, release: true, body)
        }
    }

    /// Takes one message through `take` (the non-blocking engine: true once it took one),
    /// suspending while there is none. `timeout` becomes a deadline only once the first attempt
    /// found nothing: a call that need not wait reads no clock.
    @usableFromInline
    nonisolated(nonsending)
    func receiveAsync(timeout: Duration?, _ take: (Waiter.Phase) throws -> Bool) async throws {
        try Task.checkCancellation()
        var deadline: UInt64?
        do {
            if try take(.spinning) { return }
        } catch {
            // An exclusive mailbox whose turn another process holds: wait for the turn if asked to.
            guard let failure = error as? MailboxError, Self.isReceiverBusy(failure), whenReceiverBusy == .wait else { throw error }
            deadline = Self.deadline(timeout)
            try await waitAsync(on: roleEvent, deadline: deadline!) { _ in
                do {
                    try takeRole(LeaseTable.roleReceived, deadline: 0)
                    return true
                } catch {
                    guard let failure = error as? MailboxError, Self.isReceiverBusy(failure) else { throw error }
                    return false
                }
            }
            if try take(.spinning) { return }
        }
        let due = deadline ?? Self.deadline(timeout)
        // A zero-capacity mailbox's non-blocking senders hand their message to a receiver that
        // waits: say that we do.
        if isRendezvous, let lease { messageEvent.enterWaiting(as: lease.index) }
        defer { if isRendezvous, let lease { messageEvent.leaveWaiting(as: lease.index) } }
        try await waitAsync(on: messageEvent, deadline: due, take)
    }

    private static func isReceiverBusy(_ error: MailboxError) -> Bool {
        if case .receiverBusy = error { return true }
        return false
    }

    /// Writes one message (filled by `fill`), suspending while the mailbox is full, and for
    /// `.received` (or on a zero-capacity mailbox) until a receiver has taken it; at most
    /// `timeout` in all (read from the clock only once the first attempt found no room or the
    /// send must wait for its receiver).
    @usableFromInline
    nonisolated(nonsending)
    func sendAsync(count: Int, timeout: Duration?, completion: Completion,
                   _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) async throws -> SendResult {
        try Task.checkCancellation()
        var deadline: UInt64?
        if try sendReserving(count: count, deadline: 0, completion: completion, collectingReceipt: false, fill) == .full {
            countFullWait()
            deadline = Self.deadline(timeout)
            try await waitAsync(on: spaceEvent, deadline: deadline!) { _ in
                try sendReserving(count: count, deadline: 0, completion: completion, collectingReceipt: false, fill) != .full
            }
        }
        guard completion == .received || isRendezvous else { return .queued }
        let due = deadline ?? Self.deadline(timeout)
        let written = state.pointee.written
        if let writtenTo = state.pointee.writtenTo {
            return try await awaitReceiptAsync(at: written, in: writtenTo, lease: state.pointee.writtenLease, deadline: due)
        }
        return try await awaitConsumptionAsync(upTo: written, deadline: due)
    }
}
