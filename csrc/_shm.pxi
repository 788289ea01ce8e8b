# Shared memory: shmget, shmat/shmdt through an Attachment that owns the
# mapping, shmctl.

from cpython.buffer cimport PyBuffer_FillInfo, PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_WarnEx
from libc.string cimport memcpy, memset

import warnings as _warnings


def shmget(key, size_t size, int flags):
    """shmget(2): the id of the segment for ``key``."""
    cdef key_t k = c_key(key)
    cdef int r
    with nogil:
        r = sysv.shmget(k, size, flags)
    if r == -1:
        raise_errno(errno, "shmget", WHAT_KEY, k)
    return r


cdef tuple _shm_tuple(int ident, shmid_ds *ds):
    return (ident, sysvkit_perm_key(ds.shm_perm), ds.shm_perm.uid, ds.shm_perm.gid,
            ds.shm_perm.cuid, ds.shm_perm.cgid, ds.shm_perm.mode, ds.shm_segsz,
            ds.shm_nattch, ds.shm_cpid, ds.shm_lpid, ds.shm_atime, ds.shm_dtime,
            ds.shm_ctime)


def shmctl(int shmid, int cmd, arg=None):
    """shmctl(2).

    IPC_STAT -> (id, key, uid, gid, cuid, cgid, mode, size, nattch, cpid,
    lpid, atime, dtime, ctime); SHM_STAT/SHM_STAT_ANY take an index and
    return the same tuple with the id found there; IPC_SET takes
    arg=(uid, gid, mode); IPC_INFO -> (maxindex, shmmax, shmmin, shmmni,
    shmseg, shmall); SHM_INFO -> (maxindex, used_ids, shm_tot, shm_rss,
    shm_swp, swap_attempts, swap_successes); others (IPC_RMID, SHM_LOCK,
    SHM_UNLOCK) -> the call's int result.
    """
    cdef shmid_ds ds
    cdef int r
    memset(&ds, 0, sizeof(ds))
    if cmd == IPC_SET:
        if arg is None or len(arg) != 3:
            raise TypeError("IPC_SET needs arg=(uid, gid, mode)")
        with nogil:
            r = sysv.shmctl(shmid, IPC_STAT, &ds)
        if r == -1:
            raise_errno(errno, "shmctl", WHAT_ID, shmid)
        ds.shm_perm.uid, ds.shm_perm.gid, ds.shm_perm.mode = arg
    with nogil:
        r = sysv.shmctl(shmid, cmd, &ds)
    if r == -1:
        raise_errno(errno, "shmctl", WHAT_INDEX if cmd in (SHM_STAT, SHM_STAT_ANY) else WHAT_ID, shmid)
    if cmd == IPC_STAT:
        return _shm_tuple(shmid, &ds)
    if cmd == SHM_STAT or cmd == SHM_STAT_ANY:
        return _shm_tuple(r, &ds)
    if cmd == IPC_INFO:
        info = <shminfo *>&ds
        return (r, info.shmmax, info.shmmin, info.shmmni, info.shmseg, info.shmall)
    if cmd == SHM_INFO:
        sinfo = <shm_info *>&ds
        return (r, sinfo.used_ids, sinfo.shm_tot, sinfo.shm_rss, sinfo.shm_swp,
                sinfo.swap_attempts, sinfo.swap_successes)
    return r


