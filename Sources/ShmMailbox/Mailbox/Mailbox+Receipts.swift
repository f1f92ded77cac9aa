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
        var receiver: UInt64 = 0
        var stuckSince: (word: UInt64, since: UInt64)?
        func check(_ phase: Waiter.Phase) throws -> Bool {
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
                if now &- seen.since >= Self.stallCheckNanos, ring.holderIsDead(word, at: position, liveness: liveness) {
                    let pid = ProcessIdentity(packed: leases.holder(of: SharedRing.reference(of: word)) ?? 0).pid
                    if ring.retract(taken: word, at: position) {
                        notifySenders(all: false)
                        throw MailboxError.receiverDied(pid: pid)
                    }
                }
                return false
            case .delivered(let identity):
                receiver = identity
                notifySenders(all: false)
                return true
            case .lost:
                throw MailboxError.receiverDied(pid: 0)
            }
        }
        do {
            try wait(on: spaceEvent, deadline: deadline, check)
        } catch MailboxError.timedOut {
            if ring.retract(at: position, lease: lease) {
                notifySenders(all: false)
                if nonBlocking { return .full }
                throw MailboxError.timedOut
            }
            // A receiver has it. If it has finished, collect the receipt; else stop waiting.
            if try check(.spinning) { return .delivered(ProcessIdentity(packed: receiver)) }
            if ring.abandon(at: position) {
                let word = stuckSince?.word ?? 0
                throw MailboxError.deliveryUnconfirmed(pid: ProcessIdentity(packed: leases.holder(of: SharedRing.reference(of: word)) ?? 0).pid)
            }
            // Delivered just now.
            guard try check(.spinning) else { throw MailboxError.deliveryUnconfirmed(pid: 0) }
        }
        return .delivered(ProcessIdentity(packed: receiver))
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
        // Acquire: names the receiver that took the role before consuming the message (the
        // role word itself is cleared when that receiver closes).
        let receiver = segment.base.atomicUInt64(at: SegmentLayout.lastReceiverOffset).pointee.load(ordering: .acquiring)
        return .delivered(ProcessIdentity(packed: receiver))
    }
}
