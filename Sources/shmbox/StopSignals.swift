#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Whether SIGINT or SIGTERM has arrived since `StopSignals.install()`: `receive --follow`
/// checks it between messages, so a signal ends it after the message in hand, with exit 0.
enum StopSignals {
    private static let received = Atomic<Bool>(false)

    /// Whether a stop signal has arrived.
    static var requested: Bool { received.load(ordering: .acquiring) }

    /// Catches SIGINT and SIGTERM from now on (instead of being killed by them), unblocking
    /// them in case the parent started this process with them blocked.
    static func install() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            StopSignals.received.store(true, ordering: .releasing)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        var stops = sigset_t()
        sigemptyset(&stops)
        sigaddset(&stops, SIGINT)
        sigaddset(&stops, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &stops, nil)
    }
}
