#if canImport(Glibc)
import Glibc
#endif

/// `uds-stream`, `uds-dgram`, `uds-seqpacket`: Unix domain sockets.
///
/// One connection is a `socketpair` whose second end the peer inherits (one pair per sender in a
/// fan-in, polled by the receiver). A datagram fan-in instead binds one socket to an abstract
/// address that every sender connects to. Stream sockets carry length-prefixed frames; datagram
/// and seqpacket sockets carry a message per datagram once SO_SNDBUF is raised far enough
/// (SO_SNDBUFFORCE when permitted), else chunks with a header.
final class UnixSocketSetup: TransportSetup {
    private let plan: LinkPlan
    private let type: Int32
    private let label: String
    /// The parent's end of each connection, or the bound socket of a datagram fan-in.
    private var parentFDs: [Int32] = []
    /// The peers' ends, until each peer is spawned.
    private var childFDs: [Int32] = []
    private var address: String?
    private var sizing = DatagramSizing.Outcome(chunk: nil, note: "")

    init(_ plan: LinkPlan) throws {
        self.plan = plan
        self.label = plan.transport.rawValue
        switch plan.transport {
        case .udsStream: type = Int32(SOCK_STREAM.rawValue)
        case .udsDgram: type = Int32(SOCK_DGRAM.rawValue)
        default: type = Int32(SOCK_SEQPACKET.rawValue)
        }
        do {
            if plan.transport == .udsDgram, case .fanIn = plan.shape {
                try setUpBoundDatagram()
            } else {
                try setUpPairs()
            }
        } catch {
            tearDown()
            throw error
        }
    }

    private var isStream: Bool { type == Int32(SOCK_STREAM.rawValue) }

    private func setUpPairs() throws {
        var sendingFDs: [Int32] = []
        for _ in 0..<plan.shape.peers {
            var pair: [Int32] = [-1, -1]
            try Sys.check(socketpair(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0, &pair), "socketpair(\(label))")
            parentFDs.append(pair[0])
            childFDs.append(pair[1])
            try Sys.setTimeouts(pair[0])
            try Sys.setTimeouts(pair[1])
            sendingFDs.append(pair[1])
            if plan.shape == .pingPong { sendingFDs.append(pair[0]) }
        }
        if isStream {
            sizing = .init(chunk: nil, note: "4-byte length prefix, default socket buffers")
        } else {
            sizing = DatagramSizing.prepare(sending: sendingFDs, receiving: parentFDs + childFDs, size: plan.size, label: label)
        }
    }

