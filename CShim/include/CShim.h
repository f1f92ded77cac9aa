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

/// A spin-wait hint to the CPU (`pause` on x86, `yield` on arm64).
static inline void shim_cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
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

#endif
