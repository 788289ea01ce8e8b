# SharedArray's compiled base: the header protocol of _structure.pxi, with
# the reading steps allowed on a read-only attach (a SharedArray opened with
# readonly=True waits for a READY header and checks it without writing).
# The array's own header (csrc/array.h: dtype, shape, data offset) is read
# and checked by sysvkit/array.py, which takes the layout's numbers from here.

from sysv cimport (
    svk_array_header, SVK_ARRAY_VERSION, SVK_ARRAY_MAX_NDIM, SVK_ARRAY_MAX_DESCR,
    SVK_ARRAY_ALIGN, SVK_ARRAY_SHAPE_OFFSET,
)

ARRAY_VERSION = SVK_ARRAY_VERSION
ARRAY_MAX_NDIM = SVK_ARRAY_MAX_NDIM
ARRAY_MAX_DESCR = SVK_ARRAY_MAX_DESCR
ARRAY_ALIGN = SVK_ARRAY_ALIGN
ARRAY_HEADER_SIZE = sizeof(svk_array_header)
ARRAY_SHAPE_OFFSET = SVK_ARRAY_SHAPE_OFFSET


cdef int _ro_check(_Structure self) except -1:
    self._check()
    if self._size < SVK_HEADER_SIZE:
        raise ValueError("shared memory segment (id %d) is %d bytes, too small for a "
                         "sysvkit structure" % (self._shmid, self._size))
    return 0


cdef class _ArrayBase(_Structure):
    """Base of sysvkit.SharedArray.

    It adds no C fields, so the Python class lists it before Structure:
    with the same layout as _Structure, the first base is the one Python
    allocates instances with, and it must be this one (its overrides of
    the reading steps, and its C method table).
    """

    def _st_bind(self):
        """Check the mapping can hold a header; point _body after it (a
        read-only attach too)."""
        _ro_check(self)
        self._body = self._addr + SVK_HEADER_SIZE

    def _st_state(self):
        """The state word, read with acquire ordering (a read-only attach too)."""
        _ro_check(self)
        return svk_state_load(self._hdr())

    def _st_header(self):
        """(magic, kind, version, state, size) as they are in the segment
        (a read-only attach too)."""
        cdef svk_header *h
        cdef unsigned long long state
        _ro_check(self)
        h = self._hdr()
        state = svk_state_load(h)
        return (h.magic, h.kind, h.version, state, h.size)
