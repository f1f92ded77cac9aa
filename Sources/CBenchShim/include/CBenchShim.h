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

#endif
