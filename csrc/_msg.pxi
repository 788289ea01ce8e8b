# Message queues: msgget, msgsnd, msgrcv (with an optional timeout), msgctl.

from libc.stdlib cimport malloc, free
from libc.errno cimport ENOMSG
from cpython.bytes cimport PyBytes_Check, PyBytes_AS_STRING, PyBytes_GET_SIZE

cdef extern from "compat.h" nogil:
    int sysvkit_timer_forked(const sysvkit_timer *t)

cdef extern from *:
    """
    #define SYSVKIT_STACK_MSG 8192
    typedef struct { long mtype; char mtext[SYSVKIT_STACK_MSG]; } sysvkit_stackmsg;
    typedef struct { long mtype; char mtext[1]; } sysvkit_msgbuf;
    """
    enum: SYSVKIT_STACK_MSG
    ctypedef struct sysvkit_stackmsg:
        long mtype
        char mtext[1]
    ctypedef struct sysvkit_msgbuf:
        long mtype
        char mtext[1]


def msgget(key, int flags):
    """msgget(2): the id of the queue for ``key``."""
    cdef key_t k = c_key(key)
    cdef int r
    with nogil:
        r = sysv.msgget(k, flags)
    if r == -1:
        raise_errno(errno, "msgget", WHAT_KEY, k)
    return r


cdef int _after_eintr(bint timed, double deadline) except -1:
    """After EINTR: run the signal handlers (an exception from one, such as
    KeyboardInterrupt, propagates).  1 if the deadline has passed."""
    PyErr_CheckSignals()
    if timed and sysvkit_monotonic() >= deadline:
        return 1
    return 0


cdef int _start_timer(sysvkit_timer *timer, double deadline, int msqid) except -1:
    if sysvkit_timer_start(timer, deadline) != 0:
        raise_errno(errno, "timer_create", WHAT_ID, msqid)
    return 0


cdef int _rearm_if_forked(sysvkit_timer *timer, double deadline, int msqid) except -1:
    """A signal handler that ran during the wait forked, and this is the
    child: it has no timer (fork does not copy them), so arm a new one."""
    if sysvkit_timer_forked(timer):
        sysvkit_timer_stop(timer)
        _start_timer(timer, deadline, msqid)
    return 0


cdef int _msgsnd_wait(int msqid, sysvkit_msgbuf *msg, Py_ssize_t n, int flags,
                      bint timed, double deadline) except -1:
    """msgsnd(2) without the GIL: 0, or the errno it failed with (ETIMEDOUT
    once the deadline passed).  EINTR runs the signal handlers (an exception
    from one propagates) and retries (PEP 475); with ``timed`` (and without
    IPC_NOWAIT) the thread's timer interrupts the call at the deadline."""
    cdef int r, err = 0
    cdef sysvkit_timer timer
    if timed and not (flags & IPC_NOWAIT):
        _start_timer(&timer, deadline, msqid)
    else:
        timed = False
    try:
        while True:
            with nogil:
                r = sysv.msgsnd(msqid, msg, n, flags)
                if r == -1:
                    err = errno
            if r == 0:
                return 0
            if err != EINTR:
                return err
            if _after_eintr(timed, deadline):
                return ETIMEDOUT
            if timed:
                _rearm_if_forked(&timer, deadline, msqid)
    finally:
        if timed:
            sysvkit_timer_stop(&timer)


cdef ssize_t _msgrcv_wait(int msqid, sysvkit_msgbuf *msg, Py_ssize_t size, long mtype,
                          int flags, bint timed, double deadline, int *err) except -2:
    """msgrcv(2) without the GIL: the length received, or -1 with ``*err``
    set (ETIMEDOUT once the deadline passed).  EINTR and the timer as in
    _msgsnd_wait."""
    cdef ssize_t r
    cdef int e = 0
    cdef sysvkit_timer timer
    if timed and not (flags & IPC_NOWAIT):
        _start_timer(&timer, deadline, msqid)
    else:
        timed = False
    try:
        while True:
            with nogil:
                r = sysv.msgrcv(msqid, msg, size, mtype, flags)
                if r == -1:
                    e = errno
            if r >= 0:
                return r
            if e != EINTR:
                err[0] = e
                return -1
            if _after_eintr(timed, deadline):
                err[0] = ETIMEDOUT
                return -1
            if timed:
                _rearm_if_forked(&timer, deadline, msqid)
    finally:
        if timed:
            sysvkit_timer_stop(&timer)


def msgsnd(int msqid, data, long mtype, int flags=0, *, timeout=None):
    """msgsnd(2) of a bytes-like object with type ``mtype`` (>= 1).

    With ``timeout`` (seconds) a full queue waits at most that long, then
    TimeoutError; EINTR runs signal handlers and retries (PEP 475).
    """
    cdef Py_buffer src
    cdef sysvkit_stackmsg stackbuf
    cdef sysvkit_msgbuf *msg
    cdef Py_ssize_t n
    cdef int err = 0
    cdef double deadline = 0
    cdef bint timed
    cdef bint nowait = (flags & IPC_NOWAIT) != 0   # the caller's: EAGAIN stays EAGAIN
    if isinstance(data, str):
        raise TypeError("data must be a bytes-like object, not str")
    timed = parse_timeout(timeout, &deadline)
    if timed and deadline <= sysvkit_monotonic():
        flags |= IPC_NOWAIT
        timed = False
        timeout = 0
    PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
    try:
        n = src.len
        if n <= SYSVKIT_STACK_MSG:
            msg = <sysvkit_msgbuf *>&stackbuf
        else:
            msg = <sysvkit_msgbuf *>malloc(sizeof(long) + n)
            if msg == NULL:
                raise MemoryError()
        msg.mtype = mtype
        memcpy(msg.mtext, src.buf, n)
    finally:
        PyBuffer_Release(&src)
    try:
        err = _msgsnd_wait(msqid, msg, n, flags, timed, deadline)
    finally:
        if <void *>msg != <void *>&stackbuf:
            free(msg)
    if err == 0:
        return None
    if err == ETIMEDOUT or (err == EAGAIN and timeout is not None and not nowait):
        raise_timeout("msgsnd", WHAT_ID, msqid)
    raise_errno(err, "msgsnd", WHAT_ID, msqid)


