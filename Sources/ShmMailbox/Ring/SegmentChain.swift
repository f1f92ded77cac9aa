#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The segments of an unbounded mailbox, and one handle's place in them.
///
/// An unbounded mailbox is a chain of shared rings of equal geometry. Generation 0 is the ring in
/// the mailbox's own segment (`NAME`); generation g ≥ 1 lives in a segment of its own named
/// `NAME#g.NONCE`, where NONCE is the first segment's nonce (16 hex digits), so a chain belongs to
/// one incarnation of the mailbox: a mailbox deleted and created again under the same name starts
/// a chain of its own, and a stale handle can never touch it. Senders write to the newest
/// generation: one that finds its ring full seals it (see `SharedRing`, "Sealing") and moves to
/// the next generation, creating its segment if nobody has yet — so a send never waits for room.
/// Receivers read the oldest generation until it is sealed and drained, then move on. A
/// generation is *given back* (its name removed; the memory returns to the system when the last
/// process unmaps it) once receivers have moved past it and every message taken from it has been
/// finished with: a message whose receiver died while reading it is redelivered from its
/// generation first. Messages from one sender stay in order: it never writes to an older
/// generation than it has written to, and receivers finish a generation before they start the
/// next.
///
/// Two hints in the first segment's header, `writeGeneration` and `readGeneration`, let new
/// handles start where the chain is now and let late ones skip generations that were removed.
/// Both only grow. `readGeneration` is the oldest generation not yet given back. A late sender
/// may re-create a generation that has been given back; after creating or opening a generation,
/// senders and receivers alike re-read `readGeneration` and give the segment up if it is below
/// (its creator removes it again, and `shmbox gc` removes any it could not).
///
/// Each segment has its own lease table; this handle takes a lease in each generation it uses.
final class SegmentChain {
    /// One generation, mapped by this handle, with this process's lease in it.
    struct Link {
        let generation: UInt64
        /// Keeps the mapping alive as long as `ring` is used.
        let segment: SharedSegment
        let ring: SharedRing
        let lease: LeaseTable.Lease
        let intent: UnsafeMutablePointer<Atomic<UInt64>>
    }

    private let name: MailboxName
    private let nonce: UInt64
    private let geometry: SegmentGeometry
    private let mode: UInt32
    private let me: ProcessIdentity
    private let liveness: any Liveness
    private var first: Link
    private let writeGeneration: UnsafeMutablePointer<Atomic<UInt64>>
    private let readGeneration: UnsafeMutablePointer<Atomic<UInt64>>
    /// The generation this handle sends to.
    private(set) var writer: Link
    /// The generation this handle receives from.
    private(set) var reader: Link
    /// Generations below `reader` that receivers have passed but that were not yet given back
    /// (a message taken from them is unfinished): searched for orphaned messages, and given back
    /// once finished.
    private var passed: [Link] = []

    /// Generations stay below this; a hint or a generation at or beyond it is `corrupted`. (At a
    /// billion new segments a second, 2^48 lasts three days; at realistic rates, ever.) Keeping
    /// far from 2^64 means moving on can never wrap around to an old generation.
    static let generationLimit: UInt64 = 1 << 48

    /// The geometry of every chained segment of a mailbox whose first segment has `geometry`.
    static func chainedGeometry(of geometry: SegmentGeometry) throws(MailboxError) -> SegmentGeometry {
        try SegmentGeometry(kind: .shared, buffering: .chained, capacity: geometry.capacity,
                            maxMessageSize: geometry.maxMessageSize, ownership: .none, receiverPolicy: .competing)
    }

