#if canImport(Glibc)
import Glibc
#endif

/// `pipe`: anonymous pipes (`pipe2`) the peer inherits, carrying length-prefixed frames. One pipe
/// one way, two for ping-pong, one per sender in a fan-in (polled by the receiver). The pipe
/// buffer is raised with F_SETPIPE_SZ (up to fs.pipe-max-size) to hold a few large messages.
final class PipeSetup: TransportSetup {
    private let plan: LinkPlan
    /// Parent's ends: read ends, plus the request write end for ping-pong (last).
    private var parentFDs: [Int32] = []
    /// Per peer, the ends it inherits (write end; or request read end and reply write end).
    private var childFDs: [[Int32]] = []
    private var pipeSize = 0
    private var raised = false

    static let setPipeSize: Int32 = 1031  // F_SETPIPE_SZ
    static let getPipeSize: Int32 = 1032  // F_GETPIPE_SZ

    init(_ plan: LinkPlan) throws {
        self.plan = plan
        do {
            if plan.shape == .pingPong {
                let request = try makePipe()
                let reply = try makePipe()
                parentFDs = [reply.read, request.write]
                childFDs = [[request.read, reply.write]]
            } else {
                for _ in 0..<plan.shape.peers {
                    let data = try makePipe()
                    parentFDs.append(data.read)
                    childFDs.append([data.write])
                }
            }
        } catch {
            tearDown()
            throw error
        }
    }

    private func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        try Sys.makePipe(&fds)
        let maxSize = Sys.readIntFile("/proc/sys/fs/pipe-max-size") ?? (1 << 20)
        var wanted = 65536
        while wanted < 4 * (plan.size + 4), wanted < maxSize { wanted *= 2 }
        wanted = min(wanted, maxSize)
        let before = Int(fcntl(fds[0], Self.getPipeSize))
        if wanted > before, fcntl(fds[0], Self.setPipeSize, Int32(wanted)) >= 0 { raised = true }
        pipeSize = Int(fcntl(fds[0], Self.getPipeSize))
        return (fds[0], fds[1])
    }

    var note: String {
        var text = "4-byte length prefix, pipe buffer \(pipeSize) B\(raised ? " (raised with F_SETPIPE_SZ)" : "")"
        if case .fanIn = plan.shape { text += "; one pipe per sender, receiver polls" }
        return text
    }

    func endpoint(forPeer index: Int) throws -> PeerEndpoint {
        var endpoint = PeerEndpoint()
        endpoint.fds = childFDs[index]
        return endpoint
    }

    func peerSpawned(_ index: Int) {
        for fd in childFDs[index] { Sys.close(fd) }
        childFDs[index] = []
    }

    func parentLink(watchdog: Watchdog) throws -> Link {
        let fds = parentFDs
        parentFDs = []
        switch plan.shape {
        case .pingPong:
            return FramedStreamLink(readFD: fds[0], writeFD: fds[1], size: plan.size, watchdog: watchdog, label: "pipe")
        case .oneWay:
            return FramedStreamLink(readFD: fds[0], writeFD: -1, size: plan.size, watchdog: watchdog, label: "pipe")
        case .fanIn:
            let sources = fds.map { FramedStreamLink(readFD: $0, writeFD: -1, size: plan.size, watchdog: watchdog, label: "pipe") }
            return PolledFanInLink(sources: sources, watchdog: watchdog, label: "pipe")
        }
    }

    func peersReady() {}

    func tearDown() {
        for fd in parentFDs + childFDs.flatMap({ $0 }) { Sys.close(fd) }
        parentFDs = []
        childFDs = []
    }

    static func connect(_ plan: LinkPlan, _ endpoint: PeerEndpoint, watchdog: Watchdog) throws -> Link {
        if plan.shape == .pingPong {
            return FramedStreamLink(readFD: PeerEndpoint.childFD(0), writeFD: PeerEndpoint.childFD(1),
                                    size: plan.size, watchdog: watchdog, label: "pipe")
        }
        return FramedStreamLink(readFD: -1, writeFD: PeerEndpoint.childFD(0), size: plan.size, watchdog: watchdog, label: "pipe")
    }
}
