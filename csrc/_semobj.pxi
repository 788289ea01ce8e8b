# Semaphore hot path: a cdef base class whose acquire/release are C methods.
#
# sysvkit.Semaphore and sysvkit.Lock (sysvkit/semaphores.py) subclass these
# classes together with the Python-level IPCObject, which supplies naming,
# stat, remove, close, pickling, repr and ``_fail`` (error translation).
# SemopBase holds what every such object shares (the id, the try-then-wait
# calls); RWLockBase and EventBase (_rwlock.pxi) build on it too.
#
# Every operation first tries semop() with IPC_NOWAIT while holding the GIL:
# a call that cannot block needs no GIL release, and the uncontended case,
# the common one, costs one system call and little else.  Only when that try
# would block (EAGAIN) does the call go to the blocking path, which releases
# the GIL around semop() or semtimedop() (with the time left) and retries on
# EINTR after running the signal handlers (PEP 475), so Ctrl-C gets through.

cimport cython
from libc.errno cimport ERANGE

import numbers as _semobj_numbers


cdef double _SEMOBJ_FOREVER = -1.0


cdef double _semobj_acquire_timeout(object timeout) except? -2.0:
    """An acquire() timeout in seconds; -1.0 for ever (None or -1)."""
    cdef double t
    if timeout is None:
        return _SEMOBJ_FOREVER
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, _semobj_numbers.Real)):
        raise TypeError("timeout must be a number of seconds, -1 or None, not %s"
                        % type(timeout).__name__)
    t = timeout
    if t == -1.0:
        return _SEMOBJ_FOREVER
    if isnan(t) or t < 0:
        raise ValueError("timeout must be >= 0 seconds, or -1 or None for ever, got %r"
                         % (timeout,))
    if t > 1e9:     # ~31 years: as good as for ever
        return _SEMOBJ_FOREVER
    return t


cdef double _semobj_wait_timeout(object timeout) except? -2.0:
    """A timeout that must be >= 0 seconds (None is handled by the caller)."""
    cdef double t
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, _semobj_numbers.Real)):
        raise TypeError("timeout must be a number of seconds or None, not %s"
                        % type(timeout).__name__)
    t = timeout
    if isnan(t) or t < 0:
        raise ValueError("timeout must be >= 0 seconds or None, got %r" % (timeout,))
    if t > 1e9:
        return _SEMOBJ_FOREVER
    return t


cdef inline void _semobj_set(sembuf *op, int num, int delta, int flags) noexcept nogil:
    op.sem_num = <unsigned short>num
    op.sem_op = <short>delta
    op.sem_flg = <short>flags


@cython.auto_pickle(False)
@cython.binding(False)
@cython.embedsignature.format("clinic")
cdef class SemopBase:
    """Compiled base of every object built on one semaphore set (Semaphore,
    Lock, RWLock, Event): the set's id, and the semop calls that try at once
    and then wait with the GIL released.

    Not used directly: the Python subclass supplies ``_fail`` and ``_name``
    (from sysvkit._base.IPCObject) and sets the id.
    """

    cdef public int _id             # the set's id; -1 when closed (or not set up)

    def __cinit__(self, *args, **kwargs):
        self._id = -1

    @cython.final
    cdef int _failed(self, int err, str call) except -1:
        """Raise the error of a failed call, in the user's terms (``_fail``)."""
        cls = _ERRNO_CLASSES.get(err, OSError)
        exc = cls(err, "%s (%s, %s)" % (strerror(err).decode("utf-8", "replace"), call,
                                        self._name()))
        self._fail(exc)
        raise exc   # _fail always raises; this is a safety net

    @cython.final
    cdef int _getval_of(self, int num, int cmd) except -1:
        """semctl(cmd) on member ``num``: GETVAL, GETPID, GETNCNT or GETZCNT."""
        cdef int r = sysv.semctl(self._id, num, cmd)
        if r == -1:
            self._failed(errno, "semctl")
        return r

    @cython.final
    cdef int _wait(self, sembuf *fast, sembuf *slow, int nsops, bint blocking,
                   double timeout) except -1:
        """Apply ``fast`` (the IPC_NOWAIT form) at once if it can proceed;
        otherwise, when ``blocking``, wait for ``slow`` with the GIL released
        (for ever when ``timeout`` < 0).  1 when done, 0 when it would block
        or timed out."""
        if sysv.semop(self._id, fast, nsops) == 0:
            return 1
        return self._block(errno, fast, slow, nsops, blocking, timeout)

    @cython.final
    cdef int _block(self, int err, sembuf *fast, sembuf *slow, int nsops, bint blocking,
                    double timeout) except -1:
        """The rest of _wait, after the first try (``fast``) failed with ``err``."""
        cdef int r, semid
        cdef double deadline = 0
        cdef timespec ts
        while err == EINTR:     # not expected of an IPC_NOWAIT call; retry it
            PyErr_CheckSignals()
            if sysv.semop(self._id, fast, nsops) == 0:
                return 1
            err = errno
        if err == EAGAIN:
            if not blocking or timeout == 0:
                return 0
        else:
            self._failed(err, "semop")
        if timeout > 0:
            deadline = sysvkit_monotonic() + timeout
        while True:
            semid = self._id
            if timeout >= 0:
                sysvkit_to_timespec(deadline - sysvkit_monotonic(), &ts)
                with nogil:
                    r = sysv.semtimedop(semid, slow, nsops, &ts)
                    err = errno
            else:
                with nogil:
                    r = sysv.semop(semid, slow, nsops)
                    err = errno
            if r == 0:
                return 1
            if err == EAGAIN and timeout >= 0:
                return 0
            if err != EINTR:
                self._failed(err, "semtimedop" if timeout >= 0 else "semop")
            PyErr_CheckSignals()


