#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// An endpoint's own shared-memory segment (`/shmmb.@NAME`, see `EndpointLayout`): the holder
/// word (who holds the name), the doorbell (an `EventCount` the holder sleeps on while it waits
/// for a message from anyone) and the table of incoming links (which endpoints have a link to
/// this one).
///
/// Everything read from the segment is untrusted: the table count, entry states, name lengths
/// and name bytes are bounds-checked, and a violation is `corrupted`.
final class EndpointSegment {
    let segment: SharedSegment
    /// The endpoint name (without `@`).
    let endpoint: String
    let tableCapacity: Int
    /// Packed identity of the process holding the name; 0 = nobody.
    let holder: UnsafeMutablePointer<Atomic<UInt64>>
    /// Table entries claimed so far.
    let tableCount: UnsafeMutablePointer<Atomic<UInt32>>
    /// Rung by senders after every message to this endpoint; the holder sleeps on it.
    let doorbell: EventCount

    private init(segment: SharedSegment, endpoint: String, tableCapacity: Int) {
        self.segment = segment
        self.endpoint = endpoint
        self.tableCapacity = tableCapacity
        holder = segment.base.atomicUInt64(at: EndpointLayout.holderOffset)
        tableCount = segment.base.atomicUInt32(at: EndpointLayout.tableCountOffset)
        doorbell = EventCount(base: segment.base, offset: EndpointLayout.doorbellOffset)
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
            base.storeBytes(of: Mailbox.unixNanos(), toByteOffset: EndpointLayout.createdAtOffset, as: UInt64.self)
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
    /// - Throws: `notFound` (no such segment), `permissionDenied`, `incompatibleVersion`,
    ///   `corrupted` (never initialised, not an endpoint segment, geometry out of range or
    ///   larger than the object), `system`.
    static func open(_ endpoint: String) throws(MailboxError) -> EndpointSegment {
        let segment = try SharedSegment.open(EndpointName.segment(endpoint), minimumSize: EndpointLayout.tableOffset,
                                             waitForSize: .milliseconds(500))
        let base = segment.base
        let magicWord = base.atomicUInt64(at: EndpointLayout.magicOffset)
        let deadline = MonotonicClock.deadline(after: .seconds(2))
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
        return EndpointSegment(segment: segment, endpoint: endpoint, tableCapacity: capacity)
    }

    // MARK: Holder

    /// The packed identity of the holder (0 = nobody).
    var currentHolder: UInt64 {
        // Acquire: pairs with the joiner's CAS; what the holder set up before joining is visible.
        holder.pointee.load(ordering: .acquiring)
    }

    /// Makes `packed` the holder if the name is free or its holder is dead; returns the live
    /// holder that prevents it (possibly `packed` itself: one endpoint per name and process),
    /// or nil on success.
    func claim(for packed: UInt64) -> UInt64? {
        while true {
            let current = currentHolder
            if current == packed { return current }
            if current != 0, ProcessIdentity.isAlive(packed: current) { return current }
            // Acquire-release: exactly one joiner takes the name over from `current`.
            if holder.pointee.compareExchange(expected: current, desired: packed, ordering: .acquiringAndReleasing).exchanged {
                // Only the holder sleeps on the doorbell, and we have not slept yet: a count left
                // by a holder that died asleep would only cost senders wake-up system calls.
                // Relaxed: nobody else changes the count while we are the holder and awake.
                doorbell.waiters.pointee.store(0, ordering: .relaxed)
                return nil
            }
        }
    }

    /// Gives the name up if `packed` still holds it.
    func release(_ packed: UInt64) {
        // Release: everything this holder did is ordered before the name becomes free.
        _ = holder.pointee.compareExchange(expected: packed, desired: 0, ordering: .releasing)
    }

    // MARK: Incoming-link table

    /// Entries claimed so far (some may not be published yet), checked against the capacity.
    func claimedEntries() throws(MailboxError) -> Int {
        // Relaxed: each entry is published by its own release store of the state; the count only
        // says how far to look.
        let count = Int(tableCount.pointee.load(ordering: .relaxed))
        guard count <= tableCapacity else {
            throw .corrupted(reason: "endpoint @\(endpoint) claims \(count) incoming links, more than its table's \(tableCapacity)")
        }
        return count
    }

    /// The sender endpoint named by entry `index`, or nil while the entry is not yet published.
    func sender(at index: Int) throws(MailboxError) -> String? {
        precondition(index >= 0 && index < tableCapacity)
        let entry = segment.base + EndpointLayout.tableOffset + index * EndpointLayout.entrySize
        // Acquire: pairs with the writer's release store of the state, so the length and name
        // read below are the ones written before it.
        let state = entry.atomicUInt32(at: EndpointLayout.entryStateOffset).pointee.load(ordering: .acquiring)
        if state == 0 { return nil }
        guard state == EndpointLayout.entryPublished else {
            throw .corrupted(reason: "incoming-link entry \(index) of endpoint @\(endpoint) has state \(state)")
        }
        let length = Int(entry.load(fromByteOffset: EndpointLayout.entryLengthOffset, as: UInt32.self))
        guard (1...EndpointName.maxLength).contains(length) else {
            throw .corrupted(reason: "incoming-link entry \(index) of endpoint @\(endpoint) has a name of \(length) bytes")
        }
        let bytes = UnsafeRawBufferPointer(start: entry + EndpointLayout.entryNameOffset, count: length)
        let name = String(decoding: bytes, as: UTF8.self)
        guard name.utf8.count == length, EndpointName.isValid(name) else {
            throw .corrupted(reason: "incoming-link entry \(index) of endpoint @\(endpoint) holds an invalid name")
        }
        return name
    }

    /// The senders named by all published entries, in table order.
    func senders() throws(MailboxError) -> [String] {
        var names: [String] = []
        for index in 0..<(try claimedEntries()) {
            if let name = try sender(at: index) { names.append(name) }
        }
        return names
    }

    /// Adds an entry naming `sender` unless a published one already does.
    ///
    /// - Throws: `tooManyLinks` when the table is full, `corrupted`.
    func register(sender: String) throws(MailboxError) {
        if try senders().contains(sender) { return }
        var index = 0
        while true {
            // Relaxed: the count only reserves an index; the entry is published by its state.
            let claimed = tableCount.pointee.load(ordering: .relaxed)
            guard Int(claimed) < tableCapacity else {
                if Int(claimed) > tableCapacity { _ = try claimedEntries() }
                throw .tooManyLinks(endpoint, limit: tableCapacity)
            }
            // Relaxed: a bounded atomic add (CAS) that gives this sender index `claimed` alone.
            if tableCount.pointee.compareExchange(expected: claimed, desired: claimed + 1, ordering: .relaxed).exchanged {
                index = Int(claimed)
                break
            }
        }
        let entry = segment.base + EndpointLayout.tableOffset + index * EndpointLayout.entrySize
        let utf8 = Array(sender.utf8)
        entry.storeBytes(of: UInt32(utf8.count), toByteOffset: EndpointLayout.entryLengthOffset, as: UInt32.self)
        utf8.withUnsafeBytes { bytes in
            (entry + EndpointLayout.entryNameOffset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
        // Release: a reader that sees the entry published (acquire) sees its length and name.
        entry.atomicUInt32(at: EndpointLayout.entryStateOffset).pointee.store(EndpointLayout.entryPublished, ordering: .releasing)
    }
}
