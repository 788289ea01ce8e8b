/* Queue: Python objects over a Channel (channel.h), written down once here.
 *
 * Segment layout (byte offsets from the segment's start):
 *
 *     0                     svk_header (structs.h), kind SVK_KIND_QUEUE, version 1
 *     64                    svk_channel (channel.h)
 *     448                   the ring: ring_size bytes
 *     448 + ring_size       svk_qside: the table of spill slots (below)
 *
 * A message of the ring (a "record" of channel.h) holds one object:
 *
 *     u32 magic_kind        SVK_Q_MAGIC | kind (low byte)
 *     u32 nbufs             out-of-band buffers (kind PICKLE)
 *     u64 length            the pickle's length (PICKLE) or the data's (BYTES, BYTEARRAY)
 *     u64 buflen[nbufs]
 *     the pickle (or the data), then each buffer at the next multiple of 16
 *
 * An object too large for the ring travels in a segment of its own (a
 * "spill"), and the ring carries a reference instead:
 *
 *     u32 magic_kind        SVK_Q_MAGIC | SVK_Q_SPILL
 *     u32 slot              index into the slot table
 *     u64 gen               the slot's generation when the sender claimed it
 *     u64 length            bytes of the record held in the spill
 *
 * The spill segment holds a 64-byte svk_qspill header, then a record as
 * above.
 *
 * Ownership of a spill passes through its slot.  The slot's word packs
 * (generation << 40) | (state << 32) | pid; it changes only by
 * compare-and-swap:
 *
 *     FREE       nobody's.
 *     CLAIMED    pid is the sender's.  The sender writes size and creator,
 *                then creates the segment (IPC_PRIVATE), stores its id,
 *                fills it, and sends the reference through the ring; then
 *                swaps CLAIMED -> SENT.
 *     SENT       the queue's: a reference is in the ring.
 *     RECEIVING  pid is the receiver's.  A receiver swaps CLAIMED/SENT ->
 *                RECEIVING while holding the receive lock and before it
 *                publishes the head past the reference, attaches the
 *                segment, marks it removed (IPC_RMID: the kernel frees it
 *                at the last detach, death included), frees the slot, and
 *                only then copies the object out.
 *
 * A slot whose pid is a dead process (CLAIMED or RECEIVING) is reaped
 * under the receive lock: if a reference to it (slot and generation) is
 * among the unread records, the object is still in the queue (SENT);
 * otherwise its segment is removed and the slot freed.  A segment made by
 * a sender killed before it stored the id is found by its creator's pid
 * and its exact size (which the sender wrote into the slot first).  Before
 * removing a segment by id, the reaper checks that it is still the one the
 * slot describes (private key, creator, size): ids are reused.
 */
#ifndef SYSVKIT_QUEUE_H
#define SYSVKIT_QUEUE_H

#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include "channel.h"

#define SVK_QUEUE_VERSION   1

#define SVK_Q_MAGIC         0x51564b00u     /* "\0KVQ" with the kind in the low byte */
#define SVK_Q_PICKLE        1
#define SVK_Q_BYTES         2
#define SVK_Q_BYTEARRAY     3
#define SVK_Q_SPILL         4

#define SVK_Q_HEAD          16              /* record header before buflen[] */
#define SVK_Q_REF           24              /* a spill reference record */
#define SVK_Q_MAXBUFS       4096
#define SVK_Q_ALIGN         16

#define SVK_Q_SIDE_MAGIC    0x51534944u
#define SVK_Q_NSLOTS        512

#define SVK_Q_FREE          0u
#define SVK_Q_CLAIMED       1u
#define SVK_Q_SENT          2u
#define SVK_Q_RECEIVING     3u

#define SVK_Q_SPILL_MAGIC   0x4c495053u     /* "SPIL" */
#define SVK_Q_SPILL_HEAD    64

typedef struct svk_qslot {
    uint64_t word;          /* gen << 40 | state << 32 | pid */
    int32_t  shmid;         /* -1 until the sender stored it */
    uint32_t creator;       /* the sender's pid (the segment's cpid) */
    uint64_t size;          /* the segment's exact size */
    uint64_t reserved;
} svk_qslot;

typedef struct svk_qside {
    uint32_t magic;
    uint32_t nslots;
    uint8_t  pad[56];
    svk_qslot slots[SVK_Q_NSLOTS];
} svk_qside;

