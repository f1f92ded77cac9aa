#if canImport(Glibc)
import Glibc
#endif
import CBenchShim

/// `mqueue`: POSIX message queues, created by the parent and opened by name in the peers (one
/// queue one way and for a fan-in, two for ping-pong); the names are unlinked once every peer
/// has opened them.
///
/// A queue's message size and length are capped by /proc/sys/fs/mqueue/msgsize_max and msg_max
/// unless the process has CAP_SYS_RESOURCE. The setup first asks for what the run wants (64
/// messages of the run's size); when the kernel refuses, it falls back to the limits read at run
/// time, and messages larger than the queue's message size go in chunks.
final class MessageQueueSetup: TransportSetup {
    private let plan: LinkPlan
    private var names: [String] = []
    private var queues: [mqd_t] = []
    private let maxMessages: Int
    private let messageSize: Int
    private let chunk: ChunkPlan?
    private let limitNote: String

    static let wantedMessages = 64

    init(_ plan: LinkPlan) throws {
        self.plan = plan
        let msgMax = Sys.readIntFile("/proc/sys/fs/mqueue/msg_max") ?? 10
        let msgsizeMax = Sys.readIntFile("/proc/sys/fs/mqueue/msgsize_max") ?? 8192
        let base = "/" + uniqueName("ringbench")
        names = plan.shape == .pingPong ? [base + "-req", base + "-rep"] : [base]

        var attempts = [(Self.wantedMessages, plan.size), (min(msgMax, Self.wantedMessages), plan.size),
                        (min(msgMax, Self.wantedMessages), min(plan.size, msgsizeMax))]
        if plan.size <= msgsizeMax { attempts.removeLast() }
        var refusals: [String] = []
        var chosen: (Int, Int)?
        var firstQueue: mqd_t = -1
        for (count, size) in attempts where chosen == nil {
            if let queue = Self.create(names[0], maxMessages: count, messageSize: size) {
                chosen = (count, size)
                firstQueue = queue
            } else {
                let code = errno
                refusals.append("asking for \(count) × \(size) B failed: \(String(cString: strerror(code)))")
            }
        }
        guard let (count, size) = chosen else {
            throw BenchError.unsupported(transport: "mqueue", reason: "mq_open refused every queue tried (\(refusals.joined(separator: "; ")))")
        }
        queues = [firstQueue]
        maxMessages = count
        messageSize = size
        chunk = size >= plan.size ? nil : ChunkPlan(payload: size - ChunkHeader.size, size: plan.size)
        var limits: [String] = []
        if count < Self.wantedMessages { limits.append("msg_max \(msgMax)") }
        if size < plan.size { limits.append("msgsize_max \(msgsizeMax)") }
        limitNote = limits.isEmpty ? "" : " (\(limits.joined(separator: ", ")): \(refusals.first ?? "refused"))"
        for name in names.dropFirst() {
            guard let queue = Self.create(name, maxMessages: count, messageSize: size) else {
                let error = Sys.failure("mq_open(\(name))")
                tearDown()
                throw error
            }
            queues.append(queue)
        }
    }

    private static func create(_ name: String, maxMessages: Int, messageSize: Int) -> mqd_t? {
        let queue = shim_mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0o600, maxMessages, messageSize)
        return queue == -1 ? nil : queue
    }

    var note: String {
        let shape = "queue of \(maxMessages) × \(messageSize) B"
        let how = chunk.map { "\($0.description), \(shape)" } ?? "whole messages, \(shape)"
        return how + limitNote
    }

    func endpoint(forPeer index: Int) throws -> PeerEndpoint {
        var endpoint = PeerEndpoint()
        endpoint["name"] = names[0]
        if names.count > 1 { endpoint["reply"] = names[1] }
        endpoint["msgsize"] = String(messageSize)
        if let chunk { endpoint["chunk"] = String(chunk.payload) }
        return endpoint
    }

    func peerSpawned(_ index: Int) {}

    func parentLink(watchdog: Watchdog) throws -> Link {
        let link: MessageQueueLink
        if plan.shape == .pingPong {
            link = MessageQueueLink(sendQueue: queues[0], receiveQueue: queues[1], size: plan.size, messageSize: messageSize,
                                    chunk: chunk, chunkSender: 0, senders: 1, watchdog: watchdog)
        } else {
            link = MessageQueueLink(sendQueue: -1, receiveQueue: queues[0], size: plan.size, messageSize: messageSize,
                                    chunk: chunk, chunkSender: 0, senders: plan.shape.peers, watchdog: watchdog)
        }
        queues = []
        return link
    }

    func peersReady() {
        for name in names { mq_unlink(name) }
        names = []
    }

    func tearDown() {
        peersReady()
        for queue in queues { mq_close(queue) }
        queues = []
    }

    static func connect(_ plan: LinkPlan, _ endpoint: PeerEndpoint, senderIndex: Int, watchdog: Watchdog) throws -> Link {
        let messageSize = try endpoint.int("msgsize")
        let chunk = try endpoint["chunk"].map { _ in ChunkPlan(payload: try endpoint.int("chunk"), size: plan.size) }
        func open(_ key: String, _ flags: Int32) throws -> mqd_t {
            let name = try endpoint.string(key)
            let queue = shim_mq_open(name, flags | O_CLOEXEC, 0, 0, 0)
            if queue == -1 { throw Sys.failure("mq_open(\(name))") }
            return queue
        }
        if plan.shape == .pingPong {
            let requests = try open("name", O_RDONLY)
            let replies = try open("reply", O_WRONLY)
            return MessageQueueLink(sendQueue: replies, receiveQueue: requests, size: plan.size, messageSize: messageSize,
                                    chunk: chunk, chunkSender: 0, senders: 1, watchdog: watchdog)
        }
        return MessageQueueLink(sendQueue: try open("name", O_WRONLY), receiveQueue: -1, size: plan.size,
                                messageSize: messageSize, chunk: chunk, chunkSender: senderIndex, senders: 0, watchdog: watchdog)
    }
}

