/* The layout of a SharedArray's segment, after the common svk_header of
 * structs.h (kind SVK_KIND_ARRAY, format version SVK_ARRAY_VERSION).
 * Native byte order: every process sharing a segment runs on this host.
 *
 *   offset 0    svk_header (64 bytes; size = data_offset + nbytes)
 *   offset 64   svk_array_header (32 bytes, below)
 *   offset 96   uint64_t shape[ndim]
 *   then        descr_len bytes of UTF-8 naming the dtype: numpy.dtype.str
 *               ("<f8"), or for a structured dtype the repr of
 *               numpy.lib.format.dtype_to_descr() ("[('t', '<f8'), ...]")
 *   data_offset the data, nbytes bytes: the first multiple of
 *               SVK_ARRAY_ALIGN (and of the dtype's alignment, when that
 *               is larger) after the description
 *
 * Written once, by the initialiser, before the state word says READY;
 * never changed afterwards.  Readers check every field against the segment
 * (ndim <= SVK_ARRAY_MAX_NDIM, 1 <= descr_len <= SVK_ARRAY_MAX_DESCR, the
 * description names exactly that itemsize, itemsize * prod(shape) ==
 * nbytes, data_offset as computed above, data_offset + nbytes <= size)
 * before making an array over it.
 */
#ifndef SYSVKIT_ARRAY_H
#define SYSVKIT_ARRAY_H

#include <stdint.h>

#include "structs.h"

#define SVK_ARRAY_VERSION   1
#define SVK_ARRAY_MAX_NDIM  32
#define SVK_ARRAY_MAX_DESCR 4096
#define SVK_ARRAY_ALIGN     64

typedef struct svk_array_header {
    uint32_t ndim;         /* number of dimensions, 0..SVK_ARRAY_MAX_NDIM */
    uint32_t descr_len;    /* bytes of dtype description */
    uint64_t itemsize;     /* bytes per item */
    uint64_t nbytes;       /* bytes of data */
    uint64_t data_offset;  /* from the start of the segment */
} svk_array_header;

_Static_assert(sizeof(svk_array_header) == 32, "svk_array_header must be 32 bytes");

#define SVK_ARRAY_SHAPE_OFFSET (SVK_HEADER_SIZE + sizeof(svk_array_header))

#endif
