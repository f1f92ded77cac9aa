#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// An endpoint's own shared-memory segment (`/shmmb.@NAME`, see `EndpointLayout`): the holder
/// (who holds the name), the doorbell (an `EventCount` the holder sleeps on while it waits for a
/// message from anyone) and the table of incoming links (which endpoints have a link to this
/// one).
///
/// Table entries are reused: an entry is claimed (a lease word, so a claimant that dies midway
/// is replaced), written, and published with a new generation; it is freed again when its link is
/// retired (see `Endpoint`). Every change bumps `tableChanges`, so the holder re-reads the table
/// only when something changed.
///
/// Everything read from the segment is untrusted: states, generations, name lengths and name
/// bytes are bounds-checked, and a violation is `corrupted`.
final class EndpointSegment {
    /// A published entry: where it is, its generation, and the sender endpoint it names.
    struct Entry: Equatable {
        let index: Int
        let generation: UInt64
        let sender: String
    }

    let segment: SharedSegment
    /// The endpoint name (without `@`).
    let endpoint: String
    let tableCapacity: Int
    let nonce: UInt64
    /// Who holds the name: a lease word, 0 = nobody.
    let holder: LeaseWord
    private let tableChanges: UnsafeMutablePointer<Atomic<UInt32>>
    /// Rung by senders after every message to this endpoint; the holder sleeps on it.
    let doorbell: EventCount

    private init(segment: SharedSegment, endpoint: String, tableCapacity: Int) {
        self.segment = segment
        self.endpoint = endpoint
        self.tableCapacity = tableCapacity
        nonce = segment.base.load(fromByteOffset: EndpointLayout.nonceOffset, as: UInt64.self)
        holder = LeaseWord(at: EndpointLayout.holderOffset, in: segment.base)
        tableChanges = segment.base.atomicUInt32(at: EndpointLayout.tableChangesOffset)
        doorbell = EventCount(base: segment.base, offset: EndpointLayout.doorbellOffset, nonce: nonce,
                              bitmapWords: EndpointLayout.doorbellBitmapWords)
    }

    /// Creates the segment of endpoint `endpoint` (`SharedSegment.createInitialized`: `alreadyExists` if it is
    /// there), held by `holder` from the start.
    static func create(_ endpoint: String, holder packed: UInt64, permissions: UInt32) throws(MailboxError) -> EndpointSegment {
        let capacity = EndpointLayout.tableCapacity
        let size = EndpointLayout.segmentSize(tableCapacity: capacity)
        // Built under a temporary name and linked into place once complete, so nobody ever
        // opens a half-built endpoint, even if this process is killed while building it.
        let segment = try SharedSegment.createInitialized(EndpointName.segment(endpoint), size: size, mode: mode_t(permissions)) { base in
            base.storeBytes(of: EndpointLayout.version, toByteOffset: EndpointLayout.versionOffset, as: UInt32.self)
            base.storeBytes(of: UInt32(capacity), toByteOffset: EndpointLayout.tableCapacityOffset, as: UInt32.self)
            base.storeBytes(of: UInt64(size), toByteOffset: EndpointLayout.segmentSizeOffset, as: UInt64.self)
            base.storeBytes(of: UInt64(EndpointLayout.tableOffset), toByteOffset: EndpointLayout.tableOffsetOffset, as: UInt64.self)
            base.storeBytes(of: UInt32(EndpointLayout.entrySize), toByteOffset: EndpointLayout.entrySizeOffset, as: UInt32.self)
            base.storeBytes(of: permissions, toByteOffset: EndpointLayout.modeOffset, as: UInt32.self)
            base.storeBytes(of: WallClock.nanos(), toByteOffset: EndpointLayout.createdAtOffset, as: UInt64.self)
            base.storeBytes(of: SegmentGeometry.newNonce(), toByteOffset: EndpointLayout.nonceOffset, as: UInt64.self)
            base.storeBytes(of: ProcessIdentity.pidNamespace(), toByteOffset: EndpointLayout.pidNamespaceOffset, as: UInt64.self)
            // Relaxed: published by the release store of the magic below.
            base.atomicUInt64(at: EndpointLayout.holderOffset).pointee.store(packed, ordering: .relaxed)
            // Release: pairs with the acquire load in `open`, so an opener that sees the magic
            // also sees the header and the holder written above.
            base.atomicUInt64(at: EndpointLayout.magicOffset).pointee.store(EndpointLayout.magic, ordering: .releasing)
        }
        return EndpointSegment(segment: segment, endpoint: endpoint, tableCapacity: capacity)
    }

