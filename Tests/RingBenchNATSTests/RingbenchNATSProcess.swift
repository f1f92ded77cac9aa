import Foundation
import Testing
import RingBenchKit

/// Runs the built `ringbench-nats` executable (next to the test bundle) as a separate process.
enum RingbenchNATSProcess {
    struct Outcome {
        var status: Int32
        /// The ringbench-nats process's pid (gone by now).
        var pid: Int32 = 0
        var stdout: String
        var stderr: String
    }

    static let executable: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("ringbench-nats")
    }()

    /// Runs `ringbench-nats arguments…` (with `environment` added); the report goes through a file.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(120)) throws -> Outcome {
        let directory = FileManager.default.temporaryDirectory
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let reportFile = directory.appendingPathComponent("ringbench-nats-test-\(tag).out")
        let errorFile = directory.appendingPathComponent("ringbench-nats-test-\(tag).err")
        defer {
            try? FileManager.default.removeItem(at: reportFile)
            try? FileManager.default.removeItem(at: errorFile)
        }
        _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["--output", reportFile.path]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errorFile)
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { usleep(5_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            Issue.record("ringbench-nats \(arguments) did not finish within \(timeout); killed")
        }
        process.waitUntilExit()
        let output = (try? String(contentsOf: reportFile, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
        return Outcome(status: process.terminationStatus, pid: process.processIdentifier, stdout: output, stderr: errors)
    }

    /// Runs ringbench-nats with `--format json`, expects success and decodes the report.
    static func report(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> BenchmarkReport {
        try reportAndPID(arguments, sourceLocation: sourceLocation).report
    }

    /// `report`, and the pid the ringbench-nats process had.
    static func reportAndPID(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> (report: BenchmarkReport, pid: Int32) {
        let outcome = try run(arguments + ["--format", "json"])
        try #require(outcome.status == 0, "ringbench-nats \(arguments) failed: \(outcome.stderr)", sourceLocation: sourceLocation)
        return (try JSONDecoder().decode(BenchmarkReport.self, from: Data(outcome.stdout.utf8)), outcome.pid)
    }
}
