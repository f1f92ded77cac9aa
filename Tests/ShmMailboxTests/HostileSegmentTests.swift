import Foundation
import PeerProcess
import Testing
@testable import ShmMailbox

extension MultiProcess {
    /// Another process (a forked child touching only raw memory) damages a segment; every
    /// damage must surface as a typed error, never a crash or a read outside the mapping.
    @Suite("Hostile and damaged segments")
    struct HostileSegments {
        @Test func foreignSegmentIsNotAMailbox() throws {
            withName("foreign") { name in
                let objectName = strdup("/shmmb." + name)!
                defer { free(objectName) }
                let status = forkRaw {
                    let fd = shm_open(objectName, O_RDWR | O_CREAT | O_EXCL, 0o600)
                    if fd < 0 { return 1 }
                    if ftruncate(fd, 8192) != 0 { return 2 }
                    guard let base = mmap(nil, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else { return 3 }
                    for index in 0..<8192 { base.storeBytes(of: UInt8(truncatingIfNeeded: index &* 31 &+ 7), toByteOffset: index, as: UInt8.self) }
                    return 0
                }
                #expect(status == 0)
                expectError(.notAMailbox(name)) { try Mailbox.open(name) }
            }
        }

        @Test func emptyObjectIsCorrupted() throws {
            withName("empty") { name in
                let fd = shm_open("/shmmb." + name, O_RDWR | O_CREAT | O_EXCL, 0o600)
                #expect(fd >= 0)
                close(fd)
                expectError({ $0.isCorrupted }) { try Mailbox.open(name) }
            }
        }

        @Test(arguments: [100, SegmentLayout.headerSize + 100])
        func truncatedSegmentIsCorrupted(size: Int) throws {
            try withMailbox("truncated", MailboxOptions(capacity: 16, maxMessageSize: 256)) { name, _ in
                let fd = shm_open("/shmmb." + name, O_RDWR, 0)
                #expect(fd >= 0)
                #expect(ftruncate(fd, off_t(size)) == 0)
                close(fd)
                expectError({ $0.isCorrupted }) { try Mailbox.open(name) }
            }
        }

        @Test func otherLayoutVersionIsRefused() throws {
            try withMailbox("version", MailboxOptions(capacity: 16, maxMessageSize: 256)) { name, _ in
                scribble(on: name) { base, _ in
                    base.storeBytes(of: UInt32(99), toByteOffset: SegmentLayout.versionOffset, as: UInt32.self)
                }
                expectError(.incompatibleVersion(found: 99, supported: SegmentLayout.version)) { try Mailbox.open(name) }
            }
        }

        /// Each geometry field overwritten with garbage makes `open` throw `corrupted`.
        @Test(arguments: [SegmentLayout.capacityOffset, SegmentLayout.maxMessageSizeOffset,
                          SegmentLayout.dataSizeOffset, SegmentLayout.dataOffsetOffset,
                          SegmentLayout.slotStrideOffset, SegmentLayout.segmentSizeOffset,
                          SegmentLayout.ringKindOffset])
        func garbageGeometryIsCorrupted(offset: Int) throws {
            try withMailbox("geometry", MailboxOptions(capacity: 16, maxMessageSize: 256)) { name, _ in
                scribble(on: name) { base, _ in
                    base.storeBytes(of: UInt32(0xDEAD_BEEF), toByteOffset: offset, as: UInt32.self)
                }
                expectError({ $0.isCorrupted }) { try Mailbox.open(name) }
            }
        }

        /// A one-to-one record whose length was overwritten: `corrupted`, no out-of-bounds read.
        @Test(arguments: [UInt32(0x7FFF_FFFF), UInt32(4097), UInt32.max])
        func oneToOneRecordLengthGarbage(length: UInt32) throws {
            try withMailbox("o2o-length", MailboxOptions(capacity: 4, maxMessageSize: 4096, kind: .oneToOne)) { name, box throws in
                try box.send("first")
                scribble(on: name) { base, _ in
                    base.storeBytes(of: length, toByteOffset: SegmentLayout.dataOffset + SegmentLayout.recordLength, as: UInt32.self)
                }
                expectError({ $0.isCorrupted }) { try box.tryReceive() }
            }
        }

        /// A shared-ring slot whose length was overwritten: that message is reported as
        /// `corrupted`; the messages around it are still delivered intact.
        @Test func sharedSlotLengthGarbageLosesNothingElse() throws {
            try withMailbox("shared-length", MailboxOptions(capacity: 4, maxMessageSize: 100, kind: .shared)) { name, box throws in
                try box.send("zero")
                try box.send("one")
                try box.send("two")
                let stride = SharedRing.slotStride(maxMessageSize: 100)
                scribble(on: name) { base, _ in
                    base.storeBytes(of: UInt32(1_000_000), toByteOffset: SegmentLayout.dataOffset + stride + SegmentLayout.slotLength, as: UInt32.self)
                }
                #expect(try box.tryReceive()?.string == "zero")
                expectError({ $0.isCorrupted }) { try box.tryReceive() }
                #expect(try box.tryReceive()?.string == "two")
                try box.send("three")
                #expect(try box.tryReceive()?.string == "three")
            }
        }

        /// A shared-ring slot that reads empty for the next position but carries stray reference
        /// bits (no process of ours writes such a word): the next send uses it instead of
        /// retrying forever (found by the fuzzer: Fuzz/findings/shared-empty-word-with-reference.bin),
        /// and every message still arrives.
        @Test func sharedEmptySlotWithStrayReferenceBitsIsStillUsed() throws {
            try withMailbox("shared-stray", MailboxOptions(capacity: 4, maxMessageSize: 100, kind: .shared)) { name, box throws in
                try box.send("zero")
                let stride = SharedRing.slotStride(maxMessageSize: 100)
                scribble(on: name) { base, _ in
                    // Slot 1 serves position 1, empty, with reference bits set.
                    let word = SharedRing.makeWord(position: 1, state: SharedRing.stateEmpty, reference: 0x2A5)
                    base.storeBytes(of: word, toByteOffset: SegmentLayout.dataOffset + stride, as: UInt64.self)
                }
                #expect(try box.trySend("one"))
                try box.send("two")
                #expect(try box.tryReceive()?.string == "zero")
                #expect(try box.tryReceive()?.string == "one")
                #expect(try box.tryReceive()?.string == "two")
                #expect(try box.tryReceive() == nil)
            }
        }

        /// Positions overwritten with garbage: calls throw `corrupted` instead of hanging,
        /// reporting a phantom full or empty mailbox, or reading out of bounds.
        @Test(arguments: MailboxOptions.RingKind.allCases)
        func garbagePositions(kind: MailboxOptions.RingKind) throws {
            try withMailbox("positions-\(kind)", MailboxOptions(capacity: 8, maxMessageSize: 64, kind: kind)) { name, box throws in
                try box.send("m")
                let garbage: UInt64 = 0x0000_1234_5678_9ABC
                scribble(on: name) { base, _ in
                    base.storeBytes(of: garbage, toByteOffset: SegmentLayout.headOffset, as: UInt64.self)
                    base.storeBytes(of: garbage &+ (1 << 40), toByteOffset: SegmentLayout.tailOffset, as: UInt64.self)
                }
                expectError({ $0.isCorrupted }) { try box.tryReceive() }
                // A one-to-one sender reads the receiver's head only when its own view says
                // "full": the garbage surfaces by then, never as a phantom full mailbox.
                expectError({ $0.isCorrupted }) {
                    for _ in 0...8 { try box.send("n", timeout: .seconds(2)) }
                }
            }
        }

        /// Random bytes scribbled over the positions, events and data of live segments: every
        /// call either works or throws a `MailboxError`; the process never crashes.
        @Test(arguments: MailboxOptions.RingKind.allCases)
        func randomScribblesNeverCrash(kind: MailboxOptions.RingKind) throws {
            var generator = SystemRandomNumberGenerator()
            var outcomes: [String: Int] = [:]
            for round in 0..<40 {
                try withMailbox("fuzz-\(kind)-\(round)", MailboxOptions(capacity: 8, maxMessageSize: 200, kind: kind)) { name, box throws in
                    for index in 0..<5 { try box.send("message \(index)") }
                    let seed = UInt64.random(in: 1...UInt64.max, using: &generator)
                    scribble(on: name) { base, size in
                        var state = seed
                        for _ in 0..<64 {
                            state ^= state << 13; state ^= state >> 7; state ^= state << 17
                            // Anywhere past the identity line: positions, events, roles, data.
                            let offset = SegmentLayout.tailOffset + Int(state % UInt64(size - SegmentLayout.tailOffset - 8))
                            base.storeBytes(of: state, toByteOffset: offset & ~7, as: UInt64.self)
                        }
                    }
                    // The scribbles may hit identity fields: a reopen may then fail, typed.
                    var handles = [box]
                    do {
                        handles.append(try Mailbox.open(name))
                    } catch {
                        outcomes["error", default: 0] += 1
                    }
                    for handle in handles {
                        for _ in 0..<10 {
                            do {
                                let message = try handle.tryReceive()
                                outcomes[message == nil ? "empty" : "message", default: 0] += 1
                            } catch {
                                outcomes["error", default: 0] += 1
                            }
                            do {
                                outcomes[try handle.trySend("x") ? "sent" : "full", default: 0] += 1
                            } catch {
                                outcomes["error", default: 0] += 1
                            }
                        }
                    }
                }
            }
            // Some damage must have been detected, or the scribbles missed everything.
            #expect(outcomes["error", default: 0] > 0, "outcomes: \(outcomes)")
        }

        /// A process without permission gets `permissionDenied`. With permission, another user's
        /// mailbox is still refused unless the opener trusts its owner (`untrustedOwner`, see
        /// `SegmentTrust`), and opens with `trust: .anyUser`.
        @Test(arguments: [(UInt32(0o600), true), (UInt32(0o666), false)])
        func permissions(mode: UInt32, denied: Bool) throws {
            try withMailbox("perm", MailboxOptions(capacity: 4, maxMessageSize: 16, permissions: mode)) { name, box throws in
                #expect(box.permissions == mode)
                var info = stat()
                #expect(stat("/dev/shm/shmmb." + name, &info) == 0)
                #expect(info.st_mode & 0o777 == mode)
                if getuid() == 0 {
                    // Root bypasses permission checks: ask an unprivileged user (nobody) to open it.
                    for trustAnyone in [false, true] {
                        let helper = strdup(buildDirectory + "/MailboxTestPeer")!
                        let command = strdup("open")!
                        let target = strdup(name)!
                        let trust = strdup(trustAnyone ? "any-user" : "same-user")!
                        let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: 5)
                        argv.initialize(from: [helper, command, target, trust, nil], count: 5)
                        defer { free(helper); free(command); free(target); free(trust); argv.deallocate() }
                        let status = forkRaw {
                            let devNull = open("/dev/null", O_WRONLY)
                            dup2(devNull, 1)
                            guard setgid(65534) == 0, setuid(65534) == 0 else { return 90 }
                            execv(helper, argv)
                            return 91
                        }
                        // 3: permission denied; 15: owned by another user (root); 0: opened.
                        #expect(status == (denied ? 3 : trustAnyone ? 0 : 15), "exit status \(status) (trusting anyone: \(trustAnyone))")
                    }
                } else {
                    // Not root: take our own permission away instead.
                    #expect(chmod("/dev/shm/shmmb." + name, 0) == 0)
                    expectError(.permissionDenied(name)) { try Mailbox.open(name) }
                }
            }
        }
    }
}