@cython.auto_pickle(False)
@cython.binding(False)
@cython.embedsignature.format("clinic")
cdef class SemaphoreBase(SemopBase):
    """Compiled base of sysvkit.Semaphore: acquire, release and wait_zero.

    Not used directly: the Python subclass supplies ``_fail`` and ``_name``
    (from sysvkit._base.IPCObject) and sets the id and member.
    """

    cdef int _sem_num               # the member
    cdef int _undo_flag             # SEM_UNDO or 0
    cdef sembuf _down               # acquire, blocking
    cdef sembuf _down_nowait        # acquire, first try
    cdef sembuf _up                 # release(1)
    cdef sembuf _zero               # wait_zero, blocking
    cdef sembuf _zero_nowait        # wait_zero, first try
    cdef sembuf _unlock[2]          # Lock.release: only if the value is 0, then +1

    def __cinit__(self, *args, **kwargs):
        self._prepare_ops(0, 0)

    @cython.final
    cdef void _prepare_ops(self, int num, int undo_flag) noexcept:
        self._sem_num = num
        self._undo_flag = undo_flag
        _semobj_set(&self._down, num, -1, undo_flag)
        _semobj_set(&self._down_nowait, num, -1, undo_flag | IPC_NOWAIT)
        _semobj_set(&self._up, num, 1, undo_flag)
        _semobj_set(&self._zero, num, 0, 0)
        _semobj_set(&self._zero_nowait, num, 0, IPC_NOWAIT)
        _semobj_set(&self._unlock[0], num, 0, IPC_NOWAIT)
        _semobj_set(&self._unlock[1], num, 1, undo_flag)

    def _prepare(self, int num, bint undo):
        """Aim the operations at member ``num``, with SEM_UNDO if ``undo``."""
        if num < 0 or num > 0xFFFF:
            raise ValueError("index must be in 0..65535, got %d" % num)
        self._prepare_ops(num, SEM_UNDO if undo else 0)

    @property
    def _member(self):
        """The member index the operations act on."""
        return self._sem_num

    @property
    def _undo(self):
        """True when the operations use SEM_UNDO."""
        return self._undo_flag != 0

    @cython.final
    cdef int _release(self, int n) except -1:
        cdef sembuf op
        cdef sembuf *sop = &self._up
        cdef int r, err
        if n != 1:
            op = self._up
            op.sem_op = <short>n
            sop = &op
        while True:
            r = sysv.semop(self._id, sop, 1)     # an increase never blocks
            if r == 0:
                return 0
            err = errno
            if err == ERANGE:
                raise ValueError("release(%d) would raise the value above SEMVMX (%d)"
                                 % (n, SEMVMX))
            if err != EINTR:
                self._failed(err, "semop")
            PyErr_CheckSignals()

    @cython.final
    cdef int _getval(self, int cmd) except -1:
        cdef int r = sysv.semctl(self._id, self._sem_num, cmd)
        if r == -1:
            self._failed(errno, "semctl")
        return r

    def _get(self, int cmd):
        """semctl(cmd) on the member: GETVAL, GETPID, GETNCNT or GETZCNT."""
        return self._getval(cmd)

    def acquire(self, blocking=True, timeout=None):
        """Decrement the value by one, waiting while it is 0, as
        threading.Semaphore.acquire.

        blocking: wait (True) or only try (False).  timeout: seconds to wait
        at most; None or -1 waits for ever, 0 tries once.  Returns True when
        acquired, False when it could not be done without blocking or in
        time (never an exception for that).  ValueError for a negative or NaN
        timeout, or a timeout with blocking=False; ValueError once closed;
        RemovedError if the set was removed (also while waiting).  Signal
        handlers run while it waits; Ctrl-C raises KeyboardInterrupt.
        """
        cdef double t = _SEMOBJ_FOREVER
        if timeout is not None:
            if not blocking:
                raise ValueError("can't specify timeout for non-blocking acquire")
            t = _semobj_acquire_timeout(timeout)
        if sysv.semop(self._id, &self._down_nowait, 1) == 0:
            return True     # the uncontended case: one system call, GIL held
        if self._block(errno, &self._down_nowait, &self._down, 1, blocking, t):
            return True
        return False

    def release(self, n=1):
        """Increment the value by ``n`` (default 1), waking waiters, as
        threading.Semaphore.release.

        ValueError if n < 1 or the value would pass SEMVMX (32767);
        ValueError once closed; RemovedError if the set was removed.
        """
        cdef long k
        if n is 1:
            self._release(1)
            return
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError("n must be an int, not %s" % type(n).__name__)
        if not 1 <= n <= SEMVMX:
            raise ValueError("n must be in 1..%d (SEMVMX), got %r" % (SEMVMX, n))
        k = n
        self._release(<int>k)

    def _wait_zero(self, timeout=None):
        """Wait until the value is 0 (timeout: seconds, None for ever);
        True when it is, False on timeout (Semaphore.wait_zero)."""
        cdef double t = _SEMOBJ_FOREVER
        if timeout is not None:
            t = _semobj_wait_timeout(timeout)
        if self._wait(&self._zero_nowait, &self._zero, 1, True, t):
            return True
        return False

    def __enter__(self):
        """Acquire (waiting for ever); returns the object."""
        self._wait(&self._down_nowait, &self._down, 1, True, _SEMOBJ_FOREVER)
        return self

    def __exit__(self, exc_type, exc, tb):
        """Release."""
        self._release(1)


