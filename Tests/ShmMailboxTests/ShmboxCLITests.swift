import Foundation
import ShmMailbox
import Synchronization
import Testing

/// End-to-end tests of the `shmbox` command-line tool: each test runs the built binary as a child
/// process and checks its exit status, standard output and standard error.
@Suite struct ShmboxCLITests {
    /// What one run of `shmbox` produced.
    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String

        /// Standard output split into lines (without the final newline's empty remainder).
        var lines: [String] {
            var lines = stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
            return lines
        }
    }

    /// The `shmbox` binary, built next to the test runner (`.build/<config>/`).
    static func shmboxURL() throws -> URL {
        var directories: [URL] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append(URL(fileURLWithPath: exe).deletingLastPathComponent())
        }
        if let first = CommandLine.arguments.first {
            directories.append(URL(fileURLWithPath: first).deletingLastPathComponent())
        }
        for directory in directories {
            let candidate = directory.appendingPathComponent("shmbox")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        struct NotFound: Error, CustomStringConvertible {
            var directories: [URL]
            var description: String { "no shmbox binary in \(directories.map(\.path))" }
        }
        throw NotFound(directories: directories)
    }

    /// Runs `shmbox arguments…`, feeding `input` (or nothing) to its standard input.
    func shmbox(_ arguments: String..., input: String? = nil) throws -> Run {
        try shmbox(arguments, input: input)
    }

    /// `shmbox(_:input:)` with the arguments as an array.
    func shmbox(_ arguments: [String], input: String? = nil) throws -> Run {
        let process = Process()
        process.executableURL = try Self.shmboxURL()
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            try stdin.fileHandleForWriting.write(contentsOf: Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        // The outputs are small, so reading one pipe to its end before the other cannot stall.
        let out = try stdout.fileHandleForReading.readToEnd() ?? Data()
        let err = try stderr.fileHandleForReading.readToEnd() ?? Data()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit, "shmbox \(arguments) was killed by a signal")
        return Run(status: process.terminationStatus,
                   stdout: String(decoding: out, as: UTF8.self),
                   stderr: String(decoding: err, as: UTF8.self))
    }

    /// Checks that `run` failed with one `shmbox: error:` line containing `text` on stderr.
    func expectFailure(_ run: Run, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status != 0, "expected failure, got: \(run)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("shmbox: error: "), "stderr: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.contains(text), "stderr: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.split(separator: "\n").count == 1, "stderr: \(run.stderr)", sourceLocation: sourceLocation)
    }

    /// Checks that `run` succeeded and wrote nothing to stderr.
    func expectSuccess(_ run: Run, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == 0, "expected success, got: \(run)", sourceLocation: sourceLocation)
        #expect(run.stderr.isEmpty, "stderr: \(run.stderr)", sourceLocation: sourceLocation)
    }

    /// `key: value` lines of `inspect` output as a dictionary (the last value wins).
    func fields(_ run: Run) -> [String: String] {
        var fields: [String: String] = [:]
        for line in run.lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(colon, offsetBy: 2)...])
        }
        return fields
    }

    static func uniqueName(_ tag: String) -> String {
        "clitest-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// `--capacity unbounded:N` and `--capacity zero` from the shell: an unbounded mailbox takes
    /// more messages than one segment holds without blocking, shows its segments, and gives them
    /// back once drained; a zero-capacity send with nobody receiving times out.
    @Test func capacityKinds() throws {
        let name = Self.uniqueName("unbounded")
        defer { try? Mailbox.delete(name) }
        expectSuccess(try shmbox("create", name, "--capacity", "unbounded:4", "--max-message-size", "64"))
        let lines = (0..<10).map { "message \($0)" }
        expectSuccess(try shmbox("send", name, "--timeout", "5", input: lines.joined(separator: "\n") + "\n"))
        let full = fields(try shmbox("inspect", name))
        #expect(full["capacity"] == "unbounded (segments of 4)")
        #expect(full["depth"] == "10")
        #expect(full["segments"] == "3")
        let receive = try shmbox("receive", name, "--count", "10", "--timeout", "5")
        expectSuccess(receive)
        #expect(receive.lines == lines)
        #expect(fields(try shmbox("inspect", name))["segments"] == "2")
        expectSuccess(try shmbox("delete", name))
        #expect(try Mailbox.list().allSatisfy { !$0.hasPrefix(name) })
        #expect(!((try? FileManager.default.contentsOfDirectory(atPath: "/dev/shm")) ?? []).contains { $0.hasPrefix("shmmb.\(name)") })

        let zero = Self.uniqueName("zero")
        defer { try? Mailbox.delete(zero) }
        expectSuccess(try shmbox("create", zero, "--capacity", "zero"))
        #expect(try Mailbox.open(zero).capacity == .zero)
        expectFailure(try shmbox("send", zero, "nobody listens", "--timeout", "0.2"), containing: "timed out")
        expectFailure(try shmbox("create", Self.uniqueName("bad"), "--capacity", "unbounded", "--kind", "one-to-one"), containing: "unbounded mailbox needs kind shared")
    }

    @Test func createSendInspectReceiveDelete() throws {
        let name = Self.uniqueName("life")
        defer { try? Mailbox.delete(name) }

        let create = try shmbox("create", name, "--capacity", "8", "--max-message-size", "256", "--mode", "0600")
        expectSuccess(create)
        #expect(create.stdout.isEmpty)
        let opened = try Mailbox.open(name)
        #expect(opened.capacity == 8)
        #expect(opened.maxMessageSize == 256)
        #expect(opened.kind == .shared)
        #expect(opened.permissions == 0o600)

        expectSuccess(try shmbox("send", name, "first message"))
        expectSuccess(try shmbox("send", name, input: "second line\nthird: ünïcode\n"))
        #expect(opened.depth == 3)

        let inspect = try shmbox("inspect", name)
        expectSuccess(inspect)
        let info = fields(inspect)
        #expect(info["name"] == name)
        #expect(info["kind"] == "shared")
        #expect(info["capacity"] == "8")
        #expect(info["depth"] == "3")
        #expect(info["max message size"] == "256")
        #expect(info["mode"] == "0600")
        // Both sending processes have exited by now.
        let participants = inspect.lines.filter { $0.hasPrefix("participant: ") }
        #expect(participants.count == 2)
        #expect(participants.allSatisfy { $0.hasSuffix(" sent dead") }, "\(participants)")

        let list = try shmbox("list")
        expectSuccess(list)
        #expect(list.lines.contains("\(name) kind=shared capacity=8 depth=3"), "\(list.lines)")

        let receive = try shmbox("receive", name, "--count", "3", "--timeout", "5")
        expectSuccess(receive)
        #expect(receive.lines == ["first message", "second line", "third: ünïcode"])
        #expect(opened.depth == 0)

        let drained = try shmbox("receive", name, "--nonblocking")
        expectSuccess(drained)
        #expect(drained.stdout.isEmpty)

        let start = ContinuousClock.now
        let timedOut = try shmbox("receive", name, "--timeout", "0.2")
        #expect(ContinuousClock.now - start >= .milliseconds(190))
        expectFailure(timedOut, containing: "timed out")
        #expect(timedOut.stdout.isEmpty)

        // Fewer messages than --count: prints what arrived, then fails.
        expectSuccess(try shmbox("send", name, "lonely"))
        let partial = try shmbox("receive", name, "--count", "2", "--timeout", "0.2")
        expectFailure(partial, containing: "timed out")
        #expect(partial.lines == ["lonely"])

        expectFailure(try shmbox("create", name), containing: "already exists")

        expectSuccess(try shmbox("delete", name))
        expectFailure(try shmbox("inspect", name), containing: "does not exist")
        expectFailure(try shmbox("delete", name), containing: "does not exist")
    }

    @Test func invalidNamesAndOptionsAreOneLineErrors() throws {
        let invalid = try shmbox("create", "bad/name")
        expectFailure(invalid, containing: "invalid mailbox name")
        #expect(invalid.stderr.contains("\"/\""))
        expectFailure(try shmbox("inspect", ".hidden"), containing: "invalid mailbox name")

        let name = Self.uniqueName("opts")
        defer { try? Mailbox.delete(name) }
        expectFailure(try shmbox("create", name, "--mode", "0400"), containing: "must be within 0o777 and include 0o600")
        expectFailure(try shmbox("create", name, "--capacity", "0", "--kind", "one-to-one"), containing: "invalid mailbox options")
        expectFailure(try shmbox("create", name, "--capacity", "16777217"), containing: "invalid mailbox options")
        #expect(throws: MailboxError.notFound(name)) { try Mailbox.open(name) }
    }

    @Test func oneToOneMailbox() throws {
        let name = Self.uniqueName("o2o")
        defer { try? Mailbox.delete(name) }

        expectSuccess(try shmbox("create", name, "--kind", "one-to-one", "--mode", "660",
                                 "--capacity", "4", "--max-message-size", "16"))
        let info = fields(try shmbox("inspect", name))
        #expect(info["kind"] == "one-to-one")
        #expect(info["mode"] == "0660")
        #expect(info["capacity"] == "4")

        expectFailure(try shmbox("send", name, String(repeating: "x", count: 17)), containing: "exceeds")
        expectSuccess(try shmbox("send", name, input: "a\nb\nc\n"))
        let first = try shmbox("receive", name)
        expectSuccess(first)
        #expect(first.lines == ["a"])

        // A second receiving process (taking over the dead first one's role) sees the rest; a
        // new receiver handle once misread head > 0 as a corrupted ring.
        let rest = try shmbox("receive", name, "--count", "2", "--timeout", "5")
        expectSuccess(rest)
        #expect(rest.lines == ["b", "c"])
        let empty = try shmbox("receive", name, "--nonblocking")
        expectSuccess(empty)
        #expect(empty.stdout.isEmpty)
    }

    /// `delete` ends a mailbox for open handles too, `unlink` only removes its name, `reclaim`
    /// hands a dead owner's system mailbox on, and `--trust-any-user` opens a mailbox the
    /// default refuses (writable by others).
    @Test func deleteUnlinkReclaimAndTrust() throws {
        let name = Self.uniqueName("end")
        defer { try? Mailbox.delete(name) }
        expectSuccess(try shmbox("create", name, "--capacity", "4"))
        let handle = try Mailbox.open(name)
        expectSuccess(try shmbox("unlink", name))
        #expect(try !Mailbox.list().contains(name))
        try handle.send("still works")
        #expect(try handle.receive().string == "still works")

        expectSuccess(try shmbox("create", name, "--capacity", "4"))
        let doomed = try Mailbox.open(name)
        expectSuccess(try shmbox("delete", name))
        expectError(.deleted(name)) { try doomed.send("gone") }

        // A live receiver (this process, asleep in a receive on another thread): delete refuses
        // without --force, and with it wakes the receiver with "deleted".
        expectSuccess(try shmbox("create", name, "--capacity", "4"))
        let receiver = try Mailbox.open(name)
        let woken = Handoff(receiver)
        let outcome = Mutex<String?>(nil)
        let thread = Thread {
            let text = (try? woken.value.receive(timeout: .seconds(20)).string).map { "received \($0)" }
            outcome.withLock { $0 = text ?? "deleted" }
        }
        thread.start()
        while receiver.sleepers.receivers == 0 { Thread.sleep(forTimeInterval: 0.01) }
        let refused = try shmbox("delete", name)
        #expect(refused.status == 75)
        expectFailure(refused, containing: "waiting in receive); they would get \"deleted\": add --force")
        #expect(try Mailbox.list().contains(name))
        let forced = try shmbox("delete", name, "--force")
        #expect(forced.status == 0)
        #expect(forced.stderr.hasPrefix("shmbox: mailbox") && forced.stderr.contains("deleting it anyway"))
        let deadline = ContinuousClock.now + .seconds(10)
        while outcome.withLock({ $0 }) == nil, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(outcome.withLock { $0 } == "deleted")

        expectSuccess(try shmbox("create", name, "--owner", "system"))
        // The creating shmbox process owned it and has exited.
        let box = try Mailbox.open(name)
        expectError({ if case .notPermitted = $0 { return true } else { return false } }) { try box.tryReceive() }
        let reclaim = try shmbox("reclaim", name, String(getpid()))
        expectSuccess(reclaim)
        #expect(reclaim.lines == ["owner \(getpid())"])
        #expect(box.owner?.pid == getpid())
        #expect(try box.tryReceive() == nil)
        try Mailbox.delete(name)

        expectSuccess(try shmbox("create", name, "--mode", "0666"))
        expectFailure(try shmbox("inspect", name), containing: "writable by every user")
        expectSuccess(try shmbox("inspect", name, "--trust-any-user"))
    }
}

/// Hands a mailbox handle, used by one thread at a time, to another thread.
private struct Handoff<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
