#if canImport(Glibc)
import Glibc
#endif

/// Opening a mailbox whatever the start order: waiting for its creator, or creating it if nobody
/// has yet.
extension Mailbox {
    /// Opens the mailbox named `name`, waiting up to `patience` for another process to create it.
    ///
    /// Use this in a program that may start before the one that creates the mailbox. It retries
    /// while the name does not exist (every millisecond at first, then every 50 ms at most); every
    /// other failure is thrown at once.
    ///
    /// - Throws: `notFound` when no mailbox appeared within `patience`; otherwise what
    ///   `open(_:waitStrategy:trust:)` throws.
    public static func open(_ name: String, waitingUpTo patience: Duration, waitStrategy: WaitStrategy = .default,
                            trust: SegmentTrust = .sameUser) throws(MailboxError) -> Mailbox {
        let validName = try MailboxName(name)
        let deadline = ContinuousClock.now + patience
        var pause = Duration.milliseconds(1)
        while true {
            do {
                return try open(validName, waitStrategy: waitStrategy, trust: trust)
            } catch .notFound(let missing) {
                let now = ContinuousClock.now
                guard now < deadline else { throw .notFound(missing) }
                Self.nap(min(pause, deadline - now))
                pause = min(pause * 2, .milliseconds(50))
            }
        }
    }

    /// Opens the mailbox named `name`, suspending (not blocking a thread) up to `patience` for
    /// another process to create it; the async form of `open(_:waitingUpTo:waitStrategy:trust:)`.
    ///
    /// - Throws: `CancellationError` when the task is cancelled while waiting; `notFound` when
    ///   no mailbox appeared within `patience`; otherwise what `open(_:waitStrategy:trust:)` throws.
    nonisolated(nonsending)
    public static func open(_ name: String, waitingUpTo patience: Duration, waitStrategy: WaitStrategy = .default,
                            trust: SegmentTrust = .sameUser) async throws -> Mailbox {
        let validName = try MailboxName(name)
        let deadline = ContinuousClock.now + patience
        var pause = Duration.milliseconds(1)
        while true {
            let now: ContinuousClock.Instant
            do throws(MailboxError) {
                return try open(validName, waitStrategy: waitStrategy, trust: trust)
            } catch {
                // (Not `catch .notFound`: Swift 6.3 crashes compiling that in an async function.)
                guard case .notFound = error else { throw error }
                now = ContinuousClock.now
                guard now < deadline else { throw error }
            }
            try await Task.sleep(for: min(pause, deadline - now))
            pause = min(pause * 2, .milliseconds(50))
        }
    }

    /// Opens the mailbox named `name` if it exists, or creates it with `options`: both sides of a
    /// conversation can call this, in either order, and run again after a restart.
    ///
    /// An existing mailbox must match `options` in kind, capacity and largest message size, so a
    /// program never runs unknowingly on a mailbox made for something else. When two processes
    /// race to create the name, one creates it and the other opens it. The creating handle owns
    /// a `.process`-owned mailbox, exactly as with `create`.
    ///
    /// - Throws: `invalidOptions` when the existing mailbox was created with other options (the
    ///   description names them); otherwise what `create(_:options:)` and
    ///   `open(_:waitStrategy:trust:)` throw.
    public static func openOrCreate(_ name: String, options: MailboxOptions = MailboxOptions(),
                                    trust: SegmentTrust = .sameUser) throws(MailboxError) -> Mailbox {
        let validName = try MailboxName(name)
        // A creator that loses the race to another creator opens what that one made; a mailbox
        // deleted between a failed create and the open is created again (a few rounds at most,
        // unless something keeps deleting it).
        for _ in 0..<8 {
            do {
                let box = try open(validName, waitStrategy: options.waitStrategy, trust: trust)
                try box.check(matches: options)
                return box
            } catch .notFound {
                do {
                    return try create(validName, options: options)
                } catch .alreadyExists {
                    continue
                }
            }
        }
        throw .notFound(name)
    }

    private static func nap(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        _ = nanosleep(&request, nil)
    }

    /// Throws `invalidOptions` unless this mailbox was created with `options`' kind, capacity and
    /// largest message size.
    private func check(matches options: MailboxOptions) throws(MailboxError) {
        var differences: [String] = []
        if kind != options.kind { differences.append("kind \(kind), not \(options.kind)") }
        if capacity != options.capacity { differences.append("capacity \(capacity), not \(options.capacity)") }
        if maxMessageSize != options.maxMessageSize {
            differences.append("largest message \(maxMessageSize) bytes, not \(options.maxMessageSize)")
        }
        guard differences.isEmpty else {
            throw .invalidOptions("mailbox \"\(name)\" exists with \(differences.joined(separator: ", ")): "
                + "pass its options, or delete it (shmbox delete \(name)) to create it anew")
        }
    }
}
