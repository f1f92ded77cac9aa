#if canImport(Glibc)
import Glibc
#endif
import CShim
import Synchronization

/// A named mailbox in shared memory that processes on this machine send messages to and
/// receive messages from.
///
/// ```swift
/// // producer process
/// let box = try Mailbox.create("orders")
/// try box.send("hello")
///
/// // consumer process
/// let box = try Mailbox.open("orders")
/// let message = try box.receive()          // blocks until a message arrives
/// print(message.string, "from pid", message.sender)
/// ```
///
/// Every call comes in three forms: blocking (`send(_:)`, `receive()`), timed (`timeout:`,
/// throws `MailboxError.timedOut`) and non-blocking (`trySend` returns `false` when full,
/// `tryReceive` returns `nil` when empty).
///
/// A handle is not `Sendable`: use it from one thread at a time (a `.shared` mailbox may be
/// opened by several threads, each with its own handle), and open the mailbox again in a child
/// after `fork`.
public final class Mailbox {
    /// The mailbox's name.
    public let name: String
    /// The ring kind chosen at creation.
    public let kind: MailboxOptions.RingKind
    /// How many messages can wait, chosen at creation.
    public let capacity: Capacity
    /// The largest message in bytes.
    public let maxMessageSize: Int
    /// How this handle waits in blocking and timed calls.
    public var waitStrategy: WaitStrategy
    /// Who owns the mailbox, chosen at creation.
    public let ownership: MailboxOptions.Ownership
    /// Who may receive when several processes try, chosen at creation.
    public let receiverPolicy: MailboxOptions.ReceiverPolicy

    /// What a receive on an `.exclusive` mailbox does while another process holds the turn.
    public enum WhenReceiverBusy: Sendable {
        /// Throw `receiverBusy` at once.
        case fail
        /// Wait for the turn (within the call's timeout; non-blocking calls still throw).
        case wait
    }
    /// This handle's choice when an `.exclusive` mailbox's receive turn is taken (default `.fail`).
    public var whenReceiverBusy = WhenReceiverBusy.fail

    private enum Ring {
        case oneToOne(OneToOneRing)
        case shared(SharedRing)
        /// An unbounded mailbox's chain of shared rings.
        case chained(SegmentChain)
    }

    let segment: SharedSegment
    private let ring: Ring
    let messageEvent: EventCount
    let spaceEvent: EventCount
    let me: ProcessIdentity
    private let pid: UInt32
    /// `me.packed`, computed once.
    private let packedMe: UInt64
    /// Zero capacity: every send waits until a receiver has taken its message.
    private let isRendezvous: Bool
    /// The owner word (packed identity) and the owner's flags in the segment.
    let ownerWord: UnsafeMutablePointer<Atomic<UInt64>>
    let ownerFlags: UnsafeMutablePointer<Atomic<UInt32>>
    /// The owner word value under which this handle's receive right was last confirmed.
    var confirmedOwner: UInt64 = 0
    /// Coarse-clock time of the next liveness check of a process owner.
    var nextOwnerCheck: UInt64 = 0
    /// Whether closing this handle terminates the mailbox (the creating handle of a
    /// process-owned mailbox).
    var terminatesOnClose = false
    /// Roles (ParticipantTable bits) this handle has recorded and, for one-to-one, claimed.
    private var roles: UInt32 = 0
    private var isClosed = false
    /// Nesting depth of `batch { }` calls; sends publish at depth 0 only.
    private var batchDepth = 0
    /// Sends made inside a batch that no receiver has been told about yet.
    private var hasUnnotifiedSends = false
    /// Messages taken by a batch receive whose space is not yet released and announced.
    private var hasUnnotifiedReceives = false
    /// This handle's entry in a round-robin mailbox's receivers table, once registered.
    var turnEntry: Int?
    /// When this handle last checked the liveness of the receiver whose turn it is.
    var turnCheckedAt: UInt64 = 0
    /// A slot this handle found stuck (claimed or taken and not moving), and since when.
    private var stall: (word: UInt64, position: UInt64, since: UInt64)?

    /// Longest single futex sleep: a blocked caller re-checks at least this often, which bounds
    /// how long a dead peer's stuck claim can go unnoticed.
    static let sleepSliceNanos: UInt64 = 50_000_000
    /// How long a slot must stay stuck before its holder's liveness is checked.
    static let stallCheckNanos: UInt64 = 2_000_000

