// Commands of the test peer for the crash-point walk (Tests/ShmMailboxTests/CrashPointTests.swift),
// called from the `default:` branch of main.swift's switch. The test arms a crash point with
// SHMMB_CRASH_AT in the peer's environment; the library kills the peer there (SIGKILL). Each
// command reports its progress on stdout, unbuffered, so the test knows what completed before
// the kill.
//
//   walk-send NAME SENDER COUNT MIN MAX BATCH  send messages 0..<COUNT (blocking), BATCH per
//                                              `Mailbox.batch` (0: no batch); print "done Q"
//                                              after each send returned
//   walk-receive NAME COUNT BATCH              receive COUNT messages (zero copy; `receiveBatch`
//                                              of up to BATCH when BATCH > 1), verifying each;
//                                              print "got S Q R" inside the body (sender,
//                                              sequence, 1 if redelivered)
//   walk-delete NAME                           Mailbox.delete(NAME); print "deleted"
//   walk-send-sync NAME TEXT                   synchronous send (30 s); print "delivered to PID"
//                                              or the error
//   fail-fills NAME COUNT                      COUNT zero-copy sends whose fill throws
//   slow-receive NAME MILLIS                   receive one message (zero copy), sleeping MILLIS
//                                              inside the body; print it
//   soak-send NAME SENDER START LOG            send messages START, START+1, … forever, in bursts
//                                              of up to 8 with a 1 ms pause; append each sequence
//                                              to LOG (8 bytes, after its send returned)
//   soak-receive NAME LOG                      receive forever, verifying each message; append
//                                              (sender u64, sequence u64 | 1 << 63 if
//                                              redelivered) to LOG inside the body
//   relay-receive NAME LOG HOLD [DIE]          receive forever as a relay does: zero copy with
//                                              `receive(timeout: 200 ms)`, verifying each message
//                                              and holding it HOLD microseconds inside the body.
//                                              Appends to LOG, each with one write(2), a record
//                                              (sender u64 | 1 << 32 if finished, sequence u64 |
//                                              1 << 63 if redelivered): "taken" inside the body,
//                                              and "finished" after the receive call RETURNED (a
//                                              message logged finished was released; one logged
//                                              taken was at least handed out). With DIE: inside
//                                              the body of message DIE (0-based), print
//                                              "holding S Q R" and SIGKILL itself
//   fork-use NAME                              send once (taking the sender role), fork; the
//                                              child tries to send with the inherited handle and
//                                              exits with `exitCode(for:)` (0 if it could); the
//                                              parent prints "child N", waits 500 ms, then sends
//                                              again

#if canImport(Glibc)
import Glibc
#endif
import MailboxTestSupport
import ShmMailbox

