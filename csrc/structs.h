/* The common header of every sysvkit structure that lives in a System V
 * shared memory segment (Mutex, Channel, SharedArray), written down once.
 *
 * Offset 0 of the segment holds a 64-byte svk_header; the kind's own header
 * and body start at SVK_HEADER_SIZE.  Byte order and alignment are the
 * machine's: every process sharing a segment runs on this host.
 *
 * Creation (sysvkit/_structure.py drives it):
 *   - A new segment reads as zeros: state SVK_STATE_FRESH.
 *   - The process that initialises it first swaps the state word from what
 *     it saw to (its pid << 8) | SVK_STATE_INIT (compare-and-swap: one
 *     winner), writes the body, then kind, version, size and magic, and last
 *     stores (pid << 8) | SVK_STATE_READY with release ordering.
 *   - Openers wait while the state is FRESH or INIT; when the initialiser is
 *     gone (or a second has passed) they swap in their own INIT word and
 *     initialise again.  Only a READY segment is used, after its magic, kind,
 *     version and size were checked against the segment.
 */
#ifndef SYSVKIT_STRUCTS_H
#define SYSVKIT_STRUCTS_H

#include <stdint.h>
#include <string.h>

#define SVK_MAGIC 0x4b565953u      /* the bytes "SYVK" */
#define SVK_HEADER_SIZE 64

/* Kinds of structure. */
#define SVK_KIND_MUTEX   1
#define SVK_KIND_CHANNEL 2
#define SVK_KIND_ARRAY   3
#define SVK_KIND_QUEUE   4
#define SVK_KIND_TEST    255      /* the test suite's own */

/* The low byte of the state word. */
#define SVK_STATE_FRESH 0
#define SVK_STATE_INIT  1
#define SVK_STATE_READY 2

typedef struct svk_header {
    uint32_t magic;        /* SVK_MAGIC once READY (written last but one) */
    uint16_t kind;         /* SVK_KIND_* */
    uint16_t version;      /* the kind's format version */
    uint64_t state;        /* (pid << 8) | SVK_STATE_*, accessed atomically */
    uint64_t size;         /* bytes the structure spans, header included */
    uint8_t  reserved[40];
} svk_header;

_Static_assert(sizeof(svk_header) == SVK_HEADER_SIZE, "svk_header must be 64 bytes");

static inline uint64_t svk_state_load(const svk_header *h) {
    return __atomic_load_n(&h->state, __ATOMIC_ACQUIRE);
}

/* Swap the state word from *expected to desired; 1 if this call did it. */
static inline int svk_state_cas(svk_header *h, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(&h->state, &expected, desired, 0,
                                       __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* Publish a body this process initialised under the INIT word `mine`.
 * Returns 0 if another process took the initialisation over meanwhile. */
static inline int svk_publish(svk_header *h, uint64_t mine, uint16_t kind,
                              uint16_t version, uint64_t size) {
    h->kind = kind;
    h->version = version;
    h->size = size;
    __atomic_store_n(&h->magic, SVK_MAGIC, __ATOMIC_RELEASE);
    return svk_state_cas(h, mine, (mine & ~(uint64_t)0xff) | SVK_STATE_READY);
}

#endif