    private func setUpBoundDatagram() throws {
        let name = uniqueName("ringbench")
        let fd = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        try Sys.check(fd, "socket(\(label))")
        parentFDs = [fd]
        try UnixAddress.bind(fd, abstract: name)
        try Sys.setTimeouts(fd)
        address = name
        // Probe what a sender's socket can get: the senders are this same program and user.
        let probe = socket(AF_UNIX, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        try Sys.check(probe, "socket(\(label))")
        defer { Sys.close(probe) }
        sizing = DatagramSizing.prepare(sending: [probe], receiving: [fd], size: plan.size, label: label)
    }

    var note: String {
        var text = sizing.note
        if case .fanIn = plan.shape {
            text += address == nil ? "; one socketpair per sender, receiver polls" : "; senders share one bound socket (max_dgram_qlen applies)"
        }
        return text
    }

    func endpoint(forPeer index: Int) throws -> PeerEndpoint {
        var endpoint = PeerEndpoint()
        if let address {
            endpoint["address"] = address
            endpoint["sndbuf"] = String(DatagramSizing.wantedBuffer(size: plan.size))
        } else {
            endpoint.fds = [childFDs[index]]
        }
        if let chunk = sizing.chunk { endpoint["chunk"] = String(chunk.payload) }
        return endpoint
    }

    func peerSpawned(_ index: Int) {
        if index < childFDs.count {
            Sys.close(childFDs[index])
            childFDs[index] = -1
        }
    }

    func parentLink(watchdog: Watchdog) throws -> Link {
        let fds = parentFDs
        parentFDs = []
        let senders = plan.shape.peers
        if address != nil {
            return DatagramLink(fd: fds[0], size: plan.size, chunk: sizing.chunk, chunkSender: 0, senders: senders,
                                watchdog: watchdog, label: label)
        }
        func link(_ fd: Int32) -> Link & PolledSource {
            if isStream {
                return FramedStreamLink(readFD: fd, writeFD: fd, size: plan.size, watchdog: watchdog, label: label)
            }
            return DatagramLink(fd: fd, size: plan.size, chunk: sizing.chunk, chunkSender: 0, senders: 1,
                                watchdog: watchdog, label: label)
        }
        if case .fanIn = plan.shape {
            return PolledFanInLink(sources: fds.map(link), watchdog: watchdog, label: label)
        }
        return link(fds[0])
    }

    func peersReady() {}

    func tearDown() {
        for fd in parentFDs + childFDs { Sys.close(fd) }
        parentFDs = []
        childFDs = []
    }

    static func connect(_ plan: LinkPlan, _ endpoint: PeerEndpoint, senderIndex: Int, watchdog: Watchdog) throws -> Link {
        let label = plan.transport.rawValue
        let chunk = try endpoint["chunk"].map { _ in ChunkPlan(payload: try endpoint.int("chunk"), size: plan.size) }
        let senders = plan.shape == .pingPong ? 1 : 0
        if let address = endpoint["address"] {
            // Datagram fan-in: our own socket, connected to the receiver's address. Chunks carry
            // our index, as all senders share the receiving socket.
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            try Sys.check(fd, "socket(\(label))")
            let wanted = try endpoint.int("sndbuf")
            let reached = Sys.raiseBuffer(fd, send: true, toAtLeast: wanted).size
            let unit = chunk.map { $0.payload + ChunkHeader.size } ?? plan.size
            guard unit <= reached - DatagramSizing.kernelOverhead else {
                Sys.close(fd)
                throw BenchError.unsupported(transport: label, reason: "SO_SNDBUF reached only \(reached) B, too small for \(unit)-byte datagrams")
            }
            try Sys.setTimeouts(fd)
            try UnixAddress.connect(fd, abstract: address)
            return DatagramLink(fd: fd, size: plan.size, chunk: chunk, chunkSender: senderIndex, senders: senders,
                                watchdog: watchdog, label: label)
        }
        let fd = PeerEndpoint.childFD(0)
        if plan.transport == .udsStream {
            return FramedStreamLink(readFD: fd, writeFD: fd, size: plan.size, watchdog: watchdog, label: label)
        }
        return DatagramLink(fd: fd, size: plan.size, chunk: chunk, chunkSender: 0, senders: senders, watchdog: watchdog, label: label)
    }
}

/// Socket buffers for datagram and seqpacket sockets: a datagram must fit in the sender's
/// SO_SNDBUF (less 32 bytes), so raise it to hold a few messages; split when it cannot be raised.
enum DatagramSizing {
    struct Outcome {
        var chunk: ChunkPlan?
        var note: String
    }

    /// The kernel refuses datagrams longer than its send buffer less this (EMSGSIZE).
    static let kernelOverhead = 32
    /// Chunks, when splitting, are at most this long (header included).
    static let largestChunk = 64 << 10

    /// The send buffer (as the kernel counts it, twice what is asked) aimed at: room for four
    /// messages, never less than the default.
    static func wantedBuffer(size: Int) -> Int {
        4 * (size + 1024)
    }

