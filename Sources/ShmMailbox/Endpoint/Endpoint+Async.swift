/// The async API of endpoints: the same calls as the blocking ones, suspending the task instead
/// of blocking its thread (see `Mailbox`'s async API for how waiting, cancellation and isolation
/// work). A receive from anyone parks on the endpoint's doorbell in the `WaitReactor`; a receive
/// from one sender, once its link exists, is that link's async receive.
extension Endpoint {
    // MARK: Receiving

    /// Takes a message from any sender, suspending the task until one arrives, at most `timeout`
    /// (forever if nil). Links are served in turn, as by the blocking `receive(timeout:)`.
    ///
    /// - Throws: `CancellationError` when the task is cancelled (no message taken), or what the
    ///   blocking `receive(timeout:)` throws.
    nonisolated(nonsending)
    public func receive(timeout: Duration? = nil) async throws -> Endpoint.Message {
        var message: Endpoint.Message?
        _ = try await receiveAnyAsync(limit: 1, timeout: timeout) { bytes, pid, redelivered, from in
            message = Endpoint.Message(from: from, message: Mailbox.Message(bytes: [UInt8](bytes), sender: pid, isRedelivered: redelivered))
        }
        return message!
    }

    /// Zero-copy async receive from anyone: hands the message's bytes (valid only inside `body`),
    /// the sending process's identity (`Mailbox.Message.sender`) and the sender's endpoint name to
    /// `body`.
    @inlinable
    nonisolated(nonsending)
    public func receive<R>(timeout: Duration? = nil, _ body: (RawSpan, _ sender: ProcessIdentity, _ from: String) throws -> R) async throws -> R {
        var result: R?
        _ = try await receiveAnyAsync(limit: 1, timeout: timeout) { bytes, pid, _, from in
            result = try body(RawSpan(_unsafeBytes: bytes), pid, from)
        }
        return result!
    }

    /// Async `receiveBatch`: suspends until a message arrives on any link (at most `timeout`),
    /// then takes up to `limit` messages waiting on that link. Returns how many (at least 1).
    nonisolated(nonsending)
    public func receiveBatch(limit: Int = .max, timeout: Duration? = nil,
                             _ body: (RawSpan, _ sender: ProcessIdentity, _ from: String) throws -> Void) async throws -> Int {
        try await receiveAnyAsync(limit: limit, timeout: timeout) { bytes, pid, _, from in
            try body(RawSpan(_unsafeBytes: bytes), pid, from)
        }
    }

    /// Takes the oldest message from endpoint `sender`, suspending until one arrives (at most
    /// `timeout`, forever if nil), also while `sender` has not sent yet.
    nonisolated(nonsending)
    public func receive(from sender: String, timeout: Duration? = nil) async throws -> Mailbox.Message {
        guard !isClosed else { throw MailboxError.closed }
        try EndpointName.validate(sender)
        let deadline = Mailbox.deadline(timeout)
        while true {
            if let link = try incomingLink(from: sender) {
                if deadline == .max { return try await link.receive() }
                let now = MonotonicClock.now()
                return try await link.receive(timeout: .nanoseconds(Int64(clamping: deadline > now ? deadline - now : 0)))
            }
            // No link yet: its sender creates it, then rings our doorbell after sending.
            try await Waiter.waitAsync(strategy: .block, deadline: deadline, on: home.doorbell, as: EndpointLayout.holderSleeperBit,
                                       keepAlive: WaitReactor.KeepAlive(object: home.segment),
                                       slice: { Mailbox.asyncSleepSliceNanos }, tick: {}) { _ in
                try incomingLink(from: sender) != nil
            }
        }
    }

    /// The messages sent to this endpoint by anyone, as an asynchronous sequence (each with its
    /// sender's name). Ends when the task is cancelled or the endpoint is closed.
    public var messages: Messages { Messages(endpoint: self) }

