#if canImport(Glibc)
import Glibc
#endif
import CBenchShim

/// `c-ring`, `c-spin` and `c-futex`: the C floors (CBenchShim/floor.c). Not alternatives to
/// ShmMailbox but references for it, measured in the same run: the least a ring, a spinning
/// cache line and a bare futex cost between two processes, with none of the library's checks.
///
/// The parent creates one memfd and maps it; the peer inherits the descriptor and maps it too.
/// `c-ring` puts one ring in it for a stream, two (requests, then replies) for ping-pong;
/// `c-spin` and `c-futex` one turn channel that both directions share. Nothing has a name, so
/// nothing is left behind. `--strategy` and `--batch` do not apply.
final class FloorSetup: TransportSetup {
    private let plan: LinkPlan
    private let layout: FloorLayout
    private var fd: Int32
    private var memory: SharedMemory?

    init(_ plan: LinkPlan) throws {
        if let reason = plan.transport.limitation(for: plan.shape) {
            throw BenchError.unsupported(transport: plan.transport.rawValue, reason: reason)
        }
        self.plan = plan
        layout = FloorLayout(plan, capacity: Self.capacity(size: plan.size, shape: plan.shape))
        fd = cfloor_memfd(layout.bytes)
        guard fd >= 0 else { throw Sys.failure("memfd_create(\(layout.bytes) bytes)") }
        do {
            memory = try SharedMemory(fd: fd, count: layout.bytes)
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    /// Slots per `c-ring` ring: a power of two, as many as fit in `MailboxSetup.ringBytes` (the
    /// size shm's rings aim at), between 2 and 64 for ping-pong and 2 and 4096 for streams, as
    /// shm's are.
    static func capacity(size: Int, shape: LinkShape) -> Int {
        let slot = (size + 63) & ~63
        let fitting = MailboxSetup.ringBytes / slot
        let most = shape == .pingPong ? 64 : 4096
        var capacity = 2
        while capacity * 2 <= min(fitting, most) { capacity *= 2 }
        return capacity
    }

    var note: String {
        switch plan.transport {
        case .cRing:
            return "C floor: busy-polling SPSC ring, index published per message (no batching), capacity "
                + "\(layout.capacity) × \((plan.size + 63) & ~63) B slots, each side caches the other's index, "
                + "receiver copies out"
        case .cSpin:
            let more = (plan.size + 8 + 63) / 64 - 1
            let place = more == 0 ? "sharing its line" : "continuing into \(more) more line\(more == 1 ? "" : "s")"
            return "C floor: ping-pong on one cache line (turn word, payload \(place)), "
                + "both sides busy-poll with pause, receiver copies out"
        default:
            return "C floor: bare futex ping-pong (32-bit word bumped, FUTEX_WAKE on every send, "
                + "FUTEX_WAIT until it changes, no spinning), receiver copies out"
        }
    }

    func endpoint(forPeer index: Int) throws -> PeerEndpoint {
        var endpoint = PeerEndpoint()
        endpoint["capacity"] = String(layout.capacity)
        endpoint.fds = [fd]
        return endpoint
    }

    /// One peer only: its copy of the descriptor is all that needs it now.
    func peerSpawned(_ index: Int) {
        Sys.close(fd)
        fd = -1
    }

    func parentLink(watchdog: Watchdog) throws -> Link {
        guard let memory else { throw BenchError.protocolViolation("the C floor's memory is gone") }
        return try layout.link(memory, parent: true, watchdog: watchdog)
    }

    func peersReady() {}

    func tearDown() {
        Sys.close(fd)
        fd = -1
        memory = nil
    }

    static func connect(_ plan: LinkPlan, _ endpoint: PeerEndpoint, watchdog: Watchdog) throws -> Link {
        let layout = FloorLayout(plan, capacity: try endpoint.int("capacity"))
        let fd = PeerEndpoint.childFD(0)
        defer { Sys.close(fd) }  // the mapping stays
        return try layout.link(try SharedMemory(fd: fd, count: layout.bytes), parent: false, watchdog: watchdog)
    }
}

/// Where the C floor's channels lie in its memfd, as both sides compute it.
struct FloorLayout {
    let plan: LinkPlan
    let capacity: Int
    /// Bytes of one ring or turn channel (a multiple of 64); the second ring starts there.
    let region: Int
    let bytes: Int

    init(_ plan: LinkPlan, capacity: Int) {
        self.plan = plan
        self.capacity = capacity
        if plan.transport == .cRing {
            region = cfloor_ring_bytes(plan.size, capacity)
            bytes = plan.shape == .pingPong ? 2 * region : region
        } else {
            region = cfloor_turn_bytes(plan.size)
            bytes = region
        }
    }

    /// The parent's or the peer's link. Rings: a stream flows from the peer to the parent in
    /// ring 0; ping-pong sends requests in ring 0 and replies in ring 1.
    func link(_ memory: SharedMemory, parent: Bool, watchdog: Watchdog) throws -> Link {
        guard plan.transport == .cRing else {
            return try CTurnLink(memory, size: plan.size, futex: plan.transport == .cFutex, watchdog: watchdog)
        }
        let requests = memory.base, replies = memory.base + region
        switch (plan.shape, parent) {
        case (.pingPong, true): return try CRingLink(memory, receiveFrom: replies, sendInto: requests, size: plan.size, capacity: capacity, watchdog: watchdog)
        case (.pingPong, false): return try CRingLink(memory, receiveFrom: requests, sendInto: replies, size: plan.size, capacity: capacity, watchdog: watchdog)
        case (_, true): return try CRingLink(memory, receiveFrom: requests, sendInto: nil, size: plan.size, capacity: capacity, watchdog: watchdog)
        case (_, false): return try CRingLink(memory, receiveFrom: nil, sendInto: requests, size: plan.size, capacity: capacity, watchdog: watchdog)
        }
    }
}

/// A MAP_SHARED mapping of a memfd, unmapped when its last holder (the setup, the links) lets go.
final class SharedMemory {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(fd: Int32, count: Int) throws {
        let address = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let address, address != MAP_FAILED else { throw Sys.failure("mmap(\(count) bytes)") }
        base = address
        self.count = count
    }

    deinit { munmap(base, count) }
}

/// How long the C floors' waits last before they return to Swift for `watchdog.checkPeer()`.
private let floorSlice: UInt64 = 1_000_000_000

/// `c-ring`'s link: the ring it takes messages from, the ring it puts them into, or both. Every
/// message is copied into a slot and published alone; the receiver copies it out into the link's
/// buffer, frees the slot, then hands the copy over.
final class CRingLink: Link {
    private var inbox: OpaquePointer?
    private var outbox: OpaquePointer?
    private var memory: SharedMemory?
    private let buffer: ByteBuffer
    private let size: Int
    private let watchdog: Watchdog

    init(_ memory: SharedMemory, receiveFrom: UnsafeMutableRawPointer?, sendInto: UnsafeMutableRawPointer?,
         size: Int, capacity: Int, watchdog: Watchdog) throws {
        self.memory = memory
        self.size = size
        self.watchdog = watchdog
        buffer = ByteBuffer(count: receiveFrom == nil ? 1 : size)
        if let receiveFrom {
            inbox = cfloor_ring_attach(receiveFrom, size, capacity)
            if inbox == nil { throw BenchError.protocolViolation("c-ring: cannot attach a ring of \(capacity) slots") }
        }
        if let sendInto {
            outbox = cfloor_ring_attach(sendInto, size, capacity)
            if outbox == nil {
                close()
                throw BenchError.protocolViolation("c-ring: cannot attach a ring of \(capacity) slots")
            }
        }
    }

    func send(_ message: UnsafeRawBufferPointer) throws {
        guard let outbox else { throw BenchError.protocolViolation("this c-ring link only receives") }
        guard message.count == size else {
            throw BenchError.protocolViolation("c-ring carries \(size)-byte messages, not \(message.count)")
        }
        while cfloor_ring_send(outbox, message.baseAddress, floorSlice) == 0 {
            try watchdog.checkPeer()
        }
    }

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let inbox else { throw BenchError.protocolViolation("this c-ring link only sends") }
        while cfloor_ring_receive(inbox, buffer.base, floorSlice) == 0 {
            try watchdog.checkPeer()
        }
        try body(buffer.bytes(size))
    }

    func close() {
        if let inbox { cfloor_ring_detach(inbox) }
        if let outbox { cfloor_ring_detach(outbox) }
        inbox = nil
        outbox = nil
        memory = nil
    }
}

/// `c-spin` and `c-futex`'s link: one turn channel both sides use, strictly alternating (the
/// parent sends first; the peer echoes). The receiver copies the message out into the link's
/// buffer and hands the copy over.
final class CTurnLink: Link {
    private var turn: OpaquePointer?
    private var memory: SharedMemory?
    private let buffer: ByteBuffer
    private let size: Int
    private let futex: Bool
    private let watchdog: Watchdog

