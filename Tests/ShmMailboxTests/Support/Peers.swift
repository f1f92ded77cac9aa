import Foundation
import Testing
@testable import ShmMailbox

/// A unique mailbox name for one test run, so parallel or repeated runs never collide.
func uniqueName(_ label: String) -> String {
    "test-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
}

/// Creates a mailbox, runs `body`, and deletes the mailbox whatever happens.
func withMailbox<R>(
    _ label: String,
    _ options: MailboxOptions = MailboxOptions(),
    _ body: (String, Mailbox) throws -> R
) throws -> R {
    let name = uniqueName(label)
    let box = try Mailbox.create(name, options: options)
    defer { try? Mailbox.delete(name) }
    return try body(name, box)
}

/// Runs `body` with a unique name and removes any segment of that name afterwards.
func withName<R>(_ label: String, _ body: (String) throws -> R) rethrows -> R {
    let name = uniqueName(label)
    defer { try? Mailbox.delete(name) }
    return try body(name)
}

/// Forks a child that runs `body` (raw memory and system calls only: no allocation, no locks,
/// no Swift runtime work) and leaves with `_exit(body())`. Returns the child's exit status.
func forkRaw(_ body: () -> Int32) -> Int32 {
    let child = fork()
    if child == 0 {
        _exit(body())
    }
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
}

/// Maps the named mailbox's shm object in a forked child and lets `body` scribble on its raw
/// bytes. The parent's own handles are untouched except through shared memory.
func scribble(on name: String, _ body: @escaping (UnsafeMutableRawPointer, Int) -> Void) {
    let objectName = strdup("/shmmb." + name)!
    defer { free(objectName) }
    let status = forkRaw {
        let fd = shm_open(objectName, O_RDWR, 0)
        if fd < 0 { return 10 }
        var info = stat()
        if fstat(fd, &info) != 0 { return 11 }
        let size = Int(info.st_size)
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else { return 12 }
        body(base, size)
        munmap(base, size)
        close(fd)
        return 0
    }
    #expect(status == 0, "scribbling child failed with status \(status)")
}

/// Seconds elapsed while running `body`.
func timed<R>(_ body: () throws -> R) rethrows -> (R, Double) {
    let start = ContinuousClock.now
    let result = try body()
    let elapsed = ContinuousClock.now - start
    return (result, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// Asserts that `body` throws exactly `expected`.
func expectError<R>(_ expected: MailboxError, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> R) {
    do {
        _ = try body()
        Issue.record("expected \(expected), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as MailboxError {
        #expect(error == expected, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(expected), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Asserts that `body` throws a `MailboxError` matching `predicate` (for cases with free text).
func expectError<R>(sourceLocation: SourceLocation = #_sourceLocation, _ predicate: (MailboxError) -> Bool, _ body: () throws -> R) {
    do {
        _ = try body()
        Issue.record("expected an error, but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as MailboxError {
        #expect(predicate(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected non-mailbox error \(error)", sourceLocation: sourceLocation)
    }
}

extension MailboxError {
    var isCorrupted: Bool { if case .corrupted = self { return true } else { return false } }
    var isInvalidName: Bool { if case .invalidName = self { return true } else { return false } }
    var isInvalidOptions: Bool { if case .invalidOptions = self { return true } else { return false } }
}
