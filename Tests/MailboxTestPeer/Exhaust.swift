#if canImport(Glibc)
import Glibc
#endif
import MailboxTestSupport
import ShmMailbox

/// `exhaust NAME SEGMENT MAXSIZE`: creates an unbounded mailbox growing by SEGMENT messages,
/// sends until `outOfSharedMemory`, checks that every message sent is there, in order and
/// intact, and that the mailbox grows again once drained. Run it where /dev/shm is small.
func exhaust(name: String, segmentCapacity: Int, maxSize: Int) {
    let box: Mailbox
    do {
        box = try Mailbox.create(name, options: MailboxOptions(capacity: .unbounded(segmentCapacity: segmentCapacity), maxMessageSize: maxSize))
    } catch {
        fail("create: \(error)")
    }
    defer { try? Mailbox.delete(name) }
    func length(_ sequence: UInt64) -> Int {
        TestMessages.length(sender: 1, sequence: sequence, minSize: TestMessages.headerSize, maxSize: maxSize)
    }
    /// Sends message `sequence`; returns false when shared memory ran out.
    func send(_ sequence: UInt64) -> Bool {
        do {
            try box.send(count: length(sequence)) { TestMessages.fill(&$0, sender: 1, sequence: sequence) }
            return true
        } catch MailboxError.outOfSharedMemory {
            return false
        } catch {
            fail("send \(sequence): \(error)")
        }
    }
    func receive(_ sequence: UInt64) {
        do {
            guard let message = try box.tryReceive() else { fail("message \(sequence) is missing") }
            try message.bytes.withUnsafeBytes { try TestMessages.verify($0, sender: 1, sequence: sequence, length: length(sequence)) }
        } catch {
            fail("message \(sequence): \(error)")
        }
    }
    var sent: UInt64 = 0
    while send(sent) {
        sent += 1
        if sent > 1_000_000 { fail("sent \(sent) messages without running out of shared memory") }
    }
    // The failed send damaged nothing: the next one fails the same way.
    if send(sent) { fail("a send after running out succeeded") }
    let grown = sharedMemoryObjects().filter { $0.hasPrefix("shmmb.\(name)#") }.count
    say("sent \(sent) segments \(grown + 1) depth \(box.depth)")
    for sequence in 0..<sent { receive(sequence) }
    do {
        if try box.tryReceive() != nil { fail("an extra message arrived") }
    } catch {
        fail("after draining: \(error)")
    }
    // Drained segments were given back, so the mailbox can grow again.
    for sequence in sent..<sent + 100 where !send(sequence) { fail("send \(sequence) after draining ran out of memory") }
    for sequence in sent..<sent + 100 { receive(sequence) }
    say("drained \(sent) and 100 more")
}

/// The file names in /dev/shm.
func sharedMemoryObjects() -> [String] {
    guard let stream = opendir("/dev/shm") else { return [] }
    defer { closedir(stream) }
    var names: [String] = []
    while let entry = readdir(stream) {
        let offset = MemoryLayout<dirent>.offset(of: \.d_name)!
        names.append(String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self)))
    }
    return names
}