typedef struct svk_qspill {
    uint32_t magic;
    uint32_t slot;
    uint64_t gen;
    uint64_t length;        /* bytes of the record after this header */
    int32_t  queue_id;      /* the queue's segment id */
    uint8_t  pad[36];
} svk_qspill;

_Static_assert(sizeof(svk_qslot) == 32, "svk_qslot layout");
_Static_assert(sizeof(svk_qspill) == SVK_Q_SPILL_HEAD, "svk_qspill layout");

#define SVK_Q_SIDE_SIZE (sizeof(svk_qside))

static inline uint64_t svk_q_word(uint64_t gen, uint32_t state, uint32_t pid) {
    return ((gen & 0xffffffu) << 40) | ((uint64_t)(state & 0xffu) << 32) | pid;
}
static inline uint32_t svk_q_state(uint64_t w) { return (uint32_t)(w >> 32) & 0xffu; }
static inline uint32_t svk_q_pid(uint64_t w) { return (uint32_t)w; }
static inline uint64_t svk_q_gen(uint64_t w) { return w >> 40; }

static inline uint64_t svk_q_load(uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline int svk_q_cas(uint64_t *p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}
static inline void svk_q_store_id(int32_t *p, int32_t v) {
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}
static inline int32_t svk_q_load_id(int32_t *p) {
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline void svk_q_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

static inline void svk_q_init(svk_qside *s) {
    memset(s, 0, sizeof(*s));
    s->magic = SVK_Q_SIDE_MAGIC;
    s->nslots = SVK_Q_NSLOTS;
    for (int i = 0; i < SVK_Q_NSLOTS; i++) s->slots[i].shmid = -1;
}

/* 1 if segment shmid is still the spill a slot describes: a private key,
 * made by `creator`, `size` bytes.  0 if not (or gone). */
static inline int svk_q_seg_matches(int shmid, uint32_t creator, uint64_t size) {
    struct shmid_ds ds;
    if (shmid < 0 || shmctl(shmid, IPC_STAT, &ds) != 0) return 0;
    return ds.shm_perm.__key == IPC_PRIVATE && (uint32_t)ds.shm_cpid == creator
        && (uint64_t)ds.shm_segsz == size;
}

/* Remove the spill segment shmid if it is still the one described. */
static inline void svk_q_seg_remove(int shmid, uint32_t creator, uint64_t size) {
    if (svk_q_seg_matches(shmid, creator, size)) shmctl(shmid, IPC_RMID, NULL);
}

/* With the receive lock held: 1 if a reference to (slot, gen) is among the
 * unread records, or if the ring cannot be read (so the caller keeps it);
 * 0 if there is none. */
static inline int svk_q_ref_pending(svk_channel *c, const char *ring, uint64_t rsize,
                                    uint32_t slot, uint64_t gen) {
    uint64_t head = svk_chan_load(&c->head), tail = svk_chan_load(&c->tail);
    uint64_t pos = head, off;
    uint32_t n, ref[6];
    if (!svk_chan_span_ok(head, tail, rsize)) return 1;
    while (pos < tail) {
        if (svk_chan_get_header(ring, rsize, pos, tail, &n, &off) != 0) return 1;
        if (n == SVK_Q_REF) {
            svk_chan_copy_out(ring, rsize, off, (char *)ref, SVK_Q_REF);
            if (ref[0] == (SVK_Q_MAGIC | SVK_Q_SPILL) && ref[1] == slot
                    && (((uint64_t)ref[3] << 32 | ref[2]) & 0xffffffu) == (gen & 0xffffffu))
                return 1;
        }
        pos += svk_chan_record_size(n);
    }
    return 0;
}

/* 1 if process pid exists (a zombie counts: the caller checks /proc). */
static inline int svk_q_pid_exists(uint32_t pid) {
    if (pid == 0) return 0;
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* Copy parts into a record: ring (wrapping) or plain memory. */
static inline void svk_q_scatter_ring(char *ring, uint64_t rsize, uint64_t off,
                                      const char *const *ptrs, const uint64_t *lens,
                                      const uint64_t *offs, int64_t nparts) {
    for (int64_t i = 0; i < nparts; i++)
        if (lens[i]) svk_chan_copy_in(ring, rsize, (off + offs[i]) % rsize, ptrs[i], lens[i]);
}

static inline void svk_q_scatter_mem(char *dst, const char *const *ptrs, const uint64_t *lens,
                                     const uint64_t *offs, int64_t nparts) {
    for (int64_t i = 0; i < nparts; i++)
        if (lens[i]) memcpy(dst + offs[i], ptrs[i], lens[i]);
}

#endif
