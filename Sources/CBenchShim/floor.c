// C floors for ringbench: the least a shared-memory link can cost, written plainly in C, so that
// ShmMailbox's figures have a reference measured in the same run. The API and the layouts are
// described in CBenchShim.h.
//
// How the two processes agree. Every shared word has one writer at a time. A sender writes the
// payload with ordinary stores, then publishes it with a release store of the word; a receiver
// reads the word with an acquire load and, once it sees the new value, reads the payload. The
// acquire load that reads a value written by a release store makes every write before that store
// visible. The payload itself is never written and read at the same time: each side touches it
// only while the word says the slot (or the turn) is its own.

#define _GNU_SOURCE  // memfd_create
#include "CBenchShim.h"
#include "spin_wait.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// Words shared between processes must be lock-free atomics (a lock-based fallback would keep its
// lock in one process's memory).
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2, "shared words must be lock-free");

enum { LINE = 64 };
// A busy wait reads the clock once per this many pauses; a wait that ends sooner never does.
enum { SPINS_PER_CLOCK_CHECK = 1024 };

static size_t round_up_to_line(size_t bytes) {
    return (bytes + LINE - 1) & ~(size_t)(LINE - 1);
}

// The time limit of one busy wait. The deadline is set at the first clock check, so it runs
// SPINS_PER_CLOCK_CHECK pauses (microseconds) late: nothing, against a slice of a second.
typedef struct {
    uint64_t spins;
    uint64_t deadline;  // 0: not read the clock yet
    uint64_t slice_ns;
} spin_budget;

// Pauses once; false once the slice is over.
static inline bool spin_once(spin_budget *budget) {
    cpu_pause();
    if (++budget->spins % SPINS_PER_CLOCK_CHECK != 0) return true;
    uint64_t now = now_ns();
    if (budget->deadline == 0) budget->deadline = now + budget->slice_ns;
    return now < budget->deadline;
}

