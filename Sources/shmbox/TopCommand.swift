import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox
import ShmboxCLISupport

/// `shmbox top` (alias `watch`): per mailbox, depth, messages per second in and out and the
/// processes using it, refreshed every interval.
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Watch mailboxes: depth, messages/s in and out, senders, receivers, sleepers.",
        discussion: """
            Samples every mailbox (or the ones named) every --interval seconds and prints a \
            table, or with --json one JSON object per sample on a line of its own (fields in \
            README.md). Rates come from the positions the rings keep; nothing is written to the \
            mailboxes. The first sample is printed one interval after the start.
            """,
        aliases: ["watch"]
    )

    @OptionGroup var trust: TrustOptions

    @Argument(help: "Mailboxes to watch (default: all, including ones created meanwhile).")
    var names: [String] = []

    @Option(help: "Seconds between samples.")
    var interval = 1.0

    @Option(help: "Stop after this many samples (default: run until interrupted).")
    var count: Int?

    @Flag(help: "Print one JSON object per sample (a machine-readable stream).")
    var json = false

    func validate() throws {
        guard interval.isFinite, interval >= 0.05 else { throw ValidationError("--interval must be at least 0.05 seconds.") }
        if let count, count < 1 { throw ValidationError("--count must be 1 or more.") }
    }

    func run() throws {
        try reportingMailboxErrors {
            var watched: [String: TrafficMeter] = [:]
            var failures: [String: String] = [:]
            func refresh() throws(MailboxError) {
                let current = names.isEmpty ? try Mailbox.list() : names
                watched = watched.filter { current.contains($0.key) }
                failures = [:]
                for name in current where watched[name] == nil {
                    do {
                        watched[name] = TrafficMeter(try Mailbox.open(name, trust: trust.trust))
                    } catch {
                        failures[name] = error.description
                    }
                }
            }
            try refresh()
            for meter in watched.values { _ = meter.sample() }
            var last = monotonicSeconds()
            var samples = 0
            while count.map({ samples < $0 }) ?? true {
                sleepSeconds(interval)
                let now = monotonicSeconds()
                let elapsed = now - last
                last = now
                let known = Set(watched.keys)
                try refresh()
                var rows: [TopRow] = []
                for name in watched.keys.sorted() {
                    let meter = watched[name]!
                    let counts = meter.sample()
                    // A mailbox that appeared during this interval has only a baseline so far.
                    let fresh = !known.contains(name)
                    rows.append(TopRow(meter: meter, counts: counts, elapsed: elapsed, fresh: fresh))
                }
                samples += 1
                if json {
                    printLine(TopRow.json(rows, failures: failures, elapsed: elapsed).text)
                } else {
                    TopRow.printTable(rows, failures: failures, clear: isatty(STDOUT_FILENO) == 1)
                }
            }
        }
    }
}

/// Seconds on the monotonic clock.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Sleeps `seconds` (resuming after signals until the time has passed).
func sleepSeconds(_ seconds: Double) {
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
