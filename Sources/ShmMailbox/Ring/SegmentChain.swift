#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The segments of an unbounded mailbox, and one handle's place in them.
///
/// An unbounded mailbox is a chain of shared rings of equal geometry. Generation 0 is the ring in
/// the mailbox's own segment (`NAME`); generation g ≥ 1 lives in a segment of its own named
/// `NAME#g`. Senders write to the newest generation: one that finds its ring full seals it (see
/// `SharedRing`, "Sealing") and moves to the next generation, creating its segment if nobody has
/// yet — so a send never waits for room. Receivers read the oldest generation until it is sealed
/// and drained, then move on; the receiver that moves the shared `readGeneration` past a chained
/// segment removes its name, and the memory goes back to the system when the last process
/// unmaps it. So messages from one sender stay in order: it never writes to an older generation
/// than it has written to, and receivers finish a generation before they start the next.
///
/// Two hints in the first segment's header, `writeGeneration` and `readGeneration`, let new
/// handles start where the chain is now and let late ones skip generations that were removed.
/// Both only grow. A late sender may re-create a generation that receivers have already passed
/// and removed; after creating or opening a generation, senders and receivers alike re-read
/// `readGeneration` and give the segment up if receivers are beyond it (its creator removes it).
///
/// Generation 0's ring sits unused once the chain has moved on: its memory is part of the
/// mailbox's own segment and lives as long as the mailbox.
final class SegmentChain {
    /// One generation, mapped by this handle.
    struct Link {
        let generation: UInt64
        /// Keeps the mapping alive as long as `ring` is used.
        let segment: SharedSegment
        let ring: SharedRing
    }

    private let name: MailboxName
    private let geometry: SegmentGeometry
    private let mode: UInt32
    private let first: Link
    private let writeGeneration: UnsafeMutablePointer<Atomic<UInt64>>
    private let readGeneration: UnsafeMutablePointer<Atomic<UInt64>>
    /// The generation this handle sends to.
    private(set) var writer: Link
    /// The generation this handle receives from.
    private(set) var reader: Link

    /// Generations stay below this; a hint or a generation at or beyond it is `corrupted`. (At a
    /// billion new segments a second, 2^48 lasts three days; at realistic rates, ever.) Keeping
    /// far from 2^64 means moving on can never wrap around to an old generation.
    static let generationLimit: UInt64 = 1 << 48

    /// The geometry of every chained segment of a mailbox whose first segment has `geometry`.
    static func chainedGeometry(of geometry: SegmentGeometry) throws(MailboxError) -> SegmentGeometry {
        try SegmentGeometry(kind: .shared, buffering: .chained, capacity: geometry.capacity,
                            maxMessageSize: geometry.maxMessageSize, ownership: .none, receiverPolicy: .competing)
    }

    init(name: MailboxName, segment: SharedSegment, geometry: SegmentGeometry) throws(MailboxError) {
        self.name = name
        self.geometry = try Self.chainedGeometry(of: geometry)
        mode = segment.base.load(fromByteOffset: SegmentLayout.modeOffset, as: UInt32.self)
        first = Link(generation: 0, segment: segment, ring: SharedRing(header: segment.base, geometry: geometry))
        writeGeneration = segment.base.atomicUInt64(at: SegmentLayout.writeGenerationOffset)
        readGeneration = segment.base.atomicUInt64(at: SegmentLayout.readGenerationOffset)
        writer = first
        reader = first
    }

    /// The name of generation `generation`'s segment.
    static func segmentName(of mailbox: String, generation: UInt64) -> MailboxName {
        MailboxName(derived: "\(mailbox)#\(generation)")
    }

    // MARK: Sending

