# The compiled half of sysvkit's asyncio layer (sysvkit/_aio.py): one wait,
# made by a worker thread, that another thread can end at once.
#
# A wait is an _AioRequest.  Its worker runs it with run(): it arms a POSIX
# timer aimed at itself (compat.h's sysvkit_timer, the one that bounds a
# timed msgrcv) at the earlier of the caller's deadline and the end of the
# worker's time slice, and makes one blocking system call without the GIL.
# cancel() and preempt() retarget that timer (to now, or to a new slice end);
# its signal makes the call fail with EINTR (System V calls and timed futex
# waits are never restarted), and the timer repeats every millisecond until
# the worker deletes it, so a signal that lands just before the call is
# entered cannot be lost.  Arming, retargeting and disarming all happen with
# the GIL held, which orders them; only the system call runs without it.
#
# Most waits consume nothing: they wait until the operation could proceed
# and let the event loop's thread make the real, non-blocking call, so a
# cancelled wait cannot take anything.
#   - a message: msgrcv of at most 0 bytes, which fails with E2BIG and leaves
#     a longer message in the queue (a 0-byte message is taken: DONE);
#   - semaphores: the operations followed by their inverses in reverse order,
#     one atomic semop that waits until the operations could be done and
#     changes no value;
#   - a Mutex: a futex wait on its lock word until the holder lets go.
# Sending a message (and a semop too long for its probe) cannot be probed;
# the worker does it (DONE), and a cancellation that comes after it is done
# cannot undo it.

from libc.errno cimport E2BIG
from libc.stdint cimport uint32_t

