#if canImport(Glibc)
import Glibc
#endif
import CShim

/// A process registered under a name, for direct communication: processes send to and receive
/// from each other by endpoint name, with no mailbox to agree on (the textbook's `send(P, m)`
/// and `receive(Q, m)`).
///
/// ```swift
/// // process "P"
/// let p = try Endpoint.join("P")
/// try p.send(to: "Q", "hello")
///
/// // process "Q"
/// let q = try Endpoint.join("Q")
/// let m = try q.receive(from: "P")          // symmetric: names the sender
/// let any = try q.receive()                 // asymmetric: from anyone; any.from names the sender
/// ```
///
/// Underneath, each endpoint has a segment of its own (`/shmmb.@NAME`): a holder word (the
/// process that holds the name, by pid and start time), a doorbell (a futex word the holder
/// sleeps on while it waits for a message from anyone) and a table of incoming links. A link
/// is a `.oneToOne` mailbox per ordered pair (`/shmmb.@P>Q`: P sends, Q receives), created by
/// the sender on its first send to that receiver and registered in the receiver's table, so
/// there is exactly one link per ordered pair and it joins exactly two processes. After each
/// message the sender rings the receiver's doorbell, which costs no system call unless the
/// receiver sleeps.
///
/// A handle is not `Sendable`: use it from one thread at a time.
public final class Endpoint {
    /// The name this process holds.
    public let name: String
    /// The options given to `join`; the links this endpoint creates use them.
    public let options: Options

    let home: EndpointSegment
    let me: ProcessIdentity
    private let packedMe: UInt64
    private(set) var isClosed = false

    /// A link this endpoint sends on, and what it knows about the receiver.
    final class Outgoing {
        let peer: EndpointSegment
        let link: Mailbox
        /// The holder last confirmed alive, and when to check again.
        var confirmedHolder: UInt64
        var nextCheck: UInt64
        /// Whether the link is in batch mode for the current `batch { }` (listed in `batchedLinks`).
        var inBatch = false
        /// Sends left in the current batch before the receiver's check is looked at again (the
        /// clock read, at most every `batchSendsBetweenChecks` sends instead of on every send).
        var batchSendsLeft = 0

        init(peer: EndpointSegment, link: Mailbox, holder: UInt64) {
            self.peer = peer
            self.link = link
            confirmedHolder = holder
            nextCheck = MonotonicClock.coarseNow() &+ Endpoint.livenessCheckNanos
        }
    }

    /// Outgoing links by receiver name.
    private var outgoing: [String: Outgoing] = [:]
    /// The latest send's receiver and link: a stream to one receiver that passes the same
    /// `String` each time is recognised by the string's raw bits (equal bits are equal strings)
    /// and reaches its link without the dictionary or a reference count. `lastReceiver` keeps
    /// that string's storage alive, so its bits cannot come back as another string's while
    /// cached; `lastOut` is unretained: `outgoing` owns the link, and every path that takes a
    /// link out of `outgoing` clears the cache first.
    private var lastReceiver = ""
    private var lastReceiverBits: (UInt64, UInt64) = (0, 0)
    private var lastOut: Unmanaged<Outgoing>?
    /// Incoming links by sender name (one handle per link), with the table entry they came from.
    private var incoming: [String: (link: Mailbox, entry: EndpointSegment.Entry)] = [:]
    /// A link receive-any serves, with its sender's name.
    private final class Incoming {
        let sender: String
        let link: Mailbox

        init(sender: String, link: Mailbox) {
            self.sender = sender
            self.link = link
        }
    }
    /// The incoming links in the order they were found; receive-any serves them in turn. Kept
    /// behind a pointer: receive-any reads it across calls to the caller's closure, which for a
    /// stored property costs a run-time exclusivity check on every message.
    private let incomingSlot: UnsafeMutablePointer<[Incoming]> = {
        let slot = UnsafeMutablePointer<[Incoming]>.allocate(capacity: 1)
        slot.initialize(to: [])
        return slot
    }()
    private var incomingOrder: [Incoming] {
        get { incomingSlot.pointee }
        _modify { yield &incomingSlot.pointee }
    }
    /// Nesting depth of `batch { }` calls.
    private(set) var batchDepth = 0
    /// Links sent on inside the current batch (each in batch mode until the batch ends).
    private var batchedLinks: [Outgoing] = []
    /// Where the next receive-any starts: just after the link served last.
    private var nextIncoming = 0
    /// The table's change count when this handle last read it (nil: never).
    private var seenTableChanges: UInt32?
    /// Senders whose link turned out damaged: left out of receive-from-anyone (reported once).
    private var quarantined: Set<String> = []
    /// How many times this handle has read its incoming-link table (for tests: an idle
    /// receive must not read it).
    private(set) var tableReads = 0
    private let liveness = SystemLiveness()

