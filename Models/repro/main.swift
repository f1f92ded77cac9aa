// A small driver that replays the SPIN models' findings against the real library (see
// Models/repro/run.sh and Models/README.md, "Findings"). Not part of the package: run.sh builds
// it in a scratch copy of the package. Public API only; deaths come from the library's crash
// points (SHMMB_CRASH_AT, debug builds).
//
//   create NAME oneToOne|shared CAPACITY MAXSIZE
//   send NAME TEXT...              (TEXT "@N" is N bytes of "x"; 5 s timeout each)
//   send-fail NAME COUNT           zero-copy sends whose fill throws (nothing is sent)
//   send-sync-timeout NAME COUNT   synchronous sends with timeout .zero that nobody takes
//   receive NAME COUNT             prints each message and its redelivered mark (5 s timeout)
//   receive-batch NAME             receiveBatch, printing each message and its mark
//   try-receive NAME
//   delete NAME
#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

struct FillFailed: Error {}

func say(_ text: String) {
    let line = Array((text + "\n").utf8)
    _ = line.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

func show(_ text: String) -> String { text.count > 8 ? "\(text.count) bytes" : text }

func timedOutSyncSends(_ box: Mailbox, _ count: Int) -> Int {
    var timedOut = 0
    for _ in 0..<count {
        do { _ = try box.send("s", timeout: .zero, until: .received) } catch { timedOut += 1 }
    }
    return timedOut
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first ?? "" {
    case "create":
        let kind: MailboxOptions.RingKind = arguments[2] == "shared" ? .shared : .oneToOne
        let options = MailboxOptions(capacity: .bounded(Int(arguments[3])!), maxMessageSize: Int(arguments[4])!, kind: kind)
        _ = try Mailbox.create(arguments[1], options: options)
        say("created \(arguments[2]) mailbox, capacity \(arguments[3]), maxMessageSize \(arguments[4])")
    case "send":
        let box = try Mailbox.open(arguments[1])
        for text in arguments.dropFirst(2) {
            let message = text.hasPrefix("@") ? String(repeating: "x", count: Int(text.dropFirst())!) : text
            try box.send(message, timeout: .seconds(5))
            say("sent \(show(message))")
        }
    case "send-fail":
        let box = try Mailbox.open(arguments[1])
        var failed = 0
        for _ in 0..<Int(arguments[2])! {
            do { try box.send(count: 8, timeout: .seconds(5)) { _ in throw FillFailed() } } catch is FillFailed { failed += 1 }
        }
        say("\(failed) zero-copy sends whose fill threw")
    case "send-sync-timeout":
        let box = try Mailbox.open(arguments[1])
        say("\(timedOutSyncSends(box, Int(arguments[2])!)) synchronous sends not taken")
    case "receive":
        let box = try Mailbox.open(arguments[1])
        for _ in 0..<Int(arguments[2])! {
            let message = try box.receive(timeout: .seconds(5))
            say("received \(show(message.string)), redelivered: \(message.isRedelivered)")
        }
    case "receive-batch":
        let box = try Mailbox.open(arguments[1])
        let count = try box.receiveBatch(timeout: .seconds(5)) { bytes, _, redelivered in
            say("batch: received \(show(bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) })), redelivered: \(redelivered)")
        }
        say("batch of \(count)")
    case "try-receive":
        let box = try Mailbox.open(arguments[1])
        if let message = try box.tryReceive() {
            say("received \(show(message.string)), redelivered: \(message.isRedelivered)")
        } else {
            say("empty")
        }
    case "delete":
        try Mailbox.delete(arguments[1])
    default:
        say("unknown command")
        exit(2)
    }
} catch {
    say("error: \(error)")
    exit(3)
}
