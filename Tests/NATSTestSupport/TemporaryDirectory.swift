import Foundation
import Glibc

/// Private scratch directories under the system temporary directory.
enum TemporaryDirectory {
    /// Creates a fresh directory named `<label>-<pid>-XXXXXX` (mode 0700) and returns its path.
    static func make(_ label: String) throws -> String {
        let base = (NSTemporaryDirectory() as NSString).appendingPathComponent("\(label)-\(getpid())-XXXXXX")
        var template = Array(base.utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw NATSServerError.io("mkdtemp \(base): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }

    /// Removes `path` and everything below it, ignoring errors.
    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
