/* Channel: a first-in, first-out ring of byte messages in one System V
 * shared memory segment, written down once here.
 *
 * Segment layout (byte offsets from the segment's start):
 *
 *     0    svk_header (structs.h), kind SVK_KIND_CHANNEL, version 1
 *     64   svk_channel (below, 384 bytes: four groups of cache lines)
 *     448  the ring: ring_size bytes (a multiple of 8)
 *
 * Positions (tail, head) count bytes written into and taken out of the ring
 * since it was created; they only grow (2**64 bytes never wrap in practice).
 * The byte at position p is ring[p % ring_size].  Every record starts at a
 * multiple of 8:
 *
 *     u32 length     the message's length in bytes
 *     u32 tag        SVK_CHAN_TAG ^ (u32)(position >> 3): a record header
 *                    read at the wrong position does not pass for one
 *     payload        length bytes, then padding to a multiple of 8
 *
 * so a record takes 8 + round8(length) bytes.  The header never straddles
 * the end of the ring (8-aligned in a ring of a multiple of 8); a payload
 * may: it is copied in and out in two parts, and every message still
 * reaches the receiver as one piece.  So a message can be as large as the
 * ring less its header, with no wasted space at the end.
 *
 * Concurrency: senders take send_lock, receivers take recv_lock (robust,
 * process-shared mutexes, robust.h).  A sender holding send_lock writes its
 * record into free space at and after `tail`, then publishes it by storing
 * the new tail (release).  A receiver holding recv_lock reads the record at
 * `head`, copies it out, then publishes head past it.  Space beyond tail and
 * records before head are never read by the other side, so nothing half
 * written or half read is ever visible: publishing the position is the
 * commit.  Senders and receivers never wait for each other's locks.
 *
 * Death: a holder killed at any instant has published all of its operation
 * or none of it.  The kernel marks its robust mutex FUTEX_OWNER_DIED and the
 * next locker gets EOWNERDEAD; it finishes the counters from the intent
 * fields (a holder writes next_* before publishing the position, then the
 * counter), wakes everyone, and marks the mutex consistent.  A sender killed
 * mid-copy loses its message; a receiver killed mid-copy loses nothing (the
 * record stays at head for the next receiver).
 *
 * Hostile memory: glibc's unlock follows the mutex's robust-list links
 * (__list) in the segment and writes through them; the holder snapshots
 * the mutex right after taking it and restores it just before unlocking,
 * so scribbles made meanwhile cannot steer those writes.  Every position
 * and length read from the segment is checked against ring_size (cached in
 * the process when the channel was opened) before it is used.
 *
 * Waiting: data_word (receivers sleep on it while the ring is empty) and
 * space_word (senders sleep on it while it is full).  Bit 0 says "someone
 * may be asleep"; a sleeper sets it with an atomic OR, re-checks, then
 * futex-waits on the value it saw.  The other side, after publishing a
 * position, looks at the word (one load, no system call) and only when
 * bit 0 is set swaps in (word + 2) & ~1 and wakes all sleepers.  A sleeper
 * killed leaves the bit set until the next wake clears it.
 */
#ifndef SYSVKIT_CHANNEL_H
#define SYSVKIT_CHANNEL_H

#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <sched.h>
#include "structs.h"
#include "robust.h"

#define SVK_CHANNEL_VERSION      1
#define SVK_CHAN_RECORD_HEADER   8
#define SVK_CHAN_TAG             0x9e3779b9u
#define SVK_CHAN_MIN_RING        64
#define SVK_CHAN_MAX_MESSAGE     0xfffffff8u      /* fits a u32 length */

/* A mutex slot of fixed size, whatever the architecture's pthread_mutex_t. */
typedef union svk_chan_mutex {
    pthread_mutex_t m;
    uint8_t pad[64];
} svk_chan_mutex;

_Static_assert(sizeof(pthread_mutex_t) <= 64, "pthread_mutex_t must fit 64 bytes");

