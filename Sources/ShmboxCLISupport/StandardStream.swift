#if canImport(Glibc)
import Glibc
#endif

/// Standard output or standard error, written with `write(2)` directly: bytes go out exactly
/// as given and at once (no buffering, no text conversion).
public struct StandardStream: Sendable {
    /// The file descriptor.
    public var descriptor: Int32

    /// Standard output.
    public static let output = StandardStream(descriptor: STDOUT_FILENO)
    /// Standard error.
    public static let error = StandardStream(descriptor: STDERR_FILENO)

    /// Writes all of `bytes`, retrying after interruptions; returns false if the stream is
    /// closed or broken.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var rest = buffer
            while !rest.isEmpty {
                let written = Glibc.write(descriptor, rest.baseAddress, rest.count)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return false }
                rest = UnsafeRawBufferPointer(rebasing: rest[written...])
            }
            return true
        }
    }
}