cdef extern from *:
    """
    #include <stdint.h>
    #include "mutex.h"

    typedef struct {
        int cancelled;          /* set by cancel(); read by the worker */
        double slice_end;       /* absolute CLOCK_MONOTONIC; preempt() lowers it */
        double armed_for;       /* the timer's first expiry */
        sysvkit_timer timer;
    } svk_aio_cell;

    /* Make the worker's timer fire at `when` (absolute), if that is earlier
     * than it would; then every millisecond until it is deleted. */
    static int svk_aio_poke(svk_aio_cell *c, double when)
    {
        struct itimerspec its;
        if (!c->timer.active || when >= c->armed_for)
            return 0;
        sysvkit_to_timespec(when, &its.it_value);
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1;
        its.it_interval.tv_sec = 0;
        its.it_interval.tv_nsec = 1000000L;
        c->armed_for = when;
        return timer_settime(c->timer.id, TIMER_ABSTIME, &its, NULL);
    }

    static inline int svk_aio_cancelled(svk_aio_cell *c)
    {
        return __atomic_load_n(&c->cancelled, __ATOMIC_ACQUIRE);
    }

    static inline double svk_aio_slice_end(svk_aio_cell *c)
    {
        double v;
        __atomic_load(&c->slice_end, &v, __ATOMIC_ACQUIRE);
        return v;
    }

    /* Sleep until the mutex looks free (0), or until the futex deadline
     * (ETIMEDOUT) or a signal (EINTR).  Sets FUTEX_WAITERS, as every sleeper
     * does, so that the holder's unlock wakes a sleeper. */
    static int svk_aio_mutex_wait(svk_mutex *mx, const struct timespec *deadline)
    {
        uint32_t *word = svk_lock_word(&mx->m);
        for (;;) {
            uint32_t v = __atomic_load_n(word, __ATOMIC_ACQUIRE);
            if ((v & FUTEX_TID_MASK) == 0 || (v & FUTEX_OWNER_DIED))
                return 0;
            if (!(v & FUTEX_WAITERS)) {
                if (!__atomic_compare_exchange_n(word, &v, v | FUTEX_WAITERS, 0,
                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                    continue;
                v |= FUTEX_WAITERS;
            }
            int r = svk_futex_wait(word, v, deadline);
            if (r == EINTR || r == ETIMEDOUT)
                return r;
        }
    }

    /* The loop's inbox: a stack of finished requests that workers push
     * without the GIL, and an eventfd that wakes the loop. */
    typedef struct svk_aio_node {
        struct svk_aio_node *next;
        void *obj;              /* the _AioRequest; one reference held */
        int outcome;
    } svk_aio_node;

    static inline void svk_aio_push(svk_aio_node **head, svk_aio_node *n)
    {
        svk_aio_node *old = __atomic_load_n(head, __ATOMIC_RELAXED);
        do {
            n->next = old;
        } while (!__atomic_compare_exchange_n(head, &old, n, 1, __ATOMIC_RELEASE,
                                              __ATOMIC_RELAXED));
    }

    static inline svk_aio_node *svk_aio_take_all(svk_aio_node **head)
    {
        return __atomic_exchange_n(head, NULL, __ATOMIC_ACQUIRE);
    }

    static inline void svk_aio_ring(int fd)
    {
        uint64_t one = 1;
        ssize_t r;
        do {
            r = write(fd, &one, sizeof one);
        } while (r == -1 && errno == EINTR);
    }

    /* Sleep until a Channel has a message (for_data) or room for rec bytes,
     * and that side's lock is free: 0; EIDRM once it is marked removed;
     * ETIMEDOUT at the futex deadline; EINTR on a signal.  Speaks the
     * channel's protocol (channel.h): announce on the word, check, sleep. */
    static int svk_aio_chan_wait(svk_channel *c, int for_data, uint64_t rec, uint64_t rsize,
                                 const struct timespec *deadline)
    {
        uint32_t *word = for_data ? &c->data_word : &c->space_word;
        svk_chan_mutex *lock = for_data ? &c->recv_lock : &c->send_lock;
        for (;;) {
            if (svk_chan_removed(c))
                return EIDRM;
            uint32_t v = svk_chan_announce(word);
            uint64_t head = svk_chan_load(&c->head);
            uint64_t tail = svk_chan_load(&c->tail);
            int r;
            if (!svk_chan_span_ok(head, tail, rsize))
                return 0;               /* the real call reports it */
            if (for_data ? tail != head : tail + rec - head <= rsize) {
                uint32_t *lw = svk_lock_word(&lock->m);
                uint32_t lv = __atomic_load_n(lw, __ATOMIC_ACQUIRE);
                if ((lv & FUTEX_TID_MASK) == 0 || (lv & FUTEX_OWNER_DIED))
                    return 0;
                /* another sender or receiver is copying: sleep on its lock */
                if (!(lv & FUTEX_WAITERS)) {
                    if (!__atomic_compare_exchange_n(lw, &lv, lv | FUTEX_WAITERS, 0,
                                                     __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                        continue;
                    lv |= FUTEX_WAITERS;
                }
                r = svk_futex_wait(lw, lv, deadline);
            } else {
                r = svk_futex_wait(word, v, deadline);
            }
            if (r == EINTR || r == ETIMEDOUT)
                return r;
        }
    }

    static inline void svk_aio_mutex_mark_waiters(svk_mutex *mx)
    {
        __atomic_fetch_or(svk_lock_word(&mx->m), FUTEX_WAITERS, __ATOMIC_RELAXED);
    }

    static inline void svk_aio_mutex_pass_on(svk_mutex *mx)
    {
        svk_futex_wake(svk_lock_word(&mx->m), 1);
    }
    """
    ctypedef struct svk_aio_cell:
        int cancelled
        double slice_end
        double armed_for
        sysvkit_timer timer
    int sysvkit_timer_signal()
    int svk_aio_poke(svk_aio_cell *c, double when) nogil
    int svk_aio_cancelled(svk_aio_cell *c) nogil
    double svk_aio_slice_end(svk_aio_cell *c) nogil
    ctypedef struct svk_aio_node:
        svk_aio_node *next
        void *obj
        int outcome
    void svk_aio_push(svk_aio_node **head, svk_aio_node *n) nogil
    svk_aio_node *svk_aio_take_all(svk_aio_node **head) nogil
    void svk_aio_ring(int fd) nogil
    int svk_aio_mutex_wait(svk_mutex *mx, const timespec *deadline) nogil
    int svk_aio_chan_wait(svk_channel *c, int for_data, uint64_t rec, uint64_t rsize,
                          const timespec *deadline) nogil
    void svk_aio_mutex_mark_waiters(svk_mutex *mx) nogil
    void svk_aio_mutex_pass_on(svk_mutex *mx) nogil
    void __atomic_store_n(int *p, int v, int order) nogil
    int __ATOMIC_RELEASE