    /// A chain to send and receive with once `start(lease:)` has given it this process's lease in
    /// the first segment (until then, only for inspection).
    init(name: MailboxName, segment: SharedSegment, geometry: SegmentGeometry, nonce: UInt64,
         me: ProcessIdentity, liveness: any Liveness) throws(MailboxError) {
        self.name = name
        self.nonce = nonce
        self.geometry = try Self.chainedGeometry(of: geometry)
        self.me = me
        self.liveness = liveness
        mode = segment.base.load(fromByteOffset: SegmentLayout.modeOffset, as: UInt32.self)
        let placeholder = LeaseTable.Lease(index: 0, tag: 0)
        first = Link(generation: 0, segment: segment, ring: SharedRing(header: segment.base, geometry: geometry),
                     lease: placeholder, intent: LeaseTable(header: segment.base).intent(0))
        writeGeneration = segment.base.atomicUInt64(at: SegmentLayout.writeGenerationOffset)
        readGeneration = segment.base.atomicUInt64(at: SegmentLayout.readGenerationOffset)
        writer = first
        reader = first
    }

    /// Gives the chain this process's lease in the first segment, before its first send or
    /// receive.
    func start(lease: LeaseTable.Lease) {
        guard first.lease != lease else { return }
        first = Link(generation: 0, segment: first.segment, ring: first.ring, lease: lease,
                     intent: LeaseTable(header: first.segment.base).intent(lease.index))
        if writer.generation == 0 { writer = first }
        if reader.generation == 0 { reader = first }
    }

    // MARK: Names

    /// The name of generation `generation`'s segment of the mailbox incarnation `nonce`.
    static func segmentName(of mailbox: String, nonce: UInt64, generation: UInt64) -> MailboxName {
        MailboxName(derived: "\(mailbox)#\(generation).\(hex(nonce))")
    }

