#if canImport(Glibc)
import Glibc
#endif
import MailboxTestSupport
import ShmMailbox
@_spi(Testing) import ShmMailboxNATS

// A helper process the remote-mailbox tests spawn (also inside network namespaces, as another
// host). Every message it sends is a self-checking `TestMessages` record (sender, sequence,
// checksum); every message it receives is verified byte for byte.
//
//   NATSTestPeer send URLS NAME SENDER COUNT [MIN MAX [BATCH]]   send COUNT messages (in `batch`
//                                                         calls of BATCH, default 1), print "SENT n"
//                                                         (n: how many were sent, also when a send failed)
//   NATSTestPeer receive URLS NAME COUNT [IDLE_MS]        receive until COUNT came or none for
//                                                         IDLE_MS (default 60 s), print "GOT s q r"
//                                                         each (r: 1 if redelivered)
//   NATSTestPeer own[-system] URLS NAME                   create NAME owned by this process (or by
//                                                         the system, this process its owner), print
//                                                         "OWNING", wait to be killed
//   NATSTestPeer endpoint-send URLS ME TO SENDER COUNT    join as endpoint ME, send COUNT to TO
//   NATSTestPeer create URLS NAME CAPACITY REPLICAS REDELIVERY_MS [KEY=VALUE …]   make a mailbox
//                                                         (CAPACITY a number or "unbounded"; the
//                                                         options of `Options.swift`), print "CREATED"
//   NATSTestPeer sync-send URLS NAME SENDER COUNT         send each until received, print
//                                                         "RECEIPT pid" per message
//   NATSTestPeer endpoint-receive URLS ME COUNT [IDLE_MS] join as ME, receive from anyone, print
//                                                         "GOT s q from"
//   NATSTestPeer hold URLS NAME                           take one message, print "HOLDING s q",
//                                                         never finish (the test kills it)
//   NATSTestPeer pack-stop URLS NAME POINT N              receive one message per call, print "GOT s q r"
//                                                         each; at the Nth pass through the pack
//                                                         protocol's POINT (`testingPackPoint`) print
//                                                         "AT POINT" and stop there (the test kills it)
//   NATSTestPeer session URLS NAME CONTROL [KEY=VALUE …]  open NAME (create it with the options if
//                                                         any), then run the steps appended to the
//                                                         file CONTROL one by one (Session.swift)
// URLS is a comma-separated list. Exit 0 when done, 2 on a verification failure, 1 on an error
// (also printed on standard output as "ERROR case description").

func line(_ text: String) {
    var text = text + "\n"
    text.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
}