    /// The asynchronous sequence of `Endpoint.messages`.
    public struct Messages: AsyncSequence {
        /// Each element is one received message with its sender's endpoint name.
        public typealias Element = Endpoint.Message
        /// Receive errors other than the ones that end the sequence are thrown.
        public typealias Failure = any Error
        let endpoint: Endpoint

        /// An iterator that receives through the endpoint handle.
        public func makeAsyncIterator() -> Iterator { Iterator(endpoint: endpoint) }

        /// Receives the next message; nil once the sequence has ended.
        public struct Iterator: AsyncIteratorProtocol {
            let endpoint: Endpoint
            var ended = false

            /// The next message from any sender, suspending until one arrives; nil once the task
            /// is cancelled or the endpoint is closed.
            nonisolated(nonsending)
            public mutating func next() async throws -> Endpoint.Message? {
                guard !ended else { return nil }
                do {
                    return try await endpoint.receive()
                } catch {
                    guard Mailbox.endsSequence(error) else { throw error }
                    ended = true
                    return nil
                }
            }
        }
    }

    // MARK: Sending

    /// Sends `bytes` to endpoint `receiver`, suspending (not blocking) while its link is full,
    /// at most `timeout` (forever if nil).
    ///
    /// - Throws: `CancellationError` when the task is cancelled before the message was written
    ///   (nothing sent), or what the blocking `send(to:_:timeout:)` throws.
    nonisolated(nonsending)
    public func send<Bytes: Collection<UInt8>>(to receiver: String, _ bytes: Bytes, timeout: Duration? = nil) async throws {
        try Task.checkCancellation()
        if try trySend(to: receiver, bytes) { return }
        let deadline = Mailbox.deadline(timeout)
        // Full: wait for room in slices, so that a receiver that dies meanwhile is noticed.
        var out = try outgoingLink(to: receiver, force: false)
        while true {
            let now = MonotonicClock.now()
            let slice = deadline > now ? min(deadline - now, Self.sleepSliceNanos) : 0
            do {
                try await out.link.send(bytes, timeout: .nanoseconds(Int64(clamping: slice)))
                break
            } catch let error as MailboxError where error == .timedOut {
                if MonotonicClock.now() >= deadline { throw error }
                out = try outgoingLink(to: receiver, force: true)
            }
        }
        // Published: wake the receiver if it sleeps on its doorbell (inside a batch, the batch's
        // end rings it).
        if batchDepth == 0 { out.peer.doorbell.notify() }
    }

    /// Sends the UTF-8 bytes of `text` to endpoint `receiver`, suspending while its link is full.
    nonisolated(nonsending)
    public func send(to receiver: String, _ text: String, timeout: Duration? = nil) async throws {
        try await send(to: receiver, text.utf8, timeout: timeout)
    }

    // MARK: Engine

    /// `timeout` becomes a deadline only once the first attempt found nothing.
    @usableFromInline
    nonisolated(nonsending)
    func receiveAnyAsync(limit: Int, timeout: Duration?,
                                 _ body: (UnsafeRawBufferPointer, ProcessIdentity, Bool, String) throws -> Void) async throws -> Int {
        guard !isClosed else { throw MailboxError.closed }
        guard limit > 0 else { return 0 }
        try Task.checkCancellation()
        var taken = try takeAny(limit: limit, body)
        if taken > 0 { return taken }
        let deadline = Mailbox.deadline(timeout)
        // Every sender rings the doorbell after each message (or batch), whichever link it uses.
        try await Waiter.waitAsync(strategy: options.waitStrategy, deadline: deadline, on: home.doorbell,
                                   as: EndpointLayout.holderSleeperBit, keepAlive: WaitReactor.KeepAlive(object: home.segment),
                                   slice: { Mailbox.asyncSleepSliceNanos }, tick: {}) { _ in
            taken = try takeAny(limit: limit, body)
            return taken > 0
        }
        return taken
    }
}
