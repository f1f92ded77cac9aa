#if canImport(Glibc)
import Glibc
#endif
import ShmboxCLISupport

/// Ends the process at once with status 0, from any thread.
///
/// Used where a relay holds a message it must neither finish nor give up: `_exit` runs no
/// clean-up, so the message stays unfinished exactly as if the process had been killed, and the
/// crash recovery described in `ExportRelay` and `ImportRelay` applies to it.
func terminate(status: Int32) -> Never {
    _exit(status)
}

/// Ends the process at once (as `terminate(status:)`) after reporting `failure` as one
/// `shmbox: error:` line, with its exit status.
func terminate(_ failure: CLIFailure) -> Never {
    printError(failure.message)
    _exit(failure.status.rawValue)
}
