#ifndef SHMMAILBOX_CBENCHSHIM_H
#define SHMMAILBOX_CBENCHSHIM_H

// ringbench (RingBenchKit) only: what its transports need from C and Swift cannot call itself.
// Not part of the ShmMailbox library.

// POSIX message queues. `mq_open` is variadic, which Swift cannot call; the other mq_* functions
// and `struct mq_attr` come from <mqueue.h> as they are.
#include <mqueue.h>

/// `mq_open(name, oflag, mode, &attr)` with `attr.mq_maxmsg = maxmsg` and `attr.mq_msgsize = msgsize`
/// when `oflag` has O_CREAT, otherwise `mq_open(name, oflag)`. Returns the descriptor or
/// `(mqd_t)-1` with errno set.
mqd_t shim_mq_open(const char *name, int oflag, mode_t mode, long maxmsg, long msgsize);

/// The host-mode probe (probe.c): the median cross-core spin round trip, in nanoseconds, between
/// this thread (on CPU `cpu_a` while it runs) and a thread on CPU `cpu_b` (a negative CPU: not
/// pinned), over 64 batches of 64 round trips (a few milliseconds). Returns -1 if it cannot run.
double bench_spin_probe(int cpu_a, int cpu_b);

#endif