    private init(name: MailboxName, segment: SharedSegment, geometry: SegmentGeometry, waitStrategy: WaitStrategy, me: ProcessIdentity) throws(MailboxError) {
        self.name = name.name
        self.kind = geometry.kind
        self.ownership = geometry.ownership
        self.receiverPolicy = geometry.receiverPolicy
        self.ownerWord = segment.base.atomicUInt64(at: SegmentLayout.ownerOffset)
        self.ownerFlags = segment.base.atomicUInt32(at: SegmentLayout.ownerFlagsOffset)
        self.capacity = geometry.requestedCapacity
        self.isRendezvous = geometry.isRendezvous
        self.maxMessageSize = geometry.maxMessageSize
        self.waitStrategy = waitStrategy
        self.segment = segment
        self.me = me
        self.pid = UInt32(bitPattern: me.pid)
        self.packedMe = me.packed
        switch geometry.kind {
        case .oneToOne: ring = .oneToOne(OneToOneRing(header: segment.base, geometry: geometry))
        case .shared where geometry.buffering == .unbounded:
            ring = .chained(try SegmentChain(name: name, segment: segment, geometry: geometry))
        case .shared: ring = .shared(SharedRing(header: segment.base, geometry: geometry))
        }
        messageEvent = EventCount(base: segment.base, offset: SegmentLayout.messageEventOffset)
        spaceEvent = EventCount(base: segment.base, offset: SegmentLayout.spaceEventOffset)
    }

    // MARK: Lifecycle

    /// Creates a new mailbox and returns a handle to it. The segment is built under a temporary
    /// name (`shm_open(O_CREAT | O_EXCL)`, pages reserved with `posix_fallocate`, header written)
    /// and then linked to the mailbox's name (`link(2)`, which fails if the name exists).
    ///
    /// - Throws: `invalidName`, `invalidOptions`, `alreadyExists`, `permissionDenied`,
    ///   `outOfSharedMemory` (when `/dev/shm` cannot hold it), `system`.
    public static func create(_ name: String, options: MailboxOptions = MailboxOptions()) throws(MailboxError) -> Mailbox {
        try create(MailboxName(name), options: options)
    }

    /// `create(_:options:)` for a validated or derived name.
    static func create(_ validName: MailboxName, options: MailboxOptions) throws(MailboxError) -> Mailbox {
        let geometry = try SegmentGeometry(kind: options.kind, capacity: options.capacity,
                                           maxMessageSize: options.maxMessageSize, ownership: options.ownership,
                                           receiverPolicy: options.receiverPolicy)
        guard options.permissions & ~0o777 == 0, options.permissions & 0o600 == 0o600 else {
            throw .invalidOptions("permissions must be within 0o777 and include 0o600, not 0o\(String(options.permissions, radix: 8))")
        }
        let me = ProcessIdentity.current()
        // Built under a temporary name and linked into place once complete: an opener never
        // meets a half-built mailbox, even if this process is killed while building it.
        let segment = try SharedSegment.createInitialized(validName, size: geometry.segmentSize, mode: mode_t(options.permissions)) { base in
            geometry.write(to: base, mode: options.permissions, creator: me, createdAt: unixNanos())
            if geometry.kind == .shared { SharedRing.initialize(header: base, geometry: geometry) }
            if options.ownership != .none {
                // Relaxed: published by the release store of the magic below.
                base.atomicUInt64(at: SegmentLayout.ownerOffset).pointee.store(me.packed, ordering: .relaxed)
            }
            SegmentGeometry.publish(base)
        }
        let box = try Mailbox(name: validName, segment: segment, geometry: geometry, waitStrategy: options.waitStrategy, me: me)
        box.terminatesOnClose = options.ownership == .process
        return box
    }

    /// Opens an existing mailbox, validating its header (magic, version, geometry against the
    /// segment's size).
    ///
    /// - Throws: `invalidName`, `notFound`, `permissionDenied`, `notAMailbox`,
    ///   `incompatibleVersion`, `corrupted`, `ownerTerminated` (a process-owned mailbox whose
    ///   owner has gone; the segment is removed), `system`.
    public static func open(_ name: String, waitStrategy: WaitStrategy = .default) throws(MailboxError) -> Mailbox {
        try open(MailboxName(name), waitStrategy: waitStrategy)
    }

    /// `open(_:waitStrategy:)` for a validated or derived name.
    static func open(_ validName: MailboxName, waitStrategy: WaitStrategy) throws(MailboxError) -> Mailbox {
        let segment = try SharedSegment.open(validName, minimumSize: SegmentLayout.headerSize, waitForSize: .milliseconds(500))
        let geometry = try SegmentGeometry.read(from: segment, waitForMagic: .seconds(2))
        guard geometry.buffering != .chained else {
            throw .notAMailbox(validName.name)
        }
        let box = try Mailbox(name: validName, segment: segment, geometry: geometry, waitStrategy: waitStrategy, me: ProcessIdentity.current())
        if box.ownership == .process { try box.checkOwner(force: true) }
        return box
    }

