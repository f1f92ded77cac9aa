import CShim

/// Which side of a `fork()` this process is on, so a handle can tell it was inherited.
///
/// A handle records `current` when it is made; if `current` differs later, the handle was
/// inherited by a forked child, whose process identity (pid, start time) differs from the one the
/// handle claimed roles and slots under. See `shim_fork_generation` for what counts as a fork.
enum ForkGeneration {
    /// 0 in the first process of a line that loaded the library, one more in each forked child.
    /// A relaxed load (see `shim_fork_generation` for why that suffices); cheap enough for hot paths.
    @inline(__always)
    static var current: UInt {
        UInt(shim_fork_generation())
    }
}
