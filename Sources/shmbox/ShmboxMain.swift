import ShmboxCLISupport

extension Shmbox {
    /// The entry point: every failure becomes one `shmbox: error: …` line and its `ExitStatus`
    /// (see `runReportingFailures`).
    static func main() {
        runReportingFailures()
    }
}