@cython.auto_pickle(False)
@cython.binding(False)
@cython.embedsignature.format("clinic")
cdef class LockBase(SemaphoreBase):
    """Compiled base of sysvkit.Lock: a mutex on member 0, always SEM_UNDO.

    Value 1 is unlocked, 0 locked.
    """

    def __cinit__(self, *args, **kwargs):
        self._prepare_ops(0, SEM_UNDO)

    def _prepare(self, int num, bint undo):
        """A Lock always uses member 0 with SEM_UNDO."""
        if num != 0 or not undo:
            raise ValueError("a Lock uses member 0 with SEM_UNDO")
        self._prepare_ops(0, SEM_UNDO)

    def acquire(self, blocking=True, timeout=-1):
        """Acquire the lock, as threading.Lock.acquire.

        blocking: wait (True) or only try (False).  timeout: seconds to wait
        at most; -1 (or None) waits for ever.  Returns True when acquired,
        False otherwise (never an exception for that).  ValueError for a
        timeout with blocking=False or a negative timeout other than -1;
        ValueError once closed; RemovedError if the lock was removed (also
        while waiting).  Ctrl-C raises KeyboardInterrupt while it waits.
        """
        cdef double t = _SEMOBJ_FOREVER
        if timeout is not -1:
            t = _semobj_acquire_timeout(timeout)
            if not blocking and t != _SEMOBJ_FOREVER:
                raise ValueError("can't specify a timeout for a non-blocking call")
        if sysv.semop(self._id, &self._down_nowait, 1) == 0:
            return True     # the uncontended case: one system call, GIL held
        if self._block(errno, &self._down_nowait, &self._down, 1, blocking, t):
            return True
        return False

    @cython.final
    cdef int _unlock_c(self) except -1:
        cdef int r, err
        while True:
            r = sysv.semop(self._id, self._unlock, 2)   # never blocks
            if r == 0:
                return 0
            err = errno
            if err == EAGAIN:
                raise RuntimeError("release unlocked lock")
            if err != EINTR:
                self._failed(err, "semop")
            PyErr_CheckSignals()

    def release(self):
        """Release the lock, as threading.Lock.release.

        RuntimeError if it is not locked (checked and done in one atomic
        semop); ValueError once closed; RemovedError if it was removed.
        """
        self._unlock_c()

    def locked(self):
        """True if the lock is held (by any process).

        ValueError once closed; RemovedError if the lock was removed.
        """
        return self._getval(GETVAL) == 0

    def __enter__(self):
        """Acquire (waiting for ever); returns the lock."""
        self._wait(&self._down_nowait, &self._down, 1, True, _SEMOBJ_FOREVER)
        return self

    def __exit__(self, exc_type, exc, tb):
        """Release."""
        self._unlock_c()


def bench_c_lock_pair(int semid, Py_ssize_t n):
    """Seconds for n Lock acquire+release pairs on member 0 from C: exactly
    the semop calls sysvkit.Lock makes when uncontended."""
    cdef sembuf down
    cdef sembuf unlock[2]
    cdef Py_ssize_t i
    cdef double t0, t1
    cdef int failed = 0
    _semobj_set(&down, 0, -1, SEM_UNDO | IPC_NOWAIT)
    _semobj_set(&unlock[0], 0, 0, IPC_NOWAIT)
    _semobj_set(&unlock[1], 0, 1, SEM_UNDO)
    with nogil:
        t0 = sysvkit_monotonic()
        for i in range(n):
            if sysv.semop(semid, &down, 1) == -1:
                failed = errno
                break
            if sysv.semop(semid, unlock, 2) == -1:
                failed = errno
                break
        t1 = sysvkit_monotonic()
    if failed:
        raise_errno(failed, "semop", WHAT_ID, semid)
    return t1 - t0