    /// How often (at most) a sender checks that its receivers' holders still run.
    static let livenessCheckNanos: UInt64 = 10_000_000
    /// Inside a batch, sends on one link between two looks at whether that check is due.
    static let batchSendsBetweenChecks = 64
    /// Longest single sleep of a blocked call before it re-checks (new links, dead receivers).
    static let sleepSliceNanos: UInt64 = 50_000_000

    private init(name: String, options: Options, home: EndpointSegment, me: ProcessIdentity) {
        self.name = name
        self.options = options
        self.home = home
        self.me = me
        self.packedMe = me.packed
    }

    // MARK: Lifecycle

    /// Registers this process under `name`, creating the endpoint's segment (`/shmmb.@name`) or
    /// taking over an existing one whose holder has closed or died (checked by pid and start
    /// time). Messages already waiting on links to this name are received by the new holder.
    ///
    /// - Throws: `invalidName` (mailbox rules, at most 100 characters), `invalidOptions`,
    ///   `nameTaken` (a live process holds the name; this one too, if it joined it already and
    ///   has not closed that endpoint), `permissionDenied`, `corrupted`,
    ///   `incompatibleVersion`, `outOfSharedMemory`, `system`.
    public static func join(_ name: String, options: Options = Options()) throws(MailboxError) -> Endpoint {
        try EndpointName.validate(name)
        try options.validate()
        let me = ProcessIdentity.current()
        // A segment removed (shmbox gc) between our create and open attempts: try again.
        for _ in 0..<8 {
            do {
                let home = try EndpointSegment.create(name, holder: me.packed, permissions: options.permissions)
                return Endpoint(name: name, options: options, home: home, me: me)
            } catch .alreadyExists {
                let home: EndpointSegment
                do {
                    home = try EndpointSegment.open(name, trust: options.trust)
                } catch .notFound {
                    continue
                }
                if let holder = home.claim(for: me.packed, liveness: SystemLiveness()) {
                    throw .nameTaken(name, pid: ProcessIdentity(packed: holder).pid)
                }
                return Endpoint(name: name, options: options, home: home, me: me)
            }
        }
        throw .system(operation: "join endpoint \(name) (its segment kept disappearing)", errno: EAGAIN)
    }

