import Glibc

/// Asks the kernel for unused TCP ports on loopback.
enum FreePort {
    /// A port nothing listens on right now: binds 127.0.0.1:0, reads the port, closes.
    ///
    /// Another process may take the port before the server binds it; callers retry on
    /// "address already in use" with fresh ports.
    static func pick() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw NATSServerError.io("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else { throw NATSServerError.io("bind 127.0.0.1:0: \(String(cString: strerror(errno)))") }
        var actual = sockaddr_in()
        var actualLength = length
        let named = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        guard named == 0 else { throw NATSServerError.io("getsockname: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: actual.sin_port))
    }

    /// `count` distinct free ports.
    static func pick(_ count: Int) throws -> [Int] {
        var ports: [Int] = []
        while ports.count < count {
            let port = try pick()
            if !ports.contains(port) { ports.append(port) }
        }
        return ports
    }
}