    /// Opens and validates the segment of endpoint `endpoint`.
    ///
    /// - Throws: `notFound` (no such segment), `permissionDenied`, `untrustedOwner`,
    ///   `unsafePermissions`, `incompatibleVersion`, `foreignPidNamespace`, `corrupted` (never
    ///   initialised, not an endpoint segment, geometry out of range or larger than the object),
    ///   `system`.
    ///
    /// Endpoint segments are built under a temporary name and appear complete (see
    /// `SharedSegment.createInitialized`), so by default an opener does not wait for a segment
    /// still being sized or initialised: one that is not complete is foreign or damaged.
    static func open(_ endpoint: String, trust: SegmentTrust = .sameUser, patience: Duration = .zero) throws(MailboxError) -> EndpointSegment {
        let segment = try SharedSegment.open(EndpointName.segment(endpoint), minimumSize: EndpointLayout.tableOffset,
                                             waitForSize: patience, trust: trust)
        let base = segment.base
        let magicWord = base.atomicUInt64(at: EndpointLayout.magicOffset)
        let deadline = MonotonicClock.deadline(after: patience)
        // Acquire: pairs with the release store in `create`; a creator may still be writing the
        // header, so wait briefly.
        var magic = magicWord.pointee.load(ordering: .acquiring)
        while magic == 0 && MonotonicClock.now() < deadline {
            usleep(200)
            magic = magicWord.pointee.load(ordering: .acquiring)
        }
        guard magic != 0 else {
            throw .corrupted(reason: "endpoint segment @\(endpoint) was never initialised (its creator died while creating it?)")
        }
        guard magic == EndpointLayout.magic else {
            throw .corrupted(reason: "@\(endpoint) is not an endpoint segment (magic 0x\(String(magic, radix: 16)))")
        }
        let version = base.load(fromByteOffset: EndpointLayout.versionOffset, as: UInt32.self)
        guard version == EndpointLayout.version else {
            throw .incompatibleVersion(found: version, supported: EndpointLayout.version)
        }
        let capacity = Int(base.load(fromByteOffset: EndpointLayout.tableCapacityOffset, as: UInt32.self))
        let entrySize = Int(base.load(fromByteOffset: EndpointLayout.entrySizeOffset, as: UInt32.self))
        let tableOffset = base.load(fromByteOffset: EndpointLayout.tableOffsetOffset, as: UInt64.self)
        let size = base.load(fromByteOffset: EndpointLayout.segmentSizeOffset, as: UInt64.self)
        guard (1...EndpointLayout.maxTableCapacity).contains(capacity), entrySize == EndpointLayout.entrySize,
              tableOffset == UInt64(EndpointLayout.tableOffset),
              size == UInt64(EndpointLayout.segmentSize(tableCapacity: capacity)) else {
            throw .corrupted(reason: "endpoint segment @\(endpoint) has a bad table geometry (capacity \(capacity), entry size \(entrySize), table at \(tableOffset), size \(size))")
        }
        guard size <= UInt64(segment.size) else {
            throw .corrupted(reason: "endpoint segment @\(endpoint) is truncated: \(segment.size) bytes of \(size)")
        }
        let namespace = base.load(fromByteOffset: EndpointLayout.pidNamespaceOffset, as: UInt64.self)
        let ours = ProcessIdentity.pidNamespace()
        guard namespace == 0 || ours == 0 || namespace == ours else {
            throw .foreignPidNamespace("@" + endpoint)
        }
        return EndpointSegment(segment: segment, endpoint: endpoint, tableCapacity: capacity)
    }

    // MARK: Holder

    /// The packed identity of the holder (0 = nobody).
    var currentHolder: UInt64 { holder.holder }

    /// Makes `packed` the holder if the name is free or its holder is dead; returns the live
    /// holder that prevents it (possibly `packed` itself: one endpoint per name and process),
    /// or nil on success.
    func claim(for packed: UInt64, liveness: some Liveness) -> UInt64? {
        switch holder.claim(for: packed, liveness: liveness) {
        case .alreadyHeld:
            return packed
        case .heldBy(let current):
            return current
        case .taken:
            // Only the holder sleeps on the doorbell, and we have not slept yet: a bit left by a
            // holder that died asleep would only cost senders wake-up system calls.
            doorbell.withdraw(deadSleeper: EndpointLayout.holderSleeperBit)
            return nil
        }
    }

    /// Gives the name up if `packed` still holds it.
    func release(_ packed: UInt64) {
        holder.release(packed)
    }

    // MARK: Incoming-link table

    private func entryBase(_ index: Int) -> UnsafeMutableRawPointer {
        segment.base + EndpointLayout.tableOffset + index * EndpointLayout.entrySize
    }

    private func stateWord(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        entryBase(index).atomicUInt64(at: EndpointLayout.entryStateOffset)
    }

    private func claimWord(_ index: Int) -> LeaseWord {
        LeaseWord(entryBase(index).atomicUInt64(at: EndpointLayout.entryClaimOffset))
    }

    /// The table's change counter (see `EndpointLayout.tableChangesOffset`).
    var changes: UInt32 {
        // Acquire: pairs with the release bump that followed a change; the entries read after
        // this are at least as new as that change.
        tableChanges.pointee.load(ordering: .acquiring)
    }

