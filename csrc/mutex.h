/* sysvkit.Mutex: the layout of its segment and the checks made before
 * glibc is handed memory that other processes can write.
 *
 * Segment: svk_header (structs.h, kind SVK_KIND_MUTEX) at 0, then at
 * SVK_HEADER_SIZE one robust, process-shared, error-checking
 * pthread_mutex_t.  The rest of the page is zeros.
 *
 * The mutex's lock word is glibc's: the owner's thread id, FUTEX_WAITERS,
 * FUTEX_OWNER_DIED (robust.h).  Before each lock and unlock, the mutex's
 * kind word is checked against the kind a fresh robust mutex has, so that a
 * scribbled kind can never send glibc down a path that reads pointers out
 * of the segment as another mutex type.
 */
#ifndef SYSVKIT_MUTEX_H
#define SYSVKIT_MUTEX_H

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "robust.h"
#include "structs.h"

#define SVK_MUTEX_VERSION 1

typedef struct svk_mutex {
    pthread_mutex_t m;
} svk_mutex;

/* The kind word glibc gives a robust, process-shared, error-checking mutex
 * (computed once, from a mutex initialised the way the segment's is). */
static inline int svk_mutex_kind(void) {
    static int kind = -1;
    if (kind < 0) {
        pthread_mutex_t probe;
        if (svk_robust_init(&probe) == 0) {
            kind = probe.__data.__kind;
            pthread_mutex_destroy(&probe);
        }
    }
    return kind;
}

static inline int svk_mutex_sane(const svk_mutex *mx) {
    return __atomic_load_n(&mx->m.__data.__kind, __ATOMIC_RELAXED) == svk_mutex_kind();
}

static inline uint32_t svk_mutex_word(svk_mutex *mx) {
    return __atomic_load_n(svk_lock_word(&mx->m), __ATOMIC_RELAXED);
}

static inline void svk_mutex_set_word(svk_mutex *mx, uint32_t v) {
    __atomic_store_n(svk_lock_word(&mx->m), v, __ATOMIC_RELEASE);
}

static inline pid_t svk_gettid(void) {
    return (pid_t)syscall(SYS_gettid);
}

/* True while thread `tid` exists (in this PID namespace). */
static inline int svk_tid_alive(pid_t tid) {
    if (tid <= 0) return 0;
    return kill(tid, 0) == 0 || errno == EPERM;
}

/* The owner recorded in the lock word is gone without the kernel having
 * released the mutex (its robust list could not be walked: the owner's
 * mapping was gone, or the list was over the kernel's limit).  Do what the
 * kernel does for a dead owner: clear the thread id, keep FUTEX_WAITERS,
 * set FUTEX_OWNER_DIED, and wake one sleeper.  1 if this call did it. */
static inline int svk_mutex_reap(svk_mutex *mx) {
    uint32_t *word = svk_lock_word(&mx->m);
    uint32_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
    pid_t tid = (pid_t)(v & FUTEX_TID_MASK);
    if (tid == 0 || svk_tid_alive(tid))
        return 0;
    uint32_t dead = (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
    if (!__atomic_compare_exchange_n(word, &v, dead, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return 0;
    svk_futex_wake(word, 1);
    return 1;
}

#endif
