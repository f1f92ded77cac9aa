import Synchronization

/// A 64-bit word in shared memory that names the process holding something — a role, a receive
/// turn, ownership, a receive right, an endpoint name, a lease-table entry — by its packed
/// identity (pid and start time, see `ProcessIdentity.packed`); 0 means free.
///
/// This is the one way every such word changes hands: a claimant loads the word, judges the value
/// it found (free, its own, held by a live process, or held by a dead one), and replaces exactly
/// that value with a compare-and-swap. If the word changed in between, the claimant judges again;
/// it never swaps out a value it has not judged, so two claimants can never both win, and a live
/// holder is never displaced.
struct LeaseWord {
    let word: UnsafeMutablePointer<Atomic<UInt64>>

    /// Held for good by nobody: neither free nor dead, so nobody can claim it (a retired link's
    /// sender role, see `Endpoint`). Not a packed identity of any process.
    static let retired: UInt64 = .max

    init(_ word: UnsafeMutablePointer<Atomic<UInt64>>) {
        self.word = word
    }

    init(at offset: Int, in base: UnsafeMutableRawPointer) {
        word = base.atomicUInt64(at: offset)
    }

    /// What `claim` found.
    enum Claim: Equatable {
        /// The word now names the claimant; it held `previous` before (0, or a dead process).
        case taken(previous: UInt64)
        /// The word already named the claimant.
        case alreadyHeld
        /// A live process (or `retired`) holds it.
        case heldBy(UInt64)
    }

    /// The holder's packed identity, 0 when free.
    var holder: UInt64 {
        // Acquire: pairs with the claimant's CAS; what the holder set up before claiming is visible.
        word.pointee.load(ordering: .acquiring)
    }

    /// Makes the word name `claimant` if it is free or its holder is dead.
    func claim(for claimant: UInt64, liveness: some Liveness) -> Claim {
        while true {
            let current = holder
            if current == claimant { return .alreadyHeld }
            if current == Self.retired || (current != 0 && liveness.isAlive(current)) { return .heldBy(current) }
            if replace(current, with: claimant) { return .taken(previous: current) }
        }
    }

    /// Frees the word if `holder` still holds it. Returns whether it did.
    @discardableResult
    func release(_ holder: UInt64) -> Bool {
        replace(holder, with: 0)
    }

    /// Replaces exactly `expected` with `desired` (a transfer, a claim of a judged value, a
    /// release). Returns whether the word held `expected`.
    @discardableResult
    func replace(_ expected: UInt64, with desired: UInt64) -> Bool {
        // Acquire-release: acquire so a new holder sees what the previous one published; release
        // so whoever next sees `desired` sees what we did before.
        word.pointee.compareExchange(expected: expected, desired: desired, ordering: .acquiringAndReleasing).exchanged
    }
}

/// A fixed array of lease words (receive rights, round-robin receivers): each entry names one
/// process or is free.
struct LeaseArray {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(at offset: Int, count: Int, in header: UnsafeMutableRawPointer) {
        base = header + offset
        self.count = count
    }

    func entry(_ index: Int) -> LeaseWord {
        LeaseWord(base.atomicUInt64(at: index * 8))
    }

    /// The index of the entry that names `claimant`, or nil.
    func index(of claimant: UInt64) -> Int? {
        (0..<count).first { entry($0).holder == claimant }
    }

    /// The entry naming `claimant`: the one that already does, or a free or dead entry claimed
    /// for it (claiming exactly the value judged). Nil when every entry names a live process.
    func claim(for claimant: UInt64, liveness: some Liveness) -> Int? {
        while true {
            var candidate: (index: Int, judged: UInt64)?
            for index in 0..<count {
                let holder = entry(index).holder
                if holder == claimant { return index }
                if candidate == nil && holder != LeaseWord.retired && (holder == 0 || !liveness.isAlive(holder)) {
                    candidate = (index, holder)
                }
            }
            guard let candidate else { return nil }
            if entry(candidate.index).replace(candidate.judged, with: claimant) { return candidate.index }
            // Someone changed that entry after we judged it: look again.
        }
    }

    /// Frees the entry that names `holder`, if one does.
    func release(_ holder: UInt64) {
        if let index = index(of: holder) { entry(index).release(holder) }
    }
}
