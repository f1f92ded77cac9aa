#ifndef SHMMAILBOX_CBENCHSHIM_H
#define SHMMAILBOX_CBENCHSHIM_H

// ringbench (RingBenchKit) only: what its transports need from C and Swift cannot call itself.
// Not part of the ShmMailbox library.

#include <stddef.h>
#include <stdint.h>

// POSIX message queues. `mq_open` is variadic, which Swift cannot call; the other mq_* functions
// and `struct mq_attr` come from <mqueue.h> as they are.
#include <mqueue.h>

/// `mq_open(name, oflag, mode, &attr)` with `attr.mq_maxmsg = maxmsg` and `attr.mq_msgsize = msgsize`
/// when `oflag` has O_CREAT, otherwise `mq_open(name, oflag)`. Returns the descriptor or
/// `(mqd_t)-1` with errno set.
mqd_t shim_mq_open(const char *name, int oflag, mode_t mode, long maxmsg, long msgsize);

/// Pins the calling thread (the whole process when it has one thread, as ringbench's have at
/// `--pin` time) to CPU `cpu` with `sched_setaffinity` (affinity.c). Returns 0, or -1 with errno
/// set (EINVAL for a CPU outside 0..<CPU_SETSIZE).
int bench_pin_process_to_cpu(int cpu);

/// The host-mode probe (probe.c): the median cross-core spin round trip, in nanoseconds, between
/// this thread (on CPU `cpu_a` while it runs) and a thread on CPU `cpu_b` (a negative CPU: not
/// pinned), over 64 batches of 64 round trips (a few milliseconds). Returns -1 if it cannot run,
/// or when the round trips have not finished within a second (the other CPU starved the echo).
double bench_spin_probe(int cpu_a, int cpu_b);

// MARK: C floors (floor.c)
//
// The least shared memory can cost, written plainly in C, for ringbench's `c-ring`, `c-slots`,
// `c-spin` and `c-futex` transports. Each works on memory the parent creates (`cfloor_memfd`)
// and the processes map; the per-process handles below live in ordinary memory. Messages have one
// fixed size per handle. A call that waits gives up after `slice_ns` nanoseconds and returns 0, so the
// Swift caller can check that the other process is still alive and call again.

/// An anonymous shared-memory file (`memfd_create`, close-on-exec) of `bytes` zero bytes.
/// Returns the descriptor, or -1 with errno set.
int cfloor_memfd(size_t bytes);

/// `c-ring`: a single-producer, single-consumer ring of `capacity` (a power of two, at least 2)
/// fixed-size slots. Each message is copied into a slot and published on its own.
typedef struct cfloor_ring cfloor_ring;

/// Bytes of shared memory a ring of `capacity` slots for `message_size`-byte messages takes
/// (a multiple of 64).
size_t cfloor_ring_bytes(size_t message_size, size_t capacity);

/// A handle on the ring at `memory` (64-byte aligned, `cfloor_ring_bytes` long, zeroed by its
/// creator before either side uses it). One process attaches as the producer, one as the
/// consumer. Returns NULL if `capacity` is not a power of two of at least 2, or out of memory.
cfloor_ring *cfloor_ring_attach(void *memory, size_t message_size, size_t capacity);
void cfloor_ring_detach(cfloor_ring *ring);

/// Producer: copies `message` (message_size bytes) into the next slot and publishes it. Busy-waits
/// while the ring is full. Returns 1 when sent, 0 when `slice_ns` passed with the ring full.
int cfloor_ring_send(cfloor_ring *ring, const void *message, uint64_t slice_ns);

/// Consumer: busy-waits for the next message, copies it into `buffer` (message_size bytes) and
/// frees its slot. Returns 1 when received, 0 when `slice_ns` passed with the ring empty.
int cfloor_ring_receive(cfloor_ring *ring, void *buffer, uint64_t slice_ns);

/// `c-slots`: a bounded multi-producer, multi-consumer queue of `capacity` (a power of two, at
/// least 2) fixed-size slots, each with a sequence word (Dmitry Vyukov's design): a side claims a
/// position with a compare-and-swap on the shared enqueue or dequeue position, then copies the
/// message in or out and releases the slot's word. Any number of processes attach as producers,
/// consumers or both.
typedef struct cfloor_slots cfloor_slots;

/// Bytes of shared memory a queue of `capacity` slots for `message_size`-byte messages takes
/// (a multiple of 64): two cache lines of positions, then each slot's 8-byte sequence word and
/// payload rounded up to whole cache lines.
size_t cfloor_slots_bytes(size_t message_size, size_t capacity);

/// Makes the queue at `memory` (64-byte aligned, `cfloor_slots_bytes` long) empty: the creator
/// calls it once, before any other process maps the memory. Returns 0, or -1 if `capacity` is
/// not a power of two of at least 2.
int cfloor_slots_init(void *memory, size_t message_size, size_t capacity);

/// A handle on the queue at `memory` (initialized by `cfloor_slots_init`). Returns NULL if
/// `capacity` is not a power of two of at least 2, or out of memory.
cfloor_slots *cfloor_slots_attach(void *memory, size_t message_size, size_t capacity);
void cfloor_slots_detach(cfloor_slots *queue);

/// Producer: claims the next position, copies `message` (message_size bytes) into its slot and
/// publishes it. Busy-waits while the queue is full. Returns 1 when sent, 0 when `slice_ns`
/// passed with the queue full.
int cfloor_slots_send(cfloor_slots *queue, const void *message, uint64_t slice_ns);

/// Consumer: busy-waits for a message, claims it, copies it into `buffer` (message_size bytes)
/// and frees its slot. Returns 1 when received, 0 when `slice_ns` passed with the queue empty.
int cfloor_slots_receive(cfloor_slots *queue, void *buffer, uint64_t slice_ns);

/// `c-spin` and `c-futex`: one message at a time in each direction, strictly alternating (each
/// side sends only after it has received, the first sender excepted). A 32-bit turn word and
/// the payload share memory: the word, then the payload from byte 8, so up to 56 bytes share the
/// word's cache line and larger messages continue into the following lines.
typedef struct cfloor_turn cfloor_turn;

/// Bytes of shared memory a turn channel for `message_size`-byte messages takes (a multiple of 64).
size_t cfloor_turn_bytes(size_t message_size);

/// A handle on the turn channel at `memory` (64-byte aligned, `cfloor_turn_bytes` long, zeroed
/// by its creator). Both processes attach. Returns NULL when out of memory.
cfloor_turn *cfloor_turn_attach(void *memory, size_t message_size);
void cfloor_turn_detach(cfloor_turn *turn);

/// `c-spin` send: copies `message` in and bumps the turn word. Never waits.
void cfloor_spin_send(cfloor_turn *turn, const void *message);

/// `c-spin` receive: busy-polls (with a CPU pause) until the turn word changes, then copies the
/// message into `buffer`. Returns 1 when received, 0 when `slice_ns` passed without a change.
int cfloor_spin_receive(cfloor_turn *turn, void *buffer, uint64_t slice_ns);

/// `c-futex` send: copies `message` in, bumps the turn word and calls FUTEX_WAKE (always).
/// Returns 0, or -errno if the wake failed.
int cfloor_futex_send(cfloor_turn *turn, const void *message);

/// `c-futex` receive: sleeps in FUTEX_WAIT (no spinning) until the turn word changes, then copies
/// the message into `buffer`. Returns 1 when received, 0 when `slice_ns` passed without a
/// change, -errno if the wait failed.
int cfloor_futex_receive(cfloor_turn *turn, void *buffer, uint64_t slice_ns);

#endif