# What a request asks for.
cdef enum:
    _AIO_MSG_PROBE = 1      # wait for a message; take only a 0-byte one
    _AIO_MSG_SEND = 2       # send a message
    _AIO_SEM_PROBE = 3      # wait until semops could be done; change nothing
    _AIO_SEM_DO = 4         # do semops
    _AIO_MUTEX_PROBE = 5    # wait until a Mutex looks free
    _AIO_CHAN_PROBE = 6     # wait until a Channel has a message, or room

# How a run() ended.
cdef enum:
    _AIO_READY = 0      # the operation can probably proceed now: try it
    _AIO_DONE = 1       # the worker did the operation
    _AIO_TIMEDOUT = 2   # the caller's deadline passed
    _AIO_CANCELLED = 3  # cancel() ended it
    _AIO_SLICE = 4      # the time slice ended: run it again later
    _AIO_ERROR = 5      # the call failed: .err holds errno

AIO_READY = _AIO_READY
AIO_DONE = _AIO_DONE
AIO_TIMEDOUT = _AIO_TIMEDOUT
AIO_CANCELLED = _AIO_CANCELLED
AIO_SLICE = _AIO_SLICE
AIO_ERROR = _AIO_ERROR

# A Mutex sleeper looks this often (seconds) for a holder that died without
# the kernel's release, as a blocking acquire does.
cdef double _AIO_MUTEX_CHECK = 0.25
# A Channel sleeper looks this often whether its handle was closed.
cdef double _AIO_CHAN_CHECK = 0.1
cdef double _AIO_FOREVER = 1e7      # seconds: the timer of a wait without deadline


cdef inline double _aio_min(double a, double b) noexcept nogil:
    return a if a < b else b


cdef extern from "<sched.h>" nogil:
    int sched_yield()

cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int initval, int flags)
    enum:
        EFD_NONBLOCK
        EFD_CLOEXEC

from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from posix.unistd cimport read as _posix_read, close as _posix_close


@cython.auto_pickle(False)
@cython.final
cdef class _AioInbox:
    """Where workers leave finished requests for one event loop: they push
    them and ring an eventfd without taking the GIL, so the loop wakes while
    the worker is still getting the GIL back.  The loop watches fileno()
    and calls drain()."""
    cdef svk_aio_node *_head
    cdef int _fd

    def __cinit__(self):
        self._head = NULL
        self._fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
        if self._fd == -1:
            raise_errno(errno, "eventfd", WHAT_ID, 0)

    def __dealloc__(self):
        cdef svk_aio_node *n = svk_aio_take_all(&self._head)
        cdef svk_aio_node *nxt
        while n != NULL:
            nxt = n.next
            Py_DECREF(<object>n.obj)
            n = nxt
        if self._fd != -1:
            _posix_close(self._fd)

    def fileno(self):
        return self._fd

    def drain(self):
        """The requests finished since the last call, oldest first, as
        (request, outcome) pairs."""
        cdef unsigned long long count
        cdef svk_aio_node *n
        cdef svk_aio_node *nxt
        cdef list out = []
        _posix_read(self._fd, &count, sizeof(count))     # EAGAIN when none: fine
        n = svk_aio_take_all(&self._head)
        while n != NULL:
            nxt = n.next
            req = <object>n.obj         # a new reference; drop the one pushed
            Py_DECREF(req)
            out.append((req, n.outcome))
            n = nxt
        out.reverse()
        return out