    static func prepare(sending: [Int32], receiving: [Int32], size: Int, label: String) -> Outcome {
        let wanted = wantedBuffer(size: size)
        var reached = Int.max
        var forced = true
        var raised = false
        for fd in sending {
            let before = Sys.getInt(fd, SOL_SOCKET, SO_SNDBUF)
            let result = Sys.raiseBuffer(fd, send: true, toAtLeast: wanted)
            reached = min(reached, result.size)
            forced = forced && result.forced
            raised = raised || result.size > before
        }
        for fd in receiving { _ = Sys.raiseBuffer(fd, send: false, toAtLeast: wanted) }
        let largest = reached - kernelOverhead
        let buffers = raised
            ? "SO_SNDBUF raised to \(reached) B\(forced ? " (SO_SNDBUFFORCE)" : "")"
            : "SO_SNDBUF \(reached) B"
        if size <= largest {
            return Outcome(chunk: nil, note: "whole messages, \(buffers)")
        }
        let chunk = ChunkPlan(payload: min(largestChunk, largest / 2) - ChunkHeader.size, size: size)
        return Outcome(chunk: chunk, note: "\(chunk.description): \(buffers) could not be raised to fit a \(size)-byte datagram")
    }
}

/// Abstract-namespace Unix socket addresses (no file, gone with the socket).
enum UnixAddress {
    static func withAddress<R>(_ name: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) throws -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(name.utf8)
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count + 1 <= capacity else { throw BenchError.invalidArgument("socket name too long: \(name)") }
        withUnsafeMutableBytes(of: &address.sun_path) { path in
            path[0] = 0
            for (index, byte) in bytes.enumerated() { path[index + 1] = byte }
        }
        let length = socklen_t(pathOffset + 1 + bytes.count)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    static func bind(_ fd: Int32, abstract name: String) throws {
        let rc = try withAddress(name) { Glibc.bind(fd, $0, $1) }
        try Sys.check(rc, "bind(@\(name))")
    }

    static func connect(_ fd: Int32, abstract name: String) throws {
        let rc = try withAddress(name) { address, length in Sys.retrying { Glibc.connect(fd, address, length) } }
        try Sys.check(rc, "connect(@\(name))")
    }
}

/// A datagram or seqpacket socket carrying one message per datagram, or chunks (`ChunkPlan`)
/// reassembled per sender. Receives go straight into the message buffer (one sender) or through
/// a chunk buffer (several senders sharing the socket).
final class DatagramLink: Link, PolledSource {
    private let fd: Int32
    private let size: Int
    private let chunk: ChunkPlan?
    private let chunkSender: Int
    private let reassembler: Reassembler?
    /// Whole messages are received here; with several senders' chunks, chunks are.
    private let buffer: ByteBuffer
    /// A complete message waiting to be taken: -1 a whole one in `buffer`, else a sender's
    /// reassembled one.
    private var ready: Int?
    private var readyLength = 0
    private let watchdog: Watchdog
    private let label: String
    private var closed = false

    /// - Parameters:
    ///   - chunkSender: the index written into the chunks this link sends.
    ///   - senders: how many processes send to this link (0: it only sends).
    init(fd: Int32, size: Int, chunk: ChunkPlan?, chunkSender: Int, senders: Int, watchdog: Watchdog, label: String) {
        self.fd = fd
        self.size = size
        self.chunk = chunk
        self.chunkSender = chunkSender
        self.watchdog = watchdog
        self.label = label
        if let chunk, senders > 0 {
            reassembler = Reassembler(plan: chunk, senders: senders, label: label)
            buffer = ByteBuffer(count: senders > 1 ? chunk.payload : 1)
        } else {
            reassembler = nil
            buffer = ByteBuffer(count: senders > 0 ? size : 1)
        }
    }

    deinit { close() }

    var pollFD: Int32 { fd }
    var hasMessage: Bool { ready != nil }

    // MARK: Sending

    func send(_ message: UnsafeRawBufferPointer) throws {
        guard let chunk else {
            try sendDatagram(message.baseAddress!, message.count, nil)
            return
        }
        for index in 0..<chunk.chunks {
            let length = chunk.length(ofChunk: index)
            var header = ChunkHeader(sender: chunkSender, index: index, last: index == chunk.chunks - 1).word
            try withUnsafeBytes(of: &header) { headerBytes in
                try sendDatagram(message.baseAddress! + index * chunk.payload, length, headerBytes.baseAddress!)
            }
        }
    }

