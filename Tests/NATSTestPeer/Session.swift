#if canImport(Glibc)
import Glibc
#endif
import MailboxTestSupport
import ShmMailboxNATS

// `session`: one mailbox handle that a test drives step by step, to interleave what processes on
// several hosts do. The test appends numbered lines "N STEP …" to the file CONTROL; each step
// prints "BEGIN N", its lines, then "END N MS OK" or "END N MS ERROR case description" (MS: how
// long the step took). Steps (S a sender id, messages are `TestMessages` with sequence FROM…):
//
//   send S FROM COUNT [TIMEOUT_MS]   send each (blocking, or with a timeout)
//   try-send S FROM COUNT            try-send each until one is refused; print "ACCEPTED n"
//   receive COUNT [IDLE_MS]          receive and verify COUNT, print "GOT s q r" each
//   wait-busy                        wait for the receive turn from now on (`whenReceiverBusy`)
//   depth                            print "DEPTH n"
//   owner                            print "OWNER pid" (system ownership)
//   grant PID | transfer PID         grant receive rights / ownership to process PID of this host name
//   reclaim                          reclaim a system-owned mailbox whose owner has gone
//   close                            close the handle (the process stays until killed)

/// Runs the steps of `control` on `box` until killed.
func runSession(_ box: RemoteMailbox, control: String) -> Never {
    line("READY")
    var done = 0
    while true {
        let steps = readControl(control)
        while done < steps.count {
            let words = steps[done].split(separator: " ").map(String.init)
            line("BEGIN \(done)")
            let start = ContinuousClock.now
            let outcome: String
            do {
                try runStep(box, words)
                outcome = "OK"
            } catch {
                outcome = "ERROR \(errorCase(error)) \(error)"
            }
            let elapsed = (ContinuousClock.now - start).components
            line("END \(done) \(elapsed.seconds * 1000 + elapsed.attoseconds / 1_000_000_000_000_000) \(outcome)")
            done += 1
        }
        usleep(10_000)
    }
}

/// The complete lines of `path` ("N STEP …", N counting from 0) as steps, in order.
private func readControl(_ path: String) -> [String] {
    guard let file = fopen(path, "r") else { return [] }
    defer { fclose(file) }
    var text: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count <= 0 { break }
        text += chunk[0..<count]
    }
    let complete = text.lastIndex(of: UInt8(ascii: "\n")).map { Array(text[...$0]) } ?? []
    return String(decoding: complete, as: UTF8.self).split(separator: "\n").enumerated().map { index, step in
        let words = step.split(separator: " ", maxSplits: 1)
        guard words.count == 2, Int(words[0]) == index else { fail("control line \(index) is '\(step)'") }
        return String(words[1])
    }
}

private func runStep(_ box: RemoteMailbox, _ words: [String]) throws {
    func argument(_ index: Int) -> Int {
        guard index < words.count, let value = Int(words[index]) else { fail("step \(words): argument \(index)") }
        return value
    }
    func message(_ sender: Int, _ sequence: UInt64) -> [UInt8] {
        let length = TestMessages.length(sender: UInt32(sender), sequence: sequence, minSize: 24, maxSize: 256)
        return TestMessages.make(sender: UInt32(sender), sequence: sequence, length: length)
    }
    func process(_ pid: Int) -> RemoteSender { RemoteSender(host: RemoteSender.current.host, pid: Int32(pid)) }
    switch words.first {
    case "send":
        let timeout = words.count > 4 ? Duration.milliseconds(argument(4)) : nil
        for sequence in UInt64(argument(2))..<UInt64(argument(2) + argument(3)) {
            try box.send(message(argument(1), sequence), timeout: timeout)
        }
    case "try-send":
        var accepted = 0
        for sequence in UInt64(argument(2))..<UInt64(argument(2) + argument(3)) {
            guard try box.trySend(message(argument(1), sequence)) else { break }
            accepted += 1
        }
        line("ACCEPTED \(accepted)")
    case "receive":
        let idle = Duration.milliseconds(words.count > 2 ? argument(2) : 10_000)
        for _ in 0..<argument(1) {
            try box.receive(timeout: idle) { bytes, _, redelivered in
                guard let (sender, sequence) = try? TestMessages.verify(bytes) else { fail("corrupt message", status: 2) }
                line("GOT \(sender) \(sequence) \(redelivered ? 1 : 0)")
            }
        }
    case "wait-busy": box.whenReceiverBusy = .wait
    case "depth": line("DEPTH \(try box.depth)")
    case "owner": line("OWNER \(try box.owner.map { "\($0.pid)" } ?? "none")")
    case "grant": try box.grantReceive(to: process(argument(1)))
    case "transfer": try box.transferOwnership(to: process(argument(1)))
    case "reclaim": try box.reclaimOwnership()
    case "close": box.close()
    default: fail("unknown step \(words)")
    }
}