@cython.auto_pickle(False)
@cython.final
cdef class _AioRequest:
    """One wait for a worker thread (sysvkit._aio); see the top of _aio.pxi."""
    cdef svk_aio_cell _cell
    cdef int _what
    cdef int _ident
    cdef long _mtype
    cdef int _flags
    cdef sysvkit_msgbuf *_msg
    cdef Py_ssize_t _n
    cdef sembuf *_sops
    cdef int _nsops
    cdef svk_mutex *_mx
    cdef svk_channel *_chan
    cdef char **_addr_p         # the structure's mapping (NULL once closed)
    cdef uint64_t _rsize
    cdef uint64_t _rec
    cdef bint _for_data
    cdef double _deadline       # absolute; < 0: none
    cdef public int err         # errno of _AIO_ERROR
    cdef public long got_type   # the type of a 0-byte message taken
    cdef public object owner    # the object waited on (kept alive, and its mapping)
    cdef public object loop     # used by sysvkit._aio
    cdef public object future
    cdef public object outcome
    cdef public object late
    cdef _AioInbox _inbox       # where run() leaves the outcome, if set
    cdef svk_aio_node _node
    cdef public bint pushed     # run() left its outcome in the inbox

    def __cinit__(self):
        memset(&self._cell, 0, sizeof(self._cell))
        self._cell.slice_end = _AIO_FOREVER * 1e3
        self._msg = NULL
        self._sops = NULL
        self._mx = NULL
        self._deadline = -1.0
        self.err = 0
        self.got_type = 0

    def __dealloc__(self):
        # run() always deletes its timer before it returns.
        if self._msg != NULL:
            free(self._msg)
        if self._sops != NULL:
            free(self._sops)

    # -- making requests (on the event loop's thread) ----------------------------
    @staticmethod
    def msg_probe(owner, int ident, long mtype, int flags, double deadline):
        """Wait for a message of ``mtype`` (msgrcv's type, ``flags`` 0 or
        MSG_EXCEPT) in queue ``ident``, taking none but a 0-byte one."""
        cdef _AioRequest req = _AioRequest()
        req._what = _AIO_MSG_PROBE
        req._ident = ident
        req._mtype = mtype
        req._flags = flags & MSG_EXCEPT
        req._deadline = deadline
        req._msg = <sysvkit_msgbuf *>malloc(sizeof(sysvkit_msgbuf))
        if req._msg == NULL:
            raise MemoryError()
        req.owner = owner
        return req

    @staticmethod
    def msg_send(owner, int ident, data, long mtype, double deadline):
        """Send ``data`` (bytes-like) as a message of ``mtype`` to queue ``ident``."""
        cdef _AioRequest req = _AioRequest()
        cdef Py_buffer src
        req._what = _AIO_MSG_SEND
        req._ident = ident
        req._deadline = deadline
        try:
            PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        except BufferError:     # not C-contiguous
            data = memoryview(data).tobytes()
            PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        try:
            req._msg = <sysvkit_msgbuf *>malloc(sizeof(long) + src.len + 1)
            if req._msg == NULL:
                raise MemoryError()
            req._msg.mtype = mtype
            memcpy(req._msg.mtext, src.buf, src.len)
            req._n = src.len
        finally:
            PyBuffer_Release(&src)
        req.owner = owner
        return req

    @staticmethod
    def sem(owner, int ident, ops, bint probe, double deadline):
        """semop ``ops`` ((num, delta, flags) triples) on set ``ident``: as a
        probe (they must change nothing), or for real."""
        cdef _AioRequest req = _AioRequest()
        cdef Py_ssize_t n = len(ops)
        if n < 1:
            raise ValueError("ops must hold at least one operation")
        req._what = _AIO_SEM_PROBE if probe else _AIO_SEM_DO
        req._ident = ident
        req._deadline = deadline
        req._sops = <sembuf *>malloc(n * sizeof(sembuf))
        if req._sops == NULL:
            raise MemoryError()
        _fill_sops(ops, req._sops, n)
        req._nsops = <int>n
        req.owner = owner
        return req

    @staticmethod
    def mutex_probe(MutexBase m, double deadline):
        """Wait until Mutex ``m`` looks free."""
        cdef _AioRequest req = _AioRequest()
        m._ready()
        req._what = _AIO_MUTEX_PROBE
        req._mx = m._mx
        req._deadline = deadline
        # The object stays alive while the request lives: even if it is
        # closed meanwhile, _mx points into the placeholder left in place of
        # its mapping (_Segment._unmap), never at unmapped memory.
        req.owner = m
        return req

    @staticmethod
    def chan_probe(ChannelBase ch, bint for_data, unsigned long long nbytes, double deadline):
        """Wait until Channel ``ch`` has a message (``for_data``) or room
        for a message of ``nbytes``, and that side's lock is free."""
        cdef _AioRequest req = _AioRequest()
        if ch._addr == NULL or ch._ch == NULL:
            raise ValueError("operation on a closed channel")
        req._what = _AIO_CHAN_PROBE
        req._chan = ch._ch
        req._addr_p = &ch._addr
        req._rsize = ch._rsize
        req._rec = svk_chan_record_size(nbytes)
        req._for_data = for_data
        req._deadline = deadline
        req.owner = ch          # alive, so _chan stays in the mapping or its placeholder
        return req

    # -- control (any thread, with the GIL) --------------------------------------
    def use_inbox(self, _AioInbox inbox):
        """run() leaves its final outcome in ``inbox`` (the loop's)."""
        self._inbox = inbox

    def begin_slice(self, double slice_end):
        """The worker's time slice for the next run() ends at ``slice_end``."""
        self._cell.slice_end = slice_end

    def preempt(self, double slice_end):
        """End the current run() by ``slice_end`` (absolute) if it would run longer."""
        if slice_end < self._cell.slice_end:
            self._cell.slice_end = slice_end
        svk_aio_poke(&self._cell, slice_end)

    def cancel(self):
        """End the wait at once; a later run() returns _AIO_CANCELLED."""
        __atomic_store_n(&self._cell.cancelled, 1, __ATOMIC_RELEASE)
        svk_aio_poke(&self._cell, sysvkit_monotonic())

    @property
    def cancelled(self):
        return self._cell.cancelled != 0

    @property
    def slice_end(self):
        return self._cell.slice_end

    # -- the wait (a worker thread) ----------------------------------------------
    def run(self):
        """Wait, without the GIL, until done, ready, timed out, cancelled or
        the end of the slice; returns one of the AIO_* outcomes."""
        cdef double now = sysvkit_monotonic()
        cdef double first
        cdef int outcome
        cdef _AioInbox inbox = self._inbox
        cdef int fd = -1
        cdef bint pushed = False
        self.pushed = False
        if self._cell.cancelled:
            return _AIO_CANCELLED
        if self._deadline >= 0 and now >= self._deadline:
            return _AIO_TIMEDOUT
        if now >= self._cell.slice_end:
            return _AIO_SLICE
        first = _aio_min(self._cell.slice_end, now + _AIO_FOREVER)
        if self._deadline >= 0:
            first = _aio_min(first, self._deadline)
        if sysvkit_timer_start(&self._cell.timer, first) != 0:
            self.err = errno
            return _AIO_ERROR
        self._cell.armed_for = first
        if inbox is not None:
            fd = inbox._fd
            self._node.obj = <void *>self
            Py_INCREF(self)             # the inbox's reference, if pushed
        try:
            with nogil:
                outcome = self._block()
                if fd != -1 and outcome != _AIO_SLICE:
                    # Wake the loop now, before taking the GIL back.
                    self._node.outcome = outcome
                    svk_aio_push(&inbox._head, &self._node)
                    svk_aio_ring(fd)
                    pushed = True
                    sched_yield()   # on a shared CPU, the loop goes first
        finally:
            sysvkit_timer_stop(&self._cell.timer)
            if inbox is not None and not pushed:
                Py_DECREF(self)
        self.pushed = pushed
        return outcome

    cdef int _block(self) noexcept nogil:
        cdef ssize_t r
        cdef int e
        cdef double now
        cdef timespec ts
        while True:
            e = 0
            if self._what == _AIO_MSG_PROBE:
                r = sysv.msgrcv(self._ident, self._msg, 0, self._mtype, self._flags)
                if r >= 0:
                    self.got_type = self._msg.mtype
                    return _AIO_DONE
                e = errno
                if e == E2BIG:
                    return _AIO_READY
            elif self._what == _AIO_MSG_SEND:
                if sysv.msgsnd(self._ident, self._msg, self._n, 0) == 0:
                    return _AIO_DONE
                e = errno
            elif self._what == _AIO_SEM_PROBE or self._what == _AIO_SEM_DO:
                if sysv.semop(self._ident, self._sops, self._nsops) == 0:
                    return _AIO_READY if self._what == _AIO_SEM_PROBE else _AIO_DONE
                e = errno
            elif self._what == _AIO_CHAN_PROBE:
                svk_deadline(&ts, _AIO_CHAN_CHECK)
                e = svk_aio_chan_wait(self._chan, self._for_data, self._rec, self._rsize, &ts)
                if e == 0:
                    return _AIO_READY
                if e == ETIMEDOUT:
                    if self._addr_p[0] == NULL:
                        return _AIO_READY   # closed meanwhile: the real call says so
                    e = EINTR
            else:
                svk_deadline(&ts, _AIO_MUTEX_CHECK)
                e = svk_aio_mutex_wait(self._mx, &ts)
                if e == 0:
                    return _AIO_READY
                if e == ETIMEDOUT:
                    svk_mutex_reap(self._mx)
                    e = EINTR       # then look at the flags and the time
            if e != EINTR:
                self.err = e
                return _AIO_ERROR
            if svk_aio_cancelled(&self._cell):
                return _AIO_CANCELLED
            now = sysvkit_monotonic()
            if self._deadline >= 0 and now >= self._deadline:
                return _AIO_TIMEDOUT
            if now >= svk_aio_slice_end(&self._cell):
                return _AIO_SLICE