    /// Removes the mailbox's name (`shm_unlink`), and those of an unbounded mailbox's further
    /// segments. Processes that have it open keep using it; the memory is freed when the last of
    /// them closes it.
    ///
    /// - Throws: `invalidName`, `notFound`, `permissionDenied`, `system`.
    public static func delete(_ name: String) throws(MailboxError) {
        try SharedSegment.unlink(MailboxName(name))
        SegmentChain.unlinkSegments(of: name)
    }

    /// The names of all mailboxes on this machine (the `shmmb.*` objects in `/dev/shm`), sorted.
    /// A name listed here may still fail to open (damaged, foreign, or not permitted).
    public static func list() throws(MailboxError) -> [String] {
        try SharedSegment.mailboxNames()
    }

    /// Gives up this handle's one-to-one role (if any); later calls throw `closed`. The mapping is
    /// released when the handle is deinitialised.
    public func close() {
        guard !isClosed else { return }
        flushSends()
        finishReceives()
        releaseRoles()
        if let turnEntry { leaveTurns(turnEntry) }
        if terminatesOnClose { terminate() }
        isClosed = true
    }

    deinit {
        close()
        if case .oneToOne(let ring) = ring { ring.deallocate() }
    }

    /// Messages waiting right now (a snapshot).
    public var depth: Int {
        switch ring {
        case .oneToOne(let ring): return ring.depth
        case .shared(let ring): return ring.depth
        case .chained(let chain): return chain.depth
        }
    }

    /// The shared-memory segments the mailbox occupies now: 1, or for an unbounded mailbox its
    /// own segment plus the further segments it has grown (`/dev/shm/shmmb.NAME#N`) and not yet
    /// given back (a snapshot).
    public var segmentCount: Int {
        guard case .chained = ring else { return 1 }
        return 1 + SegmentChain.segmentNames(of: name).count
    }

    /// Processes recorded as having sent to or received from this mailbox.
    public var participants: [Participant] {
        ParticipantTable(header: segment.base).all()
    }

    /// The permission bits the mailbox was created with.
    public var permissions: UInt32 {
        segment.base.load(fromByteOffset: SegmentLayout.modeOffset, as: UInt32.self)
    }

    // MARK: Sending

    /// Sends the bytes of `buffer`, waiting for space for at most `timeout` (forever if nil).
    ///
    /// - Throws: `messageTooLarge`, `timedOut`, `closed`, `roleTaken`, `corrupted`.
    public func send(_ buffer: UnsafeRawBufferPointer, timeout: Duration? = nil) throws(MailboxError) {
        _ = try sendBuffer(buffer, deadline: Self.deadline(timeout))
    }

    /// Sends `bytes` (an `Array`, `Data`, a slice…), waiting at most `timeout` (forever if nil).
    @inlinable
    public func send<Bytes: Collection<UInt8>>(_ bytes: Bytes, timeout: Duration? = nil) throws(MailboxError) {
        _ = try sendContents(of: bytes, deadline: Self.deadline(timeout))
    }

    /// Sends the UTF-8 bytes of `text`, waiting at most `timeout` (forever if nil).
    public func send(_ text: String, timeout: Duration? = nil) throws(MailboxError) {
        var text = text
        let deadline = Self.deadline(timeout)
        _ = try text.withUTF8 { bytes in
            Result { () throws(MailboxError) -> Bool in try sendBuffer(UnsafeRawBufferPointer(bytes), deadline: deadline) }
        }.get()
    }

    /// Sends the bytes of `value` (read back with `Message.load(as:)`), waiting at most `timeout`.
    @inlinable
    public func send<T: BitwiseCopyable>(value: T, timeout: Duration? = nil) throws(MailboxError) {
        let deadline = Self.deadline(timeout)
        _ = try withUnsafeBytes(of: value) { (bytes) throws(MailboxError) -> Bool in try sendBuffer(bytes, deadline: deadline) }
    }

    /// Sends the bytes of `buffer` and, with `until: .received`, returns only once a receiver has
    /// taken the message, naming it (a receipt). A message nobody took within `timeout` is taken
    /// back (`timedOut`, nothing sent) on a `.shared` mailbox; on a `.oneToOne` mailbox it stays
    /// queued. `timeout: .zero` sends only if a receiver takes the message at once.
    ///
    /// - Throws: `timedOut`, `receiverDied` (the receiver that took it died while reading it), or
    ///   what `send(_:timeout:)` throws.
    @discardableResult
    public func send(_ buffer: UnsafeRawBufferPointer, timeout: Duration? = nil, until completion: Completion) throws(MailboxError) -> Delivery? {
        try sendBuffer(buffer, deadline: Self.deadline(timeout), completion: completion).delivery
    }

