# sysvkit.Mutex's compiled base: a robust, process-shared futex mutex in a
# segment (layout in mutex.h).  Taking a free mutex is one compare-and-swap
# in glibc's pthread_mutex_trylock: no system call.

from libc.errno cimport EBUSY, EPERM, ETIMEDOUT
from libc.stdint cimport uint32_t

cdef extern from "<errno.h>":
    enum:
        EDEADLK
        EOWNERDEAD
        ENOTRECOVERABLE
from sysv cimport (
    svk_mutex, svk_mutex_kind, svk_mutex_sane, svk_mutex_word, svk_mutex_reap, svk_mutex_set_word, svk_gettid,
    svk_robust_init, svk_robust_lock, svk_deadline, pthread_mutex_trylock,
    pthread_mutex_unlock, pthread_mutex_consistent, SVK_MUTEX_VERSION, FUTEX_TID_MASK,
)

MUTEX_VERSION = SVK_MUTEX_VERSION

# A blocked acquire wakes this often (seconds) to check that the holder it
# waits for still exists; the kernel normally releases a dead holder's
# mutex itself and wakes a sleeper at once.
cdef double _MUTEX_CHECK_EVERY = 0.25


cdef class MutexBase(_Structure):
    """Compiled base of sysvkit.Mutex (see there)."""
    cdef svk_mutex *_mx
    cdef bint _died           # owner_died of the current hold
    cdef bint _held           # this object's mapping is pinned by a hold
    cdef uint32_t _tid        # the thread id recorded by that hold

    def __cinit__(self, *args, **kwargs):
        self._mx = NULL
        self._died = False
        self._held = False
        self._tid = 0

    def _init_body(self):
        cdef int r
        self._bind_mutex()
        r = svk_robust_init(&self._mx.m)
        if r:
            raise_errno(r, "pthread_mutex_init", WHAT_ID, self._shmid)

    def _check_body(self):
        self._bind_mutex()
        if not svk_mutex_sane(self._mx):
            raise CorruptError("%s does not hold a robust mutex" % self._name())

    @cython.final
    cdef int _bind_mutex(self) except -1:
        self._st_bind()
        if self._seg_size < SVK_HEADER_SIZE + <Py_ssize_t>sizeof(svk_mutex):
            raise ValueError("shared memory segment (id %d) is too small for a mutex"
                             % self._shmid)
        self._mx = <svk_mutex *>self._body
        return 0

    @cython.final
    cdef inline int _ready(self) except -1:
        if self._mx == NULL or self._addr == NULL:
            raise ValueError("operation on a closed %s" % type(self).__name__)
        if not svk_mutex_sane(self._mx):
            raise CorruptError("the mutex in shared memory segment (id %d) was overwritten; "
                               "remove it and create it again" % self._shmid)
        return 0

    @cython.final
    cdef int _taken(self, int r) except -1:
        """Book-keeping after trylock/svk_robust_lock returned 0 or EOWNERDEAD."""
        if r == EOWNERDEAD:
            pthread_mutex_consistent(&self._mx.m)
        self._died = r == EOWNERDEAD
        self._tid = svk_mutex_word(self._mx) & FUTEX_TID_MASK
        if not self._held:       # a stale pin (forked, or a thread that died holding) is reused
            self._pin()
            self._held = True
        return 1

    @cython.final
    cdef int _fail(self, int r) except -1:
        if r == ENOTRECOVERABLE:
            raise CorruptError("the mutex in shared memory segment (id %d) is unusable; "
                               "remove it and create it again" % self._shmid)
        raise_errno(r, "pthread_mutex_lock", WHAT_ID, self._shmid)

    @cython.binding(False)
    def acquire(self, blocking=True, timeout=-1):
        """Acquire the mutex, as threading.Lock.acquire.

        blocking: wait (True) or only try (False).  timeout: seconds to wait
        at most; -1 (or None) waits for ever.  Returns True when acquired,
        False otherwise.  After a holder died holding it, the next acquire
        returns True and sets owner_died for that hold.  RuntimeError if
        this thread holds it already (it is not reentrant and waiting would
        never end).  Ctrl-C raises KeyboardInterrupt while it waits.
        """
        cdef int r
        cdef double t = _SEMOBJ_FOREVER
        if timeout is not -1:
            t = _semobj_acquire_timeout(timeout)
            if not blocking and t != _SEMOBJ_FOREVER:
                raise ValueError("can't specify a timeout for a non-blocking call")
        self._ready()
        r = pthread_mutex_trylock(&self._mx.m)
        if r == 0:
            self._died = False
            self._tid = svk_mutex_word(self._mx) & FUTEX_TID_MASK
            if not self._held:
                self._pins += 1      # _pin(), inline: the mapping is attached (_ready)
                self._held = True
            return True
        if r == EOWNERDEAD:
            return self._taken(r) == 1
        if r == EDEADLK:
            if not blocking:
                return False
            raise RuntimeError("this thread already holds the mutex (it is not reentrant)")
        if r != EBUSY:
            self._fail(r)
        if not blocking:
            return False
        return self._wait(t)

    @cython.final
    cdef bint _wait(self, double t) except -1:
        cdef timespec deadline, slice_end
        cdef double end = sysvkit_monotonic() + t if t >= 0 else -1.0
        cdef double now, step
        cdef int r
        while True:
            now = sysvkit_monotonic()
            step = _MUTEX_CHECK_EVERY
            if end >= 0:
                if end - now < step:
                    step = end - now if end > now else 0.0
            svk_deadline(&slice_end, step)
            with nogil:
                r = svk_robust_lock(&self._mx.m, &slice_end)
            if r == 0 or r == EOWNERDEAD:
                return self._taken(r) == 1
            if r == EINTR:
                PyErr_CheckSignals()     # raises KeyboardInterrupt & co.
            elif r == ETIMEDOUT:
                if end >= 0 and sysvkit_monotonic() >= end:
                    return False
                svk_mutex_reap(self._mx)  # a holder gone without the kernel's release
            elif r == EDEADLK:
                raise RuntimeError("this thread already holds the mutex (it is not reentrant)")
            else:
                self._fail(r)
            self._ready()

    @cython.binding(False)
    def release(self):
        """Release the mutex, as threading.Lock.release.  RuntimeError if
        this thread does not hold it (a forked child does not hold its
        parent's hold)."""
        cdef int r
        cdef uint32_t word
        self._ready()
        r = pthread_mutex_unlock(&self._mx.m)
        if r == 0:
            self._released()
            return
        if r == EPERM and self._held:
            # Held by this object: by this thread, with a lock word someone
            # overwrote?  Then put our id back and release.
            word = svk_mutex_word(self._mx)
            if <uint32_t>svk_gettid() == self._tid and (word & FUTEX_TID_MASK) != self._tid:
                svk_mutex_set_word(self._mx, (word & ~FUTEX_TID_MASK) | self._tid)
                if pthread_mutex_unlock(&self._mx.m) == 0:
                    self._released()
                    raise CorruptError("the mutex's lock word in shared memory segment (id %d) "
                                       "was overwritten while held; released" % self._shmid)
        if r == EPERM:
            raise RuntimeError("release of a mutex this thread does not hold")
        raise_errno(r, "pthread_mutex_unlock", WHAT_ID, self._shmid)

    @cython.final
    cdef inline void _released(self) noexcept:
        self._died = False
        if self._held:
            self._held = False
            if self._pins > 0:
                self._pins -= 1

    @cython.binding(False)
    def locked(self):
        """True if the mutex is held (by any thread of any process)."""
        self._ready()
        return (svk_mutex_word(self._mx) & FUTEX_TID_MASK) != 0

    @property
    def owner_died(self):
        """True for a hold taken after the previous holder died holding the
        mutex: the data it guards may be half-updated.  False otherwise."""
        return bool(self._died)

    def _drop_stale_hold(self):
        """Forget a hold this process cannot have (the holding thread is
        gone, or the hold was inherited through fork); True if there was one."""
        cdef uint32_t word
        if not self._held:
            return False
        word = svk_mutex_word(self._mx) if self._mx != NULL and self._addr != NULL else 0
        if self._tid and (word & FUTEX_TID_MASK) == self._tid and _mutex_tid_is_ours(self._tid):
            return False
        self._held = False
        self._died = False
        self._unpin()
        return True

    @cython.binding(False)
    def __enter__(self):
        """Acquire (waiting for ever); returns the mutex."""
        cdef int r
        self._ready()
        r = pthread_mutex_trylock(&self._mx.m)
        if r == 0:
            self._died = False
            self._tid = svk_mutex_word(self._mx) & FUTEX_TID_MASK
            if not self._held:
                self._pins += 1      # _pin(), inline: the mapping is attached (_ready)
                self._held = True
        elif r == EOWNERDEAD:
            self._taken(r)
        elif r == EDEADLK:
            raise RuntimeError("this thread already holds the mutex (it is not reentrant)")
        elif r == EBUSY:
            self._wait(_SEMOBJ_FOREVER)
        else:
            self._fail(r)
        return self

    @cython.binding(False)
    def __exit__(self, exc_type, exc, tb):
        """Release."""
        self._ready()
        if pthread_mutex_unlock(&self._mx.m) == 0:
            self._released()
        else:
            self.release()


def _mutex_tid_is_ours(tid):
    return _os.path.exists("/proc/self/task/%d" % tid)


def bench_c_mutex_pair(MutexBase m, Py_ssize_t n):
    """Seconds for n uncontended acquire+release pairs of m from C: the
    pthread calls sysvkit.Mutex makes, without Python."""
    cdef Py_ssize_t i
    cdef double t0, t1
    cdef int failed = 0
    m._ready()
    with nogil:
        t0 = sysvkit_monotonic()
        for i in range(n):
            failed = pthread_mutex_trylock(&m._mx.m)
            if failed:
                break
            failed = pthread_mutex_unlock(&m._mx.m)
            if failed:
                break
        t1 = sysvkit_monotonic()
    if failed:
        raise_errno(failed, "pthread_mutex_trylock", WHAT_ID, m._shmid)
    return t1 - t0