/// Runs a crash-walk command; false if `arguments` is not one.
func runCrashCommand(_ arguments: [String]) -> Bool {
    let command = arguments[0]
    let words = PeerArguments(arguments)
    func argument(_ index: Int) -> String { words.string(index) }
    func number(_ index: Int) -> Int { words.number(index) }
    switch command {
    case "walk-send":
        let box = openMailbox(argument(1))
        let sender = UInt32(number(2))
        let count = UInt64(number(3))
        let (minSize, maxSize, batch) = (number(4), number(5), number(6))
        var sequence: UInt64 = 0
        func sendUpTo(_ end: UInt64) {
            while sequence < end {
                let length = TestMessages.length(sender: sender, sequence: sequence, minSize: minSize, maxSize: maxSize)
                do {
                    try box.send(count: length) { TestMessages.fill(&$0, sender: sender, sequence: sequence) }
                } catch {
                    fail("send \(sequence): \(error)")
                }
                say("done \(sequence)")
                sequence += 1
            }
        }
        while sequence < count {
            let end = min(count, sequence + UInt64(max(1, batch)))
            if batch == 0 { sendUpTo(end) } else { box.batch { sendUpTo(end) } }
        }
        say("sent \(count)")
    case "walk-receive":
        let box = openMailbox(argument(1))
        let count = number(2)
        let batch = max(1, number(3))
        var received = 0
        func take(_ bytes: UnsafeRawBufferPointer, _ redelivered: Bool) throws {
            let (sender, sequence) = try TestMessages.verify(bytes)
            say("got \(sender) \(sequence) \(redelivered ? 1 : 0)")
            received += 1
        }
        while received < count {
            do {
                if batch > 1 {
                    _ = try box.receiveBatch(limit: min(batch, count - received), timeout: .seconds(30)) { bytes, _, redelivered in
                        try bytes.withUnsafeBytes { try take($0, redelivered) }
                    }
                } else {
                    try box.receive(timeout: .seconds(30)) { bytes, _, redelivered in try bytes.withUnsafeBytes { try take($0, redelivered) } }
                }
            } catch {
                fail("receive after \(received): \(error)")
            }
        }
        say("received \(received)")
    case "walk-delete":
        do {
            try Mailbox.delete(argument(1))
            say("deleted")
        } catch {
            fail("delete: \(error)")
        }
    case "walk-send-sync":
        let box = openMailbox(argument(1))
        do {
            let delivery = try box.send(argument(2), timeout: .seconds(30), until: .received)
            say("delivered to \(delivery?.receiver.pid ?? 0)")
        } catch {
            say("\(error)")
            exit(exitCode(for: error))
        }
    case "soak-send":
        let box = openMailbox(argument(1))
        let sender = UInt32(number(2))
        var sequence = UInt64(number(3))
        let log = openLog(argument(4))
        var burst = 0
        while true {
            let length = TestMessages.length(sender: sender, sequence: sequence, minSize: TestMessages.headerSize, maxSize: 200)
            do {
                try box.send(count: length) { TestMessages.fill(&$0, sender: sender, sequence: sequence) }
            } catch {
                fail("send \(sequence): \(error)")
            }
            append(log, sequence)
            sequence += 1
            burst += 1
            if burst >= Int(sequence % 8) + 1 {
                burst = 0
                sleepMillis(1)
            }
        }
    case "soak-receive":
        let box = openMailbox(argument(1))
        let log = openLog(argument(2))
        while true {
            do {
                _ = try box.receiveBatch(limit: 8, timeout: .seconds(600)) { bytes, _, redelivered in
                    let (sender, sequence) = try TestMessages.verify(bytes)
                    // One write(2) per record, so a kill never leaves half of one.
                    var record: (UInt64, UInt64) = (UInt64(sender), sequence | (redelivered ? 1 << 63 : 0))
                    _ = withUnsafeBytes(of: &record) { write(log, $0.baseAddress, 16) }
                }
            } catch {
                fail("receive: \(error)")
            }
        }
    case "relay-receive":
        let box = openMailbox(argument(1))
        let log = openLog(argument(2))
        let hold = UInt32(number(3))
        let dieAt = arguments.count > 4 ? number(4) : -1
        var taken = 0
        say("ready")
        while true {
            let finished: (sender: UInt32, sequence: UInt64, redelivered: Bool)
            do {
                finished = try box.receive(timeout: .milliseconds(200)) { bytes, _, redelivered in
                    let (sender, sequence) = try TestMessages.verify(bytes)
                    var record: (UInt64, UInt64) = (UInt64(sender), sequence | (redelivered ? 1 << 63 : 0))
                    _ = withUnsafeBytes(of: &record) { write(log, $0.baseAddress, 16) }
                    if taken == dieAt {
                        say("holding \(sender) \(sequence) \(redelivered ? 1 : 0)")
                        kill(getpid(), SIGKILL)
                    }
                    taken += 1
                    if hold > 0 { usleep(hold) }
                    return (sender, sequence, redelivered)
                }
            } catch MailboxError.timedOut {
                continue
            } catch {
                fail("receive: \(error)")
            }
            // Logged finished only after the receive call returned (the slot was released).
            var record: (UInt64, UInt64) = (UInt64(finished.sender) | 1 << 32, finished.sequence | (finished.redelivered ? 1 << 63 : 0))
            _ = withUnsafeBytes(of: &record) { write(log, $0.baseAddress, 16) }
        }
    case "fail-fills":
        // Zero-copy sends whose fill throws, COUNT of them (each gives its slot back at once).
        let box = openMailbox(argument(1))
        struct Refused: Error {}
        var refused = 0
        for _ in 0..<number(2) {
            do {
                try box.send(count: 8, timeout: .seconds(5)) { _ in throw Refused() }
            } catch is Refused {
                refused += 1
            } catch {
                fail("send: \(error)")
            }
        }
        say("refused \(refused)")
    case "slow-receive":
        let box = openMailbox(argument(1))
        let millis = number(2)
        do {
            let text = try box.receive(timeout: .seconds(30)) { bytes, _ in
                sleepMillis(millis)
                return bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            }
            say(text)
        } catch {
            fail("receive: \(error)")
        }
    case "fork-use":
        let box = openMailbox(argument(1))
        do { try box.send("parent before fork") } catch { fail("send: \(error)") }
        let child = fork()
        if child == 0 {
            do {
                try box.send("child")
                exit(0)
            } catch {
                // Closing (or dropping) the inherited handle must not give up the parent's role.
                box.close()
                exit(exitCode(for: error))
            }
        }
        var status: Int32 = 0
        waitpid(child, &status, 0)
        say("child \((status >> 8) & 0xFF)")
        sleepMillis(500)  // still holding the role, for the test to look at
        do { try box.send("parent after fork") } catch { fail("send after fork: \(error)") }
    default:
        return false
    }
    return true
}

/// Opens (creating) a log file for appending.
func openLog(_ path: String) -> Int32 {
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard fd >= 0 else { fail("cannot open \(path)") }
    return fd
}

/// Appends `value` (8 bytes) to `fd` with one write(2), which a kill cannot tear.
func append(_ fd: Int32, _ value: UInt64) {
    var value = value
    _ = withUnsafeBytes(of: &value) { write(fd, $0.baseAddress, 8) }
}
