import Foundation
import ShmMailbox
import Testing

/// End-to-end tests of `shmbox send`/`receive` formats, scripting semantics and exit statuses:
/// each test runs the built binary as a child process with binary standard input and output.
@Suite struct ShmboxIOTests {
    /// What one run of `shmbox` produced, standard output as bytes.
    struct Run: CustomStringConvertible {
        var status: Int32
        var stdout: [UInt8]
        var stderr: String

        var text: String { String(decoding: stdout, as: UTF8.self) }
        var stderrLines: [Substring] { stderr.split(separator: "\n") }
        var description: String { "status \(status), stdout \(text.debugDescription), stderr \(stderr.debugDescription)" }
    }

    /// Every byte value, 0 through 255.
    static let allBytes = (0...255).map { UInt8($0) }

    static func uniqueName(_ tag: String) -> String {
        "iotest-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Runs `shmbox arguments…` with `input` (or nothing) on standard input.
    func shmbox(_ arguments: String..., input: [UInt8]? = nil) throws -> Run {
        let process = try start(arguments, input: input)
        return try finish(process)
    }

    /// A started `shmbox` process and its pipes.
    struct Started {
        var process: Process
        var stdout: Pipe
        var stderr: Pipe
    }

    func start(_ arguments: [String], input: [UInt8]?) throws -> Started {
        let process = Process()
        process.executableURL = try ShmboxCLITests.shmboxURL()
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        if let input {
            try stdin.fileHandleForWriting.write(contentsOf: Data(input))
            try stdin.fileHandleForWriting.close()
        }
        return Started(process: process, stdout: stdout, stderr: stderr)
    }

    func finish(_ started: Started) throws -> Run {
        // The outputs are small, so reading one pipe to its end before the other cannot stall.
        let out = try started.stdout.fileHandleForReading.readToEnd() ?? Data()
        let err = try started.stderr.fileHandleForReading.readToEnd() ?? Data()
        started.process.waitUntilExit()
        #expect(started.process.terminationReason == .exit, "shmbox was killed by a signal")
        return Run(status: started.process.terminationStatus, stdout: Array(out), stderr: String(decoding: err, as: UTF8.self))
    }

    /// Checks that `run` failed with `status` and one `shmbox: error:` line containing each of `texts`.
    func expectFailure(_ run: Run, status: Int32, containing texts: String..., sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == status, "\(run)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("shmbox: error: "), "\(run)", sourceLocation: sourceLocation)
        #expect(run.stderrLines.count == 1, "\(run)", sourceLocation: sourceLocation)
        for text in texts {
            #expect(run.stderr.contains(text), "\(run)", sourceLocation: sourceLocation)
        }
    }

    func expectSuccess(_ run: Run, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(run.status == 0, "\(run)", sourceLocation: sourceLocation)
        #expect(run.stderr.isEmpty, "\(run)", sourceLocation: sourceLocation)
    }

    /// A fresh mailbox for one test; deleted by the caller's `defer`.
    func makeMailbox(_ tag: String, _ options: String...) throws -> String {
        let name = Self.uniqueName(tag)
        expectSuccess(try shmbox(["create", name, "--max-message-size", "1024"] + options))
        return name
    }

    func shmbox(_ arguments: [String], input: [UInt8]? = nil) throws -> Run {
        try finish(try start(arguments, input: input))
    }

    /// `--raw`: every byte value, from standard input and from `--file`, comes back exactly.
    @Test func rawRoundTripsEveryByte() throws {
        let name = try makeMailbox("raw")
        defer { try? Mailbox.delete(name) }
        let payload = Self.allBytes + Array("\nline\r\n\n".utf8) + [0, 0]
        expectSuccess(try shmbox("send", name, "--raw", input: payload))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(Self.uniqueName("file")).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(Self.allBytes.reversed()).write(to: URL(fileURLWithPath: path))
        expectSuccess(try shmbox("send", name, "--raw", "--file", path))
        let first = try shmbox("receive", name, "--raw")
        expectSuccess(first)
        #expect(first.stdout == payload)
        let second = try shmbox("receive", name, "--raw")
        expectSuccess(second)
        #expect(second.stdout == Self.allBytes.reversed())
        // An empty input is one empty message.
        expectSuccess(try shmbox("send", name, "--raw", input: []))
        let empty = try shmbox("receive", name, "--raw", "--timeout", "5")
        expectSuccess(empty)
        #expect(empty.stdout.isEmpty)
        #expect(try Mailbox.open(name).depth == 0)
    }

    /// `-0`: NUL-separated messages may hold newlines and every other byte value.
    @Test func nullSeparatedRoundTrip() throws {
        let name = try makeMailbox("null")
        defer { try? Mailbox.delete(name) }
        let messages: [[UInt8]] = [Array(Self.allBytes.dropFirst()), Array("two\nlines\n".utf8), [], Array("last".utf8)]
        let input: [UInt8] = messages.flatMap { $0 + [UInt8(0)] }
        expectSuccess(try shmbox("send", name, "-0", input: input))
        #expect(try Mailbox.open(name).depth == 4)
        let received = try shmbox("receive", name, "--null", "--count", "4", "--timeout", "5")
        expectSuccess(received)
        #expect(received.stdout == input)
    }

    /// `--hex`: each line is one message of any bytes; receive writes one hex line each.
    @Test func hexRoundTrip() throws {
        let name = try makeMailbox("hex")
        defer { try? Mailbox.delete(name) }
        let hex = Self.allBytes.map { String(format: "%02x", $0) }.joined()
        let input = "\(hex)\n0a 0D 00\n\n"
        expectSuccess(try shmbox("send", name, "--hex", input: Array(input.utf8)))
        let received = try shmbox("receive", name, "--hex", "--count", "3", "--timeout", "5")
        expectSuccess(received)
        #expect(received.text == "\(hex)\n0a0d00\n\n")
        // Lines mode writes the bytes themselves, not a UTF-8 repair of them.
        expectSuccess(try shmbox("send", name, "--hex", "ff00fe"))
        let lines = try shmbox("receive", name)
        expectSuccess(lines)
        #expect(lines.stdout == [0xff, 0x00, 0xfe, 0x0a])
    }

    /// `--json`: send takes `text` or `base64`; receive reports sender, size, redelivered and
    /// the payload as text when it is clean UTF-8, else base64.
    @Test func jsonRoundTrip() throws {
        let name = try makeMailbox("json")
        defer { try? Mailbox.delete(name) }
        let base64 = Data(Self.allBytes).base64EncodedString()
        let input = """
            {"base64": "\(base64)"}
            {"text": "two\\nlines \\u00fc \\"quoted\\""}
            {"text": "plain ünïcode", "ignored": [1, {"x": null}]}

            """
        expectSuccess(try shmbox("send", name, "--json", input: Array(input.utf8)))
        let received = try shmbox("receive", name, "--json", "--count", "3", "--timeout", "5")
        expectSuccess(received)
        let objects = try received.text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        try #require(objects.count == 3)
        #expect(objects[0]["base64"] as? String == base64)
        #expect(objects[0]["size"] as? Int == 256)
        #expect(objects[0]["redelivered"] as? Bool == false)
        #expect(objects[0]["sender"] as? Int ?? 0 > 0)
        #expect(objects[0]["text"] == nil)
        let second = try #require(objects[1]["base64"] as? String)
        #expect(Data(base64Encoded: second) == Data("two\nlines ü \"quoted\"".utf8))
        #expect(objects[2]["text"] as? String == "plain ünïcode")
        #expect(objects[2]["size"] as? Int == "plain ünïcode".utf8.count)
    }

    /// `--nonblocking` takes everything waiting (or up to `--count`) and succeeds on none.
    @Test func nonblockingDrains() throws {
        let name = try makeMailbox("drain", "--capacity", "16")
        defer { try? Mailbox.delete(name) }
        expectSuccess(try shmbox("send", name, input: Array("1\n2\n3\n4\n5\n".utf8)))
        let two = try shmbox("receive", name, "--nonblocking", "--count", "2")
        expectSuccess(two)
        #expect(two.text == "1\n2\n")
        let rest = try shmbox("receive", name, "--nonblocking")
        expectSuccess(rest)
        #expect(rest.text == "3\n4\n5\n")
        let none = try shmbox("receive", name, "--nonblocking")
        expectSuccess(none)
        #expect(none.stdout.isEmpty)
    }

    /// `--follow` receives until SIGTERM, then exits 0 with everything it took written.
    @Test func followEndsOnSIGTERM() throws {
        let name = try makeMailbox("follow", "--capacity", "16")
        defer { try? Mailbox.delete(name) }
        let follower = try start(["receive", name, "--follow", "--hex"], input: nil)
        expectSuccess(try shmbox("send", name, "--hex", input: Array("00ff\n0a\n".utf8)))
        let box = try Mailbox.open(name)
        let deadline = ContinuousClock.now + .seconds(10)
        while box.depth > 0 && ContinuousClock.now < deadline { usleep(10_000) }
        usleep(200_000)
        follower.process.terminate()
        let stopBy = ContinuousClock.now + .seconds(10)
        while follower.process.isRunning && ContinuousClock.now < stopBy { usleep(10_000) }
        if follower.process.isRunning {
            Issue.record("receive --follow did not end on SIGTERM")
            kill(follower.process.processIdentifier, SIGKILL)
        }
        let run = try finish(follower)
        expectSuccess(run)
        #expect(run.text == "00ff\n0a\n")
    }

    /// A piped line that fails stops the send, naming its number and the count sent before it.
    @Test func failingPipedLineIsNamed() throws {
        let name = try makeMailbox("badline", "--capacity", "16")
        defer { try? Mailbox.delete(name) }
        let run = try shmbox("send", name, "--hex", input: Array("61\n62\nzz\n63\n".utf8))
        expectFailure(run, status: 65, containing: "line 3:", "not a hexadecimal digit", "2 messages sent before it")
        #expect(try Mailbox.open(name).depth == 2)

        let tooLarge = String(repeating: "x", count: 1025)
        let large = try shmbox("send", name, input: Array("ok\n\(tooLarge)\n".utf8))
        expectFailure(large, status: 65, containing: "line 2:", "exceeds", "1 message sent before it")

        let json = try shmbox("send", name, "--json", input: Array("{\"text\": \"a\"}\n{\"txt\": 1}\n".utf8))
        expectFailure(json, status: 65, containing: "line 2:", "\"text\" or \"base64\"")
        let record = try shmbox("send", name, "-0", "--hex", input: [])
        expectFailure(record, status: 64, containing: "--hex")
    }

    /// `--keep-going` skips bad lines, reports each, sends the rest, and fails at the end.
    @Test func keepGoingSkipsBadLines() throws {
        let name = try makeMailbox("keep", "--capacity", "16")
        defer { try? Mailbox.delete(name) }
        let run = try shmbox("send", name, "--hex", "--keep-going", input: Array("61\nzz\n62\n6\n63\n".utf8))
        #expect(run.status == 65, "\(run)")
        #expect(run.stderrLines == [
            "shmbox: skipped line 2: not a hexadecimal digit at column 1: 'z'",
            "shmbox: skipped line 4: odd number of hexadecimal digits",
            "shmbox: error: skipped 2 of 5 lines (bad data); 3 messages sent",
        ], "\(run)")
        let received = try shmbox("receive", name, "--nonblocking")
        #expect(received.text == "a\nb\nc\n")
        expectSuccess(try shmbox("send", name, "--hex", "--keep-going", input: Array("64\n".utf8)))
    }

    /// Each documented exit status, with errors that name the flag or the real cause.
    @Test func exitStatuses() throws {
        let name = try makeMailbox("codes", "--capacity", "1")
        defer { try? Mailbox.delete(name) }

        // 64: usage, made one line (ArgumentParser's errors included).
        expectFailure(try shmbox("receive", name, "--cuont", "2"), status: 64, containing: "--cuont", "--count")
        expectFailure(try shmbox("receive", name, "--count", "-3"), status: 64, containing: "--count must be 1 or more")
        expectFailure(try shmbox("send", name, "x", "--timeout", "-1"), status: 64, containing: "--timeout")
        expectFailure(try shmbox("receive", name, "--count", "many"), status: 64, containing: "--count")
        expectFailure(try shmbox("receive", name, "--follow", "--count", "2"), status: 64, containing: "--follow")
        expectFailure(try shmbox("create", "bad/name"), status: 64, containing: "invalid mailbox name")
        expectFailure(try shmbox("frobnicate"), status: 64, containing: "frobnicate")
        // 65: data error.
        expectFailure(try shmbox("send", name, "--hex", "abc"), status: 65, containing: "odd number")
        expectFailure(try shmbox("send", name, String(repeating: "y", count: 1025)), status: 65, containing: "exceeds")
        // 66: no input file.
        expectFailure(try shmbox("send", name, "--raw", "--file", "/nonexistent/input"), status: 66, containing: "/nonexistent/input")
        // 69: not found.
        expectFailure(try shmbox("receive", Self.uniqueName("missing")), status: 69, containing: "does not exist")
        // 73: already exists.
        expectFailure(try shmbox("create", name), status: 73, containing: "already exists")
        // 75: timeouts, each naming its cause.
        expectFailure(try shmbox("receive", name, "--count", "2", "--timeout", "0.1"), status: 75,
                      containing: "timed out after 0.1 s", "stayed empty", "received 0 of 2")
        expectFailure(try shmbox("send", name, "x", "--timeout", "0.1", "--wait-received"), status: 75,
                      containing: "no receiver took", "synchronous")
        expectSuccess(try shmbox("send", name, "fill"))
        expectFailure(try shmbox("send", name, "x", "--timeout", "0.1"), status: 75, containing: "stayed full", "depth 1 of capacity 1")
        let zero = Self.uniqueName("zero")
        defer { try? Mailbox.delete(zero) }
        expectSuccess(try shmbox("create", zero, "--capacity", "zero"))
        expectFailure(try shmbox("send", zero, "x", "--timeout", "0.1"), status: 75, containing: "zero capacity", "no receiver")
        // 77: permission (an unsafe mode, a receive right this process does not have).
        let open = Self.uniqueName("open")
        defer { try? Mailbox.delete(open) }
        expectSuccess(try shmbox("create", open, "--mode", "0666"))
        expectFailure(try shmbox("receive", open, "--nonblocking"), status: 77, containing: "writable by every user")
        let system = Self.uniqueName("system")
        defer { try? Mailbox.delete(system) }
        expectSuccess(try shmbox("create", system, "--owner", "system"))
        expectFailure(try shmbox("receive", system, "--nonblocking"), status: 77, containing: "not permitted")
        // 70: a corrupted segment.
        let broken = Self.uniqueName("broken")
        defer { try? Mailbox.delete(broken) }
        expectSuccess(try shmbox("create", broken))
        #expect(truncate("/dev/shm/shmmb.\(broken)", 200) == 0)
        expectFailure(try shmbox("inspect", broken), status: 70, containing: "corrupted")
    }

    /// `--version` prints the version and exits 0; `--help` still works.
    @Test func version() throws {
        let run = try shmbox("--version")
        expectSuccess(run)
        #expect(run.text.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, "\(run)")
        let help = try shmbox("send", "--help")
        expectSuccess(help)
        #expect(help.text.contains("--keep-going"))
    }
}