    /// One datagram of `length` bytes at `bytes`, behind the 8-byte `header` if given.
    private func sendDatagram(_ bytes: UnsafeRawPointer, _ length: Int, _ header: UnsafeRawPointer?) throws {
        let total = length + (header == nil ? 0 : ChunkHeader.size)
        while true {
            let sent: Int
            if let header {
                var vectors = (iovec(iov_base: UnsafeMutableRawPointer(mutating: header), iov_len: ChunkHeader.size),
                               iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes), iov_len: length))
                sent = withUnsafeMutablePointer(to: &vectors) { pointer in
                    pointer.withMemoryRebound(to: iovec.self, capacity: 2) { iov in
                        var message = msghdr()
                        message.msg_iov = iov
                        message.msg_iovlen = 2
                        return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
                    }
                }
            } else {
                sent = Glibc.send(fd, bytes, length, Int32(MSG_NOSIGNAL))
            }
            if sent == total { return }
            if sent >= 0 {
                throw BenchError.protocolViolation("\(label): sent \(sent) of a \(total)-byte datagram")
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: try watchdog.checkPeer()
            case ENOBUFS: usleep(50)
            case EPIPE, ECONNREFUSED, ECONNRESET, ENOTCONN: throw BenchError.peerClosed("\(label): the receiving socket is closed")
            case EMSGSIZE: throw BenchError.system(operation: "\(label): send of a \(total)-byte datagram", errno: EMSGSIZE)
            default: throw Sys.failure("\(label): send")
            }
        }
    }

    // MARK: Receiving

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        while ready == nil {
            guard try readAvailable() else { throw BenchError.peerClosed("\(label): the sending end is closed") }
        }
        try takeMessage(body)
    }

    func takeMessage(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let sender = ready else { return }
        ready = nil
        if sender < 0 {
            try body(buffer.bytes(readyLength))
        } else {
            try body(reassembler!.message(of: sender))
        }
    }

    /// Receives one datagram (a whole message or a chunk). False at end of file.
    func readAvailable() throws -> Bool {
        guard let reassembler else { return try receiveWhole() }
        var header: UInt64 = 0
        let direct = reassembler.senders == 1
        let target = direct
            ? reassembler.nextTarget(sender: 0)
            : UnsafeMutableRawBufferPointer(start: buffer.base, count: reassembler.plan.payload)
        while true {
            var truncated = false
            let received = withUnsafeMutableBytes(of: &header) { headerBytes in
                var vectors = (iovec(iov_base: headerBytes.baseAddress, iov_len: ChunkHeader.size),
                               iovec(iov_base: target.baseAddress, iov_len: target.count))
                return withUnsafeMutablePointer(to: &vectors) { pointer in
                    pointer.withMemoryRebound(to: iovec.self, capacity: 2) { iov in
                        var message = msghdr()
                        message.msg_iov = iov
                        message.msg_iovlen = 2
                        let n = recvmsg(fd, &message, 0)
                        truncated = message.msg_flags & Int32(MSG_TRUNC) != 0
                        return n
                    }
                }
            }
            if received < 0 {
                guard let outcome = try Sys.receiveFailure(errno, "\(label): recvmsg", watchdog: watchdog) else { continue }
                return outcome
            }
            if received == 0 { return false }
            guard received >= ChunkHeader.size, !truncated else {
                throw BenchError.protocolViolation("\(label): a \(received)-byte datagram\(truncated ? " longer than the chunk expected" : ", shorter than a chunk header")")
            }
            if let sender = try reassembler.accept(header: header, length: received - ChunkHeader.size,
                                                   source: direct ? nil : UnsafeRawPointer(buffer.base)) {
                ready = sender
            }
            return true
        }
    }

    private func receiveWhole() throws -> Bool {
        while true {
            let received = recv(fd, buffer.base, size, Int32(MSG_TRUNC))
            if received < 0 {
                guard let outcome = try Sys.receiveFailure(errno, "\(label): recv", watchdog: watchdog) else { continue }
                return outcome
            }
            if received == 0 { return false }
            guard received <= size else {
                throw BenchError.protocolViolation("\(label): a \(received)-byte datagram, longer than the \(size)-byte messages of this run")
            }
            ready = -1
            readyLength = received
            return true
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        Sys.close(fd)
    }
}