def _aio_timer_signal():
    """The signal the timers of waits deliver (chosen now if not yet)."""
    cdef int s = sysvkit_timer_signal()
    if s < 0:
        raise_errno(errno, "sigaction", WHAT_ID, 0)
    return s


def _aio_timeout(timeout, bint acquire):
    """A timeout checked as the blocking call checks it: seconds, or -1.0
    for ever (acquire: None, -1 or over 1e9 s; otherwise None or over 1e9 s)."""
    if acquire:
        return _semobj_acquire_timeout(timeout)
    if timeout is None:
        return _SEMOBJ_FOREVER
    return _semobj_wait_timeout(timeout)


def _aio_mutex_take(MutexBase m, bint waited):
    """acquire(False) on the calling thread; having waited, keep
    FUTEX_WAITERS set (others may sleep too) so that release wakes one."""
    if not m.acquire(False):
        return False
    if waited:
        svk_aio_mutex_mark_waiters(m._mx)
    return True


def _aio_mutex_pass_on(MutexBase m):
    """Wake one sleeper of ``m``: a wake-up meant for a wait that was
    cancelled goes to the next one."""
    if m._mx != NULL:
        svk_aio_mutex_pass_on(m._mx)


def _aio_mutex_held_here(MutexBase m):
    """True if this object holds ``m`` for the calling thread."""
    if m._mx == NULL or m._addr == NULL or not m._held:
        return False
    return (svk_mutex_word(m._mx) & FUTEX_TID_MASK) == <uint32_t>svk_gettid()