    /// `send(_:timeout:until:)` for an `Array`, `Data`, a slice or any collection of bytes.
    @discardableResult
    @inlinable
    public func send<Bytes: Collection<UInt8>>(_ bytes: Bytes, timeout: Duration? = nil, until completion: Completion) throws(MailboxError) -> Delivery? {
        let deadline = Self.deadline(timeout)
        let copy = Array(bytes)
        return try copy.withUnsafeBytes { buffer in
            Result { () throws(MailboxError) -> SendResult in try sendBuffer(buffer, deadline: deadline, completion: completion) }
        }.get().delivery
    }

    /// `send(_:timeout:until:)` for the UTF-8 bytes of `text`.
    @discardableResult
    public func send(_ text: String, timeout: Duration? = nil, until completion: Completion) throws(MailboxError) -> Delivery? {
        var text = text
        let deadline = Self.deadline(timeout)
        return try text.withUTF8 { bytes in
            Result { () throws(MailboxError) -> SendResult in
                try sendBuffer(UnsafeRawBufferPointer(bytes), deadline: deadline, completion: completion)
            }
        }.get().delivery
    }

    /// Sends `buffer` if there is room now; returns `false` (sending nothing) when the mailbox is full.
    public func trySend(_ buffer: UnsafeRawBufferPointer) throws(MailboxError) -> Bool {
        try sendBuffer(buffer, deadline: 0)
    }

    /// Sends `bytes` if there is room now; returns `false` when the mailbox is full.
    @inlinable
    public func trySend<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(MailboxError) -> Bool {
        try sendContents(of: bytes, deadline: 0)
    }

    /// Sends `text` as UTF-8 if there is room now; returns `false` when the mailbox is full.
    public func trySend(_ text: String) throws(MailboxError) -> Bool {
        var text = text
        return try text.withUTF8 { bytes in
            Result { () throws(MailboxError) -> Bool in try sendBuffer(UnsafeRawBufferPointer(bytes), deadline: 0) }
        }.get()
    }

    /// Sends the bytes of `value` if there is room now; returns `false` when the mailbox is full.
    @inlinable
    public func trySend<T: BitwiseCopyable>(value: T) throws(MailboxError) -> Bool {
        try withUnsafeBytes(of: value) { (bytes) throws(MailboxError) -> Bool in try sendBuffer(bytes, deadline: 0) }
    }

    /// Zero-copy send: reserves `count` bytes in the mailbox and lets `fill` write the message
    /// straight into shared memory; the message is published when `fill` returns. `fill` must
    /// write all `count` bytes. If `fill` throws, nothing is delivered and its error is rethrown.
    /// Waits for space at most `timeout` (forever if nil).
    ///
    /// - Throws: what `fill` throws, or a `MailboxError`.
    public func send(count: Int, timeout: Duration? = nil, _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        _ = try sendReserving(count: count, deadline: Self.deadline(timeout), completion: .queued, fill)
    }

