// The fork generation: see CShim.h for the interface.
#include "CShim.h"

#include <pthread.h>

unsigned long shim_fork_generation_counter[1];

// Runs in the child after fork(), in its only thread. Relaxed: see shim_fork_generation.
static void count_fork(void) {
    __atomic_fetch_add(&shim_fork_generation_counter[0], 1, __ATOMIC_RELAXED);
}

// At load time, before any code of the program can fork. pthread_atfork only fails for lack of
// memory at startup; then the generation stays 0 and inherited handles go undetected.
__attribute__((constructor))
static void install_fork_counter(void) {
    pthread_atfork(NULL, NULL, count_fork);
}
