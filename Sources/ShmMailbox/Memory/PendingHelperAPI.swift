// TEMPORARY: stand-ins for the memory-hardening branch's API, removed when it is merged.
#if canImport(Glibc)
import Glibc
#endif

enum ForkGeneration {
    static var current: UInt { 0 }
}

public struct SegmentTrust: Sendable, Equatable {
    private let any: Bool
    public static let sameUser = SegmentTrust(any: false)
    public static let anyUser = SegmentTrust(any: true)
    public static func users(_ uids: [UInt32]) -> SegmentTrust { SegmentTrust(any: false) }
}

extension SharedSegment {
    var isDamaged: Bool { false }
    var uid: UInt32 { geteuid() }
    func unlinkIfSame() -> Bool { shm_unlink(name.objectName) == 0 }
    static func open(_ name: MailboxName, minimumSize: Int, waitForSize: Duration, trust: SegmentTrust) throws(MailboxError) -> SharedSegment {
        try open(name, minimumSize: minimumSize, waitForSize: waitForSize)
    }
}
