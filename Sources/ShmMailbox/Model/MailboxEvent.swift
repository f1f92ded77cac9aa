/// Something rare that happened to a mailbox, reported to the observers registered with
/// `MailboxEvents.addObserver(_:)`: a repair after a process died, a role taken over, an
/// unbounded mailbox growing or giving memory back, a mailbox going away.
///
/// Events come from slow paths only (recovery, role claims, segment creation and removal,
/// deletion); sending and receiving a message never reports one. Each event is reported by the
/// process that acted, once: other processes using the same mailbox report nothing for it.
public struct MailboxEvent: Sendable, Equatable, CustomStringConvertible {
    /// How a slot held by a dead process was repaired.
    public enum SlotRepair: String, Sendable, Equatable {
        /// A sender died between claiming the slot and filling it: the slot was freed (nothing
        /// had been sent).
        case claimFreed
        /// A receiver died while reading the message: a sender stopped behind it made it the
        /// newest message again, marked redelivered.
        case messageRequeued
        /// A receiver died while reading the message: this receiver adopted it and received it,
        /// marked redelivered.
        case messageAdopted
        /// A synchronous sender died before collecting its receipt: the delivered slot was freed.
        case receiptFreed
    }

    /// Why a mailbox went away.
    public enum Ending: String, Sendable, Equatable {
        /// `Mailbox.delete` was called (by this process).
        case deleted
        /// The owner of a process-owned mailbox closed it (this process was the owner).
        case ownerClosed
        /// The owner of a process-owned mailbox died; this process noticed and removed the name.
        case ownerDied
    }

    /// What happened.
    @nonexhaustive
    public enum Kind: Sendable, Equatable {
        /// A shared-ring slot held by a dead process was repaired (at ring position `position`;
        /// in an unbounded mailbox, of one of its generations).
        case slotRepaired(SlotRepair, position: UInt64)
        /// This process took over a one-to-one role or an exclusive receive turn from a process
        /// that died holding it.
        case roleTakenOver(MailboxError.Role, previousHolder: ProcessIdentity)
        /// This process created generation `generation` of an unbounded mailbox (a new segment).
        case segmentGrown(generation: UInt64)
        /// This process gave back generations `generations` of an unbounded mailbox (their names
        /// were removed; the memory returns once every process has unmapped them).
        case segmentsGivenBack(generations: Range<UInt64>)
        /// The mailbox went away (its name was removed).
        case mailboxGone(Ending)
    }

    /// The mailbox's name.
    public let mailbox: String
    /// What happened.
    public let kind: Kind

    /// An event of `kind` in mailbox `mailbox`.
    public init(mailbox: String, kind: Kind) {
        self.mailbox = mailbox
        self.kind = kind
    }

    /// A short name for the kind of event (`slot-repaired`, `role-taken-over`, `segment-grown`,
    /// `segments-given-back`, `mailbox-gone`), for log metadata and metric labels.
    public var name: String {
        switch kind {
        case .slotRepaired: "slot-repaired"
        case .roleTakenOver: "role-taken-over"
        case .segmentGrown: "segment-grown"
        case .segmentsGivenBack: "segments-given-back"
        case .mailboxGone: "mailbox-gone"
        }
    }

    /// One line saying what happened, naming the mailbox.
    public var description: String {
        switch kind {
        case .slotRepaired(let repair, let position):
            "mailbox \"\(mailbox)\": slot at position \(position) repaired after its holder died (\(repair.rawValue))"
        case .roleTakenOver(let role, let previous):
            "mailbox \"\(mailbox)\": \(role.rawValue) role taken over from dead process \(previous.pid)"
        case .segmentGrown(let generation):
            "mailbox \"\(mailbox)\": grew segment generation \(generation)"
        case .segmentsGivenBack(let generations):
            "mailbox \"\(mailbox)\": gave back segment generations \(generations.lowerBound)..<\(generations.upperBound)"
        case .mailboxGone(let ending):
            "mailbox \"\(mailbox)\": gone (\(ending.rawValue))"
        }
    }
}
