# Shared memory: shmget, shmat/shmdt through an Attachment that owns the
# mapping, shmctl.

from cpython.buffer cimport (
    PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE, PyBUF_FORMAT, PyBUF_ND,
    PyBUF_STRIDES,
)
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.exc cimport PyErr_WarnEx, PyErr_CheckSignals
from libc.string cimport memcpy, memmove, memset
from posix.mman cimport (
    mmap, munmap, MAP_FAILED, MAP_FIXED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE,
    PROT_READ, PROT_WRITE,
)
from posix.unistd cimport sysconf, _SC_PAGESIZE
from libc.errno cimport EINVAL

cdef extern from *:
    """
    #include <sys/mman.h>
    /* Linux 5.14; older headers lack the names (same values on every arch). */
    #ifndef MADV_POPULATE_READ
    #define MADV_POPULATE_READ 22
    #endif
    #ifndef MADV_POPULATE_WRITE
    #define MADV_POPULATE_WRITE 23
    #endif
    """
    enum:
        MADV_POPULATE_READ
        MADV_POPULATE_WRITE
    int madvise(void *addr, size_t length, int advice) nogil

cdef extern from *:
    """
    #include <errno.h>
    #include <pthread.h>
    #include <stdint.h>
    #include <string.h>
    #include <unistd.h>

    /* One part of a populate: MADV_POPULATE_*, or on kernels that do not
     * know it (EINVAL) a read of one byte per page, which maps a shared
     * page (writable too, on a read-write attach). */
    typedef struct svk_pop_part {
        char *addr;
        size_t length;
        int advice;
        int err;
        unsigned char acc;
    } svk_pop_part;

    static void *svk_pop_run(void *arg) {
        svk_pop_part *p = (svk_pop_part *)arg;
        size_t page = (size_t)sysconf(_SC_PAGESIZE), i;
        volatile unsigned char *b = (volatile unsigned char *)p->addr;
        unsigned char acc = 0;
        p->err = 0;
        if (madvise(p->addr, p->length, p->advice) == 0)
            return NULL;
        if (errno != EINVAL) {
            p->err = errno;
            return NULL;
        }
        for (i = 0; i < p->length; i += page)
            acc ^= b[i];
        p->acc = acc;
        return NULL;
    }

    /* Populate [addr, addr+length) (page-aligned) split into `threads`
     * parts of whole pages, each in its own thread (the kernel takes page
     * faults in parallel); the calling thread does the last part.  A thread
     * that cannot be started leaves its part to the caller.  Returns 0 or
     * an errno; *sink receives the touched bytes (keeps the loop honest). */
    static int svk_populate(char *addr, size_t length, int advice, int threads,
                            unsigned char *sink) {
        enum { SVK_POP_MAX = 8 };
        svk_pop_part parts[SVK_POP_MAX];
        pthread_t tids[SVK_POP_MAX];
        int started[SVK_POP_MAX];
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t pages = length / page, per, off = 0;
        int i, err = 0;
        if (threads < 1)
            threads = 1;
        if (threads > SVK_POP_MAX)
            threads = SVK_POP_MAX;
        if ((size_t)threads > pages)
            threads = pages ? (int)pages : 1;
        per = pages / threads;
        for (i = 0; i < threads; i++) {
            size_t n = (i == threads - 1) ? length - off : per * page;
            parts[i].addr = addr + off;
            parts[i].length = n;
            parts[i].advice = advice;
            parts[i].err = 0;
            parts[i].acc = 0;
            off += n;
            started[i] = 0;
            if (i < threads - 1 && n)
                started[i] = pthread_create(&tids[i], NULL, svk_pop_run, &parts[i]) == 0;
        }
        for (i = 0; i < threads; i++)
            if (!started[i] && parts[i].length)
                svk_pop_run(&parts[i]);
        for (i = 0; i < threads; i++) {
            if (started[i])
                pthread_join(tids[i], NULL);
            if (parts[i].err && !err)
                err = parts[i].err;
            *sink ^= parts[i].acc;
        }
        return err;
    }

    /* One part of a parallel copy out of a segment: map the part's source
     * pages in one pass (a hint: on failure the copy faults them itself),
     * then copy. */
    typedef struct svk_copy_part {
        char *dst;
        const char *src;
        size_t length;
    } svk_copy_part;

    static void *svk_copy_run(void *arg) {
        svk_copy_part *p = (svk_copy_part *)arg;
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        uintptr_t lo = (uintptr_t)p->src / page * page;
        uintptr_t hi = ((uintptr_t)p->src + p->length + page - 1) / page * page;
        if (p->length >= page)
            (void)madvise((void *)lo, hi - lo, MADV_POPULATE_READ);
        memcpy(p->dst, p->src, p->length);
        return NULL;
    }

    /* Copy n bytes from a segment to a buffer that does not overlap it,
     * split into `threads` parts on page boundaries of the source, each
     * mapped and copied by its own thread (the calling thread does the
     * last part, and any part whose thread cannot start). */
    static void svk_copy_out(char *dst, const char *src, size_t n, int threads) {
        enum { SVK_COPY_MAX = 8 };
        svk_copy_part parts[SVK_COPY_MAX];
        pthread_t tids[SVK_COPY_MAX];
        int started[SVK_COPY_MAX];
        size_t page = (size_t)sysconf(_SC_PAGESIZE), per, off = 0;
        int i;
        if (threads < 1)
            threads = 1;
        if (threads > SVK_COPY_MAX)
            threads = SVK_COPY_MAX;
        per = n / threads / page * page;
        if (per == 0)
            threads = 1;
        for (i = 0; i < threads; i++) {
            size_t len = (i == threads - 1) ? n - off : per;
            parts[i].dst = dst + off;
            parts[i].src = src + off;
            parts[i].length = len;
            off += len;
            started[i] = 0;
            if (i < threads - 1)
                started[i] = pthread_create(&tids[i], NULL, svk_copy_run, &parts[i]) == 0;
        }
        for (i = 0; i < threads; i++)
            if (!started[i])
                svk_copy_run(&parts[i]);
        for (i = 0; i < threads; i++)
            if (started[i])
                pthread_join(tids[i], NULL);
    }
    """
    int svk_populate(char *addr, size_t length, int advice, int threads,
                     unsigned char *sink) nogil
    void svk_copy_out(char *dst, const char *src, size_t n, int threads) nogil


