// A peer process for the multi-process tests. Each command opens a mailbox by name, does one
// job, reports on stdout, and exits 0 on success or 1 (with a reason on stderr) on failure.
//
//   send NAME SENDER COUNT MIN MAX [BATCH [many]]   send messages 0..<COUNT (COUNT -1: forever),
//                                             BATCH at a time inside `Mailbox.batch` if given, or
//                                             (`many`, MIN = MAX) through `trySendBatch`, waiting
//                                             in `send` for room whenever it sends fewer
//   receive NAME COUNT OUTFILE               receive COUNT messages (or until a stop message),
//                                             verify each, write "sender sequence" lines to OUTFILE
//   receive-sequence NAME SENDER COUNT MIN MAX   receive exactly messages 0..<COUNT of SENDER, in order
//   die-in-send NAME                         claim space for a message, then SIGKILL itself
//   die-in-receive NAME                      take a message, then SIGKILL itself
//   open NAME [any-user]                     open (with `trust: .anyUser`); print "ok", or the
//                                            error and exit with `exitCode(for:)`
//   own NAME CAPACITY [MILLIS]               create a process-owned mailbox, print "ready", then
//                                            sleep (forever, or MILLIS and then close it and exit)
//   own-system NAME                          create a system-owned mailbox, print "created", exit
//   receive-one NAME [wait]                  receive one message (10 s at most) and print it;
//                                            `wait` waits for an exclusive mailbox's turn
//   send-sync NAME TEXT                      send TEXT until received; print "delivered to PID"
//   sleep-then-send NAME MILLIS TEXT         sleep, then send TEXT
//   sleep-then-receive NAME MILLIS COUNT     sleep, then receive COUNT messages and print them
//   exhaust NAME SEGMENT MAXSIZE             create an unbounded mailbox (segments of SEGMENT
//                                            messages), send until `outOfSharedMemory`, then
//                                            check that every message sent is there, in order,
//                                            and that sending works again once drained
//   send-rate NAME RATE COUNT                send COUNT messages at RATE per second (RateCommands.swift)
//
// Environment: PEER_STRATEGY=spin|block|adaptive picks the wait strategy (default adaptive).

#if canImport(Glibc)
import Glibc
#endif
import MailboxTestSupport
import ShmMailbox

