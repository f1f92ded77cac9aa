#if canImport(Glibc)
import Glibc
#endif

/// Waits (at most `timeout`, checking every 2 ms) until `condition` holds; false if it never did.
/// For state another process reaches on its own time, such as an acknowledgement that follows a
/// delivery.
public func eventually(_ timeout: Duration = .seconds(10), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        usleep(2_000)
    }
    return false
}
