import Foundation
import Testing
@testable import ShmMailbox

/// Runs `body` with a unique name and removes `/shmmb.<name>` afterwards (as whoever we are;
/// root removes other users' objects too), plus any temporaries `createInitialized` left.
private func withObjectName<R>(_ label: String, _ body: (String) throws -> R) rethrows -> R {
    let name = uniqueName(label)
    defer {
        shm_unlink("/shmmb." + name)
        for object in (try? SharedSegment.objectNames()) ?? [] where object.hasPrefix(name + SharedSegment.temporaryMarker) {
            shm_unlink("/shmmb." + object)
        }
    }
    return try body(name)
}

/// `stat` of `/dev/shm/shmmb.<name>`, or nil with errno set.
private func objectStatus(_ name: String) -> stat? {
    var info = stat()
    return stat(SharedSegment.directory + "/shmmb." + name, &info) == 0 ? info : nil
}

extension MultiProcess {
    /// Shared memory treated as hostile at the file level: who owns an object and who may write
    /// it, objects truncated under us (SIGBUS), names replaced under us, and handles inherited
    /// across fork.
    @Suite("Segment security")
    struct SegmentSecurity {
        /// Another user pre-creates a name with mode 0666 (to read what victims send). Default
        /// trust refuses it for its owner; trusting that owner still refuses it for being
        /// world-writable; `.anyUser` opens it.
        @Test(.enabled(if: geteuid() == 0, "needs root: the test creates an object as user nobody (65534)"))
        func objectOfAnotherUserIsRefused() throws {
            try withObjectName("foreign-owner") { name in
                let objectName = strdup("/shmmb." + name)!
                defer { free(objectName) }
                let status = forkRaw {
                    guard setgroups(0, nil) == 0, setgid(65534) == 0, setuid(65534) == 0 else { return 1 }
                    let fd = shm_open(objectName, O_RDWR | O_CREAT | O_EXCL, 0o666)
                    if fd < 0 { return 2 }
                    // The umask narrowed the mode; make it what the attacker wants.
                    if fchmod(fd, 0o666) != 0 { return 3 }
                    if ftruncate(fd, off_t(SegmentLayout.headerSize * 4)) != 0 { return 4 }
                    return 0
                }
                #expect(status == 0, "child creating the object as nobody failed with status \(status)")
                let info = try #require(objectStatus(name))
                #expect(info.st_uid == 65534 && info.st_mode & 0o777 == 0o666)

                let segmentName = try MailboxName(name)
                expectError(.untrustedOwner(name, uid: 65534)) {
                    try SharedSegment.open(segmentName, minimumSize: SegmentLayout.headerSize, waitForSize: .zero)
                }
                expectError(.unsafePermissions(name, mode: 0o666)) {
                    try SharedSegment.open(segmentName, minimumSize: SegmentLayout.headerSize, waitForSize: .zero,
                                           trust: .users([65534]))
                }
                let opened = try SharedSegment.open(segmentName, minimumSize: SegmentLayout.headerSize, waitForSize: .zero,
                                                    trust: .anyUser)
                #expect(opened.uid == 65534 && opened.size == SegmentLayout.headerSize * 4)
                #expect(opened.inode == UInt64(info.st_ino) && opened.device == UInt64(info.st_dev))

                // Not world-writable any more: a trusted owner is accepted, an untrusted one is not.
                #expect(chmod(SharedSegment.directory + "/shmmb." + name, 0o644) == 0)
                let trusted = try SharedSegment.open(segmentName, minimumSize: SegmentLayout.headerSize, waitForSize: .zero,
                                                     trust: .users([1234, 65534]))
                #expect(trusted.uid == 65534)
                expectError(.untrustedOwner(name, uid: 65534)) {
                    try SharedSegment.open(segmentName, minimumSize: SegmentLayout.headerSize, waitForSize: .zero,
                                           trust: .users([1234]))
                }
            }
        }

        /// Our own object made world-writable is refused by default (anyone could truncate or
        /// change it) and opened with `.anyUser`; group write permission is accepted.
        @Test func worldWritableObjectIsRefused() throws {
            try withObjectName("world-writable") { name in
                let segmentName = try MailboxName(name)
                let created = try SharedSegment.create(segmentName, size: SegmentLayout.headerSize, mode: 0o600)
                let fd = shm_open("/shmmb." + name, O_RDWR, 0)
                #expect(fd >= 0)
                #expect(fchmod(fd, 0o666) == 0)
                close(fd)
                expectError(.unsafePermissions(name, mode: 0o666)) {
                    try SharedSegment.open(segmentName, minimumSize: SegmentLayout.headerSize, waitForSize: .zero)
                }
                let opened = try SharedSegment.open(segmentName, minimumSize: SegmentLayout.headerSize, waitForSize: .zero,
                                                    trust: .anyUser)
                #expect(opened.inode == created.inode && opened.device == created.device)
                #expect(opened.uid == geteuid())

                #expect(chmod(SharedSegment.directory + "/shmmb." + name, 0o660) == 0)
                let grouped = try SharedSegment.open(segmentName, minimumSize: SegmentLayout.headerSize, waitForSize: .zero)
                #expect(grouped.inode == created.inode)
            }
        }

