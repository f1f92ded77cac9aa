import Foundation
import Glibc

/// The outcome of a short command run to completion by ``Command/run(_:environment:timeout:)``.
public struct CommandResult: Sendable {
    /// How it ended, or `nil` if it was killed after its timeout.
    public let status: ExitStatus?
    /// Standard output and standard error, interleaved.
    public let output: String

    /// `true` if it exited with status 0 within the timeout.
    public var succeeded: Bool { status?.isSuccess ?? false }
}

/// Runs short helper commands (`ip`, `tc`, `ping`) to completion.
enum Command {
    /// Runs `arguments[0]` (looked up with ``Executables/find(_:)`` unless absolute) and collects
    /// its output; kills it with SIGKILL after `timeout`.
    static func run(_ arguments: [String], environment: [String: String]? = nil,
                    timeout: Duration = .seconds(30)) throws -> CommandResult {
        precondition(!arguments.isEmpty)
        let name = arguments[0]
        guard let executable = name.hasPrefix("/") ? name : Executables.find(name) else {
            throw NATSServerError.io("\(name) not found on PATH or in /usr/sbin, /usr/bin")
        }
        let directory = try TemporaryDirectory.make("shmmb-cmd")
        defer { TemporaryDirectory.remove(directory) }
        let outputPath = directory + "/output"
        let process = try SpawnedProcess(executable: executable, arguments: Array(arguments.dropFirst()),
                                         environment: environment,
                                         standardOutputPath: outputPath, standardErrorPath: outputPath)
        var status = process.wait(timeout: timeout)
        if status == nil {
            process.killAndWait()
            status = nil
        }
        return CommandResult(status: status, output: process.standardOutput())
    }

    /// Runs `arguments` and throws ``NetworkHostsError/commandFailed(command:status:output:)``
    /// unless it exits with status 0; returns its output.
    @discardableResult
    static func check(_ arguments: [String], timeout: Duration = .seconds(30)) throws -> String {
        let result = try run(arguments, timeout: timeout)
        guard result.succeeded else {
            throw NetworkHostsError.commandFailed(command: arguments, status: result.status, output: result.output)
        }
        return result.output
    }
}