    /// Gives the name up (a later `join` of it succeeds) and closes every link handle; later calls
    /// throw `closed`. The segments stay: messages already sent to this name wait for its next
    /// holder. `shmbox gc` removes segments nobody holds.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        for link in outgoing.values { link.link.close() }
        for link in incoming.values { link.link.close() }
        forgetLastOutgoing()
        outgoing = [:]
        incoming = [:]
        incomingOrder = []
        home.release(packedMe)
    }

    deinit {
        close()
        incomingSlot.deinitialize(count: 1)
        incomingSlot.deallocate()
    }

    /// The endpoints that have a link to this one (the published entries of its incoming-link
    /// table), in the order they were registered.
    ///
    /// - Throws: `corrupted` for a damaged table, `closed`.
    public func incomingLinks() throws(MailboxError) -> [String] {
        guard !isClosed else { throw .closed }
        return try home.senders()
    }

    // MARK: Sending

    /// Sends the bytes of `buffer` to endpoint `receiver` on the link between the two (created
    /// on first use), waiting for space at most `timeout` (forever if nil). While it waits it
    /// checks every 50 ms that the receiver's holder still runs.
    ///
    /// - Throws: `noSuchEndpoint` (nobody holds `receiver`, or its holder died, also while this
    ///   call waited), `messageTooLarge` (over the link's `maxMessageSize`), `timedOut`,
    ///   `tooManyLinks`, `invalidName`, `closed`, `corrupted`.
    public func send(to receiver: String, _ buffer: UnsafeRawBufferPointer, timeout: Duration? = nil) throws(MailboxError) {
        _ = try sendBuffer(to: receiver, buffer, deadline: Mailbox.deadline(timeout))
    }

    /// Sends `bytes` (an `Array`, `Data`, a slice…) to endpoint `receiver`; see `send(to:_:timeout:)`.
    @inlinable
    public func send<Bytes: Collection<UInt8>>(to receiver: String, _ bytes: Bytes, timeout: Duration? = nil) throws(MailboxError) {
        _ = try sendContents(to: receiver, bytes, deadline: Mailbox.deadline(timeout))
    }

    /// Sends the UTF-8 bytes of `text` to endpoint `receiver`; see `send(to:_:timeout:)`.
    public func send(to receiver: String, _ text: String, timeout: Duration? = nil) throws(MailboxError) {
        _ = try sendContents(to: receiver, text.utf8, deadline: Mailbox.deadline(timeout))
    }

    /// Sends `buffer` to `receiver` if its link has room now; returns `false` (sending nothing)
    /// when the link is full. Throws what `send(to:_:timeout:)` throws.
    public func trySend(to receiver: String, _ buffer: UnsafeRawBufferPointer) throws(MailboxError) -> Bool {
        try sendBuffer(to: receiver, buffer, deadline: 0)
    }

    /// Sends `bytes` to `receiver` if its link has room now; returns `false` when it is full.
    @inlinable
    public func trySend<Bytes: Collection<UInt8>>(to receiver: String, _ bytes: Bytes) throws(MailboxError) -> Bool {
        try sendContents(to: receiver, bytes, deadline: 0)
    }

    /// Sends `text` as UTF-8 to `receiver` if its link has room now; returns `false` when it is full.
    public func trySend(to receiver: String, _ text: String) throws(MailboxError) -> Bool {
        try sendContents(to: receiver, text.utf8, deadline: 0)
    }

    /// Zero-copy sends to `receiver` of up to `messages` messages of `bytesEach` bytes, as many as
    /// its link has room for now, without waiting (`Mailbox.trySendBatch` on the link): `fill`
    /// writes message `index` (0, 1, …) in place. Returns how many were sent; they are announced
    /// together, with one doorbell ring (inside a `batch`, when it ends). The receiver's
    /// liveness and the link's checks are looked at once for the whole call.
    ///
    /// - Throws: what `send(to:_:timeout:)` throws (`messageTooLarge` before sending any), or what
    ///   `fill` throws: then messages `0 ..< index` are sent and announced, and that one is not.
    public func trySendBatch(to receiver: String, messages: Int, bytesEach count: Int,
                             _ fill: (_ index: Int, inout MutableRawSpan) throws -> Void) throws -> Int {
        guard !isClosed else { throw MailboxError.closed }
        guard messages > 0 else { return 0 }
        let out = try outgoingLink(to: receiver, force: false)
        if batchDepth > 0 && !out.inBatch {
            out.link.enterBatch()
            out.inBatch = true
            batchedLinks.append(out)
        }
        let sent: Int
        do {
            sent = try out.link.trySendBatch(messages: messages, bytesEach: count, fill)
        } catch {
            // `fill` threw after some messages may have gone out: ring for them (a needless ring
            // costs a receiver one look).
            if batchDepth == 0 { out.peer.doorbell.notify() }
            throw error
        }
        // Outside a batch: ring once for what was sent. Inside one the batch's end rings, or now
        // if the link filled up (it published what it had; the receiver must make room).
        if batchDepth == 0 ? sent > 0 : sent < messages { out.peer.doorbell.notify() }
        return sent
    }

    /// `sendBuffer` for any collection of bytes: in place when it is contiguous, else via a copy.
    /// Inlinable, like the generic calls over it, so that a client specializes it (the generic
    /// form costs about 150 instructions a message in witness calls).
    @inlinable
    func sendContents<Bytes: Collection<UInt8>>(to receiver: String, _ bytes: Bytes, deadline: UInt64) throws(MailboxError) -> Bool {
        var outcome: Result<Bool, MailboxError>?
        _ = bytes.withContiguousStorageIfAvailable { buffer in
            outcome = Result { () throws(MailboxError) -> Bool in
                try sendBuffer(to: receiver, UnsafeRawBufferPointer(buffer), deadline: deadline)
            }
        }
        if let outcome { return try outcome.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBytes { buffer in
            Result { () throws(MailboxError) -> Bool in try sendBuffer(to: receiver, buffer, deadline: deadline) }
        }.get()
    }

    /// Sends made inside `body` are announced together when it returns: on each link used, one
    /// publication and at most one wake-up for the whole batch, and one doorbell ring per
    /// receiver, instead of one per message (`Mailbox.batch` for every link at once). A receiver
    /// that is not asleep can take each message as soon as it is written; a sleeping one wakes
    /// when the batch ends, or earlier when a link fills up. Calls may nest. A send notices that
    /// its receiver's process died (`noSuchEndpoint`) at most 10 ms after the previous check;
    /// inside a batch, up to 64 sends on that link later.
    ///
    /// ```swift
    /// try endpoint.batch {
    ///     for quote in quotes { try endpoint.send(to: "pricer", quote.bytes) }
    /// }
    /// ```
    public func batch<R>(_ body: () throws -> R) rethrows -> R {
        batchDepth += 1
        defer {
            batchDepth -= 1
            if batchDepth == 0 { finishBatch() }
        }
        return try body()
    }

    /// Publishes every link sent on in the batch and rings each receiver's doorbell once.
    private func finishBatch() {
        for out in batchedLinks {
            out.inBatch = false
            out.link.leaveBatch()
            out.peer.doorbell.notify()
        }
        // Keeping the capacity: the next batch appends without allocating.
        batchedLinks.removeAll(keepingCapacity: true)
    }

    /// Copies `buffer` into the link to `receiver` and rings its doorbell (at the end of a batch,
    /// inside one). Returns false only for a non-blocking call (deadline 0) that found the link full.
    @usableFromInline @inline(__always)
    func sendBuffer(to receiver: String, _ buffer: UnsafeRawBufferPointer, deadline: UInt64) throws(MailboxError) -> Bool {
        guard !isClosed else { throw .closed }
        // The latest receiver again, confirmed alive within the last 10 ms (in a batch: when the
        // batch's sends on the link last looked), with room: no lookup, no reference counting.
        if let cached = lastOut, Self.bits(of: receiver) == lastReceiverBits {
            switch cached._withUnsafeGuaranteedRef({ trySendQuickly(on: $0, buffer) }) {
            case .sent: return true
            case .failed(let error): throw error
            case .needsSlowPath: break
            }
        }
        return try sendBufferSlowly(to: receiver, buffer, deadline: deadline)
    }

    private enum QuickSend {
        case sent
        case needsSlowPath
        case failed(MailboxError)
    }

    /// `sendBuffer`'s fast path on the cached link: anything but a plain success with a receiver
    /// confirmed alive (a check due, the first send of a batch on this link, a full link) goes
    /// the slow path, which does it all again properly.
    @inline(__always)
    private func trySendQuickly(on out: Outgoing, _ buffer: UnsafeRawBufferPointer) -> QuickSend {
        // Acquire (in `currentHolder`): pairs with a joiner's CAS; only the value matters.
        guard out.peer.currentHolder == out.confirmedHolder else { return .needsSlowPath }
        if batchDepth == 0 {
            guard MonotonicClock.coarseNow() < out.nextCheck else { return .needsSlowPath }
        } else {
            // In a batch the slow path looked at the clock on the link's first send and looks
            // again every `batchSendsBetweenChecks` sends: a burst does not read it per message.
            guard out.inBatch, out.batchSendsLeft > 0 else { return .needsSlowPath }
            out.batchSendsLeft &-= 1
        }
        do throws(MailboxError) {
            guard try out.link.trySendInline(buffer) else { return .needsSlowPath }
        } catch {
            return .failed(error)
        }
        // Inside a batch the doorbell rings once, when the batch ends.
        if batchDepth == 0 { out.peer.doorbell.notify() }
        return .sent
    }

    /// The raw bits of a string: equal bits are equal strings (the same small string, or the
    /// same storage object and length).
    @inline(__always)
    private static func bits(of string: String) -> (UInt64, UInt64) {
        unsafeBitCast(string, to: (UInt64, UInt64).self)
    }

    private func rememberLastOutgoing(_ receiver: String, _ out: Outgoing) {
        lastReceiver = receiver
        lastReceiverBits = Self.bits(of: lastReceiver)
        lastOut = .passUnretained(out)
    }

    private func forgetLastOutgoing() {
        lastOut = nil
        lastReceiver = ""
        lastReceiverBits = (0, 0)
    }

    /// `sendBuffer` in full: looks the link up (or opens it), checks the receiver when due,
    /// enters batch mode on the link, and waits for room in slices when the link is full.
    @inline(never)
    private func sendBufferSlowly(to receiver: String, _ buffer: UnsafeRawBufferPointer, deadline: UInt64) throws(MailboxError) -> Bool {
        var out = try outgoingLink(to: receiver, force: false)
        if batchDepth > 0 {
            if !out.inBatch {
                out.link.enterBatch()
                out.inBatch = true
                batchedLinks.append(out)
            }
            // This send is the first of the next `batchSendsBetweenChecks`.
            out.batchSendsLeft = Self.batchSendsBetweenChecks - 1
        }
        if try out.link.trySend(buffer) {
            // Inside a batch the doorbell rings once, when the batch ends.
            if batchDepth == 0 { out.peer.doorbell.notify() }
            return true
        }
        // Full. The link published what it had batched; a receiver asleep on the doorbell must
        // wake to make room.
        if batchDepth > 0 { out.peer.doorbell.notify() }
        if deadline == 0 { return false }
        // Wait for space in slices, so that a receiver that dies meanwhile is noticed.
        while true {
            let now = MonotonicClock.now()
            let slice = deadline > now ? min(deadline - now, Self.sleepSliceNanos) : 0
            do {
                try out.link.send(buffer, timeout: .nanoseconds(Int64(slice)))
                break
            } catch .timedOut {
                if MonotonicClock.now() >= deadline { throw .timedOut }
                out = try outgoingLink(to: receiver, force: true)
            }
        }
        // The message is published (release store in the ring, or at the end of a batch); wake
        // the receiver if it sleeps on its doorbell in a receive from anyone.
        if batchDepth == 0 { out.peer.doorbell.notify() }
        return true
    }

    /// The link to `receiver`, opened (and created and registered) on first use, after checking
    /// that the receiver's holder runs: on every call if `force`, else at most every 10 ms.
    func outgoingLink(to receiver: String, force: Bool) throws(MailboxError) -> Outgoing {
        if !force, let cached = lastOut, lastReceiver == receiver {
            let out = cached.takeUnretainedValue()
            // Acquire (in `currentHolder`): pairs with a joiner's CAS; only the value matters.
            if out.peer.currentHolder == out.confirmedHolder && MonotonicClock.coarseNow() < out.nextCheck { return out }
        }
        return try checkedOutgoingLink(to: receiver, force: force)
    }

    /// `outgoingLink` off the fast path: looks the link up (or opens it) and, when it is time,
    /// checks that the receiver's holder still runs.
    @inline(never)
    private func checkedOutgoingLink(to receiver: String, force: Bool) throws(MailboxError) -> Outgoing {
        if let out = outgoing[receiver] {
            let holder = out.peer.currentHolder
            let confirmed = holder == out.confirmedHolder && !force && MonotonicClock.coarseNow() < out.nextCheck
            if holder != 0 && (confirmed || ProcessIdentity.isAlive(packed: holder)) {
                if !confirmed {
                    out.confirmedHolder = holder
                    out.nextCheck = MonotonicClock.coarseNow() &+ Self.livenessCheckNanos
                }
                rememberLastOutgoing(receiver, out)
                return out
            }
            // Gone from this segment; the name may have been joined again under a new segment
            // (after shmbox gc), so look it up afresh below.
            forgetLastOutgoing()
            out.link.close()
            outgoing[receiver] = nil
        }
        let out = try openOutgoing(to: receiver)
        outgoing[receiver] = out
        rememberLastOutgoing(receiver, out)
        return out
    }

    private func openOutgoing(to receiver: String) throws(MailboxError) -> Outgoing {
        try EndpointName.validate(receiver)
        let peer: EndpointSegment
        do {
            peer = try EndpointSegment.open(receiver, trust: options.trust)
        } catch .notFound {
            throw .noSuchEndpoint(receiver)
        }
        let holder = peer.currentHolder
        guard holder != 0, ProcessIdentity.isAlive(packed: holder) else { throw .noSuchEndpoint(receiver) }
        let linkName = EndpointName.link(from: name, to: receiver)
        var link: Mailbox?
        for _ in 0..<8 where link == nil {
            do {
                link = try Mailbox.create(linkName, options: options.linkOptions)
            } catch .alreadyExists {
                do {
                    let existing = try Mailbox.open(linkName, waitStrategy: options.waitStrategy, trust: options.trust, patience: .zero)
                    if existing.kind == .oneToOne, Self.isRetired(existing) {
                        // Retired by the receiver (finished and empty): replace it.
                        _ = existing.segment.unlinkIfSame()
                        continue
                    }
                    link = existing
                } catch .notFound {
                    continue    // removed between our create and open: create it again
                }
            }
        }
        guard let link else {
            throw .system(operation: "open link \(name)>\(receiver) (it kept disappearing)", errno: EAGAIN)
        }
        guard link.kind == .oneToOne else {
            throw .corrupted(reason: "link @\(name)>\(receiver) is not a one-to-one mailbox")
        }
        // Registered after the link exists, so a receiver that finds the entry finds the link.
        do {
            try peer.register(sender: name, as: packedMe, liveness: liveness)
        } catch .tooManyLinks {
            // Make room: retire the links to `receiver` whose senders have gone and that are empty.
            guard Self.retireFinishedLinks(to: peer, liveness: liveness) > 0 else { throw .tooManyLinks(receiver, limit: peer.tableCapacity) }
            try peer.register(sender: name, as: packedMe, liveness: liveness)
        }
        return Outgoing(peer: peer, link: link, holder: holder)
    }

    // MARK: Receiving from one sender (symmetric)

    /// Takes the oldest message from endpoint `sender` (on the link `@sender>self`), waiting at
    /// most `timeout` (forever if nil). If `sender` has not sent yet, waits for its link to
    /// appear. Other senders' messages stay where they are.
    ///
    /// - Throws: `timedOut`, `invalidName`, `closed`, `corrupted`, `roleTaken`.
    public func receive(from sender: String, timeout: Duration? = nil) throws(MailboxError) -> Mailbox.Message {
        try receiveOne(from: sender, deadline: Mailbox.deadline(timeout))!
    }

    /// Takes the oldest message from endpoint `sender` if there is one; nil at once otherwise.
    public func tryReceive(from sender: String) throws(MailboxError) -> Mailbox.Message? {
        try receiveOne(from: sender, deadline: 0)
    }

    private func receiveOne(from sender: String, deadline: UInt64) throws(MailboxError) -> Mailbox.Message? {
        guard !isClosed else { throw .closed }
        try EndpointName.validate(sender)
        while true {
            if let link = try incomingLink(from: sender) {
                if deadline == 0 { return try link.tryReceive() }
                if deadline == .max { return try link.receive() }
                // The link's own blocking receive sleeps on the link's message event.
                let now = MonotonicClock.now()
                return try link.receive(timeout: .nanoseconds(Int64(deadline > now ? deadline - now : 0)))
            }
            // No link yet: its sender creates it, then rings our doorbell after sending.
            if deadline == 0 { return nil }
            try typed {
                try Waiter.wait(strategy: .block, deadline: deadline, on: home.doorbell, as: EndpointLayout.holderSleeperBit,
                                slice: { Self.sleepSliceNanos }, tick: {}) { _ in try incomingLink(from: sender) != nil }
            }
        }
    }

    /// The link from `sender`, opened if it exists (registered in the table or not: a sender that
    /// has not yet found this endpoint's current segment still has its link); nil if it does not.
    /// (Links, like every segment the library creates, appear complete, so opening one never
    /// waits: `patience: .zero`. One that is not complete is foreign or damaged.)
    func incomingLink(from sender: String) throws(MailboxError) -> Mailbox? {
        try refreshIncoming()
        if let known = incoming[sender] { return known.link }
        guard !quarantined.contains(sender) else { return nil }
        let link: Mailbox
        do {
            link = try Mailbox.open(EndpointName.link(from: sender, to: name), waitStrategy: options.waitStrategy, trust: options.trust, patience: .zero)
        } catch .notFound {
            return nil
        }
        guard link.kind == .oneToOne else {
            throw .corrupted(reason: "link @\(sender)>\(name) is not a one-to-one mailbox")
        }
        // Not from the table (index -1) until the sender registers it there.
        incoming[sender] = (link, EndpointSegment.Entry(index: -1, generation: 0, sender: sender))
        incomingOrder.append(Incoming(sender: sender, link: link))
        return link
    }

    /// Re-reads the incoming-link table if it changed since the last look: opens the links of new
    /// entries, frees entries whose link no longer exists, and closes links whose entries are gone
    /// (retired). Costs one load when nothing changed.
    @inline(__always)
    private func refreshIncoming() throws(MailboxError) {
        let changes = home.changes
        guard changes != seenTableChanges else { return }
        try rereadTable(changes)
    }

    @inline(never)
    private func rereadTable(_ changes: UInt32) throws(MailboxError) {
        tableReads += 1
        let entries = try home.entries()
        var present = Set<String>()
        var unusable: MailboxError?
        for entry in entries where !quarantined.contains(entry.sender) {
            present.insert(entry.sender)
            if let known = incoming[entry.sender], known.entry == entry { continue }
            do throws(MailboxError) {
                let link = try Mailbox.open(EndpointName.link(from: entry.sender, to: name), waitStrategy: options.waitStrategy, trust: options.trust, patience: .zero)
                guard link.kind == .oneToOne else {
                    throw .corrupted(reason: "link @\(entry.sender)>\(name) is not a one-to-one mailbox")
                }
                if let known = incoming[entry.sender] {
                    // Touched or published anew: the same link (keep our handle) or a new one.
                    if known.link.nonce == link.nonce {
                        incoming[entry.sender] = (known.link, entry)
                        continue
                    }
                    known.link.close()
                    replaceInOrder(entry.sender, with: link)
                } else {
                    incomingOrder.append(Incoming(sender: entry.sender, link: link))
                }
                incoming[entry.sender] = (link, entry)
            } catch .notFound {
                // Registered, then removed (`Endpoint.remove`, `shmbox gc`): the entry is finished.
                home.free(entry)
                present.remove(entry.sender)
            } catch {
                // A link that cannot be used (damaged, another user's): reported once, then left
                // out, so that it cannot stop this endpoint from hearing the others.
                quarantined.insert(entry.sender)
                present.remove(entry.sender)
                unusable = unusable ?? error
            }
        }
        for (sender, known) in incoming where !present.contains(sender) && known.entry.index >= 0 {
            incoming[sender]?.link.close()
            incoming[sender] = nil
        }
        incomingOrder.removeAll { incoming[$0.sender] == nil }
        seenTableChanges = changes
        if entries.count * 4 >= home.tableCapacity * 3 {
            // Three quarters full: retire what is finished before senders run out of entries.
            if Self.retireFinishedLinks(to: home, liveness: liveness) > 0 { seenTableChanges = nil }
        }
        if let unusable { throw unusable }
    }

    private func replaceInOrder(_ sender: String, with link: Mailbox) {
        if let index = incomingOrder.firstIndex(where: { $0.sender == sender }) { incomingOrder[index] = Incoming(sender: sender, link: link) }
    }

    // MARK: Receiving from anyone (asymmetric)

    /// Takes a message from any endpoint that sends to this one and says who sent it, waiting
    /// at most `timeout` (forever if nil). Links are served in turn (each call starts after the
    /// link served last), so no sender can starve another; each sender's messages arrive in the
    /// order sent. While waiting, this process sleeps on its endpoint's doorbell (one futex word)
    /// and wakes for a message on any link, including links created while it slept.
    ///
    /// - Throws: `timedOut`, `closed`, `corrupted` (a damaged incoming-link table or link),
    ///   `roleTaken`.
    public func receive(timeout: Duration? = nil) throws(MailboxError) -> Endpoint.Message {
        try receiveCopy(deadline: Mailbox.deadline(timeout))!
    }

    /// Takes a message from any sender if one is waiting; nil at once otherwise.
    public func tryReceive() throws(MailboxError) -> Endpoint.Message? {
        try receiveCopy(deadline: 0)
    }

    /// Zero-copy receive from anyone: hands the message's bytes (valid only inside `body`), the
    /// sending process's identity (`Mailbox.Message.sender`) and the sender's endpoint name to
    /// `body`, then frees the space, also when `body` throws. Waits at most `timeout` (forever if
    /// nil). Otherwise as `receive(timeout:)`.
    ///
    /// - Throws: what `body` throws, or a `MailboxError`.
    @inlinable
    public func receive<R>(timeout: Duration? = nil, _ body: (RawSpan, _ sender: ProcessIdentity, _ from: String) throws -> R) throws -> R {
        var result: R?
        _ = try receiveAny(limit: 1, deadline: Mailbox.deadline(timeout)) { bytes, pid, _, from in result = try body(RawSpan(_unsafeBytes: bytes), pid, from) }
        // receiveAny returns only after `body` returned (a blocking call never reports empty).
        return result!
    }

    /// Zero-copy receive from anyone if a message is waiting; nil at once otherwise.
    @inlinable
    public func tryReceive<R>(_ body: (RawSpan, _ sender: ProcessIdentity, _ from: String) throws -> R) throws -> R? {
        var result: R?
        guard try receiveAny(limit: 1, deadline: 0, { bytes, pid, _, from in result = try body(RawSpan(_unsafeBytes: bytes), pid, from) }) > 0 else { return nil }
        return result
    }

    /// Takes the messages waiting on one link, up to `limit`, handing each (bytes valid only
    /// inside) with its sending process's identity (`Mailbox.Message.sender`) and endpoint name to
    /// `body`, and frees their space together (`Mailbox.receiveBatch` on that link). Waits at most
    /// `timeout` (forever if nil) for the first message; links take turns from one call to the
    /// next. Returns how many messages it took (at least 1).
    ///
    /// - Throws: what `body` throws (the message it was given is consumed), `timedOut`, or
    ///   another `MailboxError`.
    public func receiveBatch(limit: Int = .max, timeout: Duration? = nil,
                             _ body: (RawSpan, _ sender: ProcessIdentity, _ from: String) throws -> Void) throws -> Int {
        try receiveAny(limit: limit, deadline: Mailbox.deadline(timeout)) { bytes, pid, _, from in try body(RawSpan(_unsafeBytes: bytes), pid, from) }
    }

    /// Like `receiveBatch`, without waiting: returns 0 at once when no message is waiting.
    public func tryReceiveBatch(limit: Int = .max, _ body: (RawSpan, _ sender: ProcessIdentity, _ from: String) throws -> Void) throws -> Int {
        try receiveAny(limit: limit, deadline: 0) { bytes, pid, _, from in try body(RawSpan(_unsafeBytes: bytes), pid, from) }
    }

    private func receiveCopy(deadline: UInt64) throws(MailboxError) -> Endpoint.Message? {
        var message: Endpoint.Message?
        let taken = try typed {
            try receiveAny(limit: 1, deadline: deadline) { bytes, pid, redelivered, from in
                message = Endpoint.Message(from: from, message: Mailbox.Message(bytes: [UInt8](bytes), sender: pid, isRedelivered: redelivered))
            }
        }
        return taken > 0 ? message : nil
    }

    /// Takes up to `limit` messages from one link and hands each to `body`. Returns 0 only for a
    /// non-blocking call (deadline 0) that found nothing.
    @usableFromInline
    func receiveAny(limit: Int, deadline: UInt64, _ body: (UnsafeRawBufferPointer, ProcessIdentity, Bool, String) throws -> Void) throws -> Int {
        guard !isClosed else { throw MailboxError.closed }
        guard limit > 0 else { return 0 }
        var taken = try takeAny(limit: limit, body)
        if taken > 0 { return taken }
        if deadline == 0 { return 0 }
        // Spin, then sleep on the doorbell: every sender rings it after each message (or batch),
        // whichever link it uses.
        try Waiter.wait(strategy: options.waitStrategy, deadline: deadline, on: home.doorbell, as: EndpointLayout.holderSleeperBit,
                        slice: { Self.sleepSliceNanos }, tick: {}) { _ in
            taken = try takeAny(limit: limit, body)
            return taken > 0
        }
        return taken
    }

    /// One fair pass: finds new links in the table, then tries each link once, starting after
    /// the one served last, and takes up to `limit` messages from the first that has any.
    @inline(__always)
    func takeAny(limit: Int, _ body: (UnsafeRawBufferPointer, ProcessIdentity, Bool, String) throws -> Void) throws -> Int {
        try refreshIncoming()
        // One reference to the array keeps every link in it alive through `body`, whatever
        // `body` does to this endpoint (close it, receive again): its links are then used
        // borrowed, without a reference count per message.
        let order = incomingSlot.pointee
        let count = order.count
        var index = nextIncoming
        for _ in 0..<count {
            if index >= count { index = 0 }
            let source = Unmanaged.passUnretained(order[index])
            index += 1
            let taken: Int
            do {
                // The closures below capture `source` unmanaged (a trivial value) and borrow the
                // sender's name through it: capturing the reference itself cost retains and
                // releases of it and of the name on every poll of an empty link.
                func hand(_ bytes: UnsafeRawBufferPointer, _ pid: ProcessIdentity, _ redelivered: Bool) throws {
                    try source._withUnsafeGuaranteedRef { try body(bytes, pid, redelivered, $0.sender) }
                }
                taken = try source._withUnsafeGuaranteedRef { source in
                    // Called from inside a receive's closure: the link whose message is in hand
                    // is read again only once that closure returns; the others are served.
                    if source.link.isReceiving { return 0 }
                    if limit == 1 {
                        return try source.link.receiveOne(deadline: 0, release: true, hand) ? 1 : 0
                    }
                    return try source.link.receiveMany(limit: limit, deadline: 0, hand)
                }
            } catch let error as MailboxError {
                if case .corrupted = error { quarantine(order[index - 1].sender) }
                throw error
            }
            if taken > 0 {
                nextIncoming = index
                return taken
            }
        }
        return 0
    }

    /// Leaves a damaged link out of receive-from-anyone for good (its error was reported once),
    /// so that one bad sender cannot stop this endpoint from hearing the others.
    private func quarantine(_ sender: String) {
        quarantined.insert(sender)
        incoming[sender]?.link.close()
        incoming[sender] = nil
        incomingOrder.removeAll { $0.sender == sender }
    }
}