typedef struct svk_channel {
    /* Constant once created. */
    uint64_t capacity;            /* as asked for when created */
    uint64_t ring_size;           /* capacity rounded up to 8 */
    uint64_t ring_offset;         /* SVK_CHAN_RING_OFFSET */
    uint32_t removed;             /* set by remove() before it wakes sleepers (a hint) */
    uint32_t reserved0;
    uint8_t  pad0[32];
    /* Senders' side (under send_lock). */
    svk_chan_mutex send_lock;
    uint64_t tail;                /* position after the last published record */
    uint64_t sent;                /* messages published since creation */
    uint64_t send_next_tail;      /* intent: the tail the holder is publishing */
    uint64_t send_next_sent;      /* intent: the matching count */
    uint8_t  pad1[32];
    /* Receivers' side (under recv_lock). */
    svk_chan_mutex recv_lock;
    uint64_t head;                /* position of the oldest record not yet taken */
    uint64_t received;            /* messages taken since creation */
    uint64_t recv_next_head;
    uint64_t recv_next_received;
    uint8_t  pad2[32];
    /* Futex words. */
    uint32_t data_word;           /* receivers sleep here */
    uint32_t space_word;          /* senders sleep here */
    uint8_t  pad3[56];
} svk_channel;

#define SVK_CHAN_RING_OFFSET (SVK_HEADER_SIZE + sizeof(svk_channel))

_Static_assert(sizeof(svk_channel) == 384, "svk_channel layout");
_Static_assert(__builtin_offsetof(svk_channel, send_lock) == 64, "svk_channel layout");
_Static_assert(__builtin_offsetof(svk_channel, tail) == 128, "svk_channel layout");
_Static_assert(__builtin_offsetof(svk_channel, recv_lock) == 192, "svk_channel layout");
_Static_assert(__builtin_offsetof(svk_channel, head) == 256, "svk_channel layout");
_Static_assert(__builtin_offsetof(svk_channel, data_word) == 320, "svk_channel layout");

static inline uint64_t svk_chan_record_size(uint64_t n) {
    return SVK_CHAN_RECORD_HEADER + ((n + 7) & ~(uint64_t)7);
}

static inline uint32_t svk_chan_tag(uint64_t pos) {
    return SVK_CHAN_TAG ^ (uint32_t)(pos >> 3);
}

/* The __kind glibc gives our mutexes (robust, shared, error-checking). */
static inline int svk_chan_expected_kind(void) {
    pthread_mutex_t m;
    memset(&m, 0, sizeof(m));
    if (svk_robust_init(&m)) return -1;
    int kind = m.__data.__kind;
    pthread_mutex_destroy(&m);
    return kind;
}

/* Initialise a zeroed channel header. 0 or an errno. */
static inline int svk_chan_init(svk_channel *c, uint64_t capacity, uint64_t ring_size) {
    int r;
    memset(c, 0, sizeof(*c));
    c->capacity = capacity;
    c->ring_size = ring_size;
    c->ring_offset = SVK_CHAN_RING_OFFSET;
    if ((r = svk_robust_init(&c->send_lock.m))) return r;
    return svk_robust_init(&c->recv_lock.m);
}

/* -- locks ------------------------------------------------------------------ */

typedef struct svk_chan_snap {
    uint8_t b[sizeof(pthread_mutex_t)];
} svk_chan_snap;

/* 1 if the mutex still looks like one of ours. */
static inline int svk_chan_kind_ok(svk_chan_mutex *m, int kind) {
    return __atomic_load_n(&m->m.__data.__kind, __ATOMIC_RELAXED) == kind;
}

/* After taking m: remember how it looks, for svk_chan_unlock. */
static inline void svk_chan_snapshot(svk_chan_mutex *m, svk_chan_snap *s) {
    memcpy(s->b, &m->m, sizeof(pthread_mutex_t));
}

/* Put back what the holder saw (all but the lock word, where only waiters
 * may have added FUTEX_WAITERS), then unlock. */
