// The host-mode probe: a cross-core spin round trip between two threads, measured in a few
// milliseconds before (and after) every ringbench cell. On a VM whose host moves the two vCPUs
// between sibling hyperthreads, separate cores and slower modes, this one figure moves between
// ~65 and ~300 ns and explains most of the run-to-run swings of every cell; a report that shows
// it lets a reader (and ringbench's ratio logic) tell "the code got slower" from "the host changed".
#define _GNU_SOURCE
#include "CBenchShim.h"
#include "spin_wait.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

enum { probe_batch = 64, probe_batches = 64, probe_stop = 0 };

// The one word the two threads bounce, alone on its cache line.
struct probe_line {
    _Alignas(64) _Atomic uint64_t word;
    char pad[64 - sizeof(uint64_t)];
};

// The echo side: waits for an odd value and answers with the next (even) one; `probe_stop` ends it.
static void *probe_echo(void *arg) {
    struct probe_line *line = arg;
    uint64_t answered = 0;
    for (;;) {
        uint64_t value;
        // Relaxed: the word carries no other data; coherence alone orders its values.
        while ((value = atomic_load_explicit(&line->word, memory_order_relaxed)) == answered) cpu_pause();
        if (value == probe_stop) return NULL;
        answered = value + 1;
        // Relaxed, as above.
        atomic_store_explicit(&line->word, answered, memory_order_relaxed);
    }
}

static int pin_attr(pthread_attr_t *attr, int cpu) {
    if (cpu < 0) return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_attr_setaffinity_np(attr, sizeof set, &set);
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

double bench_spin_probe(int cpu_a, int cpu_b) {
    struct probe_line *line = aligned_alloc(64, sizeof *line);
    if (line == NULL) return -1;
    atomic_init(&line->word, 1);   // odd: the echo thread answers at once (its first, untimed trip)

    // The measuring side runs on `cpu_a` for the probe only; the caller's affinity comes back after.
    cpu_set_t saved;
    int restore = cpu_a >= 0 && pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
    if (cpu_a >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu_a, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) restore = 0;
    }

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_t echo;
    double result = -1;
    if (pin_attr(&attr, cpu_b) != 0 || pthread_create(&echo, &attr, probe_echo, line) != 0) {
        pthread_attr_destroy(&attr);
        free(line);
        if (restore) pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
        return -1;
    }
    pthread_attr_destroy(&attr);

    uint64_t samples[probe_batches];
    uint64_t value = 1;
    const uint64_t give_up = now_ns() + 1000000000u;  // 1 s: the echo thread hardly ever ran (a starved CPU)
    int completed = 0;
    for (int batch = -1; batch < probe_batches; batch++) {   // batch -1 warms up, untimed
        uint64_t start = now_ns();
        for (int trip = 0; trip < probe_batch; trip++) {
            // Relaxed loads and stores: see probe_echo.
            while (atomic_load_explicit(&line->word, memory_order_relaxed) != value + 1) {
                cpu_pause();
                if ((trip & 15) == 0 && now_ns() > give_up) goto done;
            }
            value += 2;
            atomic_store_explicit(&line->word, value, memory_order_relaxed);
        }
        if (batch >= 0) samples[completed++] = now_ns() - start;
    }
done:
    // Wait for the answer to the last value sent (also after giving up: the echo thread runs
    // eventually), so that the echo is waiting for a change when `probe_stop` arrives and can
    // never overwrite it.
    while (atomic_load_explicit(&line->word, memory_order_relaxed) != value + 1) cpu_pause();
    atomic_store_explicit(&line->word, probe_stop, memory_order_relaxed);
    pthread_join(echo, NULL);
    free(line);
    if (restore) pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    if (completed == probe_batches) {
        qsort(samples, probe_batches, sizeof samples[0], compare_u64);
        result = (double)samples[probe_batches / 2] / probe_batch;
    }
    return result;
}
