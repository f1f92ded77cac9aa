import ServiceLifecycle
import ShmMailbox

/// A swift-service-lifecycle `Service` that hands each message of a mailbox to an async handler
/// until a graceful shutdown, then lets the message in hand finish and returns.
///
/// ```swift
/// let orders = MailboxService("orders") { message in
///     try await process(message.bytes)
/// }
/// let group = ServiceGroup(services: [orders], gracefulShutdownSignals: [.sigterm])
/// try await group.run()
/// ```
///
/// - **Opening**: `run()` opens the mailbox (by name, or through the closure given to
///   `init(_:whenShuttingDown:opening:handler:)`) and closes its handle when it returns. A
///   `Mailbox` handle is not `Sendable`, so the service stores how to open one, never a handle.
/// - **One message at a time**: the handler is awaited before the next message is taken, so
///   messages are handled in the order they are received (for a `.shared` mailbox, each sender's
///   messages in the order sent) and a slow handler applies back-pressure to senders. For
///   parallel handling run several services on a `.shared` mailbox: each opens a handle of its own.
/// - **Graceful shutdown**: the service stops taking messages (a receive waiting for one is
///   cancelled, which takes nothing), lets the handler in flight finish (it is not cancelled),
///   then, by `whenShuttingDown`, either returns at once (`.finishInFlight`, the default) or
///   first handles the messages that were already waiting (`.drainWaiting`). Every message is
///   either handled or still waiting in the mailbox, never lost. Outside a `ServiceGroup` there
///   is no graceful shutdown: the service runs until its task is cancelled.
/// - **Cancellation** (the group's cancellation, or a graceful shutdown that outlasted
///   `maximumGracefulShutdownDuration`): a waiting receive throws `CancellationError`, taking
///   nothing; a handler in flight sees the cancellation as any task does. `run()` then throws
///   `CancellationError` (or what the handler threw).
/// - **Handler errors**: an error thrown by the handler ends `run()` with that error (after the
///   handle is closed); the message it was handling has been taken and is not delivered again.
///   A `ServiceGroup` then cancels the other services (`failureTerminationBehavior`, default
///   `.cancelGroup`; `.gracefullyShutdownGroup` shuts them down gracefully instead). A handler
///   that must survive bad messages catches its own errors.
/// - **Mailbox errors**: when the mailbox is deleted, its owner terminates it, or receiving fails
///   otherwise, `run()` throws that `MailboxError`.
///
/// The handler receives a copy of each message (`Message`): it may keep it beyond the call.
public struct MailboxService: Service, CustomStringConvertible {
    /// The work done for each message. It runs on the service's task, one message at a time.
    public typealias Handler = @Sendable (Mailbox.Message) async throws -> Void

    /// What the service does after a graceful shutdown, once the handler in flight has finished.
    public enum ShutdownDrain: Sendable, Equatable {
        /// Return at once; messages waiting in the mailbox stay there for the next receiver.
        case finishInFlight
        /// Handle the messages already waiting when the service stopped receiving (at most as
        /// many as the mailbox's depth then, so senders that keep sending cannot hold the
        /// shutdown up; later ones stay in the mailbox), then return. Cancellation stops it.
        case drainWaiting
    }

    /// Opens the mailbox in `run()`.
    let open: @Sendable () throws -> Mailbox
    /// What happens after a graceful shutdown.
    let whenShuttingDown: ShutdownDrain
    /// The user's work for each message.
    let handler: Handler
    /// The mailbox's name, for `description`.
    let name: String

    /// A service handling the messages of the existing mailbox `name`, opened in `run()` with
    /// `Mailbox.open(_:waitStrategy:trust:)`.
    ///
    /// - Parameters:
    ///   - name: The mailbox's name.
    ///   - waitStrategy: How the handle waits for messages (see `WaitStrategy`).
    ///   - trust: Whose segments to accept (see `SegmentTrust`).
    ///   - whenShuttingDown: Whether to handle the messages waiting at a graceful shutdown
    ///     (default: no, only the one in flight finishes).
    ///   - handler: The work for each message, awaited before the next one is taken.
    public init(_ name: String, waitStrategy: WaitStrategy = .default, trust: SegmentTrust = .sameUser,
                whenShuttingDown: ShutdownDrain = .finishInFlight, handler: @escaping Handler) {
        self.init(name, whenShuttingDown: whenShuttingDown,
                  opening: { try Mailbox.open(name, waitStrategy: waitStrategy, trust: trust) },
                  handler: handler)
    }

    /// A service handling the messages of the mailbox that `open` returns, called once at the
    /// start of each `run()`: to create the mailbox, or to set handle options such as
    /// `whenReceiverBusy` before receiving.
    ///
    /// The handle is closed when `run()` returns, so a mailbox that `open` creates with
    /// `.process` ownership ends with the service (its waiting messages with it).
    ///
    /// - Parameters:
    ///   - name: The mailbox's name, used in `description` (the service's name in a group's logs).
    ///   - whenShuttingDown: Whether to handle the messages waiting at a graceful shutdown.
    ///   - open: Returns a new handle to the mailbox; what it throws, `run()` throws.
    ///   - handler: The work for each message, awaited before the next one is taken.
    public init(_ name: String, whenShuttingDown: ShutdownDrain = .finishInFlight,
                opening open: @escaping @Sendable () throws -> Mailbox, handler: @escaping Handler) {
        self.name = name
        self.whenShuttingDown = whenShuttingDown
        self.open = open
        self.handler = handler
    }

    /// `MailboxService(NAME)`.
    public var description: String { "MailboxService(\(name))" }
}