static inline void svk_chan_unlock(svk_chan_mutex *m, const svk_chan_snap *s) {
    uint32_t mine;
    memcpy(&mine, s->b, sizeof(mine));
    mine &= FUTEX_TID_MASK;
    memcpy((uint8_t *)&m->m + sizeof(uint32_t), s->b + sizeof(uint32_t),
           sizeof(pthread_mutex_t) - sizeof(uint32_t));
    uint32_t *word = svk_lock_word(&m->m);
    uint32_t now = __atomic_load_n(word, __ATOMIC_RELAXED);
    if ((now & FUTEX_TID_MASK) != mine || (now & ~(FUTEX_TID_MASK | FUTEX_WAITERS)))
        __atomic_store_n(word, mine | FUTEX_WAITERS, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&m->m);
}

/* The thread id recorded in a held mutex's lock word (0 if free). */
static inline uint32_t svk_chan_owner(svk_chan_mutex *m) {
    return __atomic_load_n(svk_lock_word(&m->m), __ATOMIC_RELAXED) & FUTEX_TID_MASK;
}

/* -- waking ----------------------------------------------------------------- */

/* Wake the sleepers on word if bit 0 says there may be some. */
static inline void svk_chan_wake(uint32_t *word) {
    uint32_t v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    while (v & 1u) {
        if (__atomic_compare_exchange_n(word, &v, (v + 2u) & ~1u, 0,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
            svk_futex_wake(word, INT_MAX);
            return;
        }
    }
}

/* Wake every sleeper whatever bit 0 says (after a repair, or remove()). */
static inline void svk_chan_wake_all(uint32_t *word) {
    __atomic_fetch_add(word, 2u, __ATOMIC_SEQ_CST);
    svk_futex_wake(word, INT_MAX);
}

/* Announce a sleeper: returns the value to futex-wait on. */
static inline uint32_t svk_chan_announce(uint32_t *word) {
    return __atomic_fetch_or(word, 1u, __ATOMIC_SEQ_CST) | 1u;
}

/* remove() marks the channel before it wakes every sleeper. */
static inline void svk_chan_mark_removed(svk_channel *c) {
    __atomic_store_n(&c->removed, 1u, __ATOMIC_SEQ_CST);
}

static inline int svk_chan_removed(svk_channel *c) {
    return __atomic_load_n(&c->removed, __ATOMIC_RELAXED) != 0;
}

/* -- positions -------------------------------------------------------------- */

static inline uint64_t svk_chan_load(const uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* 1 if head..tail is a possible span of unread records in a ring of rsize. */
static inline int svk_chan_span_ok(uint64_t head, uint64_t tail, uint64_t rsize) {
    return ((head | tail) & 7) == 0 && head <= tail && tail - head <= rsize;
}

/* Publish a sender's records: the intent, the tail, the count, then wake
 * receivers.  The count's store is sequentially consistent (a full barrier
 * on every architecture), which orders the tail before the look at
 * data_word, against a receiver's announce-then-check. */
static inline void svk_chan_publish_send(svk_channel *c, uint64_t tail, uint64_t count) {
    uint64_t sent = c->sent + count;
    c->send_next_tail = tail;
    c->send_next_sent = sent;
    __atomic_store_n(&c->tail, tail, __ATOMIC_RELEASE);
    __atomic_store_n(&c->sent, sent, __ATOMIC_SEQ_CST);
    svk_chan_wake(&c->data_word);
}

static inline void svk_chan_publish_receive(svk_channel *c, uint64_t head, uint64_t count) {
    uint64_t received = c->received + count;
    c->recv_next_head = head;
    c->recv_next_received = received;
    __atomic_store_n(&c->head, head, __ATOMIC_RELEASE);
    __atomic_store_n(&c->received, received, __ATOMIC_SEQ_CST);
    svk_chan_wake(&c->space_word);
}

/* EOWNERDEAD on send_lock / recv_lock: finish the dead holder's counter if
 * it had published its position, and wake everyone. */
static inline void svk_chan_repair_send(svk_channel *c) {
    if (__atomic_load_n(&c->tail, __ATOMIC_ACQUIRE) == c->send_next_tail)
        __atomic_store_n(&c->sent, c->send_next_sent, __ATOMIC_SEQ_CST);
    svk_chan_wake_all(&c->data_word);
    svk_chan_wake_all(&c->space_word);
}

static inline void svk_chan_repair_receive(svk_channel *c) {
    if (__atomic_load_n(&c->head, __ATOMIC_ACQUIRE) == c->recv_next_head)
        __atomic_store_n(&c->received, c->recv_next_received, __ATOMIC_SEQ_CST);
    svk_chan_wake_all(&c->data_word);
    svk_chan_wake_all(&c->space_word);
}

/* -- records ---------------------------------------------------------------- */

/* Copy n bytes into the ring at offset off, continuing at 0 past its end. */
static inline void svk_chan_copy_in(char *ring, uint64_t rsize, uint64_t off,
                                    const char *src, uint64_t n) {
    uint64_t first = rsize - off;
    if (n <= first) {
        memcpy(ring + off, src, n);
    } else {
        memcpy(ring + off, src, first);
        memcpy(ring, src + first, n - first);
    }
}

static inline void svk_chan_copy_out(const char *ring, uint64_t rsize, uint64_t off,
                                     char *dst, uint64_t n) {
    uint64_t first = rsize - off;
    if (n <= first) {
        memcpy(dst, ring + off, n);
    } else {
        memcpy(dst, ring + off, first);
        memcpy(dst + first, ring, n - first);
    }
}

/* Write a record header at position pos; returns the payload's offset. */
static inline uint64_t svk_chan_put_header(char *ring, uint64_t rsize, uint64_t pos,
                                           uint32_t n) {
    uint64_t off = pos % rsize;
    uint32_t hdr[2] = {n, svk_chan_tag(pos)};
    memcpy(ring + off, hdr, sizeof(hdr));
    off += SVK_CHAN_RECORD_HEADER;
    return off == rsize ? 0 : off;
}

/* Read and check the record header at position head, with tail the end of
 * the published records (head < tail, span checked).  0 and *n, *payload
 * set; -1 if it is not a valid record there. */
static inline int svk_chan_get_header(const char *ring, uint64_t rsize, uint64_t head,
                                      uint64_t tail, uint32_t *n, uint64_t *payload) {
    uint64_t off = head % rsize;
    uint32_t hdr[2];
    memcpy(hdr, ring + off, sizeof(hdr));
    if (hdr[1] != svk_chan_tag(head) || svk_chan_record_size(hdr[0]) > tail - head)
        return -1;
    *n = hdr[0];
    off += SVK_CHAN_RECORD_HEADER;
    *payload = off == rsize ? 0 : off;
    return 0;
}

static inline void svk_chan_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Before sleeping, poll for up to `ns` nanoseconds (a few microseconds: a
 * peer running on another CPU answers within that, and a wake-up through
 * the kernel costs more; no polling when this thread may run on one CPU
 * only): 1 as soon as a receiver (for_data) would find a
 * record or a sender would find room for rec bytes, or the positions look
 * impossible (the locked path reports those); 0 when the time is up. */
static inline int svk_chan_spin(svk_channel *c, int for_data, uint64_t rec, uint64_t rsize,
                                long ns) {
    struct timespec t0, t;
    cpu_set_t cpus;
    /* Alone on one CPU (pinned, or a one-CPU machine) the peer cannot run
     * while we poll: sleep at once. */
    if (sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) <= 1)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1;; i++) {
        uint64_t head = __atomic_load_n(&c->head, __ATOMIC_ACQUIRE);
        uint64_t tail = __atomic_load_n(&c->tail, __ATOMIC_ACQUIRE);
        if (!svk_chan_span_ok(head, tail, rsize)) return 1;
        if (for_data ? tail != head : tail + rec - head <= rsize) return 1;
        svk_chan_relax();
        if ((i & 15) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t);
            if ((long long)(t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec) > ns)
                return 0;
        }
    }
}

/* 1 if thread `tid` exists (in this PID namespace). */
static inline int svk_chan_thread_exists(uint32_t tid) {
    if (tid == 0) return 0;
    return kill((pid_t)tid, 0) == 0 || errno != ESRCH;
}

#endif
