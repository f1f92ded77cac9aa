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
@usableFromInline
enum Waiter {
    /// Whether an attempt runs while spinning (cheap checks only) or just before a sleep (may
    /// also look for work that dead processes left behind).
    @usableFromInline
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
            // Rounds of 32 attempts between two `sched_yield`s. A spinning waiter holds a CPU
            // that the peer it waits for may need: with more runnable processes than CPUs (four
            // senders into one receiver on two CPUs), senders spinning for room left the
            // receiver half a CPU. `.adaptive` yields every 4 rounds (a few µs), which a round
            // trip never reaches and which costs one system call when nobody else wants the CPU;
            // `.spin`, chosen for dedicated CPUs, every 1024.
            let yieldMask: UInt32 = spinBudget == .max ? 1023 : 3
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
                if round & yieldMask == 0 { sched_yield() }
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

extension Waiter {
    /// The most an async call spins on a cooperative thread before it parks its task, whatever
    /// the wait strategy: long enough to catch a peer that answers at once (a round trip here is
    /// well under this), short enough never to hold a pool thread for long.
    static let asyncSpinCapNanos: UInt64 = 20_000

    /// `wait` for async callers: the same loop (attempt, spin briefly, announce, re-check, sleep
    /// in bounded slices, tick), except that the task parks in the process's `WaitReactor`
    /// instead of sleeping in the kernel, so no cooperative thread ever blocks. A cancelled task
    /// throws `CancellationError` at its next check (within one reactor wake-up); `attempt`
    /// never runs after that, so nothing is taken or sent once cancellation is seen.
    /// `keepAlive` keeps the event's mapping alive while the reactor watches its word.
    nonisolated(nonsending)
    static func waitAsync(strategy: WaitStrategy, deadline: UInt64, on event: EventCount, as sleeper: Int,
                          keepAlive: WaitReactor.KeepAlive, slice: () -> UInt64, tick: () throws -> Void,
                          _ attempt: (Phase) throws -> Bool) async throws {
        let spinBudget = min(strategy.spinNanos, asyncSpinCapNanos)
        if spinBudget > 0 {
            let spinEnd = MonotonicClock.now().addingSaturating(spinBudget)
            while true {
                for _ in 0..<32 {
                    shim_cpu_pause()
                    if try attempt(.spinning) { return }
                }
                try Task.checkCancellation()
                let now = MonotonicClock.now()
                if now >= deadline { throw MailboxError.timedOut }
                if now >= spinEnd { break }
            }
        }
        var woken = false
        defer {
            // Leaving without success after a wake-up meant for one sleeper: pass it on.
            if woken { event.notify() }
        }
        while true {
            try Task.checkCancellation()
            let (key, reliable) = event.prepareToWait(as: sleeper)
            let outcome: AsyncWaitOutcome
            do {
                if try attempt(.aboutToSleep) {
                    event.finishWait(as: sleeper)
                    woken = false
                    return
                }
                let now = MonotonicClock.now()
                guard now < deadline else { throw MailboxError.timedOut }
                // Without a working global barrier a light notifier may miss us: park briefly.
                let until = now.addingSaturating(reliable ? slice() : 2_000_000)
                outcome = await WaitReactor.shared.wait(on: event.word, expected: key, deadline: min(deadline, until),
                                                        keepAlive: keepAlive)
            } catch {
                event.finishWait(as: sleeper)
                throw error
            }
            event.finishWait(as: sleeper)
            switch outcome {
            case .changed: woken = true
            case .cancelled: throw CancellationError()
            case .timedOut: break
            }
            try tick()
            try Task.checkCancellation()
            if try attempt(.spinning) {
                woken = false
                return
            }
        }
    }
}
