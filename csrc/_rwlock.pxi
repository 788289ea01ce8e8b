# RWLock and Event hot paths, over the semop calls of SemopBase (_semobj.pxi).
#
# An RWLock is a set of three semaphores:
#   member 0 (RW_READERS)  how many hold it for reading
#   member 1 (RW_WRITER)   1 while a writer holds it
#   member 2 (RW_WAITING)  how many writers wait for it
# Every change a process makes to them uses SEM_UNDO, and the changes of one
# process add up to zero once it has let go of everything, so whatever
# instant a process dies at, the kernel takes back exactly what it held:
#
#   acquire_read   one semop: RW_WRITER == 0, RW_WAITING == 0, RW_READERS += 1
#   release_read   RW_READERS -= 1
#   acquire_write  first one semop that takes it if it is free (RW_READERS
#                  == 0, RW_WRITER == 0, RW_WRITER += 1); if it is not:
#                  RW_WAITING += 1 (queued), then one semop: RW_READERS == 0,
#                  RW_WRITER == 0, RW_WRITER += 1, RW_WAITING -= 1; on a
#                  timeout or an exception, RW_WAITING -= 1 (given up)
#   release_write  RW_WRITER -= 1
#
# Readers wait while a writer waits (RW_WAITING == 0), so a stream of readers
# cannot starve a writer.  The kernel keeps no per-process count that user
# space can read, so each process counts its own holds, per set, in one
# record shared by every handle on that set; a forked child starts with
# none (its undo list is empty too: fork does not share SEM_UNDO state).
#
# An Event is one semaphore: 1 clear, 0 set.  wait() waits for zero, which
# the kernel grants to every waiter at the instant the value becomes 0.

import os as _rwlock_os

cdef enum:
    RW_READERS = 0
    RW_WRITER = 1
    RW_WAITING = 2
    RW_COUNT = 3


@cython.final
@cython.auto_pickle(False)
cdef class _RWHolds:
    """What this process holds of one RWLock set (shared by its handles)."""
    cdef public int reads
    cdef public int writes


# set id -> _RWHolds, for every RWLock set this process has opened.
cdef dict _rwlock_holds = {}


def _rwlock_holds_for(int semid):
    """The record of this process's holds on the RWLock set ``semid``."""
    rec = _rwlock_holds.get(semid)
    if rec is None:
        rec = _RWHolds()
        _rwlock_holds[semid] = rec
    return rec


def _rwlock_forget_holds():
    """Zero every hold record: a forked child holds nothing of its parent's."""
    cdef _RWHolds rec
    for rec in _rwlock_holds.values():
        rec.reads = 0
        rec.writes = 0


_rwlock_os.register_at_fork(after_in_child=_rwlock_forget_holds)


