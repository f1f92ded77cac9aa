import ServiceLifecycle
import ShmMailbox

/// The service's loop: receive, handle, repeat; stop taking messages at a graceful shutdown.
extension MailboxService {
    /// Opens the mailbox and hands each message to the handler, one at a time, until a graceful
    /// shutdown; then lets the handler in flight finish, drains as `whenShuttingDown` says, closes
    /// the handle and returns.
    ///
    /// - Throws: What opening the mailbox throws; the handler's error (the service stops at the
    ///   first one); a `MailboxError` from receiving, such as `.deleted` or `.ownerTerminated`;
    ///   `CancellationError` when the task is cancelled.
    public func run() async throws {
        let mailbox = try open()
        defer { mailbox.close() }
        while let message = try await nextMessage(from: mailbox) {
            try await handler(message)
        }
        if whenShuttingDown == .drainWaiting {
            try await drainWaiting(from: mailbox)
        }
    }

    /// The next message, waiting for one if there is none; nil once a graceful shutdown has begun
    /// (a receive waiting then is cancelled and takes nothing).
    private func nextMessage(from mailbox: Mailbox) async throws -> Mailbox.Message? {
        try Task.checkCancellation()
        guard !Task.isShuttingDownGracefully else { return nil }
        // A message already waiting is taken at once, without a child task.
        if let message = try mailbox.tryReceive() { return message }
        let lent = LentHandle(mailbox: mailbox)
        do {
            // The waiting receive runs in a child task that a graceful shutdown cancels; this task
            // (which runs the handler) is not cancelled by it. A receive that has taken a message
            // returns it even when the shutdown comes at the same moment.
            return try await cancelWhenGracefulShutdown { try await lent.mailbox.receive() }
        } catch is CancellationError where !Task.isCancelled {
            // Cancelled by the graceful shutdown, not by our own cancellation: nothing was taken.
            return nil
        }
    }

    /// Handles the messages that are waiting now (at most the current depth), without waiting
    /// for more.
    private func drainWaiting(from mailbox: Mailbox) async throws {
        var remaining = mailbox.depth
        while remaining > 0 {
            try Task.checkCancellation()
            guard let message = try mailbox.tryReceive() else { return }
            remaining -= 1
            try await handler(message)
        }
    }
}

/// Lends the service's mailbox handle to the child task that waits in `receive()` for it.
///
/// `@unchecked Sendable` because the handle is never used by two tasks at once: the service's
/// task creates the child, then stays suspended in `cancelWhenGracefulShutdown` until the child
/// has finished (a task group awaits its children); creating and awaiting the child order the
/// two tasks' uses of the handle.
private struct LentHandle: @unchecked Sendable {
    /// The handle, used only by the child task while it exists.
    let mailbox: Mailbox
}