    /// Zero-copy send if there is room now; returns `false` (without calling `fill`) when full.
    public func trySend(count: Int, _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> Bool {
        try sendReserving(count: count, deadline: 0, completion: .queued, fill) != .full
    }

    /// Sends made inside `body` on this handle are announced together when `body` returns: at most
    /// one wake-up (and, on a `.oneToOne` mailbox, one store of the published tail) for the whole
    /// batch instead of one per message. Each message can be taken as soon as it is written by a
    /// receiver that is not asleep; a sleeping receiver wakes when the batch ends. A send that
    /// finds the mailbox full first announces what came before it, so a batch never waits on
    /// itself. Use it for bursts; calls may nest.
    ///
    /// ```swift
    /// try box.batch {
    ///     for order in orders { try box.send(value: order) }
    /// }
    /// ```
    public func batch<R>(_ body: () throws -> R) rethrows -> R {
        enterBatch()
        defer { leaveBatch() }
        return try body()
    }

    /// Starts a batch (see `batch`); every call must be matched by `leaveBatch()`.
    func enterBatch() {
        batchDepth += 1
    }

    /// Ends a batch started with `enterBatch()`; the outermost end publishes and announces it.
    func leaveBatch() {
        batchDepth -= 1
        if batchDepth == 0 { flushSends() }
    }

    // MARK: Receiving

    /// Takes the oldest message, waiting at most `timeout` for one (forever if nil).
    ///
    /// - Throws: `timedOut`, `closed`, `roleTaken`, `corrupted`.
    public func receive(timeout: Duration? = nil) throws(MailboxError) -> Message {
        try receiveCopy(deadline: Self.deadline(timeout))!
    }

    /// Takes the oldest message if there is one; returns nil at once when the mailbox is empty.
    public func tryReceive() throws(MailboxError) -> Message? {
        try receiveCopy(deadline: 0)
    }

    /// Zero-copy receive: hands the oldest message's bytes (valid only inside `body`) and its
    /// sender's pid to `body`, then frees its space, also when `body` throws. Waits at most
    /// `timeout` for a message (forever if nil).
    @inlinable
    public func receive<R>(timeout: Duration? = nil, _ body: (UnsafeRawBufferPointer, _ sender: Int32) throws -> R) throws -> R {
        var result: R?
        _ = try receiveOne(deadline: Self.deadline(timeout), release: true) { result = try body($0, $1) }
        // receiveOne returns only after `body` returned (a blocking call never reports empty).
        return result!
    }

    /// Zero-copy receive if a message is waiting; returns nil at once when the mailbox is empty.
    @inlinable
    public func tryReceive<R>(_ body: (UnsafeRawBufferPointer, _ sender: Int32) throws -> R) throws -> R? {
        var result: R?
        guard try receiveOne(deadline: 0, release: true, { result = try body($0, $1) }) else { return nil }
        return result
    }

    /// Takes every waiting message, up to `limit`, handing each (bytes valid only inside) with its
    /// sender's pid to `body`, and frees their space together: one release store and at most one
    /// wake-up for the batch. Waits at most `timeout` (forever if nil) for the first message, then
    /// takes only what is already there. Returns how many messages it took (at least 1).
    ///
    /// - Throws: what `body` throws (the message it was given is consumed), `timedOut`, or
    ///   another `MailboxError`.
    public func receiveBatch(limit: Int = .max, timeout: Duration? = nil, _ body: (UnsafeRawBufferPointer, _ sender: Int32) throws -> Void) throws -> Int {
        try receiveMany(limit: limit, deadline: Self.deadline(timeout), body)
    }

    /// Like `receiveBatch`, without waiting: returns 0 at once when the mailbox is empty.
    public func tryReceiveBatch(limit: Int = .max, _ body: (UnsafeRawBufferPointer, _ sender: Int32) throws -> Void) throws -> Int {
        try receiveMany(limit: limit, deadline: 0, body)
    }

    // MARK: Engine

    // The public generic calls are thin inlinable wrappers over these non-generic entry points,
    // so a client module specializes the wrapper and never pays for generic metadata here.

    /// Copies `buffer` into the mailbox. Returns false only for a non-blocking call that found it full.
    @usableFromInline
    func sendBuffer(_ buffer: UnsafeRawBufferPointer, deadline: UInt64) throws(MailboxError) -> Bool {
        try sendBuffer(buffer, deadline: deadline, completion: .queued) != .full
    }

    /// Copies `buffer` into the mailbox and, for `.received`, waits until a receiver took it.
    @usableFromInline
    func sendBuffer(_ buffer: UnsafeRawBufferPointer, deadline: UInt64, completion: Completion) throws(MailboxError) -> SendResult {
        try typed {
            try sendReserving(count: buffer.count, deadline: deadline, completion: completion) { target in
                if let source = buffer.baseAddress, !target.isEmpty {
                    target.baseAddress!.copyMemory(from: source, byteCount: buffer.count)
                }
            }
        }
    }

    /// `sendBuffer` for any collection of bytes: in place when it is contiguous, else via a copy.
    @inlinable
    func sendContents<Bytes: Collection<UInt8>>(of bytes: Bytes, deadline: UInt64) throws(MailboxError) -> Bool {
        var outcome: Result<Bool, MailboxError>?
        _ = bytes.withContiguousStorageIfAvailable { buffer in
            outcome = Result { () throws(MailboxError) -> Bool in try sendBuffer(UnsafeRawBufferPointer(buffer), deadline: deadline) }
        }
        if let outcome { return try outcome.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBytes { buffer in
            Result { () throws(MailboxError) -> Bool in try sendBuffer(buffer, deadline: deadline) }
        }.get()
    }

    private func receiveCopy(deadline: UInt64) throws(MailboxError) -> Message? {
        var message: Message?
        let taken = try typed {
            try receiveOne(deadline: deadline, release: true) { bytes, sender in
                message = Message(bytes: [UInt8](bytes), sender: sender)
            }
        }
        return taken ? message : nil
    }

    /// Returns `.full` only for a non-blocking call (deadline 0) that found the mailbox full (or,
    /// for a synchronous send, no receiver to take the message at once).
    @inline(__always)
    private func sendReserving(count: Int, deadline: UInt64, completion: Completion,
                               _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> SendResult {
        guard !isClosed else { throw MailboxError.closed }
        guard count >= 0, count <= maxMessageSize else {
            throw MailboxError.messageTooLarge(size: count, limit: maxMessageSize)
        }
        if roles & ParticipantTable.sent == 0 { try takeRole(ParticipantTable.sent, deadline: 0) }
        if ownership == .process { try checkOwner(force: false) }
        let publish = batchDepth == 0
        let waits = completion == .received || isRendezvous
        var written: UInt64 = 0
        /// The ring a synchronous send's message went to (shared and chained rings).
        var writtenTo: SharedRing?
        func attempt() throws -> Bool {
            switch ring {
            case .oneToOne(let ring):
                guard try ring.tryWrite(length: count, sender: pid, publish: publish, fill) else { return false }
                // Only a synchronous send needs the message's sequence number.
                if waits { written = ring.writtenCount }
                return true
            case .shared(let ring):
                switch try ring.tryWrite(length: count, sender: pid, identity: packedMe, receipt: waits, fill) {
                case .written(let position):
                    written = position
                    if waits { writtenTo = ring }
                    return true
                case .full(let word, let position):
                    noteStall(word: word, position: position, in: ring)
                    return false
                case .sealed:
                    throw MailboxError.corrupted(reason: "a bounded ring reads as sealed")
                }
            case .chained(let chain):
                // Never full: the chain grows instead (or throws `outOfSharedMemory`).
                guard case .written(let position) = try chain.tryWrite(length: count, sender: pid, identity: packedMe, receipt: waits, fill) else {
                    return false
                }
                written = position
                if waits { writtenTo = chain.writer.ring }
                return true
            }
        }
        if try !attempt() {
            // Full: whatever this handle has batched must become visible before it waits for
            // room, or its receiver could never make any.
            flushSends()
            if deadline == 0 { return .full }
            try waitSlowly(on: spaceEvent, deadline: deadline, attempt)
        }
        if publish {
            messageEvent.notify()
        } else {
            hasUnnotifiedSends = true
        }
        guard waits else { return .queued }
        flushSends()
        do {
            return .delivered(try awaitDelivery(of: written, in: writtenTo, deadline: deadline))
        } catch MailboxError.timedOut where deadline == 0 {
            return .full
        }
    }

    /// Waits until the message this handle wrote (`written`: its slot position in `sharedRing`,
    /// or its sequence number on a one-to-one ring) has been taken, and returns who took it. On a
    /// shared ring a message nobody took by `deadline` is taken back (`timedOut`, nothing sent);
    /// on a one-to-one ring it stays queued.
    @inline(never)
    private func awaitDelivery(of written: UInt64, in sharedRing: SharedRing?, deadline: UInt64) throws -> ProcessIdentity {
        switch sharedRing {
        case nil:
            guard case .oneToOne(let ring) = ring else { throw MailboxError.corrupted(reason: "no ring to await delivery in") }
            _ = try wait(on: spaceEvent, deadline: max(deadline, 1)) { ring.hasConsumed(written) }
            // Acquire: names the receiver that took the role before consuming the message (the
            // role word itself is cleared when that receiver closes).
            let receiver = segment.base.atomicUInt64(at: SegmentLayout.lastReceiverOffset).pointee.load(ordering: .acquiring)
            return ProcessIdentity(packed: receiver)
        case .some(let ring):
            var receiver: UInt64 = 0
            var takingSince: UInt64 = 0
            func check() throws -> Bool {
                switch ring.delivery(at: written, sender: pid) {
                case .waiting:
                    return false
                case .taking(let receiverPid, let word):
                    // A receiver that dies while reading would strand us: check it after a while.
                    let now = MonotonicClock.now()
                    if takingSince == 0 { takingSince = now }
                    if now &- takingSince > Self.stallCheckNanos, !ProcessIdentity.isAlive(pid: receiverPid) {
                        if ring.release(stuck: word, at: written) { spaceEvent.notify() }
                        throw MailboxError.receiverDied(pid: receiverPid)
                    }
                    return false
                case .delivered(let identity):
                    receiver = identity
                    spaceEvent.notify()
                    return true
                case .lost:
                    throw MailboxError.receiverDied(pid: 0)
                }
            }
            do {
                _ = try wait(on: spaceEvent, deadline: max(deadline, 1), check)
            } catch MailboxError.timedOut {
                if ring.retract(at: written, sender: pid) {
                    spaceEvent.notify()
                    throw MailboxError.timedOut
                }
                // A receiver took it meanwhile; it is being read: wait for the receipt.
                _ = try wait(on: spaceEvent, deadline: .max, check)
            }
            return ProcessIdentity(packed: receiver)
        }
    }

    /// Publishes batched sends and wakes receivers that sleep, once for the whole batch.
    private func flushSends() {
        guard hasUnnotifiedSends else { return }
        hasUnnotifiedSends = false
        if case .oneToOne(let ring) = ring { _ = ring.publishWrites() }
        messageEvent.notify()
    }

    /// Takes one message and hands it to `body`. Returns false only for a non-blocking call
    /// (deadline 0) that found the mailbox empty. With `release: false` the space of the message
    /// taken is released by `finishReceives()`.
    @usableFromInline
    func receiveOne(deadline: UInt64, release: Bool, _ body: (UnsafeRawBufferPointer, Int32) throws -> Void) throws -> Bool {
        guard !isClosed else { throw MailboxError.closed }
        if ownership != .none, ownerWord.pointee.load(ordering: .relaxed) != confirmedOwner {
            // Relaxed: a stale owner value only delays noticing a transfer by one call.
            try checkReceiveRight()
        }
        if roles & ParticipantTable.received == 0 { try takeRole(ParticipantTable.received, deadline: deadline) }
        // A throwing body still consumed a message, so the space event must fire either way.
        var consumed = false
        defer {
            if consumed {
                if release { spaceEvent.notify() } else { hasUnnotifiedReceives = true }
                // Round robin: a message taken (even if `body` threw) ends this receiver's turn.
                if let turnEntry { finishTurn(turnEntry) }
            }
        }
        func take(_ bytes: UnsafeRawBufferPointer, _ sender: Int32) throws {
            consumed = true
            try body(bytes, sender)
        }
        return try wait(on: messageEvent, deadline: deadline) { () throws -> Bool in
            switch ring {
            case .oneToOne(let ring):
                return try ring.tryRead(release: release, take)
            case .shared(let ring):
                if let turnEntry, !hasTurn(turnEntry) { return false }
                return took(try ring.tryRead(receiver: pid, identity: packedMe, take), in: ring)
            case .chained(let chain):
                if let turnEntry, !hasTurn(turnEntry) { return false }
                // After `.pending`, `chain.reader` is the ring the pending slot is in.
                return took(try chain.tryRead(receiver: pid, identity: packedMe, take), in: chain.reader.ring)
            }
        }
    }

    /// Whether a shared-ring read took a message; notes a slot that holds the ring up.
    @inline(__always)
    private func took(_ result: SharedRing.ReadResult, in ring: SharedRing) -> Bool {
        switch result {
        case .message:
            return true
        case .empty:
            return false
        case .pending(let word, let position):
            noteStall(word: word, position: position, in: ring)
            return false
        }
    }

    /// Takes up to `limit` messages, waiting (until `deadline`) only for the first, and releases
    /// their space together.
    private func receiveMany(limit: Int, deadline: UInt64, _ body: (UnsafeRawBufferPointer, Int32) throws -> Void) throws -> Int {
        guard limit > 0 else { return 0 }
        defer { finishReceives() }
        guard try receiveOne(deadline: deadline, release: false, body) else { return 0 }
        // Round robin: one message per turn.
        if turnEntry != nil { return 1 }
        // The first message passed every check; take the rest of the batch straight from the
        // ring, without the per-call checks and waiting machinery.
        var count = 1
        switch ring {
        case .oneToOne(let ring):
            while count < limit, try ring.tryRead(release: false, body) { count += 1 }
        case .shared(let ring):
            while count < limit, case .message = try ring.tryRead(receiver: pid, identity: packedMe, body) { count += 1 }
        case .chained(let chain):
            while count < limit, case .message = try chain.tryRead(receiver: pid, identity: packedMe, body) { count += 1 }
        }
        return count
    }

    /// Releases the space of messages taken with `release: false` and wakes senders that sleep.
    private func finishReceives() {
        guard hasUnnotifiedReceives else { return }
        hasUnnotifiedReceives = false
        if case .oneToOne(let ring) = ring { _ = ring.releaseReads() }
        spaceEvent.notify()
    }

    /// Runs `attempt` until it returns a value, spinning then sleeping on `event` as the wait
    /// strategy says. Returns nil when `deadline` passes with a deadline of 0 (non-blocking);
    /// throws `timedOut` when a later deadline passes.
    @inline(__always)
    private func wait(on event: EventCount, deadline: UInt64, _ attempt: () throws -> Bool) throws -> Bool {
        if try attempt() { return true }
        if deadline == 0 { return false }
        try waitSlowly(on: event, deadline: deadline, attempt)
        return true
    }

    /// Returns once `attempt` succeeded; throws `timedOut` when `deadline` passes first.
    @inline(never)
    private func waitSlowly(on event: EventCount, deadline: UInt64, _ attempt: () throws -> Bool) throws {
        let spinBudget = waitStrategy.spinNanos
        if spinBudget > 0 {
            let spinEnd = MonotonicClock.now().addingSaturating(spinBudget)
            var round: UInt32 = 0
            while true {
                for _ in 0..<32 {
                    shimPause()
                    if try attempt() { return }
                }
                round &+= 1
                let now = MonotonicClock.now()
                if ownership == .process { try checkOwner(force: false) }
                if now >= deadline { throw MailboxError.timedOut }
                if now >= spinEnd { break }
                // Under `.spin`, let a starved peer on the same CPU run now and then.
                if round & 1023 == 0 { sched_yield() }
            }
        }
        // A stuck slot is re-checked every `stallCheckNanos`; otherwise sleep in long slices.
        try event.sleep(until: deadline, slice: { stall == nil ? Self.sleepSliceNanos : Self.stallCheckNanos },
                        afterWake: { if ownership == .process { try checkOwner(force: true) } }, attempt)
    }

    /// Tracks a shared-ring slot that blocks progress; once it has stayed the same for
    /// `stallCheckNanos`, frees it if the process holding it is dead.
    @inline(never)
    private func noteStall(word: UInt64, position: UInt64, in ring: SharedRing) {
        let state = SharedRing.state(of: word)
        guard state == SharedRing.stateClaimed || state == SharedRing.stateTaken else { return }
        let now = MonotonicClock.now()
        guard let seen = stall, seen.word == word, seen.position == position else {
            stall = (word, position, now)
            return
        }
        guard now &- seen.since >= Self.stallCheckNanos else { return }
        if ring.holderIsDead(word, at: position) {
            if ring.release(stuck: word, at: position) { spaceEvent.notify() }
            stall = nil
        } else {
            stall = (word, position, now)
        }
    }

    // MARK: Roles

    /// Whether the receiver policy limits `role` to one process at a time.
    private func isExclusive(_ role: UInt32) -> Bool {
        receiverPolicy == .pair || (receiverPolicy == .exclusive && role == ParticipantTable.received)
    }

    /// Records this process as a sender or receiver and, where the receiver policy allows only one
    /// process in the role, claims it (taking it over from a dead holder). An `.exclusive`
    /// receiver whose handle says `.wait` polls for the turn until `deadline`.
    @inline(never)
    private func takeRole(_ role: UInt32, deadline: UInt64) throws {
        if isExclusive(role) {
            let offset = role == ParticipantTable.sent ? SegmentLayout.senderRoleOffset : SegmentLayout.receiverRoleOffset
            let word = segment.base.atomicUInt64(at: offset)
            let mine = me.packed
            while true {
                // Acquire: if we take over, we see everything the previous holder published.
                let holder = word.pointee.load(ordering: .acquiring)
                if holder == mine { break }
                if holder != 0, ProcessIdentity.isAlive(packed: holder) {
                    let pid = ProcessIdentity(packed: holder).pid
                    guard receiverPolicy == .exclusive else {
                        throw MailboxError.roleTaken(role == ParticipantTable.sent ? .sender : .receiver, pid: pid)
                    }
                    guard whenReceiverBusy == .wait, deadline != 0 else { throw MailboxError.receiverBusy(pid: pid) }
                    guard MonotonicClock.now() < deadline else { throw MailboxError.timedOut }
                    // The turn frees when its holder closes or dies; neither is announced, so poll.
                    usleep(1_000)
                    continue
                }
                // Acquire-release: the CAS hands the role over exactly once.
                if word.pointee.compareExchange(expected: holder, desired: mine, ordering: .acquiringAndReleasing).exchanged { break }
            }
            if kind == .oneToOne && role == ParticipantTable.received {
                // Release: a synchronous sender that sees its message consumed reads this name.
                segment.base.atomicUInt64(at: SegmentLayout.lastReceiverOffset).pointee.store(mine, ordering: .releasing)
            }
        }
        if receiverPolicy == .roundRobin && role == ParticipantTable.received {
            turnEntry = try registerForTurns()
        }
        roles |= role
        ParticipantTable(header: segment.base).record(me, role: role, nowUnixNanos: Self.unixNanos())
    }

    private func releaseRoles() {
        guard receiverPolicy != .competing, !isClosed else { return }
        for (role, offset) in [(ParticipantTable.sent, SegmentLayout.senderRoleOffset),
                               (ParticipantTable.received, SegmentLayout.receiverRoleOffset)] where roles & role != 0 {
            // Release: our last publication is ordered before the role becomes free.
            _ = segment.base.atomicUInt64(at: offset).pointee.compareExchange(expected: me.packed, desired: 0, ordering: .releasing)
        }
        roles = 0
    }

    // MARK: Helpers

    @usableFromInline
    static func deadline(_ timeout: Duration?) -> UInt64 {
        guard let timeout else { return .max }
        // A zero or negative timeout still makes one attempt, then times out.
        return max(1, MonotonicClock.deadline(after: timeout))
    }

    static func unixNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// Runs `body`, whose only possible errors are `MailboxError`s, with a typed throw.
@inline(__always)
func typed<R>(_ body: () throws -> R) throws(MailboxError) -> R {
    do {
        return try body()
    } catch let error as MailboxError {
        throw error
    } catch {
        throw .system(operation: "\(error)", errno: 0)
    }
}



@inline(__always)
private func shimPause() { shim_cpu_pause() }