    /// Writes a message to the newest generation, moving on (and growing the chain) when it is
    /// full. Never returns `.full`.
    ///
    /// - Throws: `outOfSharedMemory` when a new segment cannot be created (nothing was sent),
    ///   or what the ring throws.
    @inline(__always)
    func tryWrite(length: Int, sender: UInt32, identity: UInt64, receipt: Bool,
                  _ fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws -> SharedRing.WriteResult {
        while true {
            switch try writer.ring.tryWrite(length: length, sender: sender, identity: identity, receipt: receipt, fill) {
            case .written(let position):
                return .written(position: position)
            case .full(_, let position):
                // `position` is the previous lap's: the full position is one capacity later.
                writer.ring.seal(at: position &+ UInt64(geometry.capacity))
                try moveWriter()
            case .sealed:
                try moveWriter()
            }
        }
    }

    /// Moves `writer` to the next generation that receivers have not passed, creating it if
    /// nobody has.
    @inline(never)
    private func moveWriter() throws(MailboxError) {
        var target = writer.generation &+ 1
        while true {
            // Acquire: a generation receivers have moved past may have been removed; never use it.
            target = max(target, readGeneration.pointee.load(ordering: .acquiring))
            guard target < Self.generationLimit else {
                throw .corrupted(reason: "unbounded mailbox \"\(name.name)\" would move on to generation \(target), beyond \(Self.generationLimit)")
            }
            let (link, created) = try openOrCreate(target)
            // Acquire, after the open: if the segment we got was removed before (and we have just
            // created a fresh one by the same name), the receiver that removed it advanced the
            // hint before removing it, and we see that here.
            if readGeneration.pointee.load(ordering: .acquiring) > target {
                if created { try? SharedSegment.unlink(link.segment.name) }
                target &+= 1
                continue
            }
            writer = link
            raise(writeGeneration, to: target)
            return
        }
    }

    /// Opens generation `generation`, creating its segment if it does not exist yet.
    private func openOrCreate(_ generation: UInt64) throws(MailboxError) -> (Link, created: Bool) {
        let segmentName = Self.segmentName(of: name.name, generation: generation)
        while true {
            do throws(MailboxError) {
                // Built under a temporary name and linked into place when complete, so nobody
                // ever opens a half-built generation, even if we are killed while building it.
                let segment = try SharedSegment.createInitialized(segmentName, size: geometry.segmentSize, mode: mode_t(mode)) { base in
                    geometry.write(to: base, mode: mode, creator: ProcessIdentity.current(), createdAt: Mailbox.unixNanos())
                    base.storeBytes(of: generation, toByteOffset: SegmentLayout.generationOffset, as: UInt64.self)
                    SharedRing.initialize(header: base, geometry: geometry)
                    SegmentGeometry.publish(base)
                }
                return (Link(generation: generation, segment: segment, ring: SharedRing(header: segment.base, geometry: geometry)), true)
            } catch .alreadyExists {
                do throws(MailboxError) {
                    return (try open(generation), false)
                } catch .notFound {
                    // Removed between our create and open (drained meanwhile): try again; the
                    // caller's check of `readGeneration` sends us further on.
                    continue
                }
            }
        }
    }

    /// Opens generation `generation`'s segment and checks that it is what the chain expects.
    private func open(_ generation: UInt64) throws(MailboxError) -> Link {
        if generation == 0 { return first }
        let segment = try SharedSegment.open(Self.segmentName(of: name.name, generation: generation),
                                             minimumSize: SegmentLayout.headerSize, waitForSize: .milliseconds(500))
        let found = try SegmentGeometry.read(from: segment, waitForMagic: .seconds(2))
        let stored = segment.base.load(fromByteOffset: SegmentLayout.generationOffset, as: UInt64.self)
        guard found == geometry, stored == generation else {
            throw .corrupted(reason: "segment \(segment.name.name) is not generation \(generation) of mailbox \"\(name.name)\" (geometry or generation \(stored) differ)")
        }
        return Link(generation: generation, segment: segment, ring: SharedRing(header: segment.base, geometry: found))
    }

    // MARK: Receiving

    /// Takes the oldest message, moving on to the next generation whenever the current one is
    /// sealed and drained.
    @inline(__always)
    func tryRead(receiver: UInt32, identity: UInt64, _ body: (UnsafeRawBufferPointer, Int32) throws -> Void) throws -> SharedRing.ReadResult {
        while true {
            let result = try reader.ring.tryRead(receiver: receiver, identity: identity, body)
            guard case .empty = result, reader.ring.isSealedAndDrained() else { return result }
            guard try moveReader() else { return .empty }
        }
    }

    /// Moves `reader` past its sealed, drained generation. Returns false if the next generation
    /// does not exist yet (its creator has not finished, or died before creating it: the next
    /// sender creates it).
    @inline(never)
    private func moveReader() throws(MailboxError) -> Bool {
        let drained = reader.generation
        var next = drained &+ 1
        while true {
            guard next < Self.generationLimit else {
                throw .corrupted(reason: "unbounded mailbox \"\(name.name)\" would move on to generation \(next), beyond \(Self.generationLimit)")
            }
            let link: Link
            do throws(MailboxError) {
                link = try open(next)
            } catch .notFound {
                // Acquire: if receivers moved on and removed `next`, the hint says where to go.
                let hint = readGeneration.pointee.load(ordering: .acquiring)
                guard hint > next else { return false }
                next = hint
                continue
            }
            // Acquire, after the open: receivers already moved past `next` (it was drained and
            // removed, and what we opened is a sender's short-lived re-creation): skip ahead.
            let hint = readGeneration.pointee.load(ordering: .acquiring)
            if hint > next {
                next = hint
                continue
            }
            passDrained(upTo: next)
            reader = link
            return true
        }
    }

    /// Raises `readGeneration` to `next`. Every generation below `next` is drained (receivers
    /// pass a generation only once it is sealed and empty), so whoever raises the hint removes
    /// the names of the generations it raised it past (never generation 0, the mailbox itself).
    /// Raising, rather than moving the hint one step, keeps removal going even when a slow
    /// receiver's hint update lands late.
    private func passDrained(upTo next: UInt64) {
        // Acquire: we see the hint as other receivers left it.
        var current = readGeneration.pointee.load(ordering: .acquiring)
        while current < next {
            // Acquire-release: one receiver raises the hint over each generation; release orders
            // the new hint before the removals below (a sender that finds a generation's name
            // gone then sees the hint beyond it).
            let (exchanged, found) = readGeneration.pointee.compareExchange(expected: current, desired: next, ordering: .acquiringAndReleasing)
            if exchanged {
                // At most the last 64 generations: older ones went with earlier raises (or the
                // hint was garbage, and walking it would take forever).
                let from = max(current, 1, next > 64 ? next - 64 : 0)
                for generation in from..<next {
                    try? SharedSegment.unlink(Self.segmentName(of: name.name, generation: generation))
                }
                return
            }
            current = found
        }
    }

    // MARK: Inspection and removal

    /// Messages waiting in every generation receivers have not finished (a snapshot). Walks the
    /// segments that exist rather than the hints, so garbage hints cannot make it loop.
    var depth: Int {
        // Acquire: generations below the hint are drained; their rings may still count cancelled
        // records of late senders.
        let oldest = readGeneration.pointee.load(ordering: .acquiring)
        var total = oldest == 0 ? first.ring.depth : 0
        for object in Self.segmentNames(of: name.name) {
            guard let generation = Self.parse(object[...])?.generation, generation >= oldest,
                  let link = try? open(generation) else { continue }
            total += link.ring.depth
        }
        return total
    }

    /// The mailbox and generation a further segment's object name (`NAME#g`, g ≥ 1, without
    /// `shmmb.`) stands for; nil for any other name.
    static func parse(_ object: Substring) -> (mailbox: Substring, generation: UInt64)? {
        guard !object.hasPrefix("@"), let hash = object.lastIndex(of: "#"),
              let generation = UInt64(object[object.index(after: hash)...]), generation >= 1 else { return nil }
        return (object[..<hash], generation)
    }

    /// The object names (`NAME#g`, without `shmmb.`) of every chained segment of `mailbox` in
    /// /dev/shm; with `temporaries`, also those still being built (`NAME#g~PID.X`, see
    /// `SharedSegment.createInitialized`).
    static func segmentNames(of mailbox: String, temporaries: Bool = false) -> [String] {
        ((try? SharedSegment.objectNames()) ?? []).filter { object in
            let final = temporaries ? SharedSegment.temporary(object)?.finalName ?? object[...] : object[...]
            return parse(final)?.mailbox == mailbox[...]
        }
    }

    /// Removes the names of every chained segment of `mailbox` (generations ≥ 1), including
    /// ones still being built.
    static func unlinkSegments(of mailbox: String) {
        for object in segmentNames(of: mailbox, temporaries: true) {
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
