#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox
import ShmMailboxNATS
import ShmboxCLISupport

/// Writes a status line to standard error every interval:
///
/// `shmbox bridge: export jobs->jobs 1200 msgs 240/s lag 3/0 | import results->results 800 msgs 160/s lag 0/5`
///
/// per relay: messages relayed so far, the rate over the last interval, and the lag as remote
/// depth / local depth (messages waiting on each side; `?` when a depth cannot be read).
final class StatusReporter: @unchecked Sendable { // used by its own thread only
    private struct Watched {
        let progress: RelayProgress
        let local: Mailbox?
        let remote: RemoteMailbox?
        var lastCount = 0
    }

    private var watched: [Watched] = []
    private let interval: Duration

    /// Opens its own handles (a handle serves one thread): `pairs` are (local name, remote name).
    init(relays: [(RelayProgress, local: String, remote: String)], connection: NATSConnection, interval: Duration) {
        self.interval = interval
        for (progress, localName, remoteName) in relays {
            watched.append(Watched(progress: progress, local: try? Mailbox.open(localName),
                                   remote: try? RemoteMailbox.open(remoteName, on: connection)))
        }
    }

    /// Reports until a stop is requested.
    func run() {
        var last = ContinuousClock.now
        while !Shutdown.isRequested {
            // Sleep in short steps, to notice a stop request.
            while ContinuousClock.now - last < interval && !Shutdown.isRequested {
                var request = timespec(tv_sec: 0, tv_nsec: 50_000_000)
                _ = nanosleep(&request, nil)
            }
            if Shutdown.isRequested { return }
            let now = ContinuousClock.now
            let seconds = Double((now - last).components.attoseconds) / 1e18 + Double((now - last).components.seconds)
            last = now
            var parts: [String] = []
            for index in watched.indices {
                let count = watched[index].progress.messages
                let rate = Int((Double(count - watched[index].lastCount) / max(seconds, 0.001)).rounded())
                watched[index].lastCount = count
                let remoteDepth = (try? watched[index].remote?.depth).flatMap { $0 }.map(String.init) ?? "?"
                let localDepth = watched[index].local.map { String($0.depth) } ?? "?"
                parts.append("\(watched[index].progress.label) \(count) msgs \(rate)/s lag \(remoteDepth)/\(localDepth)")
            }
            printDiagnostic("shmbox bridge: " + parts.joined(separator: " | "))
        }
    }
}
