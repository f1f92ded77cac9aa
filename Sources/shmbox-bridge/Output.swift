#if canImport(Glibc)
import Glibc
#endif

/// Writes `line` and a newline to standard error with `write(2)` (no buffering, so it is out
/// even if the process ends with `_exit` right after).
func writeStandardError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in
        var rest = UnsafeRawBufferPointer(bytes)
        while !rest.isEmpty {
            let written = write(STDERR_FILENO, rest.baseAddress, rest.count)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            rest = UnsafeRawBufferPointer(rebasing: rest[written...])
        }
    }
}

/// Writes `shmbox: error: <message>` to standard error, as every `shmbox` command does.
func printError(_ message: String) {
    writeStandardError("shmbox: error: \(message)")
}

/// An error that ends the bridge with one `shmbox: error:` line and exit status 1.
struct BridgeError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// Ends the process at once with `status` after reporting `message` (if any), from any thread.
///
/// Used where a relay holds a message it must neither finish nor give up: `_exit` runs no
/// clean-up, so the message stays unfinished exactly as if the process had been killed, and the
/// crash recovery described in `ExportRelay` and `ImportRelay` applies to it.
func terminate(status: Int32, error message: String? = nil) -> Never {
    if let message { printError(message) }
    _exit(status)
}
