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

int shim_membarrier_register_global(void) {
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : errno;
}

int shim_membarrier_global(void) {
    return syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0 ? 0 : errno;
}
