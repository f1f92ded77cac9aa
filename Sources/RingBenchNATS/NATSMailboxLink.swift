import RingBenchKit
import ShmMailboxNATS

/// `nats`: a link through ShmMailboxNATS's `RemoteMailbox`. A single send waits for its
/// publish acknowledgement; `sendBatch` is one `batch(window:)` of `--batch` messages (publishes
/// without waiting, then every acknowledgement); `receiveBatch` is one `receiveBatch` (one fetch,
/// each message acknowledged, the last synchronously). Each message is a libnats message
/// (allocated per message, unlike the built-in links' reused buffers).
final class NATSMailboxLink: Link {
    private let connection: NATSConnection
    private let outbox: RemoteMailbox?
    private let inbox: RemoteMailbox?
    private let window: Int
    private let watchdog: Watchdog

    /// How long a receive waits before asking the watchdog whether the other side is alive.
    static let slice = Duration.seconds(1)

    init(url: String, ends: NATSSetup.Ends, plan: LinkPlan, watchdog: Watchdog) throws {
        let connection = try NATSConnection(url)
        do {
            outbox = try ends.sendTo.map { try RemoteMailbox.open($0, on: connection) }
            inbox = try ends.receiveFrom.map { try RemoteMailbox.open($0, on: connection) }
        } catch {
            connection.close()
            throw error
        }
        self.connection = connection
        window = max(1, plan.batch)
        self.watchdog = watchdog
    }

    deinit { close() }

    func send(_ message: UnsafeRawBufferPointer) throws {
        guard let outbox else { throw BenchError.protocolViolation("this nats link only receives") }
        try outbox.send(message)
    }

    func sendBatch(count: Int, buffer: UnsafeMutableRawBufferPointer,
                   fill: (Int, UnsafeMutableRawBufferPointer) throws -> Void) throws {
        guard let outbox else { throw BenchError.protocolViolation("this nats link only receives") }
        try outbox.batch(window: window) {
            for index in 0..<count {
                try fill(index, buffer)
                try outbox.send(UnsafeRawBufferPointer(buffer))
            }
        }
    }

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let inbox else { throw BenchError.protocolViolation("this nats link only sends") }
        while true {
            do {
                try inbox.receive(timeout: Self.slice) { bytes, _ in try bytes.withUnsafeBytes { try body($0) } }
                return
            } catch RemoteMailboxError.timedOut {
                try watchdog.checkPeer()
            }
        }
    }

    func receiveBatch(limit: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        guard let inbox else { throw BenchError.protocolViolation("this nats link only sends") }
        while true {
            do {
                return try inbox.receiveBatch(limit: limit, timeout: Self.slice) { bytes, _ in try bytes.withUnsafeBytes { try body($0) } }
            } catch RemoteMailboxError.timedOut {
                try watchdog.checkPeer()
            }
        }
    }

    func close() {
        outbox?.close()
        inbox?.close()
        connection.close()
    }
}
