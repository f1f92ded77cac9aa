// The SIGBUS guard: see CShim.h for the interface.
//
// Why this has to be C: the work happens in a signal handler, which may only do async-signal-safe
// things (no allocation, no locks, no Swift runtime); Swift cannot promise any of that.
//
// How it works. Each registered range occupies one slot of a fixed table in .bss (no allocation
// anywhere). A SIGBUS with si_code BUS_ADRERR (an access to a page the object no longer backs: the
// kernel's answer to touching a truncated MAP_SHARED file mapping) whose si_addr lies in a
// registered range makes the handler map anonymous zero pages over the whole range
// (MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, read-write), mark the slot damaged and return. The
// kernel then restarts the faulting instruction, which now finds memory and succeeds. Any other
// SIGBUS goes to the handler that was installed before ours, or kills the process as it would have.
//
// Why calling mmap in the handler is safe here. POSIX does not list mmap as async-signal-safe, but
// on Linux with glibc it is a plain system-call wrapper: no lock, no allocation, no state other
// than errno (which the handler saves and restores). The package is Linux-only. In the kernel,
// MAP_FIXED unmaps the old pages and maps the new ones inside one hold of the process's mmap lock,
// so another thread never sees a hole: it sees the file pages (and faults, and waits for the first
// handler in `replace`) or the zero pages. sigaction and raise, used when chaining, are on the
// POSIX list.
//
// Limits.
// - Only accesses made by user-space code are caught. A system call handed a pointer into the
//   truncated range (write(2), a futex) fails with EFAULT instead; no signal is raised.
// - After the replacement the range is private to this process: other processes no longer see our
//   writes and we no longer see theirs. Its contents are zeros. The owner of the range must check
//   `shim_guard_damaged` and treat the segment as gone; everything read from it before noticing
//   must already be validated as hostile input (which it has to be anyway).
// - Concurrent accesses by several threads may lose writes to the zero pages (a thread that
//   faulted first and retried may write before a later fault's handler returns): irrelevant, since
//   the contents are meaningless once damaged.
// - A range must be unregistered before it is unmapped, and a range is only accessed while
//   registered. Unregistering while another thread still touches the range is a use-after-unmap
//   bug of the caller; the handler might then map zeros over whatever replaced the range.
// - A SIGBUS handler installed by someone else after ours, without chaining to ours, disables the
//   guard. A thread that blocks SIGBUS is killed by the kernel on such a fault (the kernel forces
//   synchronous fault signals through).
// - SA_ONSTACK: the handler runs on the thread's alternate signal stack if it has one, otherwise on
//   the thread's stack (it needs only a few hundred bytes).
// - After fork, the child inherits the table together with the mappings it describes, so the guard
//   keeps working there.
#define _GNU_SOURCE
#include "CShim.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

enum { SLOT_FREE = 0, SLOT_CLAIMED = 1, SLOT_ACTIVE = 2 };
enum { DAMAGE_NONE = 0, DAMAGE_REPLACING = 1, DAMAGE_REPLACED = 2, DAMAGE_FAILED = 3 };

// One slot, split into arrays so the damage flags can be declared to Swift on their own.
// `state` moves FREE -> CLAIMED (a registration claims it by CAS) -> ACTIVE (release store, after
// base, size and damage are written) -> FREE (unregister, release store).
static int slot_state[SHIM_GUARD_SLOTS];
static uintptr_t slot_base[SHIM_GUARD_SLOTS];
static size_t slot_size[SHIM_GUARD_SLOTS];
int shim_guard_damage[SHIM_GUARD_SLOTS];
// One more than the highest slot ever claimed: the handler scans only below it.
static int slots_used;

static struct sigaction previous_action;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

