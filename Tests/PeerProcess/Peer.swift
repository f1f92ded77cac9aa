import Foundation
import Testing

// A helper process spawned by a test, shared by the test targets that spawn MailboxTestPeer
// (or another of the package's executables).

/// The directory holding the test bundle and the package's executables.
public let buildDirectory: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return (exe as NSString).deletingLastPathComponent
}()

/// A helper process (`MailboxTestPeer` or `shmbox`) spawned by a test.
public final class Peer {
    public let process = Process()
    private let output = Pipe()
    private let errors = Pipe()

    /// Starts `MailboxTestPeer` (or another of the package's `executable`s, or the program at
    /// `executablePath`) with `arguments`.
    /// `crashAt` arms a crash point in the peer (`SHMMB_CRASH_AT`, see `CrashPoint`).
    public init(_ arguments: [String], strategy: String? = nil, executable: String = "MailboxTestPeer", executablePath: String? = nil,
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

    public var pid: Int32 { process.processIdentifier }

    /// Sends SIGKILL.
    public func kill9() {
        kill(process.processIdentifier, SIGKILL)
    }

    /// Waits for the process to end (at most `timeout`, then kills it) and returns what it said.
    @discardableResult
    public func finish(timeout: Duration = .seconds(120)) -> (status: Int32, signaled: Bool, stdout: String, stderr: String) {
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
    public func expectSuccess(timeout: Duration = .seconds(120), sourceLocation: SourceLocation = #_sourceLocation) -> String {
        let result = finish(timeout: timeout)
        #expect(result.status == 0 && !result.signaled, "peer \(process.arguments ?? []) failed: \(result.stderr)", sourceLocation: sourceLocation)
        return result.stdout
    }
}