    private func noteChange() {
        // Release: a holder that sees the new count sees the change to the entry before it.
        tableChanges.pointee.wrappingAdd(1, ordering: .releasing)
    }

    /// The published entries, in table order.
    ///
    /// - Throws: `corrupted` for an entry with an unknown state, a bad length or an invalid name.
    func entries() throws(MailboxError) -> [Entry] {
        var found: [Entry] = []
        for index in 0..<tableCapacity {
            if let entry = try entry(at: index) { found.append(entry) }
        }
        return found
    }

    /// The entry at `index` if it is published, else nil.
    func entry(at index: Int) throws(MailboxError) -> Entry? {
        // Acquire: pairs with the publishing CAS, so the length and name read below are the ones
        // written before it.
        let state = stateWord(index).pointee.load(ordering: .acquiring)
        switch state & 3 {
        case EndpointLayout.entryFree:
            return nil
        case EndpointLayout.entryPublished:
            break
        default:
            throw .corrupted(reason: "incoming-link entry \(index) of endpoint @\(endpoint) has state \(state & 3)")
        }
        let base = entryBase(index)
        let length = Int(base.load(fromByteOffset: EndpointLayout.entryLengthOffset, as: UInt32.self))
        guard (1...EndpointName.maxLength).contains(length) else {
            throw .corrupted(reason: "incoming-link entry \(index) of endpoint @\(endpoint) has a name of \(length) bytes")
        }
        let name = String(decoding: UnsafeRawBufferPointer(start: base + EndpointLayout.entryNameOffset, count: length), as: UTF8.self)
        guard name.utf8.count == length, EndpointName.isValid(name) else {
            throw .corrupted(reason: "incoming-link entry \(index) of endpoint @\(endpoint) holds an invalid name")
        }
        return Entry(index: index, generation: state >> 2, sender: name)
    }

    /// The senders named by all published entries, in table order.
    func senders() throws(MailboxError) -> [String] {
        try entries().map(\.sender)
    }

    /// Registers the link from `sender` (created before this call, so a holder that finds the
    /// entry finds the link): touches the published entry that names it (a new generation, so
    /// that a concurrent release of it fails and the holder looks again), or claims a free entry
    /// (or one whose claimant died before publishing it), writes the name and publishes it.
    ///
    /// - Throws: `tooManyLinks` when every entry is in use, `corrupted`.
    func register(sender: String, as claimant: UInt64, liveness: some Liveness) throws(MailboxError) {
        for entry in try entries() where entry.sender == sender {
            let published = entry.generation << 2 | EndpointLayout.entryPublished
            // Acquire-release: only the entry as we saw it; release orders the touch before the
            // change count below.
            if stateWord(entry.index).pointee.compareExchange(expected: published, desired: (entry.generation &+ 1) << 2 | EndpointLayout.entryPublished,
                                                             ordering: .acquiringAndReleasing).exchanged {
                noteChange()
                return
            }
        }
        let utf8 = Array(sender.utf8)
        for index in 0..<tableCapacity {
            // Acquire: as in `entry(at:)`.
            let state = stateWord(index).pointee.load(ordering: .acquiring)
            guard state & 3 == EndpointLayout.entryFree else { continue }
            switch claimWord(index).claim(for: claimant, liveness: liveness) {
            case .heldBy:
                continue
            case .taken, .alreadyHeld:
                break
            }
            let base = entryBase(index)
            base.storeBytes(of: UInt32(utf8.count), toByteOffset: EndpointLayout.entryLengthOffset, as: UInt32.self)
            utf8.withUnsafeBytes { bytes in
                (base + EndpointLayout.entryNameOffset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            }
            crashPoint(.endpointAfterEntryClaim)
            // Acquire-release: publishes the name and length with the new generation; fails only
            // if the entry changed since we read it free (then it is someone else's).
            if stateWord(index).pointee.compareExchange(expected: state, desired: ((state >> 2) &+ 1) << 2 | EndpointLayout.entryPublished,
                                                       ordering: .acquiringAndReleasing).exchanged {
                noteChange()
                return
            }
            claimWord(index).release(claimant)
        }
        throw .tooManyLinks(endpoint, limit: tableCapacity)
    }

    /// Frees `entry` if it is still published with that generation. Returns whether it did.
    @discardableResult
    func free(_ entry: Entry) -> Bool {
        let published = entry.generation << 2 | EndpointLayout.entryPublished
        // Read before the entry frees: afterwards a new claimant may take the word over.
        let claimant = claimWord(entry.index).holder
        // Acquire-release: only the entry exactly as the caller judged it (a sender that touched
        // or re-published it meanwhile wins).
        guard stateWord(entry.index).pointee.compareExchange(expected: published, desired: (entry.generation &+ 1) << 2 | EndpointLayout.entryFree,
                                                            ordering: .acquiringAndReleasing).exchanged else { return false }
        claimWord(entry.index).release(claimant)
        noteChange()
        return true
    }
}