        /// Another process truncates a segment we have mapped. Without the guard the first access
        /// below would kill this test process with SIGBUS; with it every page reads as zero, can
        /// be written, `isDamaged` turns true, and an intact segment next to it is left alone.
        @Test func truncatedSegmentBecomesZeroPages() throws {
            try withObjectName("truncated") { name in
                let pageSize = Int(getpagesize())
                let pages = 4
                let segment = try SharedSegment.create(MailboxName(name), size: pages * pageSize, mode: 0o600)
                let neighbour = try SharedSegment.create(MailboxName(derived: name + "#neighbour"), size: pageSize, mode: 0o600)
                defer { shm_unlink("/shmmb." + name + "#neighbour") }
                for page in 0..<pages { segment.base.storeBytes(of: 0xA5A5_0000 + UInt32(page), toByteOffset: page * pageSize, as: UInt32.self) }
                neighbour.base.storeBytes(of: 0x5A5A, toByteOffset: 0, as: UInt32.self)
                #expect(!segment.isDamaged && !neighbour.isDamaged)

                let objectName = strdup("/shmmb." + name)!
                defer { free(objectName) }
                let status = forkRaw {
                    let fd = shm_open(objectName, O_RDWR, 0)
                    if fd < 0 { return 1 }
                    return ftruncate(fd, 0) == 0 ? 0 : 2
                }
                #expect(status == 0, "truncating child failed with status \(status)")
                #expect(objectStatus(name)?.st_size == 0)

                var nonZero = 0
                for offset in stride(from: 0, to: pages * pageSize, by: MemoryLayout<UInt64>.size) {
                    if segment.base.load(fromByteOffset: offset, as: UInt64.self) != 0 { nonZero += 1 }
                }
                #expect(nonZero == 0, "\(nonZero) words of the damaged segment are not zero")
                #expect(segment.isDamaged)
                for page in 0..<pages {
                    segment.base.storeBytes(of: UInt32(page + 1), toByteOffset: page * pageSize + 8, as: UInt32.self)
                    #expect(segment.base.load(fromByteOffset: page * pageSize + 8, as: UInt32.self) == UInt32(page + 1))
                }
                #expect(!neighbour.isDamaged)
                #expect(neighbour.base.load(fromByteOffset: 0, as: UInt32.self) == 0x5A5A)
            }
        }

        /// The guard swallows only faults in registered ranges. In a child process (an exit test:
        /// a fresh process, so the handler before ours is the default one or Swift's crash
        /// reporter) a registered segment truncated under it is survived, which proves the guard
        /// is in place there; then a truncated regular file mapping, which is not registered,
        /// still kills it with SIGBUS.
        @Test func unrelatedFaultStillKills() async {
            let result = await #expect(processExitsWith: .signal(SIGBUS), observing: [\.standardOutputContent]) {
                alarm(30)  // A fault retried forever ends with SIGALRM, not a hung test.
                let pageSize = Int(getpagesize())
                // 1. A registered segment truncated under us: survived, reads zero. The name goes
                //    at once, so the dying process leaves nothing in /dev/shm.
                let name = uniqueName("sigbus")
                let segment = try SharedSegment.create(MailboxName(name), size: pageSize, mode: 0o600)
                let shm = shm_open("/shmmb." + name, O_RDWR, 0)
                shm_unlink("/shmmb." + name)
                guard shm >= 0, ftruncate(shm, 0) == 0 else { return }
                segment.base.storeBytes(of: 0x77, toByteOffset: 64, as: UInt8.self)
                guard segment.base.load(fromByteOffset: 0, as: UInt8.self) == 0, segment.isDamaged else { return }
                print("survived the truncation of a registered segment")
                fflush(nil)
                // 2. An unregistered mapping of a truncated regular file: must die of SIGBUS.
                let path = NSTemporaryDirectory() + "/" + uniqueName("sigbus-file")
                let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
                unlink(path)
                guard fd >= 0, ftruncate(fd, off_t(pageSize)) == 0,
                      let file = mmap(nil, pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), file != MAP_FAILED else { return }
                file.storeBytes(of: 1, toByteOffset: 0, as: UInt8.self)
                guard ftruncate(fd, 0) == 0 else { return }
                file.storeBytes(of: 2, toByteOffset: 0, as: UInt8.self)
                print("survived a fault outside every registered range")
            }
            let output = String(decoding: result?.standardOutputContent ?? [], as: UTF8.self)
            #expect(output == "survived the truncation of a registered segment\n", "child said: \(output)")
        }

