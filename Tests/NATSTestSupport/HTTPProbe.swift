import Foundation
import Glibc

/// A minimal HTTP/1.0 client for nats-server's monitoring endpoints (`/healthz`, `/jsz`).
enum HTTPProbe {
    /// The status code and body of one GET.
    struct Response {
        let status: Int
        let body: String
    }

    /// Sends `GET path HTTP/1.0` to `host:port` (an IPv4 address), inside `namespace` if given,
    /// and reads the whole reply (the server closes the connection after an HTTP/1.0 reply).
    /// Each socket operation gives up after `timeout`.
    static func get(host: String, port: Int, path: String, namespace: String? = nil,
                    timeout: Duration = .seconds(2)) throws -> Response {
        let fd = try NamespaceSocket.tcp(in: namespace)
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout.components.seconds),
                            tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw NATSServerError.io("not an IPv4 address: \(host)") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw failure("connect \(host):\(port)") }

        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let written = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw failure("send to \(host):\(port)") }
            sent += written
        }

        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw failure("recv from \(host):\(port)") }
            if count == 0 { break }
            reply.append(contentsOf: buffer[0..<count])
        }
        return try parse(String(decoding: reply, as: UTF8.self))
    }

    /// Splits a raw reply into status code and body.
    static func parse(_ reply: String) throws -> Response {
        let statusLine = reply.prefix { $0 != "\r" && $0 != "\n" }
        let fields = statusLine.split(separator: " ")
        guard fields.count >= 2, fields[0].hasPrefix("HTTP/"), let status = Int(fields[1]) else {
            throw NATSServerError.io("not an HTTP reply: \(reply.prefix(80))")
        }
        let body = reply.range(of: "\r\n\r\n").map { String(reply[$0.upperBound...]) } ?? ""
        return Response(status: status, body: body)
    }

    private static func failure(_ what: String) -> NATSServerError {
        .io("\(what): \(String(cString: strerror(errno)))")
    }
}