int cfloor_memfd(size_t bytes) {
    int fd = memfd_create("ringbench-cfloor", MFD_CLOEXEC);
    if (fd < 0) return -1;
    if (ftruncate(fd, (off_t)bytes) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

// MARK: c-ring

// The ring's shared header, then the slots. Each index has a cache line to itself, so the
// producer's stores to `head` and the consumer's stores to `tail` do not fight over one line.
// The indices count messages from 0 and never wrap (2^64 messages); slot = index & mask.
struct ring_shared {
    _Alignas(LINE) _Atomic uint64_t head;  // messages published; written by the producer only
    _Alignas(LINE) _Atomic uint64_t tail;  // messages taken; written by the consumer only
};
_Static_assert(sizeof(struct ring_shared) == 2 * LINE, "one cache line per index");

// One side's handle. Like rigtorp's SPSCQueue, each side keeps the other side's index as it last
// read it (`cached`) and reads the shared one only when `cached` says the ring is full (producer)
// or empty (consumer): in a stream neither side touches the other's line for every message. Each
// message is still published on its own (one `head` store per message, one `tail` store per
// message taken): no batching.
struct cfloor_ring {
    struct ring_shared *shared;
    unsigned char *slots;
    size_t message_size;
    size_t slot_size;     // message_size rounded up to a cache line
    uint64_t capacity;    // a power of two
    uint64_t next;        // producer: the next index to publish; consumer: the next to take
    uint64_t cached;      // producer: `tail` as last read; consumer: `head` as last read
};

size_t cfloor_ring_bytes(size_t message_size, size_t capacity) {
    return sizeof(struct ring_shared) + capacity * round_up_to_line(message_size);
}

cfloor_ring *cfloor_ring_attach(void *memory, size_t message_size, size_t capacity) {
    if (capacity < 2 || (capacity & (capacity - 1)) != 0) return NULL;
    cfloor_ring *ring = calloc(1, sizeof *ring);
    if (ring == NULL) return NULL;
    ring->shared = memory;
    ring->slots = (unsigned char *)memory + sizeof(struct ring_shared);
    ring->message_size = message_size;
    ring->slot_size = round_up_to_line(message_size);
    ring->capacity = capacity;
    // next = cached = 0: the ring is fresh (both indices 0) when either side attaches.
    return ring;
}

void cfloor_ring_detach(cfloor_ring *ring) {
    free(ring);
}

int cfloor_ring_send(cfloor_ring *ring, const void *message, uint64_t slice_ns) {
    const uint64_t head = ring->next;
    if (head - ring->cached == ring->capacity) {
        // Full as far as we know: wait for the consumer to take a message. Acquire pairs with the
        // consumer's release of `tail`: its copy out of the slot we are about to overwrite is
        // finished before our writes into it.
        spin_budget budget = {0, 0, slice_ns};
        while (head - (ring->cached = atomic_load_explicit(&ring->shared->tail, memory_order_acquire)) == ring->capacity) {
            if (!spin_once(&budget)) return 0;
        }
    }
    memcpy(ring->slots + (head & (ring->capacity - 1)) * ring->slot_size, message, ring->message_size);
    // Release: the copy into the slot is visible to the consumer once it reads this `head`.
    atomic_store_explicit(&ring->shared->head, head + 1, memory_order_release);
    ring->next = head + 1;
    return 1;
}

int cfloor_ring_receive(cfloor_ring *ring, void *buffer, uint64_t slice_ns) {
    const uint64_t tail = ring->next;
    if (tail == ring->cached) {
        // Empty as far as we know: busy-poll the producer's index. Acquire pairs with the
        // producer's release of `head`: every slot below the value read is filled and visible.
        // (A message below an older cached `head` was made visible by the load that read it.)
        spin_budget budget = {0, 0, slice_ns};
        while ((ring->cached = atomic_load_explicit(&ring->shared->head, memory_order_acquire)) == tail) {
            if (!spin_once(&budget)) return 0;
        }
    }
    memcpy(buffer, ring->slots + (tail & (ring->capacity - 1)) * ring->slot_size, ring->message_size);
    // Release: our copy out of the slot is finished before the producer, acquiring this `tail`,
    // writes the slot again.
    atomic_store_explicit(&ring->shared->tail, tail + 1, memory_order_release);
    ring->next = tail + 1;
    return 1;
}

// MARK: c-slots

// A bounded multi-producer, multi-consumer queue with a sequence word per slot (Dmitry Vyukov's
// design). Each position has a cache line to itself: producers race for `enqueue` and consumers
// for `dequeue`, and neither side's claims touch the other side's line. The positions count
// messages from 0 and never wrap (2^64 messages); slot = position & mask.
struct slots_shared {
    _Alignas(LINE) _Atomic uint64_t enqueue;  // the next position a producer claims
    _Alignas(LINE) _Atomic uint64_t dequeue;  // the next position a consumer claims
};
_Static_assert(sizeof(struct slots_shared) == 2 * LINE, "one cache line per position");

// A slot: its sequence word, then the payload from byte 8 (up to 56 bytes share the word's line),
// rounded up to whole cache lines. For position p of lap p / capacity, the word says whose turn
// the slot is:
//   seq == p             empty, free for the producer that claims p;
//   seq == p + 1         filled, for the consumer that claims p;
//   seq == p + capacity  taken, free for the producer of the next lap (position p + capacity).
// Both sides store the word (the producer to fill the slot, the consumer to free it), so for every
// message its line goes to the consumer and back: the traffic this floor is here to show.
struct slot {
    _Atomic uint64_t seq;
    unsigned char payload[];
};
_Static_assert(sizeof(struct slot) == 8, "payload at byte 8");

// One process's handle: nothing but where things are (all the state is shared).
struct cfloor_slots {
    struct slots_shared *shared;
    unsigned char *slots;
    size_t message_size;
    size_t slot_size;   // 8 + message_size rounded up to a cache line
    uint64_t capacity;  // a power of two
};

static size_t slots_slot_size(size_t message_size) {
    return round_up_to_line(sizeof(struct slot) + message_size);
}

size_t cfloor_slots_bytes(size_t message_size, size_t capacity) {
    return sizeof(struct slots_shared) + capacity * slots_slot_size(message_size);
}

static bool slots_capacity_valid(size_t capacity) {
    return capacity >= 2 && (capacity & (capacity - 1)) == 0;
}

int cfloor_slots_init(void *memory, size_t message_size, size_t capacity) {
    if (!slots_capacity_valid(capacity)) return -1;
    struct slots_shared *shared = memory;
    unsigned char *slots = (unsigned char *)memory + sizeof(struct slots_shared);
    const size_t slot_size = slots_slot_size(message_size);
    // Relaxed: no other process maps the memory yet. The processes that attach later are spawned
    // after this (fork or exec is a barrier of its own), so they see these values.
    atomic_store_explicit(&shared->enqueue, 0, memory_order_relaxed);
    atomic_store_explicit(&shared->dequeue, 0, memory_order_relaxed);
    for (size_t i = 0; i < capacity; i++) {
        struct slot *slot = (struct slot *)(slots + i * slot_size);
        atomic_store_explicit(&slot->seq, i, memory_order_relaxed);  // empty, for position i
    }
    return 0;
}

cfloor_slots *cfloor_slots_attach(void *memory, size_t message_size, size_t capacity) {
    if (!slots_capacity_valid(capacity)) return NULL;
    cfloor_slots *queue = calloc(1, sizeof *queue);
    if (queue == NULL) return NULL;
    queue->shared = memory;
    queue->slots = (unsigned char *)memory + sizeof(struct slots_shared);
    queue->message_size = message_size;
    queue->slot_size = slots_slot_size(message_size);
    queue->capacity = capacity;
    return queue;
}

void cfloor_slots_detach(cfloor_slots *queue) {
    free(queue);
}

static inline struct slot *slots_at(cfloor_slots *queue, uint64_t position) {
    return (struct slot *)(queue->slots + (position & (queue->capacity - 1)) * queue->slot_size);
}

int cfloor_slots_send(cfloor_slots *queue, const void *message, uint64_t slice_ns) {
    spin_budget budget = {0, 0, slice_ns};
    // Relaxed, here and in the CAS below: the position only says which slot to try; whether the
    // slot is ours to fill is the sequence word's to say, and that load is the acquire.
    uint64_t position = atomic_load_explicit(&queue->shared->enqueue, memory_order_relaxed);
    struct slot *slot;
    for (;;) {
        slot = slots_at(queue, position);
        // Acquire: pairs with the release by the consumer of the lap before (position -
        // capacity, which stored seq = position): its copy out of this slot is finished before
        // our writes into it.
        const uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        const int64_t lead = (int64_t)(seq - position);
        if (lead == 0) {
            // Free for `position`: claim it. Only one producer moves `enqueue` from `position`;
            // a loser gets the current value in `position` and tries that slot (no pause: some
            // other producer went ahead).
            if (atomic_compare_exchange_weak_explicit(&queue->shared->enqueue, &position, position + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                break;
            }
        } else if (lead < 0) {
            // Still holds the message of the lap before: the queue is full. Wait for a consumer.
            if (!spin_once(&budget)) return 0;
            position = atomic_load_explicit(&queue->shared->enqueue, memory_order_relaxed);
        } else {
            // Another producer claimed `position` and filled it already: catch up.
            position = atomic_load_explicit(&queue->shared->enqueue, memory_order_relaxed);
        }
    }
    memcpy(slot->payload, message, queue->message_size);
    // Release: the copy into the slot is visible to the consumer whose acquire load reads this.
    atomic_store_explicit(&slot->seq, position + 1, memory_order_release);
    return 1;
}

int cfloor_slots_receive(cfloor_slots *queue, void *buffer, uint64_t slice_ns) {
    spin_budget budget = {0, 0, slice_ns};
    // Relaxed, as in send: the sequence word's acquire load is what orders the payload.
    uint64_t position = atomic_load_explicit(&queue->shared->dequeue, memory_order_relaxed);
    struct slot *slot;
    for (;;) {
        slot = slots_at(queue, position);
        // Acquire: pairs with the producer's release of `seq = position + 1`: its copy into the
        // slot is visible once we read that value.
        const uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        const int64_t lead = (int64_t)(seq - (position + 1));
        if (lead == 0) {
            // Filled for `position`: claim it (one consumer wins, as for producers above).
            if (atomic_compare_exchange_weak_explicit(&queue->shared->dequeue, &position, position + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                break;
            }
        } else if (lead < 0) {
            // Not filled yet: the queue is empty. Busy-poll for a producer.
            if (!spin_once(&budget)) return 0;
            position = atomic_load_explicit(&queue->shared->dequeue, memory_order_relaxed);
        } else {
            // Another consumer took `position` already: catch up.
            position = atomic_load_explicit(&queue->shared->dequeue, memory_order_relaxed);
        }
    }
    memcpy(buffer, slot->payload, queue->message_size);
    // Release: our copy out of the slot is finished before the next lap's producer, acquiring
    // this value, writes the slot again.
    atomic_store_explicit(&slot->seq, position + queue->capacity, memory_order_release);
    return 1;
}

// MARK: c-spin and c-futex

// A turn channel: the word counts the messages sent either way; whoever sends bumps it. The
// payload starts at byte 8, so up to 56 bytes share the word's cache line.
struct turn_shared {
    _Atomic uint32_t word;
    uint32_t unused;
    unsigned char payload[];
};
_Static_assert(sizeof(struct turn_shared) == 8, "payload at byte 8");

struct cfloor_turn {
    struct turn_shared *shared;
    size_t message_size;
    uint32_t seen;  // the word as this side last stored or read it
};

size_t cfloor_turn_bytes(size_t message_size) {
    return round_up_to_line(sizeof(struct turn_shared) + message_size);
}

cfloor_turn *cfloor_turn_attach(void *memory, size_t message_size) {
    cfloor_turn *turn = calloc(1, sizeof *turn);
    if (turn == NULL) return NULL;
    turn->shared = memory;
    turn->message_size = message_size;
    // seen = 0: the channel is fresh when either side attaches.
    return turn;
}

void cfloor_turn_detach(cfloor_turn *turn) {
    free(turn);
}

// Writes the payload and bumps the word. Sends and receives alternate, so the other side is not
// reading the payload now: it copied the last one out before it sent what we received.
static inline void turn_publish(cfloor_turn *turn, const void *message) {
    memcpy(turn->shared->payload, message, turn->message_size);
    turn->seen += 1;
    // Release: the payload written above is visible to the side whose acquire load reads this
    // value. (That side's earlier copy out of the payload came before its own release store,
    // which our receive acquired, so it cannot see these writes.)
    atomic_store_explicit(&turn->shared->word, turn->seen, memory_order_release);
}

// Reads the word (the caller compares it with `seen`).
static inline uint32_t turn_poll(cfloor_turn *turn) {
    // Acquire: pairs with the sender's release store in turn_publish; reading its new value
    // makes the payload written before it visible.
    return atomic_load_explicit(&turn->shared->word, memory_order_acquire);
}

static inline void turn_take(cfloor_turn *turn, uint32_t word, void *buffer) {
    turn->seen = word;
    memcpy(buffer, turn->shared->payload, turn->message_size);
}

void cfloor_spin_send(cfloor_turn *turn, const void *message) {
    turn_publish(turn, message);
}

int cfloor_spin_receive(cfloor_turn *turn, void *buffer, uint64_t slice_ns) {
    spin_budget budget = {0, 0, slice_ns};
    uint32_t word;
    while ((word = turn_poll(turn)) == turn->seen) {
        if (!spin_once(&budget)) return 0;
    }
    turn_take(turn, word, buffer);
    return 1;
}

// Not FUTEX_PRIVATE_FLAG: the word is shared between processes (a MAP_SHARED memfd page), so
// the kernel must key the wait on the page, not on this process's address space.
static long futex(_Atomic uint32_t *word, int op, uint32_t value, const struct timespec *timeout) {
    return syscall(SYS_futex, (uint32_t *)word, op, value, timeout, NULL, 0);
}

int cfloor_futex_send(cfloor_turn *turn, const void *message) {
    turn_publish(turn, message);
    // Always wake, waiter or not: this is the bare protocol, with no "anyone asleep?" word to
    // skip the system call. The wake follows the store, and FUTEX_WAIT compares the word with
    // `seen` under the kernel's lock as it goes to sleep (the kernel orders the two sides with a
    // full barrier), so a receiver either sees the new value or is asleep and woken.
    if (futex(&turn->shared->word, FUTEX_WAKE, 1, NULL) == -1) return -errno;
    return 0;
}

int cfloor_futex_receive(cfloor_turn *turn, void *buffer, uint64_t slice_ns) {
    uint64_t deadline = 0;
    uint32_t word;
    while ((word = turn_poll(turn)) == turn->seen) {
        uint64_t now = now_ns();
        if (deadline == 0) deadline = now + slice_ns;
        if (now >= deadline) return 0;
        uint64_t left = deadline - now;
        struct timespec timeout = {.tv_sec = (time_t)(left / 1000000000u), .tv_nsec = (long)(left % 1000000000u)};
        // Sleeps only while the word still holds `seen`. EAGAIN: it changed already; EINTR, or a
        // timeout: look again (and give up above once the slice is over).
        if (futex(&turn->shared->word, FUTEX_WAIT, turn->seen, &timeout) == -1
            && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
            return -errno;
        }
    }
    turn_take(turn, word, buffer);
    return 1;
}
