import Foundation
import Testing
@testable import ShmMailbox

/// A unique mailbox name for one test run, so parallel or repeated runs never collide.
func uniqueName(_ label: String) -> String {
    "test-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

/// Creates a mailbox, runs `body`, and deletes the mailbox whatever happens.
func withMailbox<R>(
    _ label: String,
    _ options: MailboxOptions = MailboxOptions(),
    _ body: (String, Mailbox) throws -> R
) throws -> R {
    let name = uniqueName(label)
    let box = try Mailbox.create(name, options: options)
    defer { try? Mailbox.delete(name) }
    return try body(name, box)
}

/// Runs `body` with a unique name and removes any segment of that name afterwards.
func withName<R>(_ label: String, _ body: (String) throws -> R) rethrows -> R {
    let name = uniqueName(label)
    defer { try? Mailbox.delete(name) }
    return try body(name)
}

/// The directory holding the test bundle and the package's executables.
let buildDirectory: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return (exe as NSString).deletingLastPathComponent
}()

/// A helper process (`MailboxTestPeer` or `shmbox`) spawned by a test.
final class Peer {
    let process = Process()
    private let output = Pipe()
    private let errors = Pipe()

    /// Starts `MailboxTestPeer` (or another of the package's `executable`s, or the program at
    /// `executablePath`) with `arguments`.
    /// `crashAt` arms a crash point in the peer (`SHMMB_CRASH_AT`, see `CrashPoint`).
    init(_ arguments: [String], strategy: String? = nil, executable: String = "MailboxTestPeer", executablePath: String? = nil,
         crashAt: String? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executablePath ?? buildDirectory + "/" + executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        if let strategy { environment["PEER_STRATEGY"] = strategy }
        if let crashAt { environment["SHMMB_CRASH_AT"] = crashAt }
        process.environment = environment
        process.standardOutput = output
        process.standardError = errors
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// Sends SIGKILL.
    func kill9() {
        kill(process.processIdentifier, SIGKILL)
    }

    /// Waits for the process to end (at most `timeout`, then kills it) and returns what it said.
    @discardableResult
    func finish(timeout: Duration = .seconds(120)) -> (status: Int32, signaled: Bool, stdout: String, stderr: String) {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(2_000) }
        if process.isRunning {
            kill9()
            process.waitUntilExit()
            Issue.record("peer \(process.arguments ?? []) did not finish within \(timeout); killed")
        }
        process.waitUntilExit()
        let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal, out, err)
    }

    /// Waits for a successful exit and fails the test otherwise; returns stdout.
    @discardableResult
    func expectSuccess(timeout: Duration = .seconds(120), sourceLocation: SourceLocation = #_sourceLocation) -> String {
        let result = finish(timeout: timeout)
        #expect(result.status == 0 && !result.signaled, "peer \(process.arguments ?? []) failed: \(result.stderr)", sourceLocation: sourceLocation)
        return result.stdout
    }
}

/// Forks a child that runs `body` (raw memory and system calls only: no allocation, no locks,
/// no Swift runtime work) and leaves with `_exit(body())`. Returns the child's exit status.
func forkRaw(_ body: () -> Int32) -> Int32 {
    let child = fork()
    if child == 0 {
        _exit(body())
    }
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
}

/// Maps the named mailbox's shm object in a forked child and lets `body` scribble on its raw
/// bytes. The parent's own handles are untouched except through shared memory.
func scribble(on name: String, _ body: @escaping (UnsafeMutableRawPointer, Int) -> Void) {
    let objectName = strdup("/shmmb." + name)!
    defer { free(objectName) }
    let status = forkRaw {
        let fd = shm_open(objectName, O_RDWR, 0)
        if fd < 0 { return 10 }
        var info = stat()
        if fstat(fd, &info) != 0 { return 11 }
        let size = Int(info.st_size)
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else { return 12 }
        body(base, size)
        munmap(base, size)
        close(fd)
        return 0
    }
    #expect(status == 0, "scribbling child failed with status \(status)")
}

/// Seconds elapsed while running `body`.
func timed<R>(_ body: () throws -> R) rethrows -> (R, Double) {
    let start = ContinuousClock.now
    let result = try body()
    let elapsed = ContinuousClock.now - start
    return (result, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// Asserts that `body` throws exactly `expected`.
func expectError<R>(_ expected: MailboxError, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> R) {
    do {
        _ = try body()
        Issue.record("expected \(expected), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as MailboxError {
        #expect(error == expected, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(expected), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Asserts that `body` throws a `MailboxError` matching `predicate` (for cases with free text).
func expectError<R>(sourceLocation: SourceLocation = #_sourceLocation, _ predicate: (MailboxError) -> Bool, _ body: () throws -> R) {
    do {
        _ = try body()
        Issue.record("expected an error, but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as MailboxError {
        #expect(predicate(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected non-mailbox error \(error)", sourceLocation: sourceLocation)
    }
}

extension MailboxError {
    var isCorrupted: Bool { if case .corrupted = self { return true } else { return false } }
    var isInvalidName: Bool { if case .invalidName = self { return true } else { return false } }
    var isInvalidOptions: Bool { if case .invalidOptions = self { return true } else { return false } }
}
