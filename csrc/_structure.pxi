# Structures in segments: the common header (structs.h) and the steps of
# race-free creation, for Mutex, Channel and SharedArray.  The policy (who
# initialises, how long to wait) is sysvkit/_structure.py's.

from libc.stdint cimport uint16_t
from sysv cimport (
    svk_header, svk_state_load, svk_state_cas, svk_publish, SVK_MAGIC, SVK_HEADER_SIZE,
    SVK_KIND_MUTEX, SVK_KIND_CHANNEL, SVK_KIND_ARRAY, SVK_KIND_TEST,
    SVK_STATE_FRESH, SVK_STATE_INIT, SVK_STATE_READY,
)

STRUCT_MAGIC = SVK_MAGIC
STRUCT_HEADER_SIZE = SVK_HEADER_SIZE
STRUCT_KIND_MUTEX = SVK_KIND_MUTEX
STRUCT_KIND_CHANNEL = SVK_KIND_CHANNEL
STRUCT_KIND_ARRAY = SVK_KIND_ARRAY
STRUCT_KIND_TEST = SVK_KIND_TEST
STRUCT_STATE_FRESH = SVK_STATE_FRESH
STRUCT_STATE_INIT = SVK_STATE_INIT
STRUCT_STATE_READY = SVK_STATE_READY


cdef class _Structure(_Segment):
    """A segment holding a sysvkit structure: a 64-byte svk_header, then the
    kind's own header and body at ``_body``.

    A kind's compiled base class subclasses this and overrides
    ``_init_body()`` (write a fresh body; called by the one process that
    initialises the segment) and ``_check_body()`` (validate the kind's own
    header against the segment's size before any use; raise CorruptError).
    Garbage collection detaches a structure quietly (like a lock, it needs no
    close()), never while it is pinned by a hold.
    """
    cdef char *_body

    def __cinit__(self, *args, **kwargs):
        self._body = NULL
        self._gc_quiet = True

    cdef inline svk_header *_hdr(self):
        return <svk_header *>self._addr

    cdef int _st_check(self) except -1:
        self._check()
        if self._size < SVK_HEADER_SIZE:
            raise ValueError("shared memory segment (id %d) is %d bytes, too small for a "
                             "sysvkit structure" % (self._shmid, self._size))
        if self._readonly:
            raise ValueError("a structure's segment must be attached read-write")
        return 0

    def _st_bind(self):
        """Check the mapping can hold a header; point _body after it."""
        self._st_check()
        self._body = self._addr + SVK_HEADER_SIZE

    def _st_state(self):
        """The state word, (pid << 8) | phase, read with acquire ordering."""
        self._st_check()
        return svk_state_load(self._hdr())

    def _st_claim(self, unsigned long long seen):
        """Swap the state word from ``seen`` to this process's INIT word.
        Returns that word, or 0 if another process changed it first."""
        cdef unsigned long long mine = (<unsigned long long>_os.getpid() << 8) | SVK_STATE_INIT
        self._st_check()
        if svk_state_cas(self._hdr(), seen, mine):
            return mine
        return 0

    def _st_wipe(self, Py_ssize_t size):
        """Zero the header's fields and bytes 64..size (a half-made segment
        that is being initialised again), keeping the state word."""
        cdef svk_header *h
        self._st_check()
        if size < SVK_HEADER_SIZE or size > self._size:
            raise ValueError("size must be in %d..%d, got %d" % (SVK_HEADER_SIZE, self._size, size))
        h = self._hdr()
        h.magic = 0
        h.kind = 0
        h.version = 0
        h.size = 0
        memset(self._addr + SVK_HEADER_SIZE, 0, <size_t>(size - SVK_HEADER_SIZE))

    def _st_publish(self, unsigned long long mine, unsigned int kind, unsigned int version,
                    unsigned long long size):
        """Write kind, version, size and magic, then the READY state word.
        False if another process took the initialisation over meanwhile."""
        self._st_check()
        return bool(svk_publish(self._hdr(), mine, <uint16_t>kind, <uint16_t>version, size))

    def _st_header(self):
        """(magic, kind, version, state, size) as they are in the segment."""
        cdef svk_header *h
        cdef unsigned long long state
        self._st_check()
        h = self._hdr()
        state = svk_state_load(h)
        return (h.magic, h.kind, h.version, state, h.size)

    def _init_body(self):
        """Write a fresh body (overridden by each kind)."""

    def _check_body(self):
        """Validate the kind's own header (overridden by each kind)."""
