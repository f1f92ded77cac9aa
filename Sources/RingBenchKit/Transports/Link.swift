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
