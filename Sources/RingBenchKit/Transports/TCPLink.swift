#if canImport(Glibc)
import Glibc
#endif

/// `tcp`: the parent listens on 127.0.0.1 (a port the kernel picks) and passes the port to its
/// peers, which connect; both ends set TCP_NODELAY. Length-prefixed frames; one connection per
/// sender in a fan-in, polled by the receiver.
final class TCPSetup: TransportSetup {
    private let plan: LinkPlan
    private var listener: Int32 = -1
    private let port: UInt16

    init(_ plan: LinkPlan) throws {
        self.plan = plan
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try Sys.check(fd, "socket(AF_INET)")
        listener = fd
        do {
            _ = Sys.setInt(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            var address = Self.loopback(port: 0)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try Sys.check(bound, "bind(127.0.0.1)")
            try Sys.check(listen(fd, Int32(plan.shape.peers + 8)), "listen")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let named = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            try Sys.check(named, "getsockname")
            port = UInt16(bigEndian: address.sin_port)
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        return address
    }

    var note: String {
        var text = "4-byte length prefix, TCP_NODELAY, default socket buffers"
        if case .fanIn = plan.shape { text += "; one connection per sender, receiver polls" }
        return text
    }

    func endpoint(forPeer index: Int) throws -> PeerEndpoint {
        var endpoint = PeerEndpoint()
        endpoint["port"] = String(port)
        return endpoint
    }

    func peerSpawned(_ index: Int) {}

    func parentLink(watchdog: Watchdog) throws -> Link {
        var links: [FramedStreamLink] = []
        for _ in 0..<plan.shape.peers {
            let fd = try accept(watchdog: watchdog)
            links.append(FramedStreamLink(readFD: fd, writeFD: fd, size: plan.size, watchdog: watchdog, label: "tcp"))
        }
        Sys.close(listener)
        listener = -1
        if case .fanIn = plan.shape {
            return PolledFanInLink(sources: links, watchdog: watchdog, label: "tcp")
        }
        return links[0]
    }

    private func accept(watchdog: Watchdog) throws -> Int32 {
        while true {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 1000)
            if ready == 0 {
                try watchdog.checkPeer()
                continue
            }
            if ready < 0 {
                if errno == EINTR { continue }
                throw Sys.failure("poll(listening socket)")
            }
            let fd = Glibc.accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == EAGAIN || errno == ECONNABORTED { continue }
                throw Sys.failure("accept")
            }
            Sys.setCloseOnExec(fd)
            try Self.configure(fd)
            return fd
        }
    }

    static func configure(_ fd: Int32) throws {
        guard Sys.setInt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1) else { throw Sys.failure("setsockopt(TCP_NODELAY)") }
        try Sys.setTimeouts(fd)
    }

    func peersReady() {}

    func tearDown() {
        Sys.close(listener)
        listener = -1
    }

    static func connect(_ plan: LinkPlan, _ endpoint: PeerEndpoint, watchdog: Watchdog) throws -> Link {
        guard let port = UInt16(try endpoint.string("port")) else { throw BenchError.protocolViolation("bad tcp port") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try Sys.check(fd, "socket(AF_INET)")
        do {
            var address = loopback(port: port)
            let rc = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                    Sys.retrying { Glibc.connect(fd, sockaddrPointer, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            try Sys.check(rc, "connect(127.0.0.1:\(port))")
            try configure(fd)
        } catch {
            Sys.close(fd)
            throw error
        }
        return FramedStreamLink(readFD: fd, writeFD: fd, size: plan.size, watchdog: watchdog, label: "tcp")
    }
}