# Populate in rounds of this many bytes per thread, returning to Python in
# between (a Ctrl-C interrupts a populate of a very large segment promptly),
# and start one thread per this many bytes, up to the CPUs this process may use.
cdef size_t _POP_ROUND = 64 << 20
cdef size_t _POP_PER_THREAD = 32 << 20
cdef int _POP_MAX_THREADS = 4


cdef int _pop_threads(size_t length):
    """How many threads to populate ``length`` bytes with."""
    cdef size_t n = length // _POP_PER_THREAD
    cdef int cpus
    if n <= 1:
        return 1
    try:
        cpus = len(_os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = _os.cpu_count() or 1
    if cpus < 1:
        cpus = 1
    return <int>min(n, <size_t>min(cpus, _POP_MAX_THREADS))
cimport cython


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


cdef const char *_FORMAT_B = b"B"


@cython.no_gc_clear   # __dealloc__ needs .seg, even when freed by the cycle collector
@cython.final
cdef class _Export:
    """What every buffer of a segment holds (its ``obj``): one per export.

    The segment counts these, not buffer releases, because numpy's
    ``ndarray(buffer=memoryview)`` releases the buffer at once and keeps the
    memoryview's ``obj`` instead: whoever holds a token pins the mapping.
    """
    cdef _Segment seg

    def __init__(self, *args, **kwargs):
        raise TypeError("cannot create sysvkit._core._Export instances")

    def __reduce__(self):
        raise TypeError("a shared memory buffer cannot be pickled; pickle the segment")

    def __dealloc__(self):
        if self.seg is not None:
            self.seg._exports -= 1


cdef class _Segment:
    """Base of the attached-segment types: owns one shmat() mapping.

    It lends the mapping through the buffer protocol and counts every
    exported buffer (and every copy in progress without the GIL); detaching
    is refused with BufferError while that count is not zero, and any use
    after detach raises ValueError, so no Python code reaches unmapped
    memory.  A mapping still attached when the object is collected is
    detached then, with a ResourceWarning.  Subclassed by Attachment here
    and by sysvkit.SharedMemory, which attach in place with _seg_attach().
    """
    cdef char *_addr
    cdef Py_ssize_t _size
    cdef bint _readonly
    cdef Py_ssize_t _exports
    cdef int _shmid
    cdef Py_ssize_t _shape[1]
    cdef Py_ssize_t _one[1]
    cdef void *_hold           # the placeholder left where the segment was mapped
    cdef unsigned char _sink   # keeps the page-touching fallback of _populate honest
    cdef size_t _hold_len
    cdef Py_ssize_t _pins      # holds (a locked Mutex...) that need the mapping kept
    cdef bint _gc_quiet        # detach at collection without a ResourceWarning

    def __cinit__(self, *args, **kwargs):
        self._addr = NULL
        self._size = 0
        self._exports = 0
        self._shmid = -1
        self._one[0] = 1
        self._hold = NULL
        self._hold_len = 0
        self._pins = 0
        self._gc_quiet = False

    cdef int _check(self) except -1:
        if self._addr == NULL:
            raise ValueError("operation on a detached (closed) shared memory segment")
        return 0

    cdef int _attach(self, int shmid, int flags) except -1:
        cdef shmid_ds ds
        cdef void *addr
        cdef int r
        if self._addr != NULL:
            raise ValueError("already attached (id %d)" % self._shmid)
        if self._hold != NULL:
            # Its placeholder may still back arrays made before close().
            raise ValueError("a closed segment object cannot be attached again")
        with nogil:
            r = sysv.shmctl(shmid, IPC_STAT, &ds)
        if r == -1:
            raise_errno(errno, "shmat", WHAT_ID, shmid)
        if ds.shm_segsz > <size_t>PY_SSIZE_T_MAX:
            raise OverflowError("segment too large to map (id %d)" % shmid)
        flags &= ~SHM_REMAP   # only meaningful with an address, which we never take
        with nogil:
            addr = sysv.shmat(shmid, NULL, flags)
        if addr == <void *>-1:
            raise_errno(errno, "shmat", WHAT_ID, shmid)
        self._addr = <char *>addr
        self._size = <Py_ssize_t>ds.shm_segsz
        self._readonly = (flags & SHM_RDONLY) != 0
        self._shmid = shmid
        return 0

    cdef int _detach(self) except -1:
        cdef int r
        if self._addr == NULL:
            return 0
        if self._pins > 0:
            raise RuntimeError("cannot close: the segment (id %d) is held (a locked mutex or "
                               "an operation in progress); release it first" % self._shmid)
        if self._exports > 0:
            raise BufferError("cannot close: %d exported buffer(s) (memoryviews, arrays) or "
                              "copies in progress still use the segment" % self._exports)
        self._unmap()
        return 0

    cdef int _unmap(self) except -1:
        """Detach, leaving a private zero-filled placeholder at the address.

        Buffers are counted, but an array made with numpy.ndarray(buffer=shm)
        holds the object without a buffer; it must never reach unmapped
        memory.  mmap(MAP_FIXED) replaces the segment's mapping in one step
        (unmapping a System V segment is what detaches it: nattch, dtime and
        lpid change as with shmdt), so even a thread running without the GIL
        finds memory there.  The placeholder costs address space only, and is
        unmapped when the object is freed, when no array can refer to it.
        """
        cdef size_t page = <size_t>sysconf(_SC_PAGESIZE)
        cdef size_t length = (<size_t>self._size + page - 1) // page * page
        cdef void *p = mmap(self._addr, length, PROT_READ | PROT_WRITE,
                            MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if p == MAP_FAILED:
            # A huge-page mapping is longer than the segment's size and cannot
            # be split: shmdt it, then put the placeholder back if the address
            # is still free.
            if sysv.shmdt(self._addr) == -1:
                raise_errno(errno, "shmdt", WHAT_ID, self._shmid)
            p = mmap(self._addr, length, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            if p != MAP_FAILED and p != <void *>self._addr:
                munmap(p, length)
                p = MAP_FAILED
        if p != MAP_FAILED:
            self._hold = p
            self._hold_len = length
        self._addr = NULL
        return 0

    cdef int _pin(self) except -1:
        """Keep the mapping for a hold: no detach, not even at collection or
        interpreter shutdown, until the matching _unpin()."""
        self._check()
        self._pins += 1
        return 0

    cdef void _unpin(self) noexcept:
        if self._pins > 0:
            self._pins -= 1

    def __getbuffer__(self, Py_buffer *view, int flags):
        cdef _Export token
        self._check()
        if (flags & PyBUF_WRITABLE) and self._readonly:
            raise BufferError("the segment is attached read-only")
        token = _Export.__new__(_Export)
        token.seg = self
        self._exports += 1
        view.obj = token
        view.buf = self._addr
        view.len = self._size
        view.readonly = self._readonly
        view.itemsize = 1
        view.format = <char *>_FORMAT_B if flags & PyBUF_FORMAT else NULL
        view.ndim = 1
        self._shape[0] = self._size
        view.shape = self._shape if flags & PyBUF_ND else NULL
        view.strides = self._one if flags & PyBUF_STRIDES == PyBUF_STRIDES else NULL
        view.suboffsets = NULL
        view.internal = NULL

    def __releasebuffer__(self, Py_buffer *view):
        # Never called (the buffer's obj is its _Export token, which does the
        # counting); defined so that numpy.frombuffer() sees a releasable
        # buffer and keeps a memoryview rather than the bare object.
        pass

    cdef bytes _read(self, Py_ssize_t size, Py_ssize_t offset):
        cdef bytes out
        cdef char *dst
        self._check()
        if offset < 0 or offset > self._size:
            raise ValueError("offset must be in 0..%d (the segment's size), got %d"
                             % (self._size, offset))
        if size == -1:
            size = self._size - offset
        elif size < 0:
            raise ValueError("size must be >= 0, or -1 for the rest, got %d" % size)
        elif size > self._size - offset:
            raise ValueError("cannot read %d bytes at offset %d from a %d-byte segment"
                             % (size, offset, self._size))
        if size <= 65536:
            return PyBytes_FromStringAndSize(self._addr + offset, size)
        out = PyBytes_FromStringAndSize(NULL, size)
        dst = PyBytes_AS_STRING(out)
        # Count the copy as an export while the GIL is released, so that
        # detaching from another thread is refused meanwhile.
        self._exports += 1
        try:
            with nogil:
                memcpy(dst, self._addr + offset, size)
        finally:
            self._exports -= 1
        return out

    cdef Py_ssize_t _write(self, data, Py_ssize_t offset) except -1:
        cdef Py_buffer src
        cdef Py_ssize_t n
        self._check()
        if isinstance(data, str):
            raise TypeError("data must be a bytes-like object, not str")
        if self._readonly:
            raise TypeError("cannot write to a segment attached read-only")
        try:
            PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        except (BufferError, ValueError):
            # Not C-contiguous (a strided view): copy it into order first.
            data = memoryview(data).tobytes()
            PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        try:
            n = src.len
            if offset < 0 or offset > self._size or n > self._size - offset:
                raise ValueError("cannot write %d bytes at offset %d into a %d-byte segment"
                                 % (n, offset, self._size))
            # memmove: the data may be a view of this very segment.
            if n > 65536:
                self._exports += 1      # see _read
                try:
                    with nogil:
                        memmove(self._addr + offset, src.buf, n)
                finally:
                    self._exports -= 1
            else:
                memmove(self._addr + offset, src.buf, n)
        finally:
            PyBuffer_Release(&src)
        return n

    cdef Py_ssize_t _readinto(self, buffer, Py_ssize_t offset, int threads) except -1:
        """Copy len(buffer) bytes from ``offset`` into a writable buffer,
        without the GIL; a large copy is split over threads that each map
        and copy their part (``threads`` 0: as for _populate)."""
        cdef Py_buffer dst
        cdef Py_ssize_t n
        cdef char *src
        cdef bint overlap
        self._check()
        PyObject_GetBuffer(buffer, &dst, PyBUF_WRITABLE | PyBUF_ND)   # C-contiguous
        try:
            n = dst.len
            if offset < 0 or offset > self._size or n > self._size - offset:
                raise ValueError("cannot read %d bytes at offset %d from a %d-byte segment"
                                 % (n, offset, self._size))
            if threads < 0:
                raise ValueError("threads must be >= 0, got %d" % threads)
            src = self._addr + offset
            overlap = <char *>dst.buf < src + n and src < <char *>dst.buf + n
            if threads == 0:
                threads = _pop_threads(<size_t>n)
            self._exports += 1              # see _read
            try:
                with nogil:
                    if overlap:             # a view of the segment itself: memmove
                        memmove(dst.buf, src, n)
                    else:
                        svk_copy_out(<char *>dst.buf, src, n, threads)
            finally:
                self._exports -= 1
        finally:
            PyBuffer_Release(&dst)
        return n

    def _seg_readinto(self, buffer, Py_ssize_t offset=0, int threads=0):
        """Copy len(buffer) bytes from ``offset`` into a writable buffer."""
        return self._readinto(buffer, offset, threads)

    cdef int _populate(self, int threads=0) except -1:
        """Map every page in now (MADV_POPULATE_READ on a read-only attach,
        _WRITE on a read-write one; touching each page on kernels before
        5.14), without the GIL and pinned like a copy.  ``threads``: how
        many threads share the work (0: one per 32 MiB, up to the CPUs this
        process may use, at most 4).  Data is not changed."""
        cdef size_t page = <size_t>sysconf(_SC_PAGESIZE)
        cdef size_t length, done, step
        cdef int err = 0
        cdef int advice = MADV_POPULATE_READ if self._readonly else MADV_POPULATE_WRITE
        cdef unsigned char acc = 0
        cdef char *addr
        self._check()
        if threads < 0:
            raise ValueError("threads must be >= 0, got %d" % threads)
        length = (<size_t>self._size + page - 1) // page * page
        if threads == 0:
            threads = _pop_threads(length)
        addr = self._addr
        done = 0
        self._exports += 1
        try:
            while done < length and err == 0:
                step = min(length - done, _POP_ROUND * <size_t>threads)
                with nogil:
                    err = svk_populate(addr + done, step, advice, threads, &acc)
                done += step
                if done < length:
                    PyErr_CheckSignals()
        finally:
            self._exports -= 1
        self._sink ^= acc
        if err:
            raise_errno(err, "madvise", WHAT_ID, self._shmid)
        return 0

    # -- for subclasses written in Python (sysvkit.SharedMemory) --------------
    def _seg_populate(self, int threads=0):
        """Map every page of the segment in now (see SharedMemory.prefault);
        ``threads`` 0 picks how many threads share the work."""
        self._populate(threads)

    def _seg_attach(self, int shmid, int flags=0):
        """shmat(2) this object in place; ValueError if already attached."""
        self._attach(shmid, flags)

    def _seg_detach(self):
        """shmdt(2); idempotent.  BufferError while buffers are exported."""
        self._detach()

    def _seg_read(self, Py_ssize_t size=-1, Py_ssize_t offset=0):
        """Copy ``size`` bytes (-1: to the end) from ``offset``."""
        return self._read(size, offset)

    def _seg_write(self, data, Py_ssize_t offset=0):
        """Copy a bytes-like object in at ``offset``; returns its length."""
        return self._write(data, offset)

    @property
    def _seg_attached(self):
        return self._addr != NULL

    @property
    def _seg_size(self):
        return self._size

    @property
    def _seg_readonly(self):
        return bool(self._readonly)

    @property
    def _seg_exports(self):
        return self._exports

    @property
    def _seg_pins(self):
        return self._pins

    def __reduce__(self):
        raise TypeError("a shared memory attachment cannot be pickled as such; pickle its id")

    def __dealloc__(self):
        # No buffer or array can use the mapping now: each holds a reference.
        if self._hold != NULL:
            munmap(self._hold, self._hold_len)
            self._hold = NULL
        if self._addr != NULL and self._pins > 0:
            # Held (a locked robust mutex): the kernel walks the holder's
            # robust list through this mapping when the thread dies, so it
            # must stay until the process ends.
            return
        if self._addr != NULL:
            sysv.shmdt(self._addr)
            self._addr = NULL
            if self._gc_quiet:
                return
            msg = ("shared memory segment (id %d) was never closed; detached at garbage "
                   "collection" % self._shmid).encode()
            PyErr_WarnEx(ResourceWarning, msg, 1)   # an error here is reported as unraisable


cdef class Attachment(_Segment):
    """An attached segment: owns the mapping and lends it as a buffer.

    Detaching is refused (BufferError) while buffers are exported, and any
    use after detach raises ValueError, so no Python code reaches unmapped
    memory.  A forgotten attachment is detached when collected, with a
    ResourceWarning.
    """

    def __init__(self, *args, **kwargs):
        raise TypeError("Attachment objects are made by shmat()")

    @property
    def shmid(self):
        """The id of the attached segment."""
        return self._shmid

    @property
    def size(self):
        """The size of the mapping in bytes."""
        return self._size

    @property
    def readonly(self):
        """True if attached with SHM_RDONLY."""
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

    def __len__(self):
        self._check()
        return self._size

    def detach(self):
        """shmdt(2); idempotent.  BufferError while buffers are exported."""
        self._detach()

    def read(self, Py_ssize_t size=-1, Py_ssize_t offset=0):
        """Copy ``size`` bytes (-1: to the end) from ``offset``."""
        return self._read(size, offset)

    def write(self, data, Py_ssize_t offset=0):
        """Copy a bytes-like object in at ``offset``; returns its length."""
        return self._write(data, offset)

    def __repr__(self):
        if self._addr == NULL:
            return "<sysvkit._core.Attachment shmid=%d detached>" % self._shmid
        return "<sysvkit._core.Attachment shmid=%d size=%d%s>" % (
            self._shmid, self._size, " readonly" if self._readonly else "")


def shmat(int shmid, int flags=0):
    """shmat(2) at an address the kernel picks; returns an Attachment."""
    cdef Attachment att = Attachment.__new__(Attachment)
    att._attach(shmid, flags)
    return att


def shmdt(Attachment attachment not None):
    """shmdt(2) of an Attachment (same as attachment.detach())."""
    attachment.detach()


