import Synchronization

/// Receiving: the public receive calls and the one engine under them.
extension Mailbox {
    /// Takes the oldest message, waiting at most `timeout` for one (forever if nil).
    ///
    /// - Throws: `timedOut`, `closed`, `roleTaken`, `deleted` (the mailbox was deleted and is
    ///   empty), `corrupted`.
    public func receive(timeout: Duration? = nil) throws(MailboxError) -> Message {
        try receiveCopy(deadline: Self.deadline(timeout))!
    }

    /// Takes the oldest message if there is one; returns nil at once when the mailbox is empty.
    public func tryReceive() throws(MailboxError) -> Message? {
        try receiveCopy(deadline: 0)
    }

    /// Zero-copy receive: hands the oldest message's bytes (valid only inside `body`) and its
    /// sender's identity to `body`, then frees its space, also when `body` throws. Waits at most
    /// `timeout` for a message (forever if nil).
    @inlinable
    public func receive<R>(timeout: Duration? = nil, _ body: (RawSpan, _ sender: ProcessIdentity) throws -> R) throws -> R {
        try receive(timeout: timeout) { bytes, sender, _ in try body(bytes, sender) }
    }

    /// Zero-copy receive that also says whether the message is a *redelivery*: a receiver that
    /// took it before died while reading it, so it may have been handled in part (see
    /// `Message.isRedelivered`).
    @inlinable
    public func receive<R>(timeout: Duration? = nil, _ body: (RawSpan, _ sender: ProcessIdentity, _ redelivered: Bool) throws -> R) throws -> R {
        var result: R?
        _ = try receiveOne(deadline: Self.deadline(timeout), release: true) { result = try body(RawSpan(_unsafeBytes: $0), $1, $2) }
        // receiveOne returns only after `body` returned (a blocking call never reports empty).
        return result!
    }

    /// Zero-copy receive if a message is waiting; returns nil at once when the mailbox is empty.
    @inlinable
    public func tryReceive<R>(_ body: (RawSpan, _ sender: ProcessIdentity) throws -> R) throws -> R? {
        try tryReceive { bytes, sender, _ in try body(bytes, sender) }
    }

    /// `tryReceive(_:)`, also saying whether the message is a redelivery.
    @inlinable
    public func tryReceive<R>(_ body: (RawSpan, _ sender: ProcessIdentity, _ redelivered: Bool) throws -> R) throws -> R? {
        var result: R?
        guard try receiveOne(deadline: 0, release: true, { result = try body(RawSpan(_unsafeBytes: $0), $1, $2) }) else { return nil }
        return result
    }

    /// Takes every waiting message, up to `limit`, handing each (bytes valid only inside) with its
    /// sender's identity to `body`, and frees their space together: one release store and at most one
    /// wake-up for the batch. Waits at most `timeout` (forever if nil) for the first message, then
    /// takes only what is already there. Returns how many messages it took (at least 1).
    ///
    /// - Throws: what `body` throws (the message it was given is consumed), `timedOut`, or
    ///   another `MailboxError`.
    public func receiveBatch(limit: Int = .max, timeout: Duration? = nil, _ body: (RawSpan, _ sender: ProcessIdentity) throws -> Void) throws -> Int {
        try receiveMany(limit: limit, deadline: Self.deadline(timeout)) { bytes, sender, _ in try body(RawSpan(_unsafeBytes: bytes), sender) }
    }

    /// `receiveBatch(limit:timeout:_:)`, also saying for each message whether it is a redelivery.
    public func receiveBatch(limit: Int = .max, timeout: Duration? = nil,
                             _ body: (RawSpan, _ sender: ProcessIdentity, _ redelivered: Bool) throws -> Void) throws -> Int {
        try receiveMany(limit: limit, deadline: Self.deadline(timeout)) { try body(RawSpan(_unsafeBytes: $0), $1, $2) }
    }

    /// Like `receiveBatch`, without waiting: returns 0 at once when the mailbox is empty.
    public func tryReceiveBatch(limit: Int = .max, _ body: (RawSpan, _ sender: ProcessIdentity) throws -> Void) throws -> Int {
        try receiveMany(limit: limit, deadline: 0) { bytes, sender, _ in try body(RawSpan(_unsafeBytes: bytes), sender) }
    }

    /// `tryReceiveBatch(limit:_:)`, also saying for each message whether it is a redelivery.
    public func tryReceiveBatch(limit: Int = .max, _ body: (RawSpan, _ sender: ProcessIdentity, _ redelivered: Bool) throws -> Void) throws -> Int {
        try receiveMany(limit: limit, deadline: 0) { try body(RawSpan(_unsafeBytes: $0), $1, $2) }
    }

    // MARK: Engine

    private func receiveCopy(deadline: UInt64) throws(MailboxError) -> Message? {
        var message: Message?
        let taken = try typed {
            try receiveOne(deadline: deadline, release: true) { bytes, sender, redelivered in
                message = Message(bytes: [UInt8](bytes), sender: sender, isRedelivered: redelivered)
            }
        }
        return taken ? message : nil
    }