@cython.auto_pickle(False)
@cython.binding(False)
@cython.embedsignature.format("clinic")
cdef class RWLockBase(SemopBase):
    """Compiled base of sysvkit.RWLock: the acquires and releases.

    Not used directly: the Python subclass supplies ``_fail`` and ``_name``,
    sets the id and calls ``_track()``.
    """

    cdef _RWHolds _holds
    cdef sembuf _rd[3]              # acquire_read
    cdef sembuf _rd_nowait[3]
    cdef sembuf _rd_release
    cdef sembuf _wr_try[3]          # acquire_write's first try, without queueing
    cdef sembuf _wr_queue           # RW_WAITING += 1
    cdef sembuf _wr[4]              # the queued writer's take
    cdef sembuf _wr_nowait[4]
    cdef sembuf _wr_unqueue         # RW_WAITING -= 1, after giving up
    cdef sembuf _wr_release

    def __cinit__(self, *args, **kwargs):
        cdef int i
        self._holds = _RWHolds()
        _semobj_set(&self._rd[0], RW_WRITER, 0, 0)
        _semobj_set(&self._rd[1], RW_WAITING, 0, 0)
        _semobj_set(&self._rd[2], RW_READERS, 1, SEM_UNDO)
        _semobj_set(&self._rd_release, RW_READERS, -1, SEM_UNDO | IPC_NOWAIT)
        _semobj_set(&self._wr_try[0], RW_READERS, 0, IPC_NOWAIT)
        _semobj_set(&self._wr_try[1], RW_WRITER, 0, IPC_NOWAIT)
        _semobj_set(&self._wr_try[2], RW_WRITER, 1, SEM_UNDO | IPC_NOWAIT)
        _semobj_set(&self._wr_queue, RW_WAITING, 1, SEM_UNDO | IPC_NOWAIT)
        _semobj_set(&self._wr[0], RW_READERS, 0, 0)
        _semobj_set(&self._wr[1], RW_WRITER, 0, 0)
        _semobj_set(&self._wr[2], RW_WRITER, 1, SEM_UNDO)
        _semobj_set(&self._wr[3], RW_WAITING, -1, SEM_UNDO)
        _semobj_set(&self._wr_unqueue, RW_WAITING, -1, SEM_UNDO | IPC_NOWAIT)
        _semobj_set(&self._wr_release, RW_WRITER, -1, SEM_UNDO | IPC_NOWAIT)
        for i in range(3):
            self._rd_nowait[i] = self._rd[i]
            self._rd_nowait[i].sem_flg |= IPC_NOWAIT
        for i in range(4):
            self._wr_nowait[i] = self._wr[i]
            self._wr_nowait[i].sem_flg |= IPC_NOWAIT

    def _track(self):
        """Share the hold record of this process for the set (after the id is set)."""
        self._holds = _rwlock_holds_for(self._id)

    def _forget(self):
        """The set is gone: this process holds nothing of it any more."""
        self._holds.reads = 0
        self._holds.writes = 0

    @property
    def _held(self):
        """(reads, writes) this process holds."""
        return (self._holds.reads, self._holds.writes)

    @cython.final
    cdef int _now(self, sembuf *ops, int nsops) except -1:
        """Apply IPC_NOWAIT operations: 1 when done, 0 when they would block."""
        cdef int err
        while True:
            if sysv.semop(self._id, ops, nsops) == 0:
                return 1
            err = errno
            if err == EAGAIN:
                return 0
            if self._id != -1 and (err == EIDRM or err == EINVAL):
                self._forget()      # removed: nothing is held any more
            if err != EINTR:
                self._failed(err, "semop")
            PyErr_CheckSignals()

    @cython.final
    cdef double _timeout(self, bint blocking, object timeout) except? -2.0:
        cdef double t = _SEMOBJ_FOREVER
        if timeout is not None:
            t = _semobj_acquire_timeout(timeout)
            if not blocking and t != _SEMOBJ_FOREVER:
                raise ValueError("can't specify a timeout for a non-blocking call")
        return t

    @cython.final
    cdef int _read(self, bint blocking, double t) except -1:
        cdef int err
        # Uncontended: one system call, with the GIL held.
        if sysv.semop(self._id, self._rd_nowait, 3) != 0:
            err = errno
            if err == ERANGE:
                raise ValueError("%s already has %d (SEMVMX) readers" % (self._name(), SEMVMX))
            if not self._block(err, self._rd_nowait, self._rd, 3, blocking, t):
                return 0
        self._holds.reads += 1
        return 1

    @cython.final
    cdef int _write(self, bint blocking, double t) except -1:
        cdef int err, got
        if sysv.semop(self._id, self._wr_try, 3) == 0:
            self._holds.writes += 1
            return 1
        err = errno
        if err != EAGAIN and err != EINTR:
            self._failed(err, "semop")
        if not blocking or t == 0:
            return 0
        # Queue, so that readers arriving from now on wait; then take it.
        while sysv.semop(self._id, &self._wr_queue, 1) != 0:   # an increase: never waits
            err = errno
            if err == ERANGE:
                raise ValueError("%s already has %d (SEMVMX) waiting writers"
                                 % (self._name(), SEMVMX))
            if err != EINTR:
                self._failed(err, "semop")
            PyErr_CheckSignals()
        try:
            got = self._wait(self._wr_nowait, self._wr, 4, True, t)
        except BaseException:
            self._unqueue()
            raise
        if not got:
            self._unqueue()
            return 0
        self._holds.writes += 1
        return 1

    @cython.final
    cdef void _unqueue(self) noexcept:
        """Give up a place in the writers' queue (errors: the set is gone)."""
        cdef int r
        while True:
            r = sysv.semop(self._id, &self._wr_unqueue, 1)
            if r == 0 or errno != EINTR:
                return

    def acquire_read(self, blocking=True, timeout=None):
        """Take a read hold: wait while a writer holds it or waits for it.

        blocking: wait (True) or only try (False).  timeout: seconds to wait
        at most; None or -1 waits for ever, 0 tries once.  Returns True when
        held, False otherwise (never an exception for that).  ValueError for
        a negative or NaN timeout other than -1, or a timeout with
        blocking=False; ValueError once closed; RemovedError if the lock was
        removed (also while waiting).  Ctrl-C raises KeyboardInterrupt.
        """
        cdef double t = _SEMOBJ_FOREVER
        if timeout is not None:
            t = self._timeout(blocking, timeout)
        return self._read(blocking, t) == 1

    def release_read(self):
        """Give back one read hold of this process.

        RuntimeError if this process holds none; ValueError once closed;
        RemovedError if the lock was removed.
        """
        self._release_read()

    @cython.final
    cdef int _release_read(self) except -1:
        if self._holds.reads <= 0:
            raise RuntimeError("release_read(): this process holds no read lock on %s"
                               % self._name())
        if not self._now(&self._rd_release, 1):
            self._holds.reads = 0
            raise RuntimeError("release_read(): %s has no readers (its values were set "
                               "from outside)" % self._name())
        self._holds.reads -= 1
        return 0

    def acquire_write(self, blocking=True, timeout=None):
        """Take the write hold: wait until no process reads or writes.

        While it waits, readers arriving later wait behind it.  blocking,
        timeout and the errors as for acquire_read(); True when held, False
        otherwise.
        """
        cdef double t = _SEMOBJ_FOREVER
        if timeout is not None:
            t = self._timeout(blocking, timeout)
        return self._write(blocking, t) == 1

    def release_write(self):
        """Give back the write hold of this process.

        RuntimeError if this process does not hold it; ValueError once
        closed; RemovedError if the lock was removed.
        """
        self._release_write()

    @cython.final
    cdef int _release_write(self) except -1:
        if self._holds.writes <= 0:
            raise RuntimeError("release_write(): this process does not hold the write "
                               "lock on %s" % self._name())
        if not self._now(&self._wr_release, 1):
            self._holds.writes = 0
            raise RuntimeError("release_write(): %s has no writer (its values were set "
                               "from outside)" % self._name())
        self._holds.writes -= 1
        return 0

    def read(self, timeout=None):
        """A context manager holding the lock for reading.

        ``with rw.read(timeout=5):`` waits at most 5 seconds (None or -1:
        for ever), then raises TimeoutError; the hold is given back at the
        end of the block.  ValueError for a negative or NaN timeout other
        than -1 (at once); other errors as for acquire_read().
        """
        return RWLockHold._make(self, False, timeout)

    def write(self, timeout=None):
        """A context manager holding the lock for writing.

        ``with rw.write(timeout=5):`` waits at most 5 seconds (None or -1:
        for ever), then raises TimeoutError; the hold is given back at the
        end of the block.  ValueError for a negative or NaN timeout other
        than -1 (at once); other errors as for acquire_write().
        """
        return RWLockHold._make(self, True, timeout)

    @property
    def readers(self):
        """How many holds for reading there are (in every process)."""
        return self._getval_of(RW_READERS, GETVAL)

    @property
    def writing(self):
        """True while a process holds it for writing."""
        return self._getval_of(RW_WRITER, GETVAL) != 0

    @property
    def waiting_writers(self):
        """How many writers wait for it (readers arriving meanwhile wait too)."""
        return self._getval_of(RW_WAITING, GETVAL)


