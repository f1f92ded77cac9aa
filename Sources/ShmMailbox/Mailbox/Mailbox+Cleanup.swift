#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Ending mailboxes and removing names: `delete`, the removal protocol every remover follows,
/// and `removeAbandoned` (`shmbox gc`).
extension Mailbox {
    /// Deletes the mailbox: marks it deleted, so that every handle's calls that find it empty
    /// (receive) and every send fail with `deleted` (also calls blocked in it, which are woken),
    /// and removes its name (`shm_unlink`) and those of an unbounded mailbox's further segments.
    /// Messages still in it can be received by handles that have it open until it is empty; the
    /// memory is freed when the last of them closes it. A segment that cannot be read as a
    /// mailbox (damaged, foreign) just has its name removed.
    ///
    /// - Throws: `invalidName`, `notFound`, `permissionDenied`, `system`.
    public static func delete(_ name: String) throws(MailboxError) {
        guard let box = try openForRemoval(name) else { return }
        // Release: whoever sees the flag sees everything before it.
        box.lifecycle.pointee.bitwiseOr(SegmentLayout.deletedFlag, ordering: .releasing)
        box.removeName()
        box.wakeEveryone()
        MailboxEvents.emit(MailboxEvent(mailbox: name, kind: .mailboxGone(.deleted)))
    }

    /// Opens mailbox `name` to remove it (any owner: removing needs no trust in what is sent).
    /// Nil if there is nothing left to do: its owner has gone (and opening it removed its name),
    /// or it could not be read as a mailbox (damaged, foreign), in which case its name was removed.
    private static func openForRemoval(_ name: String) throws(MailboxError) -> Mailbox? {
        let validName = try MailboxName(name)
        do {
            return try open(validName, waitStrategy: .block, trust: .anyUser)
        } catch .notFound {
            throw .notFound(name)
        } catch .ownerTerminated {
            return nil
        } catch {
            try SharedSegment.unlink(validName)
            return nil
        }
    }

    /// Removes the mailbox's name only (`shm_unlink`, and those of an unbounded mailbox's further
    /// segments), as `shm_unlink` and `mq_unlink` do: processes that have it open keep using it,
    /// and the memory is freed when the last of them closes it. For the "create, let the peers
    /// open, then unlink" pattern that leaves nothing behind however the processes end. To end
    /// a mailbox for everyone, use `delete`.
    ///
    /// - Throws: `invalidName`, `notFound`, `permissionDenied`, `system`.
    public static func unlink(_ name: String) throws(MailboxError) {
        try openForRemoval(name)?.removeName()
    }

    /// Removes the name of this handle's segment — and, for an unbounded mailbox, its further
    /// segments of this incarnation — if the name still refers to this segment. Every remover
    /// (a deleter, a process noticing a dead owner, the owner closing) first claims the segment's
    /// unlink lease word: only its holder removes, so two removers never race (one removing the
    /// name, someone creating a new mailbox under it, the other removing that). A claimer that
    /// died is replaced; a name that refers to another segment by now is left alone.
    ///
    /// Returns whether this call claimed the removal for the first time (so that only one
    /// process, once, reports the mailbox gone).
    @discardableResult
    func removeName() -> Bool {
        let first: Bool
        switch LeaseWord(at: SegmentLayout.unlinkClaimOffset, in: segment.base).claim(for: packedMe, liveness: liveness) {
        case .heldBy:
            return false  // a live process is removing it
        case .taken:
            first = true
        case .alreadyHeld:
            first = false
        }
        crashPoint(.unlinkAfterClaim)
        _ = segment.unlinkIfSame()
        if case .chained = ring { SegmentChain.unlinkSegments(of: name, nonce: nonce) }
        return first
    }

    /// Removes every process-owned mailbox whose owner has exited or died, further segments of
    /// unbounded mailboxes that are left over (of a mailbox that no longer exists, of an older
    /// incarnation of its name, or already given back), and segments whose builder was killed
    /// while building them under a temporary name, and returns their names (a further segment as
    /// `NAME#N.NONCE`, a temporary one as `NAME~PID.X`). Mailboxes that cannot be opened
    /// (damaged, not permitted) are left alone, and so are their further segments.
    public static func removeAbandoned() throws(MailboxError) -> [String] {
        try removeAbandoned(afterListing: {})
    }

    /// `removeAbandoned()`, running `afterListing` between the listing of the mailboxes and the
    /// sweep of the segments (tests: a mailbox created and grown in between must keep its
    /// segments).
    static func removeAbandoned(afterListing: () -> Void) throws(MailboxError) -> [String] {
        var removed: [String] = []
        // Mailboxes that stay, with their incarnation and the oldest generation not given back.
        var chains: [String: (nonce: UInt64, oldest: UInt64)] = [:]
        var unreadable = Set<String>()
        var refreshed = Set<String>()
        enum Found { case kept, terminated, gone, unreadable }
        /// Opens mailbox `name` and notes what it keeps: its incarnation and oldest generation
        /// (kept), or that it cannot be read (damaged, not permitted: left alone with its
        /// segments). Opening a process-owned mailbox whose owner died removes it (terminated).
        func inspect(_ name: String) -> Found {
            do {
                let box = try open(name, waitStrategy: .block, trust: .anyUser)
                // Acquire: generations below the hint were given back.
                let oldest = box.segment.base.atomicUInt64(at: SegmentLayout.readGenerationOffset).pointee.load(ordering: .acquiring)
                chains[name] = (box.nonce, oldest)
                return .kept
            } catch .ownerTerminated {
                return .terminated
            } catch .notFound {
                return .gone
            } catch {
                unreadable.insert(name)
                return .unreadable
            }
        }
        for name in try list() where inspect(name) == .terminated {
            removed.append(name)
        }
        afterListing()
        for object in try SharedSegment.objectNames() {
            let abandoned: Bool
            if let temporary = SharedSegment.temporary(object) {
                // Still being built (see `SharedSegment.createInitialized`): abandoned once the
                // builder named in the name has gone.
                abandoned = temporary.builder.map { !ProcessIdentity.isAlive(pid: $0) } ?? false
            } else if let chained = SegmentChain.parse(object[...]) {
                let mailbox = String(chained.mailbox)
                // A segment of a mailbox created (or deleted and created again) after the listing
                // must not pass for a gone incarnation's: look at the mailbox again, once.
                if MailboxName.isValid(mailbox), !unreadable.contains(mailbox), !refreshed.contains(mailbox),
                   chains[mailbox]?.nonce != chained.nonce {
                    refreshed.insert(mailbox)
                    chains[mailbox] = nil
                    if inspect(mailbox) == .terminated, !removed.contains(mailbox) { removed.append(mailbox) }
                }
                if unreadable.contains(mailbox) || !MailboxName.isValid(mailbox) {
                    abandoned = false
                } else if let chain = chains[mailbox], chain.nonce == chained.nonce {
                    abandoned = chained.generation < chain.oldest
                } else {
                    abandoned = true  // its mailbox, or this incarnation of it, is gone
                }
            } else {
                abandoned = false
            }
            if abandoned, (try? SharedSegment.unlink(MailboxName(derived: object))) != nil { removed.append(object) }
        }
        return removed
    }
}