        /// A SIGBUS sent by a process (si_code SI_TKILL, no fault address) is not the guard's
        /// either: with the guard installed, it still kills.
        @Test func sentSigbusStillKills() async {
            let result = await #expect(processExitsWith: .signal(SIGBUS), observing: [\.standardOutputContent]) {
                let name = uniqueName("sent-sigbus")
                let segment = try SharedSegment.create(MailboxName(name), size: Int(getpagesize()), mode: 0o600)
                shm_unlink("/shmmb." + name)
                print("guard installed: \(!segment.isDamaged)")
                fflush(nil)
                raise(SIGBUS)
                print("survived SIGBUS")
            }
            let output = String(decoding: result?.standardOutputContent ?? [], as: UTF8.self)
            #expect(output == "guard installed: true\n", "child said: \(output)")
        }

        /// A name removed and created anew under us: the old handle's verified unlink leaves the
        /// new object alone; the new handle's removes it. A FIFO put under the name does not make
        /// the check hang. Also after `createInitialized`, whose object was made under a temporary
        /// name.
        @Test func unlinkIfSameRemovesOnlyItsOwnObject() throws {
            try withObjectName("unlink-same") { name in
                let segmentName = try MailboxName(name)
                let first = try SharedSegment.create(segmentName, size: SegmentLayout.headerSize, mode: 0o600)
                try SharedSegment.unlink(segmentName)
                #expect(!first.unlinkIfSame(), "nothing under the name: nothing to unlink")
                let second = try SharedSegment.create(segmentName, size: SegmentLayout.headerSize, mode: 0o600)
                #expect(first.inode != second.inode)

                #expect(!first.unlinkIfSame())
                #expect(objectStatus(name).map { UInt64($0.st_ino) } == second.inode, "the new object must survive")
                #expect(second.unlinkIfSame())
                #expect(objectStatus(name) == nil)

                // A FIFO planted under the name neither blocks the check nor is removed.
                #expect(mkfifo(SharedSegment.directory + "/shmmb." + name, 0o600) == 0)
                #expect(!first.unlinkIfSame())
                #expect(objectStatus(name).map { $0.st_mode & S_IFMT == S_IFIFO } == true)
                #expect(unlink(SharedSegment.directory + "/shmmb." + name) == 0)

                let built = try SharedSegment.createInitialized(segmentName, size: SegmentLayout.headerSize, mode: 0o600) { _ in }
                #expect(objectStatus(name) != nil)
                #expect(built.unlinkIfSame())
                #expect(objectStatus(name) == nil)
            }
        }

        /// A temporary name that is taken (EEXIST on the temporary, not on the final name) is
        /// drawn again instead of being reported as `alreadyExists`; the taken object is not
        /// touched. When every draw is taken, creation fails with a system error, not
        /// `alreadyExists`.
        @Test func takenTemporaryNameIsDrawnAgain() throws {
            try withObjectName("temporary") { name in
                let segmentName = try MailboxName(name)
                let taken = "\(name)~\(getpid()).00ab"
                let fd = shm_open("/shmmb." + taken, O_RDWR | O_CREAT | O_EXCL, 0o600)
                #expect(fd >= 0)
                close(fd)
                let takenInode = try #require(objectStatus(taken)).st_ino

                var draws: [UInt16] = [0x00AB, 0x1234]
                let segment = try SharedSegment.createInitialized(segmentName, size: SegmentLayout.headerSize, mode: 0o600,
                                                                  temporaryRandom: { draws.removeFirst() }) { base in
                    base.storeBytes(of: 42, toByteOffset: 0, as: UInt64.self)
                }
                #expect(draws.isEmpty, "both draws used")
                #expect(segment.name == segmentName)
                #expect(objectStatus(name).map { UInt64($0.st_ino) } == segment.inode)
                #expect(objectStatus("\(name)~\(getpid()).1234") == nil, "the temporary that was used is gone")
                #expect(objectStatus(taken)?.st_ino == takenInode, "the taken temporary is left alone")
                #expect(objectStatus(taken)?.st_size == 0)

                try SharedSegment.unlink(segmentName)
                var calls = 0
                expectError(.system(operation: "shm_open(create /shmmb.\(taken)) after \(SharedSegment.temporaryAttempts) names taken", errno: EEXIST)) {
                    try SharedSegment.createInitialized(segmentName, size: SegmentLayout.headerSize, mode: 0o600,
                                                        temporaryRandom: { calls += 1; return 0x00AB }) { _ in }
                }
                #expect(calls == SharedSegment.temporaryAttempts)
                #expect(objectStatus(name) == nil)
            }
        }

        /// The fork generation changes in a forked child (and again in its child), never in the
        /// parent.
        @Test func forkGenerationChangesInChildren() {
            let before = ForkGeneration.current
            let status = forkRaw {
                let child = ForkGeneration.current &- before
                let grandchild = forkRaw { Int32(truncatingIfNeeded: ForkGeneration.current &- before) }
                return Int32(truncatingIfNeeded: child * 10) + grandchild
            }
            #expect(status == 12, "child and grandchild saw generations +\(status / 10) and +\(status % 10), expected +1 and +2")
            #expect(ForkGeneration.current == before)
        }
    }
}