@cython.auto_pickle(False)
@cython.binding(False)
cdef class RWLockHold:
    """The context manager of RWLock.read() and RWLock.write(): takes the
    hold on entry (TimeoutError when the timeout expires) and gives it back
    on exit."""

    cdef RWLockBase _lock
    cdef bint _write
    cdef double _timeout

    @staticmethod
    cdef RWLockHold _make(RWLockBase lock, bint write, object timeout):
        cdef RWLockHold h = RWLockHold.__new__(RWLockHold)
        h._timeout = _SEMOBJ_FOREVER if timeout is None else _semobj_acquire_timeout(timeout)
        h._lock = lock
        h._write = write
        return h

    def __enter__(self):
        cdef int got
        if self._write:
            got = self._lock._write(True, self._timeout)
        else:
            got = self._lock._read(True, self._timeout)
        if not got:
            raise TimeoutError(ETIMEDOUT, "timed out waiting to %s %s"
                               % ("write" if self._write else "read", self._lock._name()))
        return self._lock

    def __exit__(self, exc_type, exc, tb):
        if self._write:
            self._lock._release_write()
        else:
            self._lock._release_read()

    def __aenter__(self):
        """``async with rw.read():`` (or ``write()``): as ``with``, for asyncio
        (sysvkit._aio); the event loop runs while it waits."""
        from sysvkit import _aio
        return _aio.rw_hold_enter(self._lock, self._write, self._timeout)

    def __aexit__(self, exc_type, exc, tb):
        from sysvkit import _aio
        return _aio.rw_hold_exit(self._lock, self._write)


