#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// A file a report (or its chart) is written to, opened before measuring so that a path that
/// cannot be written fails at once rather than after the run. Opening creates the file if need
/// be but leaves what it holds until `write` replaces it; `discard` removes a file that opening
/// created when no report came.
public final class ReportFile {
    public let path: String
    private let file: FileDescriptor
    private let created: Bool
    private var written = false

    /// Opens `path` for writing (creating it); throws `BenchError.system` naming the path.
    public init(path: String) throws(BenchError) {
        self.path = path
        let existed = access(path, F_OK) == 0
        do {
            file = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .closeOnExec],
                                           permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            throw .system(operation: "open(\(path))", errno: (error as? Errno)?.rawValue ?? EIO)
        }
        created = !existed
    }

    deinit { try? file.close() }

    /// Replaces the file's contents with `text`.
    public func write(_ text: String) throws(BenchError) {
        written = true
        do {
            // Not every file can be truncated (a pipe, a terminal, /dev/null): then just write.
            if (try? file.resize(to: 0)) != nil { _ = try? file.seek(offset: 0, from: .start) }
            _ = try file.writeAll(text.utf8)
        } catch {
            throw .system(operation: "write(\(path))", errno: (error as? Errno)?.rawValue ?? EIO)
        }
    }

    /// Removes the file if opening created it and nothing was written (the run failed).
    public func discard() {
        if created && !written { _ = unlink(path) }
    }
}