/// A link over one or two message queues. Whole messages go straight from and into the caller's
/// buffer; chunks are staged in a queue-message-sized buffer behind their header (one copy more
/// on each side) and reassembled per sender.
final class MessageQueueLink: Link {
    private let sendQueue: mqd_t
    private let receiveQueue: mqd_t
    private let size: Int
    private let messageSize: Int
    private let chunk: ChunkPlan?
    private let chunkSender: Int
    private let reassembler: Reassembler?
    private let receiveBuffer: ByteBuffer
    private let sendBuffer: ByteBuffer
    private let watchdog: Watchdog
    private var closed = false

    init(sendQueue: mqd_t, receiveQueue: mqd_t, size: Int, messageSize: Int, chunk: ChunkPlan?, chunkSender: Int,
         senders: Int, watchdog: Watchdog) {
        self.sendQueue = sendQueue
        self.receiveQueue = receiveQueue
        self.size = size
        self.messageSize = messageSize
        self.chunk = chunk
        self.chunkSender = chunkSender
        self.watchdog = watchdog
        let receives = receiveQueue != -1
        reassembler = receives ? chunk.map { Reassembler(plan: $0, senders: max(1, senders), label: "mqueue") } : nil
        // mq_receive wants a buffer of at least the queue's message size.
        receiveBuffer = ByteBuffer(count: receives ? max(size, messageSize) : 1)
        sendBuffer = ByteBuffer(count: sendQueue != -1 && chunk != nil ? messageSize : 1)
    }

    deinit { close() }

    func send(_ message: UnsafeRawBufferPointer) throws {
        guard let chunk else {
            try sendQueueMessage(message.baseAddress!, message.count)
            return
        }
        for index in 0..<chunk.chunks {
            let length = chunk.length(ofChunk: index)
            let header = ChunkHeader(sender: chunkSender, index: index, last: index == chunk.chunks - 1)
            sendBuffer.base.storeBytes(of: header.word, as: UInt64.self)
            (sendBuffer.base + ChunkHeader.size).copyMemory(from: message.baseAddress! + index * chunk.payload, byteCount: length)
            try sendQueueMessage(UnsafeRawPointer(sendBuffer.base), ChunkHeader.size + length)
        }
    }

    private func sendQueueMessage(_ bytes: UnsafeRawPointer, _ length: Int) throws {
        while true {
            var deadline = Self.deadline()
            if mq_timedsend(sendQueue, bytes.assumingMemoryBound(to: CChar.self), length, 0, &deadline) == 0 { return }
            switch errno {
            case EINTR: continue
            case ETIMEDOUT: try watchdog.checkPeer()
            default: throw Sys.failure("mq_timedsend")
            }
        }
    }

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let reassembler else {
            let length = try receiveQueueMessage()
            try body(receiveBuffer.bytes(length))
            return
        }
        while true {
            let length = try receiveQueueMessage()
            guard length >= ChunkHeader.size else {
                throw BenchError.protocolViolation("mqueue: a \(length)-byte queue message, shorter than a chunk header")
            }
            let header = receiveBuffer.base.load(as: UInt64.self)
            if let sender = try reassembler.accept(header: header, length: length - ChunkHeader.size,
                                                   source: UnsafeRawPointer(receiveBuffer.base + ChunkHeader.size)) {
                try body(reassembler.message(of: sender))
                return
            }
        }
    }

    private func receiveQueueMessage() throws -> Int {
        while true {
            var deadline = Self.deadline()
            let length = mq_timedreceive(receiveQueue, receiveBuffer.base.assumingMemoryBound(to: CChar.self),
                                         receiveBuffer.count, nil, &deadline)
            if length >= 0 { return length }
            switch errno {
            case EINTR: continue
            case ETIMEDOUT: try watchdog.checkPeer()
            default: throw Sys.failure("mq_timedreceive")
            }
        }
    }

    /// One second from now on CLOCK_REALTIME, which the mq_timed* calls use.
    private static func deadline() -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        now.tv_sec += 1
        return now
    }

    func close() {
        guard !closed else { return }
        closed = true
        if sendQueue != -1 { mq_close(sendQueue) }
        if receiveQueue != -1 { mq_close(receiveQueue) }
    }
}