cdef class Attachment:
    """An attached segment: owns the mapping and lends it as a buffer.

    Detaching is refused (BufferError) while buffers are exported, and any
    use after detach raises ValueError, so no Python code reaches unmapped
    memory.  A forgotten attachment is detached when collected, with a
    ResourceWarning.
    """
    cdef char *_addr
    cdef Py_ssize_t _size
    cdef bint _readonly
    cdef Py_ssize_t _exports
    cdef readonly int shmid

    def __cinit__(self):
        self._addr = NULL

    def __init__(self, *args, **kwargs):
        raise TypeError("Attachment objects are made by shmat()")

    @property
    def size(self):
        """The size of the mapping in bytes."""
        return self._size

    @property
    def readonly(self):
        return bool(self._readonly)

    @property
    def closed(self):
        """True once detached."""
        return self._addr == NULL

    @property
    def address(self):
        """The address the segment is mapped at (0 once detached)."""
        return <size_t>self._addr

    @property
    def exports(self):
        """How many buffers (memoryviews, arrays) currently use the mapping."""
        return self._exports

    cdef int _check(self) except -1:
        if self._addr == NULL:
            raise ValueError("operation on a detached shared memory segment")
        return 0

    def __getbuffer__(self, Py_buffer *view, int flags):
        self._check()
        PyBuffer_FillInfo(view, self, self._addr, self._size, self._readonly, flags)
        self._exports += 1

    def __releasebuffer__(self, Py_buffer *view):
        self._exports -= 1

    def __len__(self):
        self._check()
        return self._size

    def detach(self):
        """shmdt(2); idempotent.  BufferError while buffers are exported."""
        cdef int r
        if self._addr == NULL:
            return
        if self._exports > 0:
            raise BufferError("cannot detach: %d exported buffer(s) still use the segment"
                              % self._exports)
        r = sysv.shmdt(self._addr)
        if r == -1:
            raise_errno(errno, "shmdt", WHAT_ID, self.shmid)
        self._addr = NULL

    def read(self, Py_ssize_t size=-1, Py_ssize_t offset=0):
        """Copy ``size`` bytes (all to the end if negative) from ``offset``."""
        self._check()
        if offset < 0 or offset > self._size:
            raise ValueError("offset must be in 0..%d, got %d" % (self._size, offset))
        if size < 0:
            size = self._size - offset
        elif size > self._size - offset:
            raise ValueError("cannot read %d bytes at offset %d from a %d-byte segment"
                             % (size, offset, self._size))
        return PyBytes_FromStringAndSize(self._addr + offset, size)

    def write(self, data, Py_ssize_t offset=0):
        """Copy a bytes-like object in at ``offset``; returns its length."""
        cdef Py_buffer src
        cdef Py_ssize_t n
        self._check()
        if isinstance(data, str):
            raise TypeError("data must be a bytes-like object, not str")
        if self._readonly:
            raise TypeError("cannot write to a read-only attachment")
        PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        try:
            n = src.len
            if offset < 0 or offset > self._size or n > self._size - offset:
                raise ValueError("cannot write %d bytes at offset %d into a %d-byte segment"
                                 % (n, offset, self._size))
            if n > 65536:
                # Count the copy as an export while the GIL is released, so
                # that detach() from another thread is refused meanwhile.
                self._exports += 1
                try:
                    with nogil:
                        memcpy(self._addr + offset, src.buf, n)
                finally:
                    self._exports -= 1
            else:
                memcpy(self._addr + offset, src.buf, n)
        finally:
            PyBuffer_Release(&src)
        return n

    def __repr__(self):
        if self._addr == NULL:
            return "<sysvkit._core.Attachment shmid=%d detached>" % self.shmid
        return "<sysvkit._core.Attachment shmid=%d size=%d%s>" % (
            self.shmid, self._size, " readonly" if self._readonly else "")

    def __reduce__(self):
        raise TypeError("an attachment cannot be pickled; pickle its shmid")

    def __dealloc__(self):
        if self._addr != NULL:
            sysv.shmdt(self._addr)
            self._addr = NULL
            PyErr_WarnEx(ResourceWarning,
                         b"shared memory segment was never detached; detached at garbage collection",
                         1)


def shmat(int shmid, int flags=0):
    """shmat(2) at an address the kernel picks; returns an Attachment."""
    cdef shmid_ds ds
    cdef void *addr
    cdef int r
    cdef Attachment att
    with nogil:
        r = sysv.shmctl(shmid, IPC_STAT, &ds)
    if r == -1:
        raise_errno(errno, "shmat", WHAT_ID, shmid)
    flags &= ~SHM_REMAP   # only meaningful with an address, which we never take
    with nogil:
        addr = sysv.shmat(shmid, NULL, flags)
    if addr == <void *>-1:
        raise_errno(errno, "shmat", WHAT_ID, shmid)
    att = Attachment.__new__(Attachment)
    att._addr = <char *>addr
    att._size = ds.shm_segsz
    att._readonly = (flags & SHM_RDONLY) != 0
    att.shmid = shmid
    return att


def shmdt(Attachment attachment not None):
    """shmdt(2) of an Attachment (same as attachment.detach())."""
    attachment.detach()


