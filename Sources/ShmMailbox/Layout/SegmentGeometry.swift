import Synchronization

/// The sizes that shape a mailbox segment, computed at creation and re-validated at every open.
struct SegmentGeometry: Equatable {
    let kind: MailboxOptions.RingKind
    let ownership: MailboxOptions.Ownership
    let receiverPolicy: MailboxOptions.ReceiverPolicy
    let buffering: Buffering
    /// Slots in the ring (1 for a zero-capacity mailbox; per segment for an unbounded one).
    let capacity: Int
    let maxMessageSize: Int
    let dataOffset: Int
    let dataSize: Int
    /// Shared ring: bytes per slot; one-to-one ring: 0.
    let slotStride: Int
    var segmentSize: Int { dataOffset + dataSize }

    /// How a segment buffers (the `buffering` header field).
    enum Buffering: UInt32, Equatable {
        /// A bounded ring.
        case bounded = 0
        /// Zero capacity: one slot, and every send waits until a receiver has taken its message.
        case zero = 1
        /// The first segment of an unbounded mailbox (the one named after it).
        case unbounded = 2
        /// A further segment of an unbounded mailbox (see `SegmentChain`).
        case chained = 3
    }

    /// The geometry for new mailbox options, or `invalidOptions`.
    init(kind: MailboxOptions.RingKind, capacity: MailboxOptions.Capacity, maxMessageSize: Int,
         ownership: MailboxOptions.Ownership = .none,
         receiverPolicy: MailboxOptions.ReceiverPolicy? = nil) throws(MailboxError) {
        let buffering: Buffering
        switch capacity.kind {
        case .zero: buffering = .zero
        case .bounded: buffering = .bounded
        case .unbounded: buffering = .unbounded
        }
        try self.init(kind: kind, buffering: buffering, capacity: capacity.messages, maxMessageSize: maxMessageSize,
                      ownership: ownership, receiverPolicy: receiverPolicy)
    }

    /// The geometry of a segment with `buffering`, or `invalidOptions`.
    init(kind: MailboxOptions.RingKind, buffering: Buffering, capacity: Int, maxMessageSize: Int,
         ownership: MailboxOptions.Ownership, receiverPolicy: MailboxOptions.ReceiverPolicy?) throws(MailboxError) {
        let policy = receiverPolicy ?? (kind == .oneToOne ? .pair : .competing)
        guard kind == .shared || policy == .pair else {
            throw .invalidOptions("a one-to-one mailbox has one sender and one receiver (receiver policy pair); use kind shared for \(policy.rawValue)")
        }
        if buffering == .zero {
            guard kind == .shared else {
                throw .invalidOptions("a zero-capacity mailbox needs kind shared (a one-to-one ring cannot take back a message nobody received)")
            }
        } else {
            guard (1...SegmentLayout.capacityLimit).contains(capacity) else {
                throw .invalidOptions("capacity must be 1 to \(SegmentLayout.capacityLimit) messages (or zero), not \(capacity)")
            }
        }
        guard kind == .shared || buffering == .bounded else {
            throw .invalidOptions("an unbounded mailbox needs kind shared (its many segments are chained through the shared ring)")
        }
        guard (1...SegmentLayout.maxMessageSizeLimit).contains(maxMessageSize) else {
            throw .invalidOptions("maxMessageSize must be 1...\(SegmentLayout.maxMessageSizeLimit) bytes, not \(maxMessageSize)")
        }
        self.receiverPolicy = policy
        self.buffering = buffering
        self.kind = kind
        self.ownership = ownership
        // A zero-capacity mailbox has one slot, held only while its sender waits for a receiver.
        let capacity = buffering == .zero ? 1 : capacity
        self.capacity = capacity
        self.maxMessageSize = maxMessageSize
        self.dataOffset = SegmentLayout.dataOffset
        switch kind {
        case .oneToOne:
            guard let size = OneToOneRing.dataSize(capacity: capacity, maxMessageSize: maxMessageSize) else {
                throw .invalidOptions("capacity \(capacity) × maxMessageSize \(maxMessageSize) is too large")
            }
            slotStride = 0
            dataSize = size
        case .shared:
            slotStride = SharedRing.slotStride(maxMessageSize: maxMessageSize)
            let (size, overflow) = capacity.multipliedReportingOverflow(by: slotStride)
            guard !overflow, size <= 1 << 46 else {
                throw .invalidOptions("capacity \(capacity) × maxMessageSize \(maxMessageSize) is too large")
            }
            dataSize = size
        }
    }

