#if canImport(Glibc)
import Glibc
#endif

/// The receiving end of a fan-in over one connection (socket or pipe) per sender: serves whole
/// messages already buffered, round robin, and otherwise waits in `poll()` for any connection
/// to have data, then reads once from each readable one.
final class PolledFanInLink: Link {
    private let sources: [PolledSource]
    private var descriptors: [pollfd]
    private var cursor = 0
    private var openCount: Int
    private let watchdog: Watchdog
    private let label: String

    init(sources: [PolledSource], watchdog: Watchdog, label: String) {
        self.sources = sources
        self.descriptors = sources.map { pollfd(fd: $0.pollFD, events: Int16(POLLIN), revents: 0) }
        self.openCount = sources.count
        self.watchdog = watchdog
        self.label = label
    }

    func send(_ message: UnsafeRawBufferPointer) throws {
        throw BenchError.protocolViolation("\(label): the fan-in end only receives")
    }

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let count = sources.count
        while true {
            for step in 0..<count {
                let index = (cursor + step) % count
                if sources[index].hasMessage {
                    cursor = (index + 1) % count
                    try sources[index].takeMessage(body)
                    return
                }
            }
            guard openCount > 0 else {
                throw BenchError.peerClosed("\(label): every sender's connection is closed")
            }
            let ready = descriptors.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), 1000) }
            if ready == 0 {
                try watchdog.checkPeer()
                continue
            }
            if ready < 0 {
                if errno == EINTR { continue }
                throw Sys.failure("\(label): poll")
            }
            for index in 0..<count where descriptors[index].revents != 0 {
                descriptors[index].revents = 0
                if try !sources[index].readAvailable() {
                    // End of file: poll would report it forever, so stop watching this one.
                    descriptors[index].fd = -1
                    openCount -= 1
                }
            }
        }
    }

    func close() {
        for case let link as Link in sources { link.close() }
    }
}
