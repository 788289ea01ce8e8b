/* Platform gaps for sysvkit's core: union semun, *_STAT_ANY on old headers,
 * and the per-thread timer that bounds msgsnd/msgrcv, which have no timeout.
 */
#ifndef SYSVKIT_COMPAT_H
#define SYSVKIT_COMPAT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/types.h>

/* The caller of semctl(2) defines this union (see the man page). */
union sysvkit_semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
    struct seminfo *__buf;
};

#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif
#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif
#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#ifndef SHM_NORESERVE
#define SHM_NORESERVE 010000
#endif
#ifndef SEMVMX
#define SEMVMX 32767
#endif

/* glibc spells the key field of struct ipc_perm "__key". */
#define sysvkit_perm_key(perm) ((perm).__key)

static inline double sysvkit_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void sysvkit_to_timespec(double seconds, struct timespec *ts)
{
    if (seconds < 0) seconds = 0;
    ts->tv_sec = (time_t)seconds;
    ts->tv_nsec = (long)((seconds - (double)ts->tv_sec) * 1e9);
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec += 1; ts->tv_nsec -= 1000000000L; }
    if (ts->tv_nsec < 0) ts->tv_nsec = 0;
}

/* ---- Timed msgsnd/msgrcv --------------------------------------------------
 * A POSIX timer aimed at the calling thread (SIGEV_THREAD_ID) delivers a
 * real-time signal at the deadline; its handler does nothing, so the blocked
 * System V call fails with EINTR (these calls are never restarted, whatever
 * SA_RESTART says) and the caller sees that its deadline has passed.  The
 * timer repeats every millisecond after the deadline, which closes the race
 * in which the first expiry lands just before the thread enters the call.
 * The handler is installed with SA_RESTART, so a late expiry cannot break an
 * unrelated call.  The signal is the highest real-time signal whose
 * disposition was still the default, so the program's own handlers are left
 * alone; it is chosen under the GIL, and chosen again if the program later
 * installs a handler of its own on it.
 */
static int sysvkit_timer_signo = 0;

/* Counts forks (in the child), so that a wait can tell without a system
 * call that it is now in a child, which has none of its parent's timers. */
static unsigned long sysvkit_fork_generation = 0;
static int sysvkit_atfork_done = 0;

static void sysvkit_after_fork_in_child(void) { sysvkit_fork_generation++; }

static void sysvkit_timer_handler(int signo) { (void)signo; }

static int sysvkit_timer_signal(void)
{
    int s;
    if (sysvkit_timer_signo > 0) {
        struct sigaction cur;
        if (sigaction(sysvkit_timer_signo, NULL, &cur) == 0
                && !(cur.sa_flags & SA_SIGINFO)
                && cur.sa_handler == sysvkit_timer_handler)
            return sysvkit_timer_signo;
        /* The program has since installed its own handler there: leave
         * that signal to it and pick another. */
        sysvkit_timer_signo = 0;
    }
    for (s = SIGRTMAX; s >= SIGRTMIN; s--) {
        struct sigaction old, sa;
        if (sigaction(s, NULL, &old) != 0)
            continue;
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = sysvkit_timer_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        if (sigaction(s, &sa, NULL) == 0) {
            sysvkit_timer_signo = s;
            return s;
        }
    }
    errno = EAGAIN;
    return -1;
}

typedef struct {
    timer_t id;
    sigset_t oldmask;
    unsigned long generation;   /* sysvkit_fork_generation when armed */
    int active;
    int signo;
    int was_blocked; /* the signal was blocked before: block it again */
} sysvkit_timer;

/* Arm a timer that interrupts this thread at the absolute CLOCK_MONOTONIC
 * deadline.  Returns 0, or -1 with errno set. */
static int sysvkit_timer_start(sysvkit_timer *t, double deadline)
{
    struct sigevent sev;
    struct itimerspec its;
    sigset_t set;
    int signo = sysvkit_timer_signal();

    t->active = 0;
    if (signo < 0)
        return -1;
    if (!sysvkit_atfork_done) {
        if (pthread_atfork(NULL, NULL, sysvkit_after_fork_in_child) != 0) {
            errno = ENOMEM;
            return -1;
        }
        sysvkit_atfork_done = 1;
    }
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = signo;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &t->id) != 0)
        return -1;
    sysvkit_to_timespec(deadline, &its.it_value);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    its.it_interval.tv_sec = 0;
    its.it_interval.tv_nsec = 1000000L;
    if (timer_settime(t->id, TIMER_ABSTIME, &its, NULL) != 0) {
        int err = errno;
        timer_delete(t->id);
        errno = err;
        return -1;
    }
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, &t->oldmask);
    t->signo = signo;
    t->was_blocked = sigismember(&t->oldmask, signo) == 1;
    t->generation = sysvkit_fork_generation;
    t->active = 1;
    return 0;
}

static void sysvkit_timer_stop(sysvkit_timer *t)
{
    if (!t->active)
        return;
    /* After a fork (by a signal handler that ran during the wait), the id
     * names nothing of ours in the child: leave it alone. */
    if (t->generation == sysvkit_fork_generation)
        timer_delete(t->id);
    /* Usually the signal was not blocked: then the mask is as it was, and
     * the wake-up saves a system call. */
    if (t->was_blocked) {
        /* Block it again, and take back an expiry that came after the last
         * delivery: left pending, it would reach whatever handler the
         * program puts on that signal later (or kill it under SIG_DFL). */
        static const struct timespec zero = {0, 0};
        sigset_t set;
        pthread_sigmask(SIG_SETMASK, &t->oldmask, NULL);
        sigemptyset(&set);
        sigaddset(&set, t->signo);
        while (sigtimedwait(&set, NULL, &zero) > 0)
                ;
    }
    t->active = 0;
}

/* True if this process is a child forked while the timer was armed: fork
 * does not copy timers, so the wait must arm a new one or never time out. */
static int sysvkit_timer_forked(const sysvkit_timer *t)
{
    return t->active && t->generation != sysvkit_fork_generation;
}

#endif /* SYSVKIT_COMPAT_H */
