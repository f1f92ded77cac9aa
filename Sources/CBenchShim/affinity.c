// sched_setaffinity for ringbench's --pin: Glibc's Swift module does not declare it (it needs
// _GNU_SOURCE), and cpu_set_t's macros are C only.
#define _GNU_SOURCE
#include "CBenchShim.h"

#include <errno.h>
#include <sched.h>

int bench_pin_process_to_cpu(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) {
        errno = EINVAL;
        return -1;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}
