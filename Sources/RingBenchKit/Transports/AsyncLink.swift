/// A link whose calls that must wait are async (`shm-async`). The timed loops drive it from one
/// task (`AsyncDriver`), as an async program's send or receive loop would: a call that need not
/// wait costs what the non-blocking call costs, a call that waits suspends the task.
///
/// It is a `Link` too: its synchronous calls serve code that does not measure (set-up, tests).
protocol AsyncLink: Link {
    /// Sends one whole message, suspending while the transport is full.
    func send(_ message: UnsafeRawBufferPointer) async throws
    /// Waits for the next whole message and returns its bytes, in the link's own buffer: valid
    /// until the next receive on this link.
    func receive() async throws -> UnsafeRawBufferPointer
    /// `Link.sendBatch`, suspending while the transport is full.
    func sendBatch(count: Int, buffer: UnsafeMutableRawBufferPointer,
                   fill: (Int, UnsafeMutableRawBufferPointer) throws -> Void) async throws
    /// `Link.receiveBatch`, suspending until a message is there.
    func receiveBatch(limit: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) async throws -> Int
}

/// Runs a timed loop over an `AsyncLink` as one task on the calling thread
/// (`CallingThreadExecutor`): the thread runs the task's jobs, and sleeps when the task is
/// suspended until the mailbox's wait reactor resumes it, as a cooperative pool thread would.
enum AsyncDriver {
    static func run<T>(_ body: () async throws -> T) throws -> T {
        try withoutActuallyEscaping(body) { body in
            // The task runs on this thread while it waits for the task: nothing else touches
            // what `body` captured meanwhile.
            let call = UncheckedSendable(value: body)
            return try CallingThreadExecutor().run { try await call.value() }
        }
    }
}