func fail(_ message: String) -> Never {
    let line = Array("MailboxTestPeer: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(1)
}

func strategy() -> WaitStrategy {
    switch getenv("PEER_STRATEGY").map({ String(cString: $0) }) {
    case "spin": return .spin
    case "block": return .block
    default: return .default
    }
}

/// Prints `text` and a newline straight to file descriptor 1 (unbuffered, so a parent sees it
/// even if this process is killed right after).
func say(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

func openMailbox(_ name: String) -> Mailbox {
    do {
        return try Mailbox.open(name, waitStrategy: strategy())
    } catch {
        fail("open \(name): \(error)")
    }
}

/// Exit statuses the tests read: 3 permission denied, 4 not found, 5 owner terminated,
/// 6 not permitted, 7 receiver busy, 8 role taken, 13 receiver died, 14 delivery unconfirmed,
/// 15 untrusted owner, 16 unsafe permissions, 17 deleted, 18 inherited across fork, 2 any other
/// error.
func exitCode(for error: MailboxError) -> Int32 {
    switch error {
    case .receiverDied: return 13
    case .deliveryUnconfirmed: return 14
    case .untrustedOwner: return 15
    case .unsafePermissions: return 16
    case .deleted: return 17
    case .inheritedAcrossFork: return 18
    case .permissionDenied: return 3
    case .notFound: return 4
    case .ownerTerminated: return 5
    case .notPermitted: return 6
    case .receiverBusy: return 7
    case .roleTaken: return 8
    default: return 2
    }
}

func sleepMillis(_ millis: Int) {
    var request = timespec(tv_sec: millis / 1000, tv_nsec: (millis % 1000) * 1_000_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else { fail("no command") }
func argument(_ index: Int) -> String { PeerArguments(arguments).string(index) }
func number(_ index: Int) -> Int { PeerArguments(arguments).number(index) }


switch command {
case "send":
    let box = openMailbox(argument(1))
    let sender = UInt32(number(2))
    let count = number(3)
    let minSize = number(4)
    let maxSize = number(5)
    let batch = arguments.count > 6 ? number(6) : 1
    let many = arguments.count > 7 && argument(7) == "many"
    if many && minSize != maxSize { fail("send ... many: MIN and MAX must be equal") }
    var sequence: UInt64 = 0
    func sendOne() {
        let length = TestMessages.length(sender: sender, sequence: sequence, minSize: minSize, maxSize: maxSize)
        do {
            try box.send(count: length) { TestMessages.fill(&$0, sender: sender, sequence: sequence) }
        } catch {
            fail("send \(sequence): \(error)")
        }
        sequence += 1
    }
    while count < 0 || sequence < UInt64(count) {
        if many {
            let first = sequence
            let wanted = count < 0 ? batch : min(batch, count - Int(first))
            do {
                let sent = try box.trySendBatch(messages: wanted, bytesEach: minSize) { index, span in
                    TestMessages.fill(&span, sender: sender, sequence: first + UInt64(index))
                }
                sequence += UInt64(sent)
                if sent < wanted { sendOne() }   // full: wait for room
            } catch {
                fail("trySendBatch from \(first): \(error)")
            }
        } else if batch > 1 {
            let end = count < 0 ? sequence + UInt64(batch) : min(UInt64(count), sequence + UInt64(batch))
            box.batch { while sequence < end { sendOne() } }
        } else {
            sendOne()
        }
    }
    say("sent \(sequence)")

case "open-or-create-send":
    // openOrCreate(NAME) with the options the test uses too, then COUNT checked messages from
    // SENDER: runs before or after the test's own openOrCreate.
    let box: Mailbox
    do {
        box = try Mailbox.openOrCreate(argument(1), options: MailboxOptions(capacity: 8, maxMessageSize: 64))
    } catch {
        fail("openOrCreate: \(error)")
    }
    let sender = UInt32(number(2))
    for sequence in 0..<UInt64(number(3)) {
        let length = TestMessages.length(sender: sender, sequence: sequence, minSize: 8, maxSize: 64)
        do {
            try box.send(count: length) { TestMessages.fill(&$0, sender: sender, sequence: sequence) }
        } catch {
            fail("send \(sequence): \(error)")
        }
    }
    say("sent \(number(3))")

case "receive":
    let box = openMailbox(argument(1))
    let count = number(2)
    let path = argument(3)
    var lastSequence: [UInt32: UInt64] = [:]
    var lines = ""
    var received = 0
    while count < 0 || received < count {
        let outcome: (UInt32, UInt64)
        do {
            outcome = try box.receive(timeout: .seconds(60)) { bytes, _ in try TestMessages.verify(bytes) }
        } catch {
            fail("receive after \(received) messages: \(error)")
        }
        let (sender, sequence) = outcome
        if sender == TestMessages.stopSender { break }
        if let last = lastSequence[sender], sequence <= last {
            fail("sender \(sender): message \(sequence) arrived after \(last)")
        }
        lastSequence[sender] = sequence
        lines += "\(sender) \(sequence)\n"
        received += 1
    }
    guard let file = fopen(path, "w") else { fail("cannot write \(path)") }
    fputs(lines, file)
    fclose(file)
    say("received \(received)")

case "receive-log":
    // Receives until COUNT messages came or none for IDLE_MS, logging "sender sequence
    // redelivered" per message, every byte verified, order not required (a relay killed and
    // restarted may deliver a redelivered message after later ones).
    let box = openMailbox(argument(1))
    let count = number(2)
    let idle = Duration.milliseconds(number(3))
    var received = 0
    while received < count {
        do {
            let (sender, sequence, redelivered) = try box.receive(timeout: idle) { bytes, _, redelivered in
                let (sender, sequence) = try TestMessages.verify(bytes)
                return (sender, sequence, redelivered)
            }
            say("GOT \(sender) \(sequence) \(redelivered ? 1 : 0)")
            received += 1
        } catch MailboxError.timedOut {
            break
        } catch {
            fail("receive after \(received) messages: \(error)")
        }
    }
    say("received \(received)")

case "receive-sequence":
    let box = openMailbox(argument(1))
    let sender = UInt32(number(2))
    let count = number(3)
    let minSize = number(4)
    let maxSize = number(5)
    for sequence in 0..<UInt64(count) {
        let length = TestMessages.length(sender: sender, sequence: sequence, minSize: minSize, maxSize: maxSize)
        do {
            try box.receive(timeout: .seconds(60)) { bytes, _ in
                try TestMessages.verify(bytes, sender: sender, sequence: sequence, length: length)
            }
        } catch {
            fail("message \(sequence): \(error)")
        }
    }
    say("received \(count)")

case "die-in-send":
    let box = openMailbox(argument(1))
    say("claiming")
    _ = try? box.send(count: 64) { buffer in
        // Half-written message, never committed.
        buffer.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xEE) }
        kill(getpid(), SIGKILL)
    }
    fail("still alive after SIGKILL")

case "die-in-receive":
    let box = openMailbox(argument(1))
    say("taking")
    _ = try? box.receive(timeout: .seconds(30)) { _, _ in kill(getpid(), SIGKILL) }
    fail("still alive after SIGKILL")

case "open":
    do {
        _ = try Mailbox.open(argument(1), trust: arguments.count > 2 && arguments[2] == "any-user" ? .anyUser : .sameUser)
        say("ok")
    } catch {
        say("\(error)")
        exit(exitCode(for: error))
    }

case "own":
    let box: Mailbox
    do {
        box = try Mailbox.create(argument(1), options: MailboxOptions(capacity: .bounded(number(2)), maxMessageSize: 64, ownership: .process))
    } catch {
        fail("create: \(error)")
    }
    say("ready")
    if arguments.count > 3 {
        sleepMillis(number(3))
        box.close()
        say("closed")
    } else {
        while true { pause() }
    }

case "own-system":
    // A system-owned mailbox whose creator (its owner) exits without handing it on.
    do {
        _ = try Mailbox.create(argument(1), options: MailboxOptions(capacity: 4, maxMessageSize: 64, ownership: .system))
    } catch {
        fail("create: \(error)")
    }
    say("created")

case "receive-one":
    let box = openMailbox(argument(1))
    if arguments.count > 2 && arguments[2] == "wait" { box.whenReceiverBusy = .wait }
    do {
        say(try box.receive(timeout: .seconds(10)).string)
    } catch {
        say("\(error)")
        exit(exitCode(for: error))
    }

case "send-sync":
    let box = openMailbox(argument(1))
    do {
        let delivery = try box.send(argument(2), timeout: .seconds(30), until: .received)
        say("delivered to \(delivery?.receiver.pid ?? 0)")
    } catch {
        say("\(error)")
        exit(exitCode(for: error))
    }

case "send-then-hold":
    // Says "identity PID STARTTIME" (its ProcessIdentity), sends TEXT into NAME and holds its
    // handle (and so the sender role of a one-to-one mailbox) until a message arrives in GO:
    // "receive": receives one message from NAME and says it; "close": sends SECOND into NAME,
    // closes its handle (giving up the sender role) and says "closed"; anything else: exits.
    let box = openMailbox(argument(1))
    let go = openMailbox(argument(2))
    let me = ProcessIdentity.current()
    say("identity \(me.pid) \(me.startTime)")
    do { try box.send(argument(3)) } catch { fail("send: \(error)") }
    let order: String
    do { order = try go.receive(timeout: .seconds(60)).string } catch { fail("receive from \(argument(2)): \(error)") }
    switch order {
    case "receive":
        do { say(try box.receive(timeout: .seconds(30)).string) } catch { fail("receive: \(error)") }
    case "close":
        do { try box.send(argument(4)) } catch { fail("send: \(error)") }
        box.close()
        say("closed")
    default:
        break
    }

case "sleep-then-send":
    let box = openMailbox(argument(1))
    sleepMillis(number(2))
    do { try box.send(argument(3)) } catch { fail("send: \(error)") }
    say("sent")

case "sleep-then-receive":
    let box = openMailbox(argument(1))
    sleepMillis(number(2))
    for _ in 0..<number(3) {
        do { say(try box.receive(timeout: .seconds(30)).string) } catch { fail("receive: \(error)") }
    }

case "exhaust":
    exhaust(name: argument(1), segmentCapacity: number(2), maxSize: number(3))

default:
    guard runEndpointCommand(arguments) || runCrashCommand(arguments) || runRateCommand(arguments)
            || runAsyncCommand(arguments) else { fail("unknown command \(command)") }
}
