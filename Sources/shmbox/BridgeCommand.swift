import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import ShmboxCLISupport

/// `shmbox bridge …`: runs `shmbox-bridge` (found next to this executable) with the same
/// arguments. The bridge needs libnats; `shmbox` itself needs nothing but libc, so the bridge
/// is a separate executable that may be missing (exit 69, like any unavailable service). Both
/// report failures the same way, through ShmboxCLISupport: one line, sysexits-style statuses.
struct BridgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridge",
        abstract: "Relay local mailboxes to remote ones on NATS JetStream and back (shmbox bridge --help for its options).",
        discussion: "Runs shmbox-bridge from the directory of this executable, which needs the apt package libnats-dev to build.",
        helpNames: []
    )

    @Argument(parsing: .captureForPassthrough, help: "The bridge's options (see shmbox bridge --help).")
    var arguments: [String] = []

    func run() throws {
        let path = Self.siblingDirectory() + "/shmbox-bridge"
        guard access(path, X_OK) == 0 else {
            throw CLIFailure("shmbox bridge needs the NATS module: build it with 'swift build -c release --product shmbox-bridge' (needs apt package libnats-dev)",
                             status: .unavailable)
        }
        // argv[0] is the path, so the bridge's own messages and help name it correctly.
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        execv(path, argv)
        // Only reached when exec failed.
        let reason = errno
        throw CLIFailure("cannot run \(path): \(String(cString: strerror(reason)))",
                         status: reason == EACCES || reason == EPERM ? .noPermission : .unavailable)
    }

    /// The directory of the running executable (`/proc/self/exe`, symbolic links resolved).
    static func siblingDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return "." }
        let path = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
