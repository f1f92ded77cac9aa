/// How a blocking `send` or `receive` waits for space or for a message.
///
/// Waking a process whose CPU went idle costs tens of microseconds on virtual machines (about
/// 20 µs per direction on the 2-vCPU machines ShmMailbox is developed on), while a spinning
/// peer notices a change within ~100 ns. Spinning for about as long as a wake-up costs therefore
/// loses at most a factor of two and usually wins much more.
public enum WaitStrategy: Sendable, Equatable {
    /// Busy-wait with the CPU's pause hint until the operation can proceed or times out.
    /// Lowest latency; burns a core while waiting.
    case spin
    /// Sleep in the kernel (futex) at once. Uses no CPU while waiting; each wake-up costs a
    /// system call and a scheduler round trip.
    case block
    /// Spin for up to `spin`, then sleep in the kernel. While spinning it yields the CPU every
    /// few microseconds, so that a process waiting to run on it (often the peer being waited
    /// for) can; a round trip completes before the first yield.
    case adaptive(spin: Duration)

    /// `adaptive(spin: .microseconds(20))`: about the cost of one cross-CPU wake-up here.
    public static let `default` = WaitStrategy.adaptive(spin: .microseconds(20))

    /// The spin budget in nanoseconds (`UInt64.max` for `.spin`).
    var spinNanos: UInt64 {
        switch self {
        case .spin: return .max
        case .block: return 0
        case .adaptive(let spin): return MonotonicClock.nanoseconds(spin)
        }
    }
}
