// What ringbench's busy-waiting C (floor.c, probe.c) shares: the CPU's pause hint and the
// monotonic clock in nanoseconds. Internal to CBenchShim (not in include/).
#ifndef SHMMAILBOX_CBENCHSHIM_SPIN_WAIT_H
#define SHMMAILBOX_CBENCHSHIM_SPIN_WAIT_H

#include <stdint.h>
#include <time.h>

static inline void cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
