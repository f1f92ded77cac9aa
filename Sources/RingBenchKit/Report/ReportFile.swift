#if canImport(Glibc)
import Glibc
#endif

/// A file a report (or its chart) is written to, opened before measuring so that a path that
/// cannot be written fails at once rather than after the run. Opening creates the file if need
/// be but leaves what it holds until `write` replaces it; `discard` removes a file that opening
/// created when no report came.
public final class ReportFile {
    public let path: String
    private let fd: Int32
    private let created: Bool
    private var written = false

    /// Opens `path` for writing (creating it); throws `BenchError.system` naming the path.
    public init(path: String) throws(BenchError) {
        self.path = path
        let existed = access(path, F_OK) == 0
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Sys.failure("open(\(path))") }
        created = !existed
    }

    deinit { Sys.close(fd) }

    /// Replaces the file's contents with `text`.
    public func write(_ text: String) throws(BenchError) {
        written = true
        // Not every file can be truncated (a pipe, a terminal, /dev/null): then just write.
        if ftruncate(fd, 0) == 0 { _ = lseek(fd, 0, SEEK_SET) }
        guard Sys.writeAll(fd, text) else { throw Sys.failure("write(\(path))") }
    }

    /// Removes the file if opening created it and nothing was written (the run failed).
    public func discard() {
        if created && !written { _ = unlink(path) }
    }
}
