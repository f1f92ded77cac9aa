import Foundation

/// Finds executables the way a shell would, plus the sbin directories a non-login PATH may lack.
enum Executables {
    /// The directories searched, in order: `$PATH`, then the usual system locations.
    static var searchPath: [String] {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let fromEnvironment = path.split(separator: ":").map(String.init).filter { !$0.isEmpty }
        return fromEnvironment + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    }

    /// The absolute path of the executable `name`, or `nil` if none is found.
    static func find(_ name: String) -> String? {
        for directory in searchPath {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
