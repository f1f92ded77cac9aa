#if canImport(Glibc)
import Glibc
#endif
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
/// opened by several threads, each with its own handle). A handle opened before `fork` throws
/// `inheritedAcrossFork` in the child: open the mailbox again there.
//
// This file holds the handle's state and its life cycle; sending, receiving, receipts, roles,
// recovery, ownership and clean-up each have a file of their own.
public final class Mailbox {
    /// The mailbox's name.
    public let name: String
    /// The ring kind chosen at creation.
    public let kind: MailboxOptions.RingKind
    /// How many messages can wait, chosen at creation.
    public let capacity: MailboxOptions.Capacity
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
        /// Wait for the turn (within the call's timeout; non-blocking calls still throw), asleep
        /// until the holder gives the turn up or dies.
        case wait
    }
    /// This handle's choice when an `.exclusive` mailbox's receive turn is taken (default `.fail`).
    public var whenReceiverBusy = WhenReceiverBusy.fail

    enum Ring {
        case oneToOne(OneToOneRing)
        case shared(SharedRing)
        /// An unbounded mailbox's chain of shared rings.
        case chained(SegmentChain)
    }

    let segment: SharedSegment
    let ring: Ring
    /// `ring`'s one-to-one ring, if it is one: a one-word value the hot paths read without
    /// copying out the `Ring` enum (as large as its largest case, the shared ring).
    let oneToOne: OneToOneRing?
    /// The segment's incarnation (see `SegmentLayout.nonceOffset`).
    let nonce: UInt64
    let messageEvent: EventCount
    let spaceEvent: EventCount
    let roleEvent: EventCount
    let me: ProcessIdentity
    /// `me.packed`, computed once.
    let packedMe: UInt64
    let liveness: any Liveness = SystemLiveness()
    let leases: LeaseTable
    /// This process's lease in the segment, once it sent or received (its sleeper bit, and the
    /// reference its slot claims carry).
    var lease: LeaseTable.Lease?
    /// Zero capacity: every send waits until a receiver has taken its message.
    let isRendezvous: Bool
    /// The owner lease word and the lifecycle flags.
    let ownerWord: LeaseWord
    let lifecycle: UnsafeMutablePointer<Atomic<UInt32>>
    /// Whether closing this handle terminates the mailbox (the creating handle of a
    /// process-owned mailbox).
    var terminatesOnClose = false
    /// Role words (offsets) this handle holds exclusively (one-to-one roles, exclusive turn).
    var heldRoleWords: [Int] = []
    /// When this handle last checked the liveness of the receiver whose turn it is.
    var turnCheckedAt: UInt64 = 0
    /// Slots suspected of holding a message whose receiver died, and since when.
    var orphanWatch: [OrphanKey: (word: UInt64, since: UInt64)] = [:]
    /// A slot of a ring of this mailbox (`generation` tells an unbounded mailbox's rings apart).
    struct OrphanKey: Hashable {
        let generation: UInt64
        let position: UInt64
    }
    /// Coarse-clock time before which dead sleepers are not searched for again.
    var nextSleeperCheck: UInt64 = 0

    /// The handle's hot mutable state, in process memory behind a pointer: the send and receive
    /// paths read and write it on every call, and a pointer's fields carry no dynamic
    /// exclusivity checks (which stored properties of a class read from closures do).
    struct HandleState {
        /// `lease.reference`, or 0.
        var leaseReference: UInt32 = 0
        /// The intent word of `lease` (a shared ring receiver's announcement of the slot it takes);
        /// a scratch word until the lease is taken.
        var intentWord: UnsafeMutablePointer<Atomic<UInt64>> = Mailbox.scratchIntent
        /// The owner word value under which this handle's receive right was last confirmed.
        var confirmedOwner: UInt64 = 0
        /// Coarse-clock time of the next liveness check of a process owner.
        var nextOwnerCheck: UInt64 = 0
        /// Roles (`LeaseTable.roleSent`, `roleReceived`) this handle has taken.
        var roles: UInt32 = 0
        /// The fork generation the handle was opened in; `UInt.max` once closed.
        var generation: UInt
        /// Nesting depth of `batch { }` calls; sends publish at depth 0 only.
        var batchDepth: Int = 0
        /// Sends made inside a batch that no receiver has been told about yet.
        var hasUnnotifiedSends: Bool = false
        /// Messages taken by a batch receive whose space is not yet released and announced.
        var hasUnnotifiedReceives: Bool = false
        /// Whether one of those was a receipt message (its sender must be woken).
        var hasUnnotifiedReceipts: Bool = false
        /// This handle's entry in a round-robin mailbox's receivers table, once registered.
        var turnEntry: Int? = nil
        /// A slot this handle found stuck (claimed or taken and not moving), and since when
        /// (0: not timed yet, see `noteStall`).
        var stall: (word: UInt64, position: UInt64, since: UInt64)? = nil
        /// Polls that find the same stuck slot left before the clock is read again for it.
        var stallPollsLeft: UInt32 = 0
        /// Bounded shared ring: the position of this handle's latest send that found room at
        /// once (whether it streams on its own, see `SharedRing.prefetchForWrite`).
        var lastWrite: UInt64 = .max
        /// Coarse-clock time of the next search for orphaned messages while polling.
        var nextOrphanSearch: UInt64 = 0
        /// Empty polls left before the clock is read again for that search (a clock read costs
        /// as much as a poll, so reading it on every poll slows the reaction to a new message).
        var orphanPollsLeft: UInt32 = 0
        // Per-call scratch of the send and receive engines (kept here rather than in locals
        // their nested functions capture, which would be boxed and checked for exclusivity).
        /// A receive of this handle is handing messages to its caller's closure, whose space is
        /// not released until it returns: a receive called from inside that closure would read
        /// them again, so it throws `receiveInProgress`.
        var receiving = false
        /// The current receive took a message (also if its body threw), and whether it was a
        /// receipt message.
        var took = false
        var tookReceipt = false
        /// What the current receive's in-line read found instead of a message; it stands for
        /// the first attempt's read (nil: that attempt reads the ring itself).
        var inLineFound: SharedRing.ReadResult?
        /// Where the current synchronous send's message went: its position (or, one-to-one,
        /// its end), the shared ring and the lease reference it was written with.
        var written: UInt64 = 0
        var writtenTo: SharedRing?
        var writtenLease: UInt32 = 0
    }
    let state: UnsafeMutablePointer<HandleState>

    var leaseReference: UInt32 {
        @inline(__always) get { state.pointee.leaseReference }
        @inline(__always) set { state.pointee.leaseReference = newValue }
    }
    var intentWord: UnsafeMutablePointer<Atomic<UInt64>> {
        @inline(__always) get { state.pointee.intentWord }
        @inline(__always) set { state.pointee.intentWord = newValue }
    }
    var confirmedOwner: UInt64 {
        @inline(__always) get { state.pointee.confirmedOwner }
        @inline(__always) set { state.pointee.confirmedOwner = newValue }
    }
    var nextOwnerCheck: UInt64 {
        @inline(__always) get { state.pointee.nextOwnerCheck }
        @inline(__always) set { state.pointee.nextOwnerCheck = newValue }
    }
    var roles: UInt32 {
        @inline(__always) get { state.pointee.roles }
        @inline(__always) set { state.pointee.roles = newValue }
    }
    var generation: UInt {
        @inline(__always) get { state.pointee.generation }
        @inline(__always) set { state.pointee.generation = newValue }
    }
    var batchDepth: Int {
        @inline(__always) get { state.pointee.batchDepth }
        @inline(__always) set { state.pointee.batchDepth = newValue }
    }
    var hasUnnotifiedSends: Bool {
        @inline(__always) get { state.pointee.hasUnnotifiedSends }
        @inline(__always) set { state.pointee.hasUnnotifiedSends = newValue }
    }
    var hasUnnotifiedReceives: Bool {
        @inline(__always) get { state.pointee.hasUnnotifiedReceives }
        @inline(__always) set { state.pointee.hasUnnotifiedReceives = newValue }
    }
    var hasUnnotifiedReceipts: Bool {
        @inline(__always) get { state.pointee.hasUnnotifiedReceipts }
        @inline(__always) set { state.pointee.hasUnnotifiedReceipts = newValue }
    }
    var turnEntry: Int? {
        @inline(__always) get { state.pointee.turnEntry }
        @inline(__always) set { state.pointee.turnEntry = newValue }
    }
    var stall: (word: UInt64, position: UInt64, since: UInt64)? {
        @inline(__always) get { state.pointee.stall }
        @inline(__always) set { state.pointee.stall = newValue }
    }
    var nextOrphanSearch: UInt64 {
        @inline(__always) get { state.pointee.nextOrphanSearch }
        @inline(__always) set { state.pointee.nextOrphanSearch = newValue }
    }

    /// Longest single futex sleep: a blocked caller re-checks at least this often, which bounds
    /// how long a dead peer's stuck claim can go unnoticed.
    static let sleepSliceNanos: UInt64 = 50_000_000
    /// Longest single sleep of an async call with nothing to repair (a process-owned mailbox
    /// keeps `sleepSliceNanos`, to notice its owner's death as fast as a blocking call does):
    /// idle async receivers re-check once a second, so a thousand of them cost next to nothing.
    static let asyncSleepSliceNanos: UInt64 = 1_000_000_000
    /// How long a slot must stay stuck before its holder's liveness is checked.
    static let stallCheckNanos: UInt64 = 2_000_000
    /// Empty polls of one blocking call between two clock reads for the orphan search. A poll
    /// takes 50 ns or more, so the clock is still read every 10 µs or so, far more often than
    /// `stallCheckNanos`. A non-blocking call reads it every time (`startOneShotAttempt`): its
    /// caller's polls may be far apart.
    static let orphanPollStride: UInt32 = 200
    /// Polls of one blocking call that find the same slot stuck between two clock reads for it
    /// (see `noteStall`): a few µs of polling, far less than `stallCheckNanos`. A non-blocking
    /// call reads the clock every time, as for `orphanPollStride`.
    static let stallPollStride: UInt32 = 64
    /// Where `intentWord` points before the handle has a lease (never read).
    nonisolated(unsafe) static let scratchIntent: UnsafeMutablePointer<Atomic<UInt64>> = {
        let word = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: 1)
        word.initialize(to: Atomic(0))
        return word
    }()

    private init(name: MailboxName, segment: SharedSegment, geometry: SegmentGeometry, waitStrategy: WaitStrategy,
                 me: ProcessIdentity) throws(MailboxError) {
        let base = segment.base
        self.name = name.name
        self.kind = geometry.kind
        self.ownership = geometry.ownership
        self.receiverPolicy = geometry.receiverPolicy
        self.capacity = geometry.requestedCapacity
        self.isRendezvous = geometry.isRendezvous
        self.maxMessageSize = geometry.maxMessageSize
        self.waitStrategy = waitStrategy
        self.segment = segment
        self.me = me
        self.packedMe = me.packed
        state = .allocate(capacity: 1)
        state.initialize(to: HandleState(generation: ForkGeneration.current))
        nonce = base.load(fromByteOffset: SegmentLayout.nonceOffset, as: UInt64.self)
        ownerWord = LeaseWord(at: SegmentLayout.ownerOffset, in: base)
        lifecycle = base.atomicUInt32(at: SegmentLayout.lifecycleOffset)
        leases = LeaseTable(header: base)
        messageEvent = EventCount(base: base, offset: SegmentLayout.messageEventOffset, nonce: nonce)
        spaceEvent = EventCount(base: base, offset: SegmentLayout.spaceEventOffset, nonce: nonce)
        roleEvent = EventCount(base: base, offset: SegmentLayout.roleEventOffset, nonce: nonce)
        switch geometry.kind {
        case .oneToOne:
            let oneToOne = OneToOneRing(header: base, geometry: geometry, nonce: nonce)
            self.oneToOne = oneToOne
            ring = .oneToOne(oneToOne)
        case .shared where geometry.buffering == .unbounded:
            oneToOne = nil
            ring = .chained(try SegmentChain(name: name, segment: segment, geometry: geometry, nonce: nonce,
                                             me: me, liveness: SystemLiveness()))
        case .shared:
            oneToOne = nil
            ring = .shared(SharedRing(header: base, geometry: geometry))
        }
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
        let nonce = SegmentGeometry.newNonce()
        // Built under a temporary name and linked into place once complete: an opener never
        // meets a half-built mailbox, even if this process is killed while building it.
        let segment = try SharedSegment.createInitialized(validName, size: geometry.segmentSize, mode: mode_t(options.permissions)) { base in
            geometry.write(to: base, mode: options.permissions, creator: me, createdAt: WallClock.nanos(), nonce: nonce)
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

    /// Opens an existing mailbox, validating its file (owner and permissions, see `trust`) and
    /// its header (magic, version, geometry against the segment's size).
    ///
    /// - Parameters:
    ///   - name: the mailbox's name, as given to `create`.
    ///   - waitStrategy: how this handle waits in blocking and timed calls.
    ///   - trust: whose segments to accept (default: this user's, not writable by others).
    ///     See `SegmentTrust`.
    /// - Throws: `invalidName`, `notFound`, `permissionDenied`, `untrustedOwner`,
    ///   `unsafePermissions`, `notAMailbox`, `incompatibleVersion`, `corrupted`,
    ///   `foreignPidNamespace`, `ownerTerminated` (a process-owned mailbox whose owner has gone;
    ///   the segment is removed), `system`.
    public static func open(_ name: String, waitStrategy: WaitStrategy = .default,
                            trust: SegmentTrust = .sameUser) throws(MailboxError) -> Mailbox {
        try open(MailboxName(name), waitStrategy: waitStrategy, trust: trust)
    }

    /// `open(_:waitStrategy:trust:)` for a validated or derived name.
    /// `patience` bounds how long it waits for a segment still being sized or initialised (by a
    /// creator that does not build under a temporary name); the fuzzer passes zero.
    static func open(_ validName: MailboxName, waitStrategy: WaitStrategy, trust: SegmentTrust = .sameUser,
                     patience: Duration = .seconds(2)) throws(MailboxError) -> Mailbox {
        // The magic and version first (so a foreign object is `notAMailbox` whatever its size),
        // then the header's size.
        let segment = try SharedSegment.open(validName, minimumSize: SegmentLayout.versionOffset + 4,
                                             waitForSize: min(patience, .milliseconds(500)), trust: trust)
        let geometry = try SegmentGeometry.read(from: segment, waitForMagic: patience)
        guard geometry.buffering != .chained else {
            throw .notAMailbox(validName.name)
        }
        let box = try Mailbox(name: validName, segment: segment, geometry: geometry, waitStrategy: waitStrategy, me: ProcessIdentity.current())
        if box.ownership == .process { try box.checkOwner(force: true) }
        return box
    }

    /// The names of all mailboxes on this machine (the `shmmb.*` objects in `/dev/shm`), sorted.
    /// A name listed here may still fail to open (damaged, foreign, or not permitted).
    public static func list() throws(MailboxError) -> [String] {
        try SharedSegment.mailboxNames()
    }

    /// Publishes and announces batched work, gives up this handle's roles, and (for the creating
    /// handle of a process-owned mailbox) ends the mailbox; later calls throw `closed`. The
    /// mapping is released when the handle is deinitialised.
    public func close() {
        guard generation != .max else { return }
        defer { generation = .max }
        // A handle inherited across fork belongs to the parent: touch nothing shared.
        guard generation == ForkGeneration.current else { return }
        flushSends()
        finishReceives()
        releaseRoles()
        if let turnEntry { leaveTurns(turnEntry) }
        if terminatesOnClose { terminate() }
    }

    deinit {
        close()
        if case .oneToOne(let ring) = ring { ring.deallocate() }
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// Whether a receive of this handle is inside its caller's closure (see `HandleState.receiving`).
    var isReceiving: Bool { state.pointee.receiving }

    /// Throws unless the handle may be used: open, and in the process that opened it.
    @inline(__always)
    func checkUsable() throws(MailboxError) {
        guard generation == ForkGeneration.current else {
            throw generation == .max ? .closed : .inheritedAcrossFork
        }
    }

    // MARK: Inspection

    /// Messages waiting right now (a snapshot).
    public var depth: Int {
        switch ring {
        case .oneToOne(let ring): return ring.depth
        case .shared(let ring): return ring.depth
        case .chained(let chain): return chain.depth
        }
    }

    /// The shared-memory segments the mailbox occupies now: 1, or for an unbounded mailbox its
    /// own segment plus the further segments it has grown (`/dev/shm/shmmb.NAME#N.NONCE`) and not
    /// yet given back (a snapshot).
    public var segmentCount: Int {
        guard case .chained = ring else { return 1 }
        return 1 + SegmentChain.segmentNames(of: name, nonce: nonce).count
    }

    /// Processes recorded as having sent to or received from this mailbox.
    public var participants: [Participant] {
        leases.participants()
    }

    /// The permission bits the mailbox was created with.
    public var permissions: UInt32 {
        segment.base.load(fromByteOffset: SegmentLayout.modeOffset, as: UInt32.self)
    }

    /// Whether the mailbox was deleted (`Mailbox.delete`).
    public var isDeleted: Bool {
        // Acquire: pairs with the release OR in `delete`.
        lifecycle.pointee.load(ordering: .acquiring) & SegmentLayout.deletedFlag != 0
    }

    /// Throws `deleted` if the mailbox was deleted, and `corrupted` if its segment was
    /// truncated under us (its mapping now reads zeros). Two loads on every send.
    @inline(__always)
    func checkNotGone() throws(MailboxError) {
        if _slowPath(isDeleted || segment.isDamaged) { try reportGone() }
    }

    @inline(never)
    private func reportGone() throws(MailboxError) {
        if isDeleted { throw .deleted(name) }
        throw .corrupted(reason: "the segment of mailbox \"\(name)\" was truncated by another process")
    }

    // MARK: Helpers

    @usableFromInline
    static func deadline(_ timeout: Duration?) -> UInt64 {
        guard let timeout else { return .max }
        // A zero or negative timeout still makes one attempt, then times out.
        return max(1, MonotonicClock.deadline(after: timeout))
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
