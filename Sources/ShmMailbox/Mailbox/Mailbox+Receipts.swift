/// Synchronous sends: waiting until a receiver has taken the message, and the receipt.
extension Mailbox {
    /// How long a non-blocking synchronous send to a zero-capacity mailbox waits for a receiver
    /// that is already inside a blocking `receive` to take its message (the rendezvous where the
    /// receiver waits first). A receiver that is awake takes it within microseconds; one asleep
    /// within a wake-up.
    static let handoverGraceNanos: UInt64 = 50_000_000

    /// Waits until the receipt message this handle wrote at `position` of the shared `ring` (with
    /// lease reference `lease`) has been taken and read, and returns who took it. A message
    /// nobody took by `deadline` is taken back (`timedOut`, nothing sent); one a receiver is
    /// still reading is left with it (`deliveryUnconfirmed`).
    @inline(never)
    func awaitReceipt(at position: UInt64, in ring: SharedRing, lease: UInt32, deadline: UInt64) throws -> SendResult {
        let nonBlocking = deadline == 0
        var deadline = max(deadline, 1)
        if isRendezvous, deadline < MonotonicClock.now().addingSaturating(Self.handoverGraceNanos),
           !messageEvent.waitingEntries().isEmpty {
            // A receiver waits in a blocking receive: give it the time to take the message.
            deadline = MonotonicClock.now().addingSaturating(Self.handoverGraceNanos)
        }
        var watch = ReceiptWatch(position: position, ring: ring, lease: lease)
        do {
            try wait(on: spaceEvent, deadline: deadline) { _ in try watch.check(self) }
        } catch MailboxError.timedOut {
            guard let receiver = try watch.giveUp(self) else {
                if nonBlocking { return .full }
                throw MailboxError.timedOut
            }
            return .delivered(receiver)
        }
        return .delivered(watch.receiver)
    }

    /// `awaitReceipt` for an async send: a cancelled wait takes the message back if nobody has
    /// taken it yet (`CancellationError`: nothing sent), and otherwise behaves as a timeout.
    nonisolated(nonsending)
    func awaitReceiptAsync(at position: UInt64, in ring: SharedRing, lease: UInt32, deadline: UInt64) async throws -> SendResult {
        var watch = ReceiptWatch(position: position, ring: ring, lease: lease)
        do {
            try await waitAsync(on: spaceEvent, deadline: max(deadline, 1)) { _ in try watch.check(self) }
        } catch let error where error is CancellationError || error as? MailboxError == .timedOut {
            guard let receiver = try watch.giveUp(self) else { throw error }
            return .delivered(receiver)
        }
        return .delivered(watch.receiver)
    }

    /// The state of a wait for a receipt: where the message is and who took it. One watch per
    /// synchronous send, used by its blocking and its async form alike.
    struct ReceiptWatch {
        let position: UInt64
        let ring: SharedRing
        let lease: UInt32
        /// The receiver's packed identity, once delivered.
        private(set) var receiverWord: UInt64 = 0
        private var stuckSince: (word: UInt64, since: UInt64)?

        init(position: UInt64, ring: SharedRing, lease: UInt32) {
            self.position = position
            self.ring = ring
            self.lease = lease
        }

        var receiver: ProcessIdentity { ProcessIdentity(packed: receiverWord) }

        /// Whether the message has been delivered (its receipt is in); throws `receiverDied`
        /// when the receiver that took it died while reading it.
        mutating func check(_ box: Mailbox) throws -> Bool {
            switch ring.delivery(at: position) {
            case .waiting:
                return false
            case .taking(let word):
                // A receiver that dies while reading would strand us: after a while, check it,
                // and withdraw the message unless someone adopted it meanwhile.
                let now = MonotonicClock.now()
                guard let seen = stuckSince, seen.word == word else {
                    stuckSince = (word, now)
                    return false
                }
                if now &- seen.since >= Mailbox.stallCheckNanos, ring.holderIsDead(word, at: position, liveness: box.liveness) {
                    let pid = ProcessIdentity(packed: box.leases.holder(of: SharedRing.reference(of: word)) ?? 0).pid
                    if ring.retract(taken: word, at: position) {
                        box.notifySenders(all: false)
                        throw MailboxError.receiverDied(pid: pid)
                    }
                }
                return false
            case .delivered(let identity):
                receiverWord = identity
                box.notifySenders(all: false)
                return true
            case .lost:
                throw MailboxError.receiverDied(pid: 0)
            }
        }

        /// Stops waiting: takes the message back if nobody has taken it (nil: nothing was sent);
        /// returns the receiver if it was delivered meanwhile; otherwise leaves it with the
        /// receiver that has it and throws `deliveryUnconfirmed`.
        mutating func giveUp(_ box: Mailbox) throws -> ProcessIdentity? {
            if ring.retract(at: position, lease: lease) {
                box.notifySenders(all: false)
                return nil
            }
            // A receiver has it. If it has finished, collect the receipt; else stop waiting.
            if try check(box) { return receiver }
            if ring.abandon(at: position) {
                let word = stuckSince?.word ?? 0
                throw MailboxError.deliveryUnconfirmed(pid: ProcessIdentity(packed: box.leases.holder(of: SharedRing.reference(of: word)) ?? 0).pid)
            }
            // Delivered just now.
            guard try check(box) else { throw MailboxError.deliveryUnconfirmed(pid: 0) }
            return receiver
        }
    }

    /// One-to-one: waits until the receiver has released every record up to `end` (the end of
    /// the message just written) and returns who took it. A message still queued at `deadline`
    /// stays queued (`deliveryUnconfirmed`): a published record cannot be withdrawn.
    @inline(never)
    func awaitConsumption(upTo end: UInt64, deadline: UInt64) throws -> SendResult {
        guard case .oneToOne(let ring) = ring else { throw MailboxError.corrupted(reason: "no ring to await delivery in") }
        do {
            try wait(on: spaceEvent, deadline: max(deadline, 1)) { _ in ring.hasBeenReceived(upTo: end) }
        } catch MailboxError.timedOut {
            throw MailboxError.deliveryUnconfirmed(pid: 0)
        }
        return lastReceiver()
    }

    /// `awaitConsumption` for an async send. Cancelled, the message stays queued and will be
    /// received (`deliveryUnconfirmed`, as after a timeout): a published record cannot be withdrawn.
    nonisolated(nonsending)
    func awaitConsumptionAsync(upTo end: UInt64, deadline: UInt64) async throws -> SendResult {
        guard case .oneToOne(let ring) = ring else { throw MailboxError.corrupted(reason: "no ring to await delivery in") }
        do {
            try await waitAsync(on: spaceEvent, deadline: max(deadline, 1)) { _ in ring.hasBeenReceived(upTo: end) }
        } catch let error where error is CancellationError || error as? MailboxError == .timedOut {
            throw MailboxError.deliveryUnconfirmed(pid: 0)
        }
        return lastReceiver()
    }

    private func lastReceiver() -> SendResult {
        // Acquire: names the receiver that took the role before consuming the message (the
        // role word itself is cleared when that receiver closes).
        let receiver = segment.base.atomicUInt64(at: SegmentLayout.lastReceiverOffset).pointee.load(ordering: .acquiring)
        return .delivered(ProcessIdentity(packed: receiver))
    }
}
