import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

extension ParsableCommand {
    /// The entry point `shmbox` and `shmbox-bridge` share: parses `arguments` and runs the
    /// command, and turns every failure into one `shmbox: error: …` line on standard error and
    /// its `ExitStatus`. ArgumentParser's own errors (unknown or misspelled options, bad values,
    /// failed validation), which it would print with the usage text, become one line and exit
    /// 64; `--help` and `--version` go to standard output and exit 0.
    ///
    /// ```swift
    /// @main struct Tool: ParsableCommand {
    ///     static func main() { runReportingFailures() }
    /// }
    /// ```
    public static func runReportingFailures(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        do {
            var command = try parseAsRoot(joiningNegativeNumbers(arguments))
            try command.run()
            Glibc.exit(0)
        } catch let exit as ExitCode {
            Glibc.exit(exit.rawValue)
        } catch let failure as CLIFailure {
            printError(failure.message)
            Glibc.exit(failure.status.rawValue)
        } catch let error as MailboxError {
            printError(error.description)
            Glibc.exit(error.exitStatus.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                // --help, --version: ArgumentParser prints them to standard output.
                self.exit(withError: error)
            }
            // ArgumentParser's errors (exit 64 there too) lose their usage text here.
            var message = oneLine(self.message(for: error))
            if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
            if message.isEmpty { message = String(describing: error) }
            printError(message)
            Glibc.exit(code == .validationFailure ? ExitStatus.usage.rawValue : ExitStatus.failure.rawValue)
        }
    }
}

/// `arguments` with each `--option -N` written as `--option=-N`, so that a negative number is
/// taken as the option's value (and rejected by name, "--count must be 1 or more") instead of
/// being read as an unknown short option.
public func joiningNegativeNumbers(_ arguments: [String]) -> [String] {
    var result: [String] = []
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        if argument == "--" {
            result.append(contentsOf: arguments[index...])
            break
        }
        if argument.hasPrefix("--"), !argument.contains("="), index + 1 < arguments.count,
           isNegativeNumber(arguments[index + 1]) {
            result.append("\(argument)=\(arguments[index + 1])")
            index += 2
            continue
        }
        result.append(argument)
        index += 1
    }
    return result
}

/// Whether `text` is `-` followed by a decimal number (`-3`, `-0.5`).
public func isNegativeNumber(_ text: String) -> Bool {
    guard text.hasPrefix("-"), text.count > 1 else { return false }
    return Double(text.dropFirst()) != nil && text.dropFirst().first?.isNumber == true
}
