/* Waiting in the kernel on memory shared between processes: futex words and
 * robust, process-shared pthread mutexes whose waits a signal interrupts.
 *
 * glibc's pthread_mutex_lock and pthread_mutex_timedlock restart their futex
 * wait after a signal, so a Python program blocked in one could not run its
 * signal handlers (Ctrl-C).  svk_robust_lock takes the mutex with
 * pthread_mutex_trylock (which keeps glibc's robust-list bookkeeping, so the
 * kernel releases the mutex when its owner dies) and sleeps, between tries,
 * in a futex wait of its own that returns EINTR on a signal.  It speaks the
 * protocol of glibc's robust, non-PI mutexes: the lock word (the first int
 * of pthread_mutex_t) holds the owner's thread id, FUTEX_WAITERS when
 * someone may sleep on it (unlock then wakes one), and FUTEX_OWNER_DIED
 * after the kernel cleaned up a dead owner.
 */
#ifndef SYSVKIT_ROBUST_H
#define SYSVKIT_ROBUST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef __GLIBC__
#error "sysvkit's robust mutexes speak glibc's lock-word protocol"
#endif

/* Sleep while *word == expected, until woken, a signal (EINTR) or the
 * absolute CLOCK_MONOTONIC deadline (ETIMEDOUT; NULL: no deadline).
 * 0 when woken (perhaps spuriously), EAGAIN if *word != expected. */
static inline int svk_futex_wait(uint32_t *word, uint32_t expected,
                                 const struct timespec *deadline) {
    long r = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline,
                     NULL, FUTEX_BITSET_MATCH_ANY);
    return r == -1 ? errno : 0;
}

/* Wake up to n sleepers on word; returns how many were woken (or -errno). */
static inline int svk_futex_wake(uint32_t *word, int n) {
    long r = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
    return r == -1 ? -errno : (int)r;
}

/* Initialise a robust, process-shared, error-checking mutex in place. */
static inline int svk_robust_init(pthread_mutex_t *m) {
    pthread_mutexattr_t attr;
    int r = pthread_mutexattr_init(&attr);
    if (r) return r;
    if (!(r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) &&
        !(r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) &&
        !(r = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK)))
        r = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return r;
}

static inline uint32_t *svk_lock_word(pthread_mutex_t *m) {
    return (uint32_t *)&m->__data.__lock;
}

/* Take m, sleeping in the kernel while another thread holds it.
 * 0: taken.  EOWNERDEAD: taken after its owner died (make it consistent
 * with pthread_mutex_consistent, or it becomes unusable on release).
 * ETIMEDOUT: not taken by the absolute CLOCK_MONOTONIC deadline (NULL: no
 * deadline; a deadline in the past tries once).  EINTR: a signal arrived;
 * not taken: run the handlers and call again.  EDEADLK: the caller holds it.
 * ENOTRECOVERABLE, EINVAL: unusable. */
static inline int svk_robust_lock(pthread_mutex_t *m, const struct timespec *deadline) {
    uint32_t *word = svk_lock_word(m);
    int slept = 0;
    for (;;) {
        int r = pthread_mutex_trylock(m);
        if (r != EBUSY) {
            /* A trylock swaps 0 for our tid alone, dropping FUTEX_WAITERS;
             * having slept, others may sleep too: keep the bit so that our
             * unlock wakes the next one (as glibc's own lock path does). */
            if ((r == 0 || r == EOWNERDEAD) && slept)
                __atomic_fetch_or(word, FUTEX_WAITERS, __ATOMIC_RELAXED);
            return r;
        }
        uint32_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
        if (v == 0 || (v & FUTEX_OWNER_DIED))
            continue;                       /* freed meanwhile: try again */
        if (!(v & FUTEX_WAITERS)) {
            if (!__atomic_compare_exchange_n(word, &v, v | FUTEX_WAITERS, 0,
                                             __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                continue;
            v |= FUTEX_WAITERS;
        }
        r = svk_futex_wait(word, v, deadline);
        slept = 1;
        if (r == EINTR || r == ETIMEDOUT)
            return r;
        /* 0 (woken) or EAGAIN (the word changed): try again */
    }
}

/* An absolute CLOCK_MONOTONIC deadline `seconds` from now (seconds >= 0). */
static inline void svk_deadline(struct timespec *ts, double seconds) {
    if (!(seconds >= 0)) seconds = 0;
    if (seconds > 1e9) seconds = 1e9;      /* about 31 years */
    clock_gettime(CLOCK_MONOTONIC, ts);
    double whole = (double)(long long)seconds;
    long long sec = (long long)ts->tv_sec + (long long)whole;
    long long nsec = (long long)ts->tv_nsec + (long long)((seconds - whole) * 1e9);
    if (nsec >= 1000000000LL) { sec += 1; nsec -= 1000000000LL; }
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)nsec;
}

#endif
