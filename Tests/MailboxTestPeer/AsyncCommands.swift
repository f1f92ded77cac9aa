#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import ShmMailbox

/// Runs async command `command` with `arguments` (the command first); false if unknown.
///
///   idle-async-receive NAME SECONDS   park one async receive on NAME for SECONDS (it times out),
///                                     then print "cpu MICROSECONDS": the process's CPU time
///                                     (user + system) spent meanwhile, reactor thread included
func runAsyncCommand(_ arguments: [String]) -> Bool {
    let words = PeerArguments(arguments)
    switch arguments[0] {
    case "idle-async-receive":
        let name = words.string(1)
        let seconds = words.number(2)
        let finished = DispatchSemaphore(value: 0)
        let before = processCPUMicros()
        Task {
            do {
                let box = try Mailbox.open(name)
                _ = try await box.receive(timeout: .seconds(seconds))
                fail("received a message nobody sent")
            } catch MailboxError.timedOut {
            } catch {
                fail("idle async receive: \(error)")
            }
            finished.signal()
        }
        finished.wait()
        say("cpu \(processCPUMicros() - before)")
        return true
    default:
        return false
    }
}

/// User + system CPU time of the whole process so far, in microseconds.
private func processCPUMicros() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000 + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec
}