    /// Takes one message and hands it to `body`. Returns false only for a non-blocking call
    /// (deadline 0) that found the mailbox empty. With `release: false` the space of the message
    /// taken is released by `finishReceives()`. `phase` is the non-blocking call's (an async
    /// receive about to park looks for orphaned messages as a blocking one about to sleep does).
    @usableFromInline
    func receiveOne(deadline: UInt64, phase: Waiter.Phase = .spinning, release: Bool,
                    _ body: (UnsafeRawBufferPointer, ProcessIdentity, Bool) throws -> Void) throws -> Bool {
        try checkUsable()
        guard !state.pointee.receiving else { throw MailboxError.receiveInProgress }
        state.pointee.receiving = true
        defer { state.pointee.receiving = false }
        // Relaxed: a stale owner value only delays noticing a transfer by one call.
        if ownership != .none, ownerWord.word.pointee.load(ordering: .relaxed) != confirmedOwner {
            try checkReceiveRight()
        }
        if roles & LeaseTable.roleReceived == 0 { try takeRole(LeaseTable.roleReceived, deadline: deadline) }
        // The common case first, in line: a bounded ring (not under round robin) with a message
        // waiting. Each read notes when it hands `body` a message and says whether it took a
        // receipt message, nil if it found none. What it found instead stands for the first
        // attempt's read below (an empty poll reads the ring once); that attempt sets it back
        // to nil, so it is nil whenever no receive is between the two.
        if let ring = oneToOne {
            if try readInLine(release: release, { took in
                try ring.tryRead(release: release) { bytes, sender, redelivered in
                    took = true
                    try body(bytes, sender, redelivered)
                } ? false : nil
            }) { return true }
            state.pointee.inLineFound = .empty
        } else if turnEntry == nil, case .shared(let ring) = ring {
            if try readInLine(release: release, { took in
                let result = try ring.tryRead(lease: leaseReference, identity: packedMe, intent: intentWord) { bytes, sender, redelivered in
                    took = true
                    try body(bytes, sender, redelivered)
                }
                guard case .message(let receipt) = result else {
                    state.pointee.inLineFound = result
                    return nil
                }
                return receipt
            }) { return true }
        }
        // A throwing body still consumed a message, so the space event must fire either way.
        state.pointee.took = false
        state.pointee.tookReceipt = false
        defer {
            if state.pointee.took {
                if release {
                    notifySenders(all: state.pointee.tookReceipt)
                } else {
                    hasUnnotifiedReceives = true
                    if state.pointee.tookReceipt { hasUnnotifiedReceipts = true }
                }
                // Round robin: a message taken (even if `body` threw) ends this receiver's turn.
                if let turnEntry { finishTurn(turnEntry) }
            }
        }
        // `take` reaches the handle's state through this copy of the pointer, so it captures no
        // reference: when it captured `self`, every poll of a shared ring retained and released
        // the mailbox (two atomic operations per poll, 15 % of a spinning receiver's samples).
        let handle = state
        func take(_ bytes: UnsafeRawBufferPointer, _ sender: ProcessIdentity, _ redelivered: Bool) throws {
            handle.pointee.took = true
            try body(bytes, sender, redelivered)
        }
        func attempt(_ phase: Waiter.Phase) throws -> Bool {
            let took: Bool
            let found = handle.pointee.inLineFound
            handle.pointee.inLineFound = nil
            if let ring = oneToOne {
                took = try found == nil && ring.tryRead(release: release, take)
                if !took { try checkNotGone() }
                return took
            }
            switch ring {
            case .oneToOne:
                preconditionFailure("handled above")
            case .shared(let ring):
                if let turnEntry, !hasTurn(turnEntry) { return false }
                took = try read(ring, lease: leaseReference, intent: intentWord, phase: phase, found: found, take)
            case .chained(let chain):
                if let turnEntry, !hasTurn(turnEntry) { return false }
                took = try readChain(chain, phase: phase, take)
            }
            if !took { try checkNotGone() }
            return took
        }
        if deadline == 0 { startOneShotAttempt() }
        if try attempt(phase) { return true }
        if deadline == 0 { return false }
        // A zero-capacity mailbox's non-blocking senders hand their message to a receiver that
        // waits: say that we do.
        if isRendezvous, let lease { messageEvent.enterWaiting(as: lease.index) }
        defer { if isRendezvous, let lease { messageEvent.leaveWaiting(as: lease.index) } }
        try wait(on: messageEvent, deadline: deadline, attempt)
        return true
    }

    /// One read of a shared ring (or what `found` says a read just found); when it is empty, and
    /// from time to time, also looks for a message whose receiver died while reading it.
    @inline(__always)
    private func read(_ ring: SharedRing, lease: UInt32, intent: UnsafeMutablePointer<Atomic<UInt64>>, phase: Waiter.Phase,
                      found: SharedRing.ReadResult? = nil, _ take: SharedRing.Body) throws -> Bool {
        let result = try found ?? ring.tryRead(lease: lease, identity: packedMe, intent: intent, take)
        if took(result, in: ring, phase: phase) { return true }
        guard isOrphanSearchDue(phase) else { return false }
        return try tookOrphan(adoptOrphan(in: ring, lease: lease, intent: intent, take))
    }