func fail(_ text: String, status: Int32 = 1) -> Never {
    var text = "NATSTestPeer: \(text)\n"
    text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    exit(status)
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 3 else { fail("usage: send|receive|hold URLS NAME …") }
let urls = arguments[1].split(separator: ",").map(String.init)
let name = arguments[2]

do {
    let connection = try NATSConnection(urls, options: NATSConnection.Options(name: "NATSTestPeer"))
    if arguments[0] == "endpoint-send" {
        guard arguments.count >= 6, let sender = UInt32(arguments[4]), let count = Int(arguments[5]) else { fail("endpoint-send: bad arguments") }
        let me = try RemoteEndpoint.join(name, on: connection)
        for sequence in 0..<UInt64(count) {
            let length = TestMessages.length(sender: sender, sequence: sequence, minSize: 24, maxSize: 512)
            try me.send(to: arguments[3], TestMessages.make(sender: sender, sequence: sequence, length: length))
        }
        line("SENT \(count)")
        me.close()
        exit(0)
    }
    if arguments[0] == "create" {
        guard arguments.count >= 6 else { fail("create: bad arguments") }
        let options = mailboxOptions(["capacity=\(arguments[3])", "replicas=\(arguments[4])", "redelivery=\(arguments[5])"]
                                     + arguments.dropFirst(6))
        _ = try RemoteMailbox.create(name, on: connection, options: options)
        line("CREATED")
        exit(0)
    }
    if arguments[0] == "endpoint-receive" {
        guard arguments.count >= 4, let count = Int(arguments[3]) else { fail("endpoint-receive: bad arguments") }
        let idle = Duration.milliseconds(arguments.count > 4 ? Int(arguments[4]) ?? 60_000 : 60_000)
        let me = try RemoteEndpoint.join(name, on: connection)
        line("JOINED")
        for _ in 0..<count {
            try me.receive(timeout: idle) { bytes, from in
                guard let (sender, sequence) = try? TestMessages.verify(bytes) else { fail("corrupt message", status: 2) }
                line("GOT \(sender) \(sequence) \(from)")
            }
        }
        line("DONE")
        me.close()
        exit(0)
    }
    if arguments[0] == "own" || arguments[0] == "own-system" {
        let ownership: MailboxOptions.Ownership = arguments[0] == "own" ? .process : .system
        let owned = try RemoteMailbox.create(name, on: connection, options: RemoteMailboxOptions(ownership: ownership))
        line("OWNING \(owned.name)")
        while true { sleep(60) }
    }
    if arguments[0] == "session" {
        guard arguments.count >= 4 else { fail("session: bad arguments") }
        let creating = arguments.count > 4
        let box = creating ? try RemoteMailbox.create(name, on: connection, options: mailboxOptions(Array(arguments.dropFirst(4))))
                           : try RemoteMailbox.open(name, on: connection)
        runSession(box, control: arguments[3])
    }
    let box = try RemoteMailbox.open(name, on: connection)
    switch arguments[0] {
    case "send":
        guard arguments.count >= 5, let sender = UInt32(arguments[3]), let count = Int(arguments[4]) else { fail("send: bad arguments") }
        let minSize = arguments.count > 5 ? Int(arguments[5]) ?? 24 : 24
        let maxSize = arguments.count > 6 ? Int(arguments[6]) ?? 256 : 256
        let batch = arguments.count > 7 ? Int(arguments[7]) ?? 1 : 1
        var sent = 0
        defer { line("SENT \(sent)") }
        for start in stride(from: 0, to: count, by: batch) {
            let sending = { () throws in
                for sequence in UInt64(start)..<UInt64(min(start + batch, count)) {
                    let length = TestMessages.length(sender: sender, sequence: sequence, minSize: minSize, maxSize: maxSize)
                    try box.send(TestMessages.make(sender: sender, sequence: sequence, length: length))
                }
            }
            if batch > 1 { try box.batch(sending) } else { try sending() }
            sent = min(start + batch, count)
        }
    case "receive":
        guard arguments.count >= 4, let count = Int(arguments[3]) else { fail("receive: bad arguments") }
        let idle = Duration.milliseconds(arguments.count > 4 ? Int(arguments[4]) ?? 60_000 : 60_000)
        func receiveOne(_ idle: Duration) throws {
            try box.receive(timeout: idle) { bytes, _, redelivered in
                do {
                    let (sender, sequence) = try TestMessages.verify(bytes)
                    line("GOT \(sender) \(sequence) \(redelivered ? 1 : 0)")
                } catch {
                    fail("corrupt message: \(error)", status: 2)
                }
            }
        }
        for _ in 0..<count {
            do {
                try receiveOne(idle)
            } catch RemoteMailboxError.timedOut {
                break
            }
        }
        line("DONE")
    case "sync-send":
        guard arguments.count >= 5, let sender = UInt32(arguments[3]), let count = Int(arguments[4]) else { fail("sync-send: bad arguments") }
        for sequence in 0..<UInt64(count) {
            let length = TestMessages.length(sender: sender, sequence: sequence, minSize: 24, maxSize: 256)
            let delivery = try box.send(TestMessages.make(sender: sender, sequence: sequence, length: length),
                                        timeout: .seconds(30), until: .received)
            line("RECEIPT \(delivery?.receiver.pid ?? 0)")
        }
    case "pack-stop":
        #if DEBUG
        guard arguments.count >= 5, let stopAt = Int(arguments[4]) else { fail("pack-stop: bad arguments") }
        let point = arguments[3]
        nonisolated(unsafe) var passes = 0
        box.testingPackPoint = { reached in
            guard reached == point else { return }
            passes += 1
            guard passes == stopAt else { return }
            line("AT \(point)")
            while true { sleep(60) }
        }
        while true {
            try box.receive(timeout: .seconds(30)) { bytes, _, redelivered in
                guard let (sender, sequence) = try? TestMessages.verify(bytes) else { fail("corrupt message", status: 2) }
                line("GOT \(sender) \(sequence) \(redelivered ? 1 : 0)")
            }
        }
        #else
        fail("pack-stop needs a debug build (its stop points are DEBUG hooks)")
        #endif
    case "hold":
        try box.receive { bytes, _ in
            guard let (sender, sequence) = try? TestMessages.verify(bytes) else { fail("corrupt message", status: 2) }
            line("HOLDING \(sender) \(sequence)")
            while true { sleep(60) }
        }
    default:
        fail("unknown command \(arguments[0])")
    }
} catch {
    line("ERROR \(errorCase(error)) \(error)")
    fail("\(error)")
}
