import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import ShmMailbox

/// Runs `body`; a `MailboxError` or `CLIFailure` is reported as one `shmbox: error: …` line on
/// standard error and turned into its exit status (see `ExitStatus`).
public func reportingMailboxErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as MailboxError {
        printError(error.description)
        throw ExitCode(error.exitStatus.rawValue)
    } catch let failure as CLIFailure {
        printError(failure.message)
        throw ExitCode(failure.status.rawValue)
    }
}

/// Writes `shmbox: error: <message>` to standard error, as one line (newlines in `message`
/// become spaces).
public func printError(_ message: String) {
    printDiagnostic("shmbox: error: \(oneLine(message))")
}

/// Writes `line` and a newline to standard error.
public func printDiagnostic(_ line: String) {
    StandardStream.error.write(Array("\(line)\n".utf8))
}

/// `text` with its lines joined by spaces and surrounding blanks removed.
public func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline)
        .map { $0.trimmingBlanks() }
        .filter { !$0.isEmpty }
        .joined(separator: " ")
}

extension Substring {
    /// The substring without leading and trailing spaces and tabs.
    public func trimmingBlanks() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}