def _aio_error(obj, int err, str call):
    """The OSError for errno ``err`` of ``call`` on ``obj``, passed through
    obj._fail (ValueError once closed, RemovedError once removed)."""
    cls = _ERRNO_CLASSES.get(err, OSError)
    exc = cls(err, "%s (%s, %s)" % (strerror(err).decode("utf-8", "replace"), call,
                                    obj._name()))
    obj._fail(exc)
    raise exc


# -- RWLock: a writer's place in the queue (the steps of RWLockBase._write) ------------------
def _aio_rw_queue(RWLockBase rw):
    """Join the writers' queue (RW_WAITING += 1, with SEM_UNDO), so that
    readers arriving from now on wait, as a blocking acquire_write does."""
    cdef int err
    while sysv.semop(rw._id, &rw._wr_queue, 1) != 0:    # an increase: never waits
        err = errno
        if err == ERANGE:
            raise ValueError("%s already has %d (SEMVMX) waiting writers"
                             % (rw._name(), SEMVMX))
        if err != EINTR:
            rw._failed(err, "semop")
        PyErr_CheckSignals()


def _aio_rw_take_queued(RWLockBase rw):
    """A queued writer takes the lock if it is free (leaving the queue): True."""
    if rw._now(rw._wr_nowait, 4):
        rw._holds.writes += 1
        return True
    return False


def _aio_rw_unqueue(RWLockBase rw):
    """Give up a place in the writers' queue."""
    rw._unqueue()


# -- Channel ---------------------------------------------------------------------------------
def _aio_chan_check_removed(ChannelBase ch):
    """RemovedError if the channel's segment was removed."""
    ch._check_removed()
