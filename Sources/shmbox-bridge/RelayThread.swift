#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import ShmboxCLISupport

/// What a relay reports while it runs: its message count (for the status line) and how it ended.
final class RelayProgress: Sendable {
    enum State: Int {
        case running = 0
        /// Returned after a stop request, nothing in hand.
        case finished = 1
        /// Could not finish the message in hand within the shutdown grace: the thread sleeps
        /// holding it, so that the process can end without finishing (or giving it up).
        case parked = 2
    }

    /// Source and destination, as the status line shows them (`jobs->jobs`).
    let label: String
    private let relayed = Atomic<Int>(0)
    private let stateWord = Atomic<Int>(State.running.rawValue)

    init(label: String) {
        self.label = label
    }

    var messages: Int { relayed.load(ordering: .relaxed) }
    var state: State { State(rawValue: stateWord.load(ordering: .acquiring)) ?? .running }

    func count() { relayed.add(1, ordering: .relaxed) }
    func set(_ state: State) { stateWord.store(state.rawValue, ordering: .releasing) }

    /// Marks the relay parked and sleeps for good (see `State.parked`).
    func park(holding what: String) -> Never {
        printDiagnostic("shmbox bridge: \(label): stopping without finishing \(what); it will be redelivered")
        set(.parked)
        while true { pause() }
    }
}

/// Runs a body on its own POSIX thread (no Foundation in this executable).
enum RelayThread {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    static func start(_ body: @escaping () -> Void) {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        let status = pthread_create(&thread, nil, { context in
            Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
            return nil
        }, context)
        guard status == 0 else { terminate(CLIFailure("cannot start a relay thread: \(String(cString: strerror(status)))", status: .temporaryFailure)) }
        pthread_detach(thread)
    }
}