    init(_ memory: SharedMemory, size: Int, futex: Bool, watchdog: Watchdog) throws {
        self.memory = memory
        self.size = size
        self.futex = futex
        self.watchdog = watchdog
        buffer = ByteBuffer(count: size)
        turn = cfloor_turn_attach(memory.base, size)
        if turn == nil { throw BenchError.protocolViolation("\(futex ? "c-futex" : "c-spin"): out of memory") }
    }

    func send(_ message: UnsafeRawBufferPointer) throws {
        guard let turn else { throw BenchError.protocolViolation("this link is closed") }
        guard message.count == size else {
            throw BenchError.protocolViolation("\(futex ? "c-futex" : "c-spin") carries \(size)-byte messages, not \(message.count)")
        }
        if futex {
            let rc = cfloor_futex_send(turn, message.baseAddress)
            if rc < 0 { throw Sys.failure("futex(FUTEX_WAKE)", -rc) }
        } else {
            cfloor_spin_send(turn, message.baseAddress)
        }
    }

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let turn else { throw BenchError.protocolViolation("this link is closed") }
        while true {
            let rc = futex ? cfloor_futex_receive(turn, buffer.base, floorSlice) : cfloor_spin_receive(turn, buffer.base, floorSlice)
            if rc == 1 { break }
            if rc < 0 { throw Sys.failure("futex(FUTEX_WAIT)", -rc) }
            try watchdog.checkPeer()
        }
        try body(buffer.bytes(size))
    }

    func close() {
        if let turn { cfloor_turn_detach(turn) }
        turn = nil
        memory = nil
    }
}
