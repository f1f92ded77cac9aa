#if canImport(Glibc)
import Glibc
#endif
import CBenchShim

/// `c-ring`, `c-slots`, `c-spin` and `c-futex`: the C floors (CBenchShim/floor.c). Not
/// alternatives to ShmMailbox but references for it, measured in the same run: the least a ring,
/// a queue with a sequence word per slot, a spinning cache line and a bare futex cost between
/// processes, with none of the library's checks.
///
/// The parent creates one memfd and maps it; the peers inherit the descriptor and map it too.
/// `c-ring` and `c-slots` put one ring (queue) in it for a stream or a fan-in (every `c-slots`
/// sender produces into the same queue), two (requests, then replies) for ping-pong; `c-spin` and
/// `c-futex` one turn channel that both directions share. Nothing has a name, so
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
        layout = FloorLayout(plan, capacity: Self.capacity(plan))
        fd = cfloor_memfd(layout.bytes)
        guard fd >= 0 else { throw Sys.failure("memfd_create(\(layout.bytes) bytes)") }
        do {
            let memory = try SharedMemory(fd: fd, count: layout.bytes)
            self.memory = memory
            try layout.initialize(memory)
        } catch {
            Sys.close(fd)
            throw error
        }
    }

    /// Slots per `c-ring` ring or `c-slots` queue: a power of two, as many as fit in
    /// `MailboxSetup.ringBytes` (the size shm's rings aim at), between 2 and 64 for ping-pong and
    /// 2 and 4096 for streams, as shm's are; or the plan's `capacity`, rounded down to a power
    /// of two.
    static func capacity(_ plan: LinkPlan) -> Int {
        let most: Int
        if let given = plan.capacity {
            most = given
        } else {
            let fitting = MailboxSetup.ringBytes / slotBytes(size: plan.size, transport: plan.transport)
            most = min(fitting, plan.shape == .pingPong ? 64 : 4096)
        }
        var capacity = 2
        while capacity * 2 <= most { capacity *= 2 }
        return capacity
    }

    /// Bytes of one slot: the message rounded up to cache lines; `c-slots` puts its 8-byte
    /// sequence word before the message.
    static func slotBytes(size: Int, transport: TransportKind) -> Int {
        ((transport == .cSlots ? 8 : 0) + size + 63) & ~63
    }

    var note: String {
        switch plan.transport {
        case .cRing:
            return "C floor: busy-polling SPSC ring, index published per message (no batching), capacity "
                + "\(layout.capacity) × \((plan.size + 63) & ~63) B slots, each side caches the other's index, "
                + "receiver copies out"
        case .cSlots:
            return "C floor: busy-polling MPMC queue, sequence word per slot (Vyukov), position claimed by CAS "
                + "and slot released per message (no batching), capacity \(layout.capacity) × "
                + "\(Self.slotBytes(size: plan.size, transport: .cSlots)) B slots (8 B word + payload), "
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

    /// Once the last peer (of one, or of a `c-slots` fan-in's senders) is spawned, its copy of
    /// the descriptor is all that needs it.
    func peerSpawned(_ index: Int) {
        guard index == plan.shape.peers - 1 else { return }
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
        if plan.transport == .cRing || plan.transport == .cSlots {
            region = plan.transport == .cRing ? cfloor_ring_bytes(plan.size, capacity) : cfloor_slots_bytes(plan.size, capacity)
            bytes = plan.shape == .pingPong ? 2 * region : region
        } else {
            region = cfloor_turn_bytes(plan.size)
            bytes = region
        }
    }

    /// Prepares the fresh (zeroed) memory before any peer maps it: `c-slots` queues start with
    /// each slot's sequence word at its index. The other floors start from zeros.
    func initialize(_ memory: SharedMemory) throws {
        guard plan.transport == .cSlots else { return }
        for start in stride(from: 0, to: bytes, by: region) {
            guard cfloor_slots_init(memory.base + start, plan.size, capacity) == 0 else {
                throw BenchError.protocolViolation("c-slots: cannot make a queue of \(capacity) slots")
            }
        }
    }

    /// The parent's or the peer's link. Rings and queues: a stream (or every fan-in sender's)
    /// flows from the peer to the parent in ring 0; ping-pong sends requests in ring 0 and replies
    /// in ring 1.
    func link(_ memory: SharedMemory, parent: Bool, watchdog: Watchdog) throws -> Link {
        guard plan.transport == .cRing || plan.transport == .cSlots else {
            return try CTurnLink(memory, size: plan.size, futex: plan.transport == .cFutex, watchdog: watchdog)
        }
        let requests = memory.base, replies = memory.base + region
        let (inbox, outbox): (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?)
        switch (plan.shape, parent) {
        case (.pingPong, true): (inbox, outbox) = (replies, requests)
        case (.pingPong, false): (inbox, outbox) = (requests, replies)
        case (_, true): (inbox, outbox) = (requests, nil)
        case (_, false): (inbox, outbox) = (nil, requests)
        }
        return try CRingLink(memory, transport: plan.transport, receiveFrom: inbox, sendInto: outbox, size: plan.size,
                             capacity: capacity, watchdog: watchdog)
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

/// `c-ring`'s and `c-slots`'s link: the ring (queue) it takes messages from, the one it puts
/// them into, or both. Every message is copied into a slot and published alone; the receiver
/// copies it out into the link's buffer, frees the slot, then hands the copy over.
final class CRingLink: Link {
    private var inbox: OpaquePointer?
    private var outbox: OpaquePointer?
    private var memory: SharedMemory?
    /// `c-slots` (cfloor_slots_*) rather than `c-ring` (cfloor_ring_*).
    private let slots: Bool
    private let name: String
    private let buffer: ByteBuffer
    private let size: Int
    private let watchdog: Watchdog

    init(_ memory: SharedMemory, transport: TransportKind, receiveFrom: UnsafeMutableRawPointer?,
         sendInto: UnsafeMutableRawPointer?, size: Int, capacity: Int, watchdog: Watchdog) throws {
        self.memory = memory
        slots = transport == .cSlots
        name = transport.rawValue
        self.size = size
        self.watchdog = watchdog
        buffer = ByteBuffer(count: receiveFrom == nil ? 1 : size)
        if let receiveFrom {
            inbox = attach(receiveFrom, capacity)
            if inbox == nil { throw BenchError.protocolViolation("\(name): cannot attach a ring of \(capacity) slots") }
        }
        if let sendInto {
            outbox = attach(sendInto, capacity)
            if outbox == nil {
                close()
                throw BenchError.protocolViolation("\(name): cannot attach a ring of \(capacity) slots")
            }
        }
    }

    private func attach(_ memory: UnsafeMutableRawPointer, _ capacity: Int) -> OpaquePointer? {
        slots ? cfloor_slots_attach(memory, size, capacity) : cfloor_ring_attach(memory, size, capacity)
    }

    func send(_ message: UnsafeRawBufferPointer) throws {
        guard let outbox else { throw BenchError.protocolViolation("this \(name) link only receives") }
        guard message.count == size else {
            throw BenchError.protocolViolation("\(name) carries \(size)-byte messages, not \(message.count)")
        }
        if slots {
            while cfloor_slots_send(outbox, message.baseAddress, floorSlice) == 0 {
                try watchdog.checkPeer()
            }
        } else {
            while cfloor_ring_send(outbox, message.baseAddress, floorSlice) == 0 {
                try watchdog.checkPeer()
            }
        }
    }

    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let inbox else { throw BenchError.protocolViolation("this \(name) link only sends") }
        if slots {
            while cfloor_slots_receive(inbox, buffer.base, floorSlice) == 0 {
                try watchdog.checkPeer()
            }
        } else {
            while cfloor_ring_receive(inbox, buffer.base, floorSlice) == 0 {
                try watchdog.checkPeer()
            }
        }
        try body(buffer.bytes(size))
    }

    func close() {
        if let inbox { slots ? cfloor_slots_detach(inbox) : cfloor_ring_detach(inbox) }
        if let outbox { slots ? cfloor_slots_detach(outbox) : cfloor_ring_detach(outbox) }
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