cdef Py_ssize_t _msgmax() except -1:
    """The system's largest message (msgctl IPC_INFO)."""
    # IPC_INFO fills a struct msginfo through the msqid_ds pointer msgctl
    # takes: hand it a msginfo, so that nothing is read through a cast.
    cdef msginfo info
    if sysv.msgctl(0, IPC_INFO, <msqid_ds *>&info) == -1:
        raise_errno(errno, "msgctl", WHAT_ID, 0)
    return info.msgmax


def msgrcv(int msqid, Py_ssize_t maxsize, long mtype=0, int flags=0, *, timeout=None):
    """msgrcv(2) of at most ``maxsize`` bytes -> (bytes, type).

    ``mtype`` 0 takes the first message, > 0 the first of that type (any
    other with MSG_EXCEPT), < 0 the lowest type <= |mtype|.  With
    ``timeout`` (seconds) an empty queue waits at most that long, then
    TimeoutError; EINTR runs signal handlers and retries (PEP 475).
    """
    cdef sysvkit_stackmsg stackbuf
    cdef sysvkit_msgbuf *msg
    cdef ssize_t r
    cdef int err = 0
    cdef double deadline = 0
    cdef bint timed
    cdef bint nowait = (flags & IPC_NOWAIT) != 0   # the caller's: ENOMSG stays ENOMSG
    if maxsize < 0:
        raise ValueError("maxsize must be >= 0, got %d" % maxsize)
    timed = parse_timeout(timeout, &deadline)
    if timed and deadline <= sysvkit_monotonic():
        flags |= IPC_NOWAIT
        timed = False
        timeout = 0
    if maxsize <= SYSVKIT_STACK_MSG:
        msg = <sysvkit_msgbuf *>&stackbuf
    else:
        # No message is longer than msgmax: never allocate more than that
        # (a huge maxsize would otherwise be a MemoryError, not a receive).
        maxsize = min(maxsize, _msgmax())
        msg = <sysvkit_msgbuf *>malloc(sizeof(long) + maxsize)
        if msg == NULL:
            raise MemoryError()
    try:
        r = _msgrcv_wait(msqid, msg, maxsize, mtype, flags, timed, deadline, &err)
        if r >= 0:
            return (PyBytes_FromStringAndSize(msg.mtext, r), msg.mtype)
    finally:
        if <void *>msg != <void *>&stackbuf:
            free(msg)
    if err == ETIMEDOUT or (err == ENOMSG and timeout is not None and not nowait):
        raise_timeout("msgrcv", WHAT_ID, msqid)
    raise_errno(err, "msgrcv", WHAT_ID, msqid)


cdef tuple _msq_tuple(int ident, msqid_ds *ds):
    return (ident, sysvkit_perm_key(ds.msg_perm), ds.msg_perm.uid, ds.msg_perm.gid,
            ds.msg_perm.cuid, ds.msg_perm.cgid, ds.msg_perm.mode, ds.msg_qnum,
            ds.msg_cbytes, ds.msg_qbytes, ds.msg_lspid, ds.msg_lrpid,
            ds.msg_stime, ds.msg_rtime, ds.msg_ctime)


def msgctl(int msqid, int cmd, arg=None):
    """msgctl(2).

    IPC_STAT -> (id, key, uid, gid, cuid, cgid, mode, qnum, cbytes, qbytes,
    lspid, lrpid, stime, rtime, ctime); MSG_STAT/MSG_STAT_ANY take an index
    and return the same tuple with the id found there; IPC_SET takes
    arg=(uid, gid, mode, qbytes); IPC_INFO/MSG_INFO -> (maxindex, msgpool,
    msgmap, msgmax, msgmnb, msgmni, msgssz, msgtql, msgseg); IPC_RMID -> 0.
    """
    cdef msqid_ds ds
    cdef msginfo *info
    cdef int r
    memset(&ds, 0, sizeof(ds))
    if cmd == IPC_SET:
        if arg is None or len(arg) != 4:
            raise TypeError("IPC_SET needs arg=(uid, gid, mode, qbytes)")
        with nogil:
            r = sysv.msgctl(msqid, IPC_STAT, &ds)
        if r == -1:
            raise_errno(errno, "msgctl", WHAT_ID, msqid)
        ds.msg_perm.uid, ds.msg_perm.gid, ds.msg_perm.mode, ds.msg_qbytes = arg
    with nogil:
        r = sysv.msgctl(msqid, cmd, &ds)
    if r == -1:
        raise_errno(errno, "msgctl", WHAT_INDEX if cmd in (MSG_STAT, MSG_STAT_ANY) else WHAT_ID, msqid)
    if cmd == IPC_STAT:
        return _msq_tuple(msqid, &ds)
    if cmd == MSG_STAT or cmd == MSG_STAT_ANY:
        return _msq_tuple(r, &ds)
    if cmd == IPC_INFO or cmd == MSG_INFO:
        info = <msginfo *>&ds
        return (r, info.msgpool, info.msgmap, info.msgmax, info.msgmnb, info.msgmni,
                info.msgssz, info.msgtql, info.msgseg)
    return r