// Maps zero pages over the range of `slot`, once: the first handler to fault in the range does
// it; handlers of other threads that faulted meanwhile wait until it is done. Returns whether the
// range now holds the zero pages (the access may be retried).
static int replace(int slot, uintptr_t base, size_t size) {
    int expected = DAMAGE_NONE;
    // Acquire: a failed CAS that reads the outcome (REPLACED) pairs with its release store below.
    // Winning publishes nothing (REPLACING only makes the others wait).
    if (__atomic_compare_exchange_n(&shim_guard_damage[slot], &expected, DAMAGE_REPLACING, 0,
                                    __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
        void *zeros = mmap((void *)base, size, PROT_READ | PROT_WRITE,
                           MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        int outcome = zeros == MAP_FAILED ? DAMAGE_FAILED : DAMAGE_REPLACED;
        // Release: a waiting handler that acquires REPLACED returns after our mmap (which the
        // kernel completed before returning) and retries on the zero pages.
        __atomic_store_n(&shim_guard_damage[slot], outcome, __ATOMIC_RELEASE);
        return outcome == DAMAGE_REPLACED;
    }
    // Another thread's handler is replacing the range, or has. A wait of a few microseconds at
    // most (one mmap call); acquire pairs with its release store.
    while (expected == DAMAGE_REPLACING) {
        shim_cpu_pause();
        expected = __atomic_load_n(&shim_guard_damage[slot], __ATOMIC_ACQUIRE);
    }
    return expected == DAMAGE_REPLACED;
}

// Hands a SIGBUS that is not ours to whoever would have had it without the guard.
static void chain(int signal, siginfo_t *info, void *context) {
    // sa_handler and sa_sigaction share storage; SIG_DFL and SIG_IGN are checked first because a
    // flags word with SA_SIGINFO may come with either of them.
    void (*previous)(int) = previous_action.sa_handler;
    if (previous != SIG_DFL && previous != SIG_IGN) {
        if (previous_action.sa_flags & SA_SIGINFO) {
            previous_action.sa_sigaction(signal, info, context);
        } else {
            previous(signal);
        }
        return;
    }
    if (previous == SIG_IGN && info != NULL && info->si_code <= 0) {
        // Sent by a process (kill, tgkill, sigqueue) to a process that ignored SIGBUS: ignored.
        return;
    }
    // Default action (a fault ignored with SIG_IGN is fatal too: the kernel forces it). Restore it
    // and re-raise: the signal stays pending while this handler runs (SIGBUS is blocked in it),
    // and kills the process with SIGBUS when the handler returns.
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(SIGBUS, &fallback, NULL);
    raise(SIGBUS);
}

static void handler(int signal, siginfo_t *info, void *context) {
    int saved_errno = errno;
    // BUS_ADRERR: the page is not backed any more (the object is shorter than the mapping). Other
    // codes (misalignment, hardware memory errors) and signals sent by processes (si_code <= 0,
    // whose si_addr means nothing) are not ours.
    if (info != NULL && info->si_code == BUS_ADRERR) {
        uintptr_t address = (uintptr_t)info->si_addr;
        // Relaxed: a range that can fault was registered before the access that faulted (that
        // access happens after the registration, or it could not know the address), so this load
        // sees a high-water mark that covers the range's slot.
        int used = __atomic_load_n(&slots_used, __ATOMIC_RELAXED);
        for (int slot = 0; slot < used; slot++) {
            // Acquire pairs with the release store of ACTIVE in shim_guard_register: base and
            // size, read next, are the ones this registration wrote.
            if (__atomic_load_n(&slot_state[slot], __ATOMIC_ACQUIRE) != SLOT_ACTIVE) continue;
            // Relaxed: ordered by the acquire load of the state above.
            uintptr_t base = __atomic_load_n(&slot_base[slot], __ATOMIC_RELAXED);
            size_t size = __atomic_load_n(&slot_size[slot], __ATOMIC_RELAXED);
            if (address - base < size) {
                if (replace(slot, base, size)) {
                    errno = saved_errno;
                    return;  // The kernel restarts the access; it now finds the zero pages.
                }
                break;  // mmap failed: nothing we can do, let the signal take its course.
            }
        }
    }
    errno = saved_errno;
    chain(signal, info, context);
}

static void install(void) {
    // Read the current action first and install ours afterwards, so `previous_action` is complete
    // before our handler can run and read it.
    sigaction(SIGBUS, NULL, &previous_action);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = handler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGBUS, &action, NULL);
}

int shim_guard_register(void *base, size_t size) {
    pthread_once(&install_once, install);
    for (int slot = 0; slot < SHIM_GUARD_SLOTS; slot++) {
        int expected = SLOT_FREE;
        // Relaxed peek, then a relaxed CAS: claiming publishes nothing yet (the handler ignores
        // CLAIMED slots); the release store of ACTIVE below publishes.
        if (__atomic_load_n(&slot_state[slot], __ATOMIC_RELAXED) != SLOT_FREE) continue;
        if (!__atomic_compare_exchange_n(&slot_state[slot], &expected, SLOT_CLAIMED, 0,
                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED)) continue;
        // Raise the high-water mark (a CAS-max) before publishing, so a handler that sees the slot
        // also scans up to it. Relaxed: see the handler (faults in the range come after we return).
        int used = __atomic_load_n(&slots_used, __ATOMIC_RELAXED);
        while (used < slot + 1 &&
               !__atomic_compare_exchange_n(&slots_used, &used, slot + 1, 0,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
        // Relaxed: published by the release store of ACTIVE.
        __atomic_store_n(&slot_base[slot], (uintptr_t)base, __ATOMIC_RELAXED);
        __atomic_store_n(&slot_size[slot], size, __ATOMIC_RELAXED);
        __atomic_store_n(&shim_guard_damage[slot], DAMAGE_NONE, __ATOMIC_RELAXED);
        // Release: a handler that acquires ACTIVE sees the base, size and damage written above.
        __atomic_store_n(&slot_state[slot], SLOT_ACTIVE, __ATOMIC_RELEASE);
        return slot;
    }
    return -1;
}

void shim_guard_unregister(int slot) {
    if (slot < 0 || slot >= SHIM_GUARD_SLOTS) return;
    // Release: our last accesses to the range happen before the slot can be claimed again.
    __atomic_store_n(&slot_state[slot], SLOT_FREE, __ATOMIC_RELEASE);
}
