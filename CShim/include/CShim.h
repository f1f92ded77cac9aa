#ifndef SHMMAILBOX_CSHIM_H
#define SHMMAILBOX_CSHIM_H

#include <stdint.h>
#include <sys/types.h>

/// Sleeps on the shared (not process-private) futex word at `address` while it holds `expected`,
/// for at most `timeout_ns` nanoseconds (negative: no timeout).
/// Wraps `syscall(SYS_futex, address, FUTEX_WAIT, expected, &timespec)`.
/// Returns 0 when woken, otherwise the errno: EAGAIN (word changed), ETIMEDOUT, EINTR.
int shim_futex_wait(uint32_t *address, uint32_t expected, int64_t timeout_ns);

/// Wakes up to `count` sleepers on the shared futex word at `address`.
/// Wraps `syscall(SYS_futex, address, FUTEX_WAKE, count)`. Returns the number woken or -errno.
int shim_futex_wake(uint32_t *address, int32_t count);

/// One word of a vectored futex wait (the kernel's `struct futex_waitv`): sleep while the
/// shared 32-bit word at `address` holds `value`.
typedef struct {
    uint64_t value;
    uint64_t address;
    uint32_t flags;
    uint32_t reserved;
} shim_futex_waiter;

/// The most words one `shim_futex_waitv` call may wait on (the kernel's `FUTEX_WAITV_MAX`).
#define SHIM_FUTEX_WAITV_MAX 128

/// Fills `waiter` for the shared (not process-private) 32-bit word at `address`.
void shim_futex_waiter_set(shim_futex_waiter *waiter, uint32_t *address, uint32_t expected);

/// Sleeps until one of the `count` words is woken or no longer holds its value, or until
/// `deadline_ns` on `CLOCK_MONOTONIC` (negative: no deadline).
/// Wraps `syscall(SYS_futex_waitv, waiters, count, 0, &timespec, CLOCK_MONOTONIC)` (Linux 5.16).
/// Returns the index of a woken word, or -errno: -EAGAIN (a word did not hold its value),
/// -ETIMEDOUT, -EINTR, -ENOSYS (the kernel has no futex_waitv), -EFAULT (a word is not mapped).
int shim_futex_waitv(shim_futex_waiter *waiters, uint32_t count, int64_t deadline_ns);

/// A spin-wait hint to the CPU (`pause` on x86, `yield` on arm64).
static inline void shim_cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Asks the CPU to fetch the cache line holding `address` for writing, in the background
/// (`prefetchw` on x86, where CPUs without it treat it as a no-op; `prfm pstl1keep` on arm64).
/// Never faults, whatever the address; changes no memory.
static inline void shim_prefetch_for_write(const void *address) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const char *)address));
#elif defined(__aarch64__)
    __asm__ __volatile__("prfm pstl1keep, %0" : : "Q"(*(const char *)address));
#endif
}

/// Asks the CPU to bring the cache line at `address` in for reading, in the background
/// (`prefetcht0` on x86, `prfm pldl1keep` on arm64). Never faults, whatever the address; changes
/// no memory.
static inline void shim_prefetch_for_read(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// A compiler-only barrier: no memory access moves across it at compile time. Emits no
/// instruction; the CPU may still reorder (see `shim_membarrier_global`).
static inline void shim_compiler_barrier(void) {
    __asm__ __volatile__("" ::: "memory");
}

/// Registers this process for `MEMBARRIER_CMD_GLOBAL_EXPEDITED` (other processes' global
/// barriers then interrupt its threads). `syscall(SYS_membarrier, REGISTER_GLOBAL_EXPEDITED)`.
/// Returns 0 or the errno.
int shim_membarrier_register_global(void);

/// Runs a full memory barrier on every CPU that currently runs a thread of a registered process.
/// `syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED)`. Returns 0 or the errno.
int shim_membarrier_global(void);

// ---- SIGBUS guard (sigbus_guard.c) -------------------------------------------------------------
//
// Anyone with write access to a shared-memory object can ftruncate it; every process that has it
// mapped then gets SIGBUS on its next access to a page past the new end, and dies. The guard turns
// that into a flag: a registered range whose pages vanish is replaced by private zero pages, the
// access is retried and succeeds, and `shim_guard_damaged` tells the owner of the range.

#include <stddef.h>

/// Slots in the guard's table: at most this many ranges are registered at once.
#define SHIM_GUARD_SLOTS 16384

/// The slots' damage states (0: intact; otherwise the range was, or is being, replaced by zero
/// pages). Written by the SIGBUS handler; read it only through `shim_guard_damaged`. Declared
/// without its size so that Swift does not import a tuple of 16384 elements.
extern int shim_guard_damage[];

/// Records the mapped range `[base, base + size)` in the guard's table (a lock-free claim of a
/// free slot), installing the SIGBUS handler the first time (thread-safe). Returns the slot, or
/// -1 when all `SHIM_GUARD_SLOTS` slots are taken. Call it before the first access to the range,
/// and `shim_guard_unregister` before unmapping it.
int shim_guard_register(void *base, size_t size);

/// Frees `slot` (from `shim_guard_register`). The range must still be mapped: unregister first,
/// then `munmap`.
void shim_guard_unregister(int slot);

/// Whether the range of `slot` was truncated under us and replaced by zero pages (nonzero), as a
/// relaxed load. Relaxed suffices: the flag publishes no data. The replacement itself is a
/// page-table change the kernel makes visible to every thread of the process before the
/// handler's `mmap` returns; the flag only tells code why the memory now reads as zeros, and a
/// stale 0 merely delays noticing until the next check.
static inline int shim_guard_damaged(int slot) {
    return __atomic_load_n(&shim_guard_damage[slot], __ATOMIC_RELAXED) != 0;
}

// ---- Fork generation (fork_generation.c) --------------------------------------------------------

/// The counter behind `shim_fork_generation`; read it only through that function.
extern unsigned long shim_fork_generation_counter[];

/// How many `fork()`s separate this process from the first one of its line that loaded the
/// library: 0 there, incremented in every child by a `pthread_atfork` child handler (installed by
/// a constructor at load time). A handle that records it can tell it was inherited across fork.
/// Only `fork()` runs atfork handlers: `vfork`, `_Fork`, a raw `clone` and `posix_spawn` do not
/// (`vfork` and `posix_spawn` children exec at once anyway; the others go unnoticed).
///
/// Relaxed suffices: the increment runs in the child's only thread right after fork, before any
/// code of the child reads the counter; later readers are that thread (program order) or threads
/// it creates afterwards (thread creation synchronizes).
static inline unsigned long shim_fork_generation(void) {
    return __atomic_load_n(&shim_fork_generation_counter[0], __ATOMIC_RELAXED);
}

#endif
