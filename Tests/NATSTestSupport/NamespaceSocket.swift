import Foundation
import Glibc

/// Creates sockets inside a named network namespace (`/run/netns/NAME`) without moving the
/// calling thread or the test process: a short-lived thread joins the namespace, creates the
/// socket and exits. A socket stays in the namespace it was created in, and any thread may use it.
enum NamespaceSocket {
    /// A new TCP socket (close-on-exec) in `namespace`, or in the process's own namespace if `nil`.
    static func tcp(in namespace: String?) throws -> Int32 {
        guard let namespace else { return try plainSocket() }
        let result = ResultBox()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            result.set(Result { try joinAndCreate(namespace) })
            done.signal()
        }
        thread.start()
        done.wait()
        return try result.get()
    }

    private static func joinAndCreate(_ namespace: String) throws -> Int32 {
        guard let setns = Self.setns else { throw NATSServerError.io("setns(2) is not available in this C library") }
        let fd = open("/run/netns/" + namespace, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NATSServerError.io("open /run/netns/\(namespace): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard setns(fd, cloneNewNet) == 0 else {
            throw NATSServerError.io("setns \(namespace): \(String(cString: strerror(errno)))")
        }
        // This thread now lives in `namespace`; it ends right after, so nothing else runs in it.
        return try plainSocket()
    }

    private static func plainSocket() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NATSServerError.io("socket: \(String(cString: strerror(errno)))") }
        return fd
    }

    /// `CLONE_NEWNET` from <sched.h>, which the Glibc module does not import.
    private static let cloneNewNet: Int32 = 0x4000_0000

    private typealias SetNS = @convention(c) (Int32, Int32) -> Int32

    /// `setns(2)`, looked up at run time because the Glibc module does not import it.
    private static let setns: SetNS? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setns") else { return nil }
        return unsafeBitCast(symbol, to: SetNS.self)
    }()

    private final class ResultBox: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Result<Int32, any Error> = .failure(NATSServerError.io("namespace thread did not run"))
        func set(_ value: Result<Int32, any Error>) { lock.withLock { self.value = value } }
        func get() throws -> Int32 { try lock.withLock { value }.get() }
    }
}
