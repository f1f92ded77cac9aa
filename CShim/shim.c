#define _GNU_SOURCE
#include "CShim.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int shim_futex_wait(uint32_t *address, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts;
    struct timespec *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    long rc = syscall(SYS_futex, address, FUTEX_WAIT, expected, tsp, NULL, 0);
    return rc == 0 ? 0 : errno;
}

int shim_futex_wake(uint32_t *address, int32_t count) {
    long rc = syscall(SYS_futex, address, FUTEX_WAKE, count, NULL, NULL, 0);
    return rc >= 0 ? (int)rc : -errno;
}

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449 /* the same number on x86_64 and arm64 */
#endif

void shim_futex_waiter_set(shim_futex_waiter *waiter, uint32_t *address, uint32_t expected) {
    waiter->value = expected;
    waiter->address = (uint64_t)(uintptr_t)address;
    waiter->flags = FUTEX_32; /* shared: no FUTEX_PRIVATE_FLAG, the words are in shared mappings */
    waiter->reserved = 0;
}

int shim_futex_waitv(shim_futex_waiter *waiters, uint32_t count, int64_t deadline_ns) {
    struct timespec ts;
    struct timespec *tsp = NULL;
    if (deadline_ns >= 0) {
        ts.tv_sec = (time_t)(deadline_ns / 1000000000);
        ts.tv_nsec = (long)(deadline_ns % 1000000000);
        tsp = &ts;
    }
    long rc = syscall(SYS_futex_waitv, waiters, count, 0, tsp, CLOCK_MONOTONIC);
    return rc >= 0 ? (int)rc : -errno;
}

int shim_membarrier_register_global(void) {
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : errno;
}

int shim_membarrier_global(void) {
    return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : errno;
}
