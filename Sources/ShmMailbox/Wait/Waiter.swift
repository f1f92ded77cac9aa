#if canImport(Glibc)
import Glibc
#endif
import CShim

/// The one blocking loop of the library, used by every blocking or timed call of `Mailbox` and
/// `Endpoint`: spin on `attempt` (with the CPU's pause hint) for as long as the wait strategy
/// allows, then sleep on an event in bounded slices, re-checking after each announcement and each
/// wake-up, until `attempt` succeeds or the deadline passes.
///
/// Sleeps are bounded (`slice`), so a dead peer — whose death nobody announces — cannot leave
/// anyone asleep for long: `tick` runs after every sleep (and every spin round) to check for one.
enum Waiter {
    /// Whether an attempt runs while spinning (cheap checks only) or just before a sleep (may
    /// also look for work that dead processes left behind).
    enum Phase {
        case spinning
        case aboutToSleep
    }

    /// Returns once `attempt` succeeded; throws `timedOut` when `deadline` (monotonic ns) passes
    /// first, or what `attempt` or `tick` throw. `sleeper` is the caller's lease entry (its bit
    /// in the event's sleeper bitmap). A caller that was woken and leaves without success passes
    /// the wake-up on, so that a notification meant for one of several sleepers is not lost.
    static func wait(strategy: WaitStrategy, deadline: UInt64, on event: EventCount, as sleeper: Int,
                     slice: () -> UInt64, tick: () throws -> Void,
                     _ attempt: (Phase) throws -> Bool) throws {
        let spinBudget = strategy.spinNanos
        if spinBudget > 0 {
            let spinEnd = MonotonicClock.now().addingSaturating(spinBudget)
            var round: UInt32 = 0
            while true {
                for _ in 0..<32 {
                    shim_cpu_pause()
                    if try attempt(.spinning) { return }
                }
                round &+= 1
                try tick()
                let now = MonotonicClock.now()
                if now >= deadline { throw MailboxError.timedOut }
                if now >= spinEnd { break }
                // Under `.spin`, let a starved peer on the same CPU run now and then.
                if round & 1023 == 0 { sched_yield() }
            }
        }
        var woken = false
        defer {
            // Leaving without success after a wake-up meant for one sleeper: pass it on.
            if woken { event.notify() }
        }
        while true {
            let (key, reliable) = event.prepareToWait(as: sleeper)
            let result: Futex.WaitResult
            do {
                if try attempt(.aboutToSleep) {
                    event.finishWait(as: sleeper)
                    woken = false
                    return
                }
                let now = MonotonicClock.now()
                guard now < deadline else { throw MailboxError.timedOut }
                // Without a working global barrier a light notifier may miss us: sleep briefly.
                result = try event.sleep(key: key, timeoutNanos: min(deadline - now, reliable ? slice() : 2_000_000))
            } catch {
                event.finishWait(as: sleeper)
                throw error
            }
            event.finishWait(as: sleeper)
            if result == .woken { woken = true }
            try tick()
            if try attempt(.spinning) {
                woken = false
                return
            }
        }
    }
}
