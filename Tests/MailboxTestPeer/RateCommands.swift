#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

/// Runs rate command `command` with `arguments` (the command first); false if unknown.
///
///   send-rate NAME RATE COUNT    send COUNT short messages at RATE per second, each at its
///                                scheduled time (start + i / RATE, so a late one is caught up),
///                                then print "sent COUNT"
func runRateCommand(_ arguments: [String]) -> Bool {
    let words = PeerArguments(arguments)
    switch arguments[0] {
    case "send-rate":
        let box = openMailbox(words.string(1))
        let rate = Double(words.number(2))
        let count = words.number(3)
        let start = monotonicNanos()
        for index in 0..<count {
            let due = start + UInt64(Double(index) / rate * 1e9)
            let now = monotonicNanos()
            if due > now {
                var pause = timespec(tv_sec: Int((due - now) / 1_000_000_000), tv_nsec: Int((due - now) % 1_000_000_000))
                var left = timespec()
                while nanosleep(&pause, &left) != 0 && errno == EINTR { pause = left }
            }
            do { try box.send("m\(index)") } catch { fail("send \(index): \(error)") }
        }
        say("sent \(count)")
        return true
    default:
        return false
    }
}