    /// `read` for an unbounded mailbox: its chain, and the generations passed but not yet given back.
    @inline(__always)
    private func readChain(_ chain: SegmentChain, phase: Waiter.Phase, _ take: SharedRing.Body) throws -> Bool {
        if try took(chain.tryRead(identity: packedMe, take), in: chain.reader.ring, phase: phase) { return true }
        guard isOrphanSearchDue(phase) else { return false }
        chain.giveBack()
        for link in chain.readableLinks {
            let adopted = try adoptOrphan(in: link.ring, segment: link.generation, lease: link.lease.reference, intent: link.intent, take)
            if tookOrphan(adopted) { return true }
        }
        return false
    }

    /// Whether a read took a message (noting whether it was a receipt); a claim that holds the
    /// ring up is tracked for repair.
    @inline(__always)
    private func took(_ result: SharedRing.ReadResult, in ring: SharedRing, phase: Waiter.Phase) -> Bool {
        switch result {
        case .message(let receipt):
            state.pointee.tookReceipt = receipt
            return true
        case .empty:
            return false
        case .pending(let word, let position):
            noteStall(word: word, position: position, in: ring, phase: phase)
            return false
        }
    }

    /// Whether an orphan search adopted a message (nil: none), noting whether it was a receipt.
    private func tookOrphan(_ adopted: Bool?) -> Bool {
        guard let receipt = adopted else { return false }
        state.pointee.tookReceipt = receipt
        return true
    }

    /// Takes up to `limit` messages, waiting (until `deadline`) only for the first, and releases
    /// their space together.
    func receiveMany(limit: Int, deadline: UInt64, phase: Waiter.Phase = .spinning,
                     _ body: (UnsafeRawBufferPointer, ProcessIdentity, Bool) throws -> Void) throws -> Int {
        guard limit > 0 else { return 0 }
        defer { finishReceives() }
        guard try receiveOne(deadline: deadline, phase: phase, release: false, body) else { return 0 }
        // Round robin: one message per turn.
        if turnEntry != nil { return 1 }
        state.pointee.receiving = true
        defer { state.pointee.receiving = false }
        // The first message passed every check; take the rest of the batch straight from the
        // ring, without the per-call checks and waiting machinery.
        var count = 1
        if let ring = oneToOne {
            while count < limit, try ring.tryRead(release: false, body) { count += 1 }
            return count
        }
        switch ring {
        case .oneToOne:
            preconditionFailure("handled above")
        case .shared(let ring):
            while count < limit, case .message(let receipt) = try ring.tryRead(lease: leaseReference, identity: packedMe, intent: intentWord, body) {
                count += 1
                if receipt { hasUnnotifiedReceipts = true }
            }
        case .chained(let chain):
            while count < limit, case .message(let receipt) = try chain.tryRead(identity: packedMe, body) {
                count += 1
                if receipt { hasUnnotifiedReceipts = true }
            }
        }
        return count
    }

    /// `receiveOne`'s in-line read: `read` hands the caller's body at most one message (setting
    /// `took` first) and says whether it took one, and whether that was a receipt. Senders asleep
    /// for room are woken now, or (`release: false`) by `finishReceives()`; every one of them
    /// after a receipt, since its synchronous sender sleeps among them. A throwing body still
    /// consumed its message.
    @inline(__always)
    private func readInLine(release: Bool, _ read: (_ took: inout Bool) throws -> Bool?) throws -> Bool {
        var took = false
        let receipt: Bool?
        do {
            receipt = try read(&took)
        } catch {
            if took { finishInLineRead(release: release, receipt: false) }
            throw error
        }
        guard let receipt else { return false }
        finishInLineRead(release: release, receipt: receipt)
        return true
    }

    @inline(__always)
    private func finishInLineRead(release: Bool, receipt: Bool) {
        if release {
            notifySenders(all: receipt)
        } else {
            hasUnnotifiedReceives = true
            if receipt { hasUnnotifiedReceipts = true }
        }
    }

    /// Releases the space of messages taken with `release: false` and wakes senders that sleep.
    func finishReceives() {
        if let ring = oneToOne, ring.hasUnreleasedReads { ring.releaseReads() }
        guard hasUnnotifiedReceives else { return }
        hasUnnotifiedReceives = false
        notifySenders(all: hasUnnotifiedReceipts)
        hasUnnotifiedReceipts = false
    }

    /// Wakes a sender asleep on the space event; every one after a receipt message was taken,
    /// since its synchronous sender sleeps there too, among senders waiting for room.
    @inline(__always)
    func notifySenders(all: Bool) {
        if let woken = spaceEvent.notify(all: all), woken == 0 {
            withdrawDeadSleepers(of: spaceEvent)
        }
    }
}