    /// Zero capacity: every send waits until a receiver has taken its message.
    var isRendezvous: Bool { buffering == .zero }
    /// The segment belongs to an unbounded mailbox (first or chained): its ring can be sealed.
    var isChainable: Bool { buffering == .unbounded || buffering == .chained }

    /// The capacity the user asked for.
    var requestedCapacity: MailboxOptions.Capacity {
        switch buffering {
        case .zero: return .zero
        case .bounded: return .bounded(capacity)
        case .unbounded, .chained: return .unbounded(segmentCapacity: capacity)
        }
    }

    /// Writes the geometry and identity fields of a new segment (everything but `magic`).
    func write(to header: UnsafeMutableRawPointer, mode: UInt32, creator: ProcessIdentity, createdAt: UInt64, nonce: UInt64) {
        header.storeBytes(of: SegmentLayout.version, toByteOffset: SegmentLayout.versionOffset, as: UInt32.self)
        let kindCode = kind == .oneToOne ? SegmentLayout.ringKindOneToOne : SegmentLayout.ringKindShared
        header.storeBytes(of: kindCode, toByteOffset: SegmentLayout.ringKindOffset, as: UInt32.self)
        header.storeBytes(of: UInt64(segmentSize), toByteOffset: SegmentLayout.segmentSizeOffset, as: UInt64.self)
        header.storeBytes(of: UInt64(dataOffset), toByteOffset: SegmentLayout.dataOffsetOffset, as: UInt64.self)
        header.storeBytes(of: UInt64(dataSize), toByteOffset: SegmentLayout.dataSizeOffset, as: UInt64.self)
        header.storeBytes(of: UInt64(capacity), toByteOffset: SegmentLayout.capacityOffset, as: UInt64.self)
        header.storeBytes(of: UInt64(maxMessageSize), toByteOffset: SegmentLayout.maxMessageSizeOffset, as: UInt64.self)
        header.storeBytes(of: UInt64(slotStride), toByteOffset: SegmentLayout.slotStrideOffset, as: UInt64.self)
        header.storeBytes(of: mode, toByteOffset: SegmentLayout.modeOffset, as: UInt32.self)
        header.storeBytes(of: UInt32(bitPattern: creator.pid), toByteOffset: SegmentLayout.creatorPidOffset, as: UInt32.self)
        header.storeBytes(of: creator.startTime, toByteOffset: SegmentLayout.creatorStartTimeOffset, as: UInt64.self)
        header.storeBytes(of: createdAt, toByteOffset: SegmentLayout.createdAtOffset, as: UInt64.self)
        header.storeBytes(of: Self.code(of: ownership), toByteOffset: SegmentLayout.ownershipOffset, as: UInt32.self)
        header.storeBytes(of: Self.code(of: receiverPolicy), toByteOffset: SegmentLayout.receiverPolicyOffset, as: UInt32.self)
        header.storeBytes(of: buffering.rawValue, toByteOffset: SegmentLayout.bufferingOffset, as: UInt32.self)
        header.storeBytes(of: nonce, toByteOffset: SegmentLayout.nonceOffset, as: UInt64.self)
        header.storeBytes(of: ProcessIdentity.pidNamespace(), toByteOffset: SegmentLayout.pidNamespaceOffset, as: UInt64.self)
    }

    /// A random nonce for a new segment (never 0).
    static func newNonce() -> UInt64 {
        UInt64.random(in: 1...UInt64.max)
    }

    static func code(of policy: MailboxOptions.ReceiverPolicy) -> UInt32 {
        switch policy {
        case .pair: return 1
        case .exclusive: return 2
        case .competing: return 3
        case .roundRobin: return 4
        }
    }

    static func code(of ownership: MailboxOptions.Ownership) -> UInt32 {
        switch ownership {
        case .none: return 0
        case .system: return 1
        case .process: return 2
        }
    }

    /// Publishes a fully initialised segment: openers that see the magic see everything before it.
    static func publish(_ header: UnsafeMutableRawPointer) {
        // Release: pairs with the acquire load in `read`, so an opener that sees the magic also
        // sees every header field and slot word written before it.
        header.atomicUInt64(at: SegmentLayout.magicOffset).pointee.store(SegmentLayout.magic, ordering: .releasing)
    }