@cython.auto_pickle(False)
@cython.binding(False)
@cython.embedsignature.format("clinic")
cdef class EventBase(SemopBase):
    """Compiled base of sysvkit.Event: member 0, 1 clear and 0 set."""

    cdef sembuf _zero
    cdef sembuf _zero_nowait

    def __cinit__(self, *args, **kwargs):
        _semobj_set(&self._zero, 0, 0, 0)
        _semobj_set(&self._zero_nowait, 0, 0, IPC_NOWAIT)

    @cython.final
    cdef int _setval(self, int value) except -1:
        cdef sysvkit_semun u
        cdef int r
        u.val = value
        r = sysv.semctl(self._id, 0, SETVAL, u)
        if r == -1:
            self._failed(errno, "semctl")
        return 0

    def set(self):
        """Set the flag, waking every process that waits for it.

        ValueError once closed; RemovedError if the event was removed.
        """
        self._setval(0)

    def clear(self):
        """Clear the flag: wait() blocks again until the next set().

        ValueError once closed; RemovedError if the event was removed.
        """
        self._setval(1)

    def is_set(self):
        """True while the flag is set.  ValueError once closed; RemovedError."""
        return self._getval_of(0, GETVAL) == 0

    def wait(self, timeout=None):
        """Wait until the flag is set, as threading.Event.wait.

        timeout: seconds; None waits for ever, 0 only checks.  Returns True
        when the flag is (or was, at the instant set() woke the wait) set,
        False on timeout.  ValueError for a negative or NaN timeout;
        ValueError once closed; RemovedError if the event was removed (also
        while waiting).  Ctrl-C raises KeyboardInterrupt.
        """
        cdef double t = _SEMOBJ_FOREVER
        if timeout is not None:
            t = _semobj_wait_timeout(timeout)
        if self._wait(&self._zero_nowait, &self._zero, 1, True, t):
            return True
        return False


def bench_c_rwlock_read_pair(int semid, Py_ssize_t n):
    """Seconds for n RWLock acquire_read+release_read pairs from C: exactly
    the semop calls sysvkit.RWLock makes when no writer holds or waits."""
    cdef sembuf rd[3]
    cdef sembuf rel
    cdef Py_ssize_t i
    cdef double t0, t1
    cdef int failed = 0
    _semobj_set(&rd[0], RW_WRITER, 0, IPC_NOWAIT)
    _semobj_set(&rd[1], RW_WAITING, 0, IPC_NOWAIT)
    _semobj_set(&rd[2], RW_READERS, 1, SEM_UNDO | IPC_NOWAIT)
    _semobj_set(&rel, RW_READERS, -1, SEM_UNDO | IPC_NOWAIT)
    with nogil:
        t0 = sysvkit_monotonic()
        for i in range(n):
            if sysv.semop(semid, rd, 3) == -1:
                failed = errno
                break
            if sysv.semop(semid, &rel, 1) == -1:
                failed = errno
                break
        t1 = sysvkit_monotonic()
    if failed:
        raise_errno(failed, "semop", WHAT_ID, semid)
    return t1 - t0
