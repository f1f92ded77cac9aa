#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Set by the first SIGINT or SIGTERM: every relay finishes the message in hand and stops.
let stopRequested = Atomic<Bool>(false)

/// Graceful shutdown on SIGINT and SIGTERM.
///
/// The handler only stores a flag (async-signal-safe); the relays look at it between messages
/// and, while blocked on a full mailbox or an unreachable server, every few hundred
/// milliseconds. A second signal ends the process at once, which is as safe as `kill -9` (see the
/// relays' kill points), just less tidy.
enum Shutdown {
    /// How long a relay keeps trying to finish the message in hand after the stop request
    /// (a full mailbox, a lost server) before it leaves it unfinished for redelivery.
    static let grace = Duration.seconds(5)

    static var isRequested: Bool { stopRequested.load(ordering: .relaxed) }

    /// Installs the handlers (call before starting any thread, so every thread sees them).
    static func install() {
        _ = stopRequested.load(ordering: .relaxed)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            if stopRequested.exchange(true, ordering: .relaxed) { _exit(128 + signal) }
        }
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        // A dropped server connection must be an error libnats handles, not a signal that kills.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Tracks one blocked attempt to finish the message in hand: true once a stop was requested
    /// more than `grace` ago.
    struct Patience {
        private var stopSeen: ContinuousClock.Instant?

        init() {}

        mutating func isExhausted() -> Bool {
            guard Shutdown.isRequested else { return false }
            let seen = stopSeen ?? .now
            stopSeen = seen
            return ContinuousClock.now - seen >= Shutdown.grace
        }
    }
}
