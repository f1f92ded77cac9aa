/// One end of a connection between two processes that carries whole messages of one size.
///
/// A link never drops a message: `send` blocks while the transport is full. Received bytes are in
/// this process's own memory (copied out of the kernel or out of shared memory, like `recv`
/// does) and valid only inside the closure. Links reuse their buffers: nothing is allocated per
/// message.
public protocol Link: AnyObject {
    /// Sends one whole message.
    func send(_ message: UnsafeRawBufferPointer) throws
    /// Waits for the next whole message and hands its bytes to `body`.
    func receive(_ body: (UnsafeRawBufferPointer) throws -> Void) throws
    /// Sends `count` messages of `buffer.count` bytes: before each, `fill(index, buffer)` writes
    /// message `index` into `buffer`. A link may publish them together (the shm link, `--batch`).
    func sendBatch(count: Int, buffer: UnsafeMutableRawBufferPointer,
                   fill: (Int, UnsafeMutableRawBufferPointer) throws -> Void) throws
    /// Waits for at least one message, then takes what is waiting, at most `limit` messages, and
    /// hands each to `body`. Returns how many.
    func receiveBatch(limit: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int
    /// Releases the link's descriptors, handles and buffers' claims (idempotent).
    func close()
}

extension Link {
    /// Sends the messages one by one with `send`.
    public func sendBatch(count: Int, buffer: UnsafeMutableRawBufferPointer,
                   fill: (Int, UnsafeMutableRawBufferPointer) throws -> Void) throws {
        for index in 0..<count {
            try fill(index, buffer)
            try send(UnsafeRawBufferPointer(buffer))
        }
    }

    /// `sendBatch` through a library batch send (`Mailbox.trySendBatch`, `Endpoint.trySendBatch`):
    /// `trySendBatch(messages, fillOne)` sends as many as fit in one call, each filled into
    /// `buffer` by `fill` and copied in as `send` copies it; where the ring is full, the next
    /// message goes through `send`, which waits.
    func sendInBatches(count: Int, buffer message: UnsafeMutableRawBufferPointer,
                       fill: (Int, UnsafeMutableRawBufferPointer) throws -> Void,
                       _ trySendBatch: (_ messages: Int, _ fillOne: (Int, inout MutableRawSpan) throws -> Void) throws -> Int) throws {
        let bytes = UnsafeRawBufferPointer(message)
        var sent = 0
        // Both closures are only called during this call; the batch send's `fillOne` calls `fill`.
        try withoutActuallyEscaping(fill) { fill in
            while sent < count {
                let first = sent
                sent += try trySendBatch(count - first) { index, span in
                    try fill(first + index, message)
                    span.withUnsafeMutableBytes { $0.copyMemory(from: bytes) }
                }
                if sent < count {
                    try fill(sent, message)
                    try send(bytes)
                    sent += 1
                }
            }
        }
    }

    /// Receives one message with `receive`.
    public func receiveBatch(limit: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        try receive(body)
        return 1
    }
}

/// Called by links whenever a blocking call has waited a while (a time slice of about a second),
/// to find out whether the other side is still there. Throws when it is not.
public final class Watchdog {
    private let check: () throws -> Void

    public init(_ check: @escaping () throws -> Void) {
        self.check = check
    }

    /// A watchdog that never complains.
    public static var none: Watchdog { Watchdog {} }

    /// Throws when the other side is gone.
    public func checkPeer() throws {
        try check()
    }
}