    static func hex(_ nonce: UInt64) -> String {
        let digits = String(nonce, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The mailbox, generation and incarnation a further segment's object name
    /// (`NAME#g.NONCE`, g ≥ 1, without `shmmb.`) stands for; nil for any other name.
    static func parse(_ object: Substring) -> (mailbox: Substring, generation: UInt64, nonce: UInt64)? {
        guard !object.hasPrefix("@"), let hash = object.lastIndex(of: "#") else { return nil }
        let rest = object[object.index(after: hash)...]
        guard let dot = rest.firstIndex(of: "."),
              let generation = UInt64(rest[..<dot]), generation >= 1,
              rest[rest.index(after: dot)...].count == 16,
              let nonce = UInt64(rest[rest.index(after: dot)...], radix: 16) else { return nil }
        return (object[..<hash], generation, nonce)
    }

    // MARK: Sending

    /// Writes a message to the newest generation, moving on (and growing the chain) when it is
    /// full. Never returns `.full`.
    ///
    /// - Throws: `outOfSharedMemory` when a new segment cannot be created (nothing was sent),
    ///   or what the ring throws.
    @inline(__always)
    func tryWrite(length: Int, identity: UInt64, receipt: Bool,
                  _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> SharedRing.WriteResult {
        while true {
            switch try writer.ring.tryWrite(length: length, lease: writer.lease.reference, identity: identity, receipt: receipt, fill) {
            case .written(let position):
                return .written(position: position)
            case .full(_, let position):
                // `position` is the previous lap's: the full position is one capacity later.
                writer.ring.seal(at: position &+ UInt64(geometry.capacity))
                crashPoint(.chainAfterSeal)
                try moveWriter()
            case .sealed:
                try moveWriter()
            }
        }
    }

    /// Moves `writer` to the next generation that has not been given back, creating it if
    /// nobody has.
    @inline(never)
    private func moveWriter() throws(MailboxError) {
        var target = writer.generation &+ 1
        while true {
            // Acquire: a generation given back may have been removed; never use it.
            target = max(target, readGeneration.pointee.load(ordering: .acquiring))
            guard target < Self.generationLimit else {
                throw .corrupted(reason: "unbounded mailbox \"\(name.name)\" would move on to generation \(target), beyond \(Self.generationLimit)")
            }
            let (link, created) = try openOrCreate(target, messagesBefore: messagesBefore(target))
            // Acquire, after the open: if the segment we got was given back before (and we have
            // just created a fresh one by the same name), whoever gave it back raised the hint
            // before removing it, and we see that here.
            if readGeneration.pointee.load(ordering: .acquiring) > target {
                if created { _ = link.segment.unlinkIfSame() }
                target &+= 1
                continue
            }
            writer = link
            raise(writeGeneration, to: target)
            if created { MailboxEvents.emit(MailboxEvent(mailbox: name.name, kind: .segmentGrown(generation: target))) }
            return
        }
    }

    /// What a new generation `generation` records as the messages sent before it
    /// (`SegmentLayout.messagesBeforeOffset`): the writer's generation's record plus its
    /// `sealedAt`, when the writer moves on from the generation just before; else 0 (not
    /// recorded). Every creator of one generation computes the same value (`sealedAt` is set
    /// once), and a wrong one only skews statistics.
    private func messagesBefore(_ generation: UInt64) -> UInt64 {
        guard generation == writer.generation &+ 1, let sealedAt = writer.ring.sealedPosition else { return 0 }
        let before = writer.generation == 0 ? 0 : writer.segment.base.load(fromByteOffset: SegmentLayout.messagesBeforeOffset, as: UInt64.self)
        guard writer.generation == 0 || before != 0 else { return 0 }
        return before &+ sealedAt
    }

    /// Opens generation `generation`, creating its segment (recording `messagesBefore`) if it
    /// does not exist yet.
    private func openOrCreate(_ generation: UInt64, messagesBefore: UInt64) throws(MailboxError) -> (Link, created: Bool) {
        let segmentName = Self.segmentName(of: name.name, nonce: nonce, generation: generation)
        while true {
            do throws(MailboxError) {
                // Built under a temporary name and linked into place when complete, so nobody
                // ever opens a half-built generation, even if we are killed while building it.
                let segment = try SharedSegment.createInitialized(segmentName, size: geometry.segmentSize, mode: mode_t(mode)) { base in
                    geometry.write(to: base, mode: mode, creator: me, createdAt: WallClock.nanos(), nonce: nonce)
                    base.storeBytes(of: generation, toByteOffset: SegmentLayout.generationOffset, as: UInt64.self)
                    base.storeBytes(of: messagesBefore, toByteOffset: SegmentLayout.messagesBeforeOffset, as: UInt64.self)
                    SharedRing.initialize(header: base, geometry: geometry)
                    SegmentGeometry.publish(base)
                    crashPoint(.chainAfterBuild)
                }
                crashPoint(.chainAfterLink)
                return (try link(generation, segment: segment), true)
            } catch .alreadyExists {
                do throws(MailboxError) {
                    return (try open(generation), false)
                } catch .notFound {
                    // Removed between our create and open (given back meanwhile): try again; the
                    // caller's check of `readGeneration` sends us further on.
                    continue
                }
            }
        }
    }

    /// Opens generation `generation`'s segment and checks that it is what the chain expects.
    private func open(_ generation: UInt64) throws(MailboxError) -> Link {
        if generation == 0 { return first }
        if let known = passed.first(where: { $0.generation == generation }) { return known }
        let segment = try SharedSegment.open(Self.segmentName(of: name.name, nonce: nonce, generation: generation),
                                             minimumSize: SegmentLayout.headerSize, waitForSize: .milliseconds(500))
        let found = try SegmentGeometry.read(from: segment, waitForMagic: .seconds(2))
        let stored = segment.base.load(fromByteOffset: SegmentLayout.generationOffset, as: UInt64.self)
        let storedNonce = segment.base.load(fromByteOffset: SegmentLayout.nonceOffset, as: UInt64.self)
        guard found == geometry, stored == generation, storedNonce == nonce else {
            throw .corrupted(reason: "segment \(segment.name.name) is not generation \(generation) of mailbox \"\(name.name)\" (geometry, generation \(stored) or nonce differ)")
        }
        return try link(generation, segment: segment)
    }

    /// A link to `segment`, with a lease of this process in it.
    private func link(_ generation: UInt64, segment: SharedSegment) throws(MailboxError) -> Link {
        let table = LeaseTable(header: segment.base)
        let ring = SharedRing(header: segment.base, geometry: geometry)
        // As in the mailbox's own segment (`Mailbox.ensureLease`).
        let (lease, _) = try table.acquire(for: me.packed, liveness: liveness) { ring.mayReclaimLease($0) }
        return Link(generation: generation, segment: segment, ring: ring, lease: lease, intent: table.intent(lease.index))
    }

    // MARK: Receiving

    /// Takes the oldest message, moving on to the next generation whenever the current one is
    /// sealed and drained. `receiverLeases` is set in every segment this handle reads from.
    @inline(__always)
    func tryRead(identity: UInt64, _ body: SharedRing.Body) throws -> SharedRing.ReadResult {
        while true {
            let result = try reader.ring.tryRead(lease: reader.lease.reference, identity: identity, intent: reader.intent, body)
            guard case .empty = result, reader.ring.isSealedAndDrained() else { return result }
            guard try moveReader() else { return .empty }
        }
    }

    /// Moves `reader` past its sealed, drained generation. Returns false if the next generation
    /// does not exist yet (its creator has not finished, or died before creating it: the next
    /// sender creates it).
    @inline(never)
    private func moveReader() throws(MailboxError) -> Bool {
        var next = reader.generation &+ 1
        while true {
            guard next < Self.generationLimit else {
                throw .corrupted(reason: "unbounded mailbox \"\(name.name)\" would move on to generation \(next), beyond \(Self.generationLimit)")
            }
            let link: Link
            do throws(MailboxError) {
                link = try open(next)
            } catch .notFound {
                // Acquire: if `next` was given back and removed, the hint says where to go.
                let hint = readGeneration.pointee.load(ordering: .acquiring)
                guard hint > next else { return false }
                next = hint
                continue
            }
            // Acquire, after the open: `next` was given back (what we opened is a sender's
            // short-lived re-creation): skip ahead.
            let hint = readGeneration.pointee.load(ordering: .acquiring)
            if hint > next {
                next = hint
                continue
            }
            passed.append(reader)
            reader = link
            markReceiver(in: link)
            giveBack()
            return true
        }
    }

    /// Records this process as a receiver in `link`'s segment (for the orphan search).
    func markReceiver(in link: Link) {
        let bit = link.lease.index
        // Relaxed RMW: read by the orphan search, which re-checks everything on the slot words.
        link.segment.base.atomicUInt64(at: SegmentLayout.receiverLeasesOffset + (bit / 64) * 8)
            .pointee.bitwiseOr(1 << UInt64(bit % 64), ordering: .relaxed)
    }

    /// Gives back the passed generations from `readGeneration` up whose slots are all finished
    /// with: raises `readGeneration` past them and removes their names (never generation 0, the
    /// mailbox itself). Raising rather than stepping keeps this going even when a slow receiver's
    /// update lands late; whoever raises the hint over a generation removes it.
    func giveBack() {
        // Acquire: we see the hint as other receivers left it.
        var current = readGeneration.pointee.load(ordering: .acquiring)
        var target = current
        while target < reader.generation {
            // A generation already removed needs nothing more; one still there must be finished.
            if let link = passedLink(target), link.ring.hasUnfinishedSlots() { break }
            target += 1
        }
        while current < target {
            // Acquire-release: one receiver raises the hint over each generation; release orders
            // the new hint before the removals below (a sender that finds a generation's name
            // gone then sees the hint beyond it).
            let (exchanged, found) = readGeneration.pointee.compareExchange(expected: current, desired: target, ordering: .acquiringAndReleasing)
            if exchanged {
                crashPoint(.chainAfterRaiseRead)
                MailboxEvents.emit(MailboxEvent(mailbox: name.name, kind: .segmentsGivenBack(generations: current..<target)))
                // At most the last 64 generations: older ones went with earlier raises (or the
                // hint was garbage, and walking it would take forever).
                let from = max(current, 1, target > 64 ? target - 64 : 0)
                for generation in from..<target {
                    if let link = passed.first(where: { $0.generation == generation }) {
                        _ = link.segment.unlinkIfSame()
                    } else {
                        try? SharedSegment.unlink(Self.segmentName(of: name.name, nonce: nonce, generation: generation))
                    }
                }
                break
            }
            current = found
        }
        // Acquire: as above.
        let given = readGeneration.pointee.load(ordering: .acquiring)
        passed.removeAll { $0.generation < given }
    }

    /// The passed generation `generation`, mapped (and remembered) if this handle has not yet;
    /// nil if its segment is gone.
    private func passedLink(_ generation: UInt64) -> Link? {
        if generation == 0 { return first }
        if let known = passed.first(where: { $0.generation == generation }) { return known }
        guard let link = try? open(generation) else { return nil }
        passed.append(link)
        return link
    }

    /// The rings this handle may find orphaned messages in: generations passed but not given
    /// back, and the one it reads.
    var readableLinks: [Link] { passed + [reader] }

    // MARK: Inspection and removal

    /// Messages waiting in every generation not yet given back (a snapshot). Walks the segments
    /// that exist rather than the hints, so garbage hints cannot make it loop.
    var depth: Int {
        inspectedGenerations().reduce(0) { $0 + $1.ring.depth }
    }

    /// The generations not given back, oldest first, each with its segment (which keeps the
    /// mapping alive while the ring is used), for inspection: depth, peeking, positions, sizes.
    func inspectedGenerations() -> [(generation: UInt64, segment: SharedSegment, ring: SharedRing)] {
        // Acquire: generations below the hint were given back.
        let oldest = readGeneration.pointee.load(ordering: .acquiring)
        var found: [(generation: UInt64, segment: SharedSegment, ring: SharedRing)] = []
        if oldest == 0 { found.append((0, first.segment, first.ring)) }
        for object in Self.segmentNames(of: name.name, nonce: nonce) {
            guard let generation = Self.parse(object[...])?.generation, generation >= oldest,
                  let segment = try? SharedSegment.open(MailboxName(derived: object), minimumSize: SegmentLayout.headerSize, waitForSize: .zero),
                  let read = try? SegmentGeometry.read(from: segment, waitForMagic: .zero), read == geometry else { continue }
            found.append((generation, segment, SharedRing(header: segment.base, geometry: read)))
        }
        return found.sorted { $0.generation < $1.generation }
    }

    /// The object names (`NAME#g.NONCE`, without `shmmb.`) of every chained segment of `mailbox`
    /// (of incarnation `nonce`, or of any if nil) in /dev/shm; with `temporaries`, also those
    /// still being built (`NAME#g.NONCE~PID.X`, see `SharedSegment.createInitialized`).
    static func segmentNames(of mailbox: String, nonce: UInt64?, temporaries: Bool = false) -> [String] {
        ((try? SharedSegment.objectNames()) ?? []).filter { object in
            let final = temporaries ? SharedSegment.temporary(object)?.finalName ?? object[...] : object[...]
            guard let parsed = parse(final), parsed.mailbox == mailbox[...] else { return false }
            return nonce == nil || parsed.nonce == nonce
        }
    }

    /// Removes the names of every chained segment of mailbox incarnation `nonce` (generations
    /// ≥ 1), including ones still being built.
    static func unlinkSegments(of mailbox: String, nonce: UInt64) {
        for object in segmentNames(of: mailbox, nonce: nonce, temporaries: true) {
            try? SharedSegment.unlink(MailboxName(derived: object))
        }
    }

    /// Raises a generation hint to at least `value`.
    private func raise(_ hint: UnsafeMutablePointer<Atomic<UInt64>>, to value: UInt64) {
        // Relaxed reads and CAS: the hint only steers where handles start looking; every segment
        // is validated when opened, and a stale hint costs a step along the chain.
        var current = hint.pointee.load(ordering: .relaxed)
        while current < value {
            let (exchanged, found) = hint.pointee.compareExchange(expected: current, desired: value, ordering: .relaxed)
            if exchanged { return }
            current = found
        }
    }
}
