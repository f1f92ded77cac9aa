import Synchronization

extension UnsafeMutableRawPointer {
    /// The 64-bit atomic at `offset` (8-byte aligned by the layout).
    @inline(__always)
    func atomicUInt64(at offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (self + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The 32-bit atomic at `offset` (4-byte aligned by the layout).
    @inline(__always)
    func atomicUInt32(at offset: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        (self + offset).assumingMemoryBound(to: Atomic<UInt32>.self)
    }
}