    /// Reads and validates the header of an opened segment: magic, version, ring kind, capacity
    /// and maximum size in range, every derived size exactly as this version computes it, and the
    /// whole segment inside the mapping, so that bounds derived from the geometry are safe.
    /// (Informational fields such as the mode and the creator are not checked.)
    static func read(from segment: SharedSegment, waitForMagic: Duration) throws(MailboxError) -> SegmentGeometry {
        let header = segment.base
        let magicWord = header.atomicUInt64(at: SegmentLayout.magicOffset)
        let deadline = MonotonicClock.deadline(after: waitForMagic)
        // Acquire: pairs with `publish`; a creator may still be initialising, so wait briefly.
        var magic = magicWord.pointee.load(ordering: .acquiring)
        while magic == 0 && MonotonicClock.now() < deadline {
            usleepShort()
            magic = magicWord.pointee.load(ordering: .acquiring)
        }
        guard magic != 0 else {
            throw .corrupted(reason: "the segment was never initialised (its creator died while creating it?)")
        }
        guard magic == SegmentLayout.magic else { throw .notAMailbox(segment.name.name) }
        let version = header.load(fromByteOffset: SegmentLayout.versionOffset, as: UInt32.self)
        guard version == SegmentLayout.version else {
            throw .incompatibleVersion(found: version, supported: SegmentLayout.version)
        }
        guard segment.size >= SegmentLayout.headerSize else {
            throw .corrupted(reason: "the shared-memory object has \(segment.size) bytes, fewer than the \(SegmentLayout.headerSize) of a mailbox header")
        }
        func field(_ offset: Int) -> UInt64 { header.load(fromByteOffset: offset, as: UInt64.self) }
        let kindCode = header.load(fromByteOffset: SegmentLayout.ringKindOffset, as: UInt32.self)
        let kind: MailboxOptions.RingKind
        switch kindCode {
        case SegmentLayout.ringKindOneToOne: kind = .oneToOne
        case SegmentLayout.ringKindShared: kind = .shared
        default: throw .corrupted(reason: "unknown ring kind \(kindCode)")
        }
        let ownershipCode = header.load(fromByteOffset: SegmentLayout.ownershipOffset, as: UInt32.self)
        guard let ownership = MailboxOptions.Ownership.allCases.first(where: { code(of: $0) == ownershipCode }) else {
            throw .corrupted(reason: "unknown ownership \(ownershipCode)")
        }
        let policyCode = header.load(fromByteOffset: SegmentLayout.receiverPolicyOffset, as: UInt32.self)
        guard let policy = MailboxOptions.ReceiverPolicy.allCases.first(where: { code(of: $0) == policyCode }) else {
            throw .corrupted(reason: "unknown receiver policy \(policyCode)")
        }
        let capacity = field(SegmentLayout.capacityOffset)
        let maxMessageSize = field(SegmentLayout.maxMessageSizeOffset)
        guard capacity >= 1, capacity <= UInt64(SegmentLayout.capacityLimit),
              maxMessageSize >= 1, maxMessageSize <= UInt64(SegmentLayout.maxMessageSizeLimit) else {
            throw .corrupted(reason: "capacity \(capacity) or maxMessageSize \(maxMessageSize) out of range")
        }
        let expected: SegmentGeometry
        do {
            let code = header.load(fromByteOffset: SegmentLayout.bufferingOffset, as: UInt32.self)
            guard let buffering = Buffering(rawValue: code), buffering != .zero || capacity == 1 else {
                throw MailboxError.corrupted(reason: "buffering \(code) with capacity \(capacity)")
            }
            expected = try SegmentGeometry(kind: kind, buffering: buffering, capacity: Int(capacity), maxMessageSize: Int(maxMessageSize),
                                           ownership: ownership, receiverPolicy: policy)
        } catch {
            throw .corrupted(reason: "impossible geometry (capacity \(capacity), maxMessageSize \(maxMessageSize))")
        }
        // The derived fields must be exactly what this version computes for these options.
        guard field(SegmentLayout.dataOffsetOffset) == UInt64(expected.dataOffset),
              field(SegmentLayout.dataSizeOffset) == UInt64(expected.dataSize),
              field(SegmentLayout.slotStrideOffset) == UInt64(expected.slotStride),
              field(SegmentLayout.segmentSizeOffset) == UInt64(expected.segmentSize) else {
            throw .corrupted(reason: "header geometry fields disagree with capacity \(capacity) and maxMessageSize \(maxMessageSize)")
        }
        guard expected.segmentSize <= segment.size else {
            throw .corrupted(reason: "segment is truncated: \(segment.size) bytes, header says \(expected.segmentSize)")
        }
        let namespace = field(SegmentLayout.pidNamespaceOffset)
        let ours = ProcessIdentity.pidNamespace()
        guard namespace == 0 || ours == 0 || namespace == ours else {
            throw .foreignPidNamespace(segment.name.name)
        }
        return expected
    }

    private static func usleepShort() {
        var request = timespec(tv_sec: 0, tv_nsec: 200_000)
        _ = nanosleep(&request, nil)
    }
}

#if canImport(Glibc)
import Glibc
#endif
