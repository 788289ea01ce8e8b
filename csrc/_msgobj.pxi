# MessageQueue hot path: a cdef base class whose send/receive are C methods.
#
# sysvkit.msgqueue.MessageQueue subclasses it (with IPCObject) and adds the
# rest in Python.  Each call first makes the system call with IPC_NOWAIT
# while holding the GIL: it cannot block, and it saves releasing and taking
# back the GIL.  Only a call that would block goes on to the GIL-releasing
# wait of _msg.pxi (PEP 475 retry, the thread's timer for a timeout).  Every
# failure goes back through the Python-level IPCObject._fail, which turns it
# into ValueError once closed and RemovedError once the queue is gone.

cimport cython
from libc.errno cimport E2BIG, EBADF, EINVAL
from libc.limits cimport LONG_MIN, LONG_MAX, INT_MAX
from cpython.buffer cimport PyObject_CheckBuffer
from cpython.bytes cimport PyBytes_CheckExact
from cpython.long cimport PyLong_AsLongAndOverflow
from cpython.number cimport PyIndex_Check, PyNumber_Index


cdef str _type_name(object value):
    return type(value).__name__


cdef inline long _long_arg(object value, str name, long lo) except? -1:
    """``value`` as a C long in lo..LONG_MAX, with the messages of
    sysvkit._args.check_int (TypeError for a bool or a non-int)."""
    cdef int overflow = 0
    cdef long v
    if type(value) is not int:
        if isinstance(value, bool) or not PyIndex_Check(value):
            raise TypeError("%s must be an int, not %s" % (name, _type_name(value)))
        value = PyNumber_Index(value)
    v = PyLong_AsLongAndOverflow(value, &overflow)
    if overflow or v < lo:
        raise ValueError("%s must be in %d..%d, got %d" % (name, lo, LONG_MAX, value))
    return v


cdef Py_ssize_t _msgmax_now() except -1:
    """The kernel's msgmax now (msgctl IPC_INFO)."""
    cdef msginfo info
    cdef int r
    memset(&info, 0, sizeof(info))
    r = sysv.msgctl(0, IPC_INFO, <msqid_ds *>&info)
    if r == -1:
        raise_errno(errno, "msgctl", WHAT_ID, 0)
    return info.msgmax


# binding=False makes send/receive plain method descriptors, which Python
# calls faster than Cython's function objects; their docstrings start with
# the Argument Clinic signature line, so inspect.signature() still works.
@cython.auto_pickle(False)
@cython.binding(False)
@cython.embedsignature(False)
cdef class MessageQueueBase:
    """The compiled half of sysvkit.MessageQueue: send() and receive()."""

    cdef public int _id             # -1 once closed (IPCObject._closed_id)
    cdef public Py_ssize_t _msgmax  # the system's msgmax, read at open

    def __cinit__(self, *args, **kwargs):
        self._id = -1
        self._msgmax = SYSVKIT_STACK_MSG

    def send(self, data, type=1, *, block=True, timeout=None):
        """send($self, /, data, type=1, *, block=True, timeout=None)
--

        Send ``data`` (any bytes-like object) as a message of ``type`` (>= 1).

        A full queue blocks until there is room; ``timeout`` (seconds) bounds
        the wait (``0`` tries once).  Raises TypeError for ``str`` or a
        non-int type; ValueError for a type < 1, a negative or NaN timeout,
        or a message longer than the system's msgmax (or than the queue's
        max_bytes, when it could never fit); BlockingIOError if the queue is
        full and ``block`` is false; TimeoutError when the timeout expires;
        RemovedError if the queue was removed (also while waiting);
        ValueError once closed.
        """
        cdef long mtype = _long_arg(type, "type", 1)
        cdef sysvkit_stackmsg stackbuf
        cdef sysvkit_msgbuf *msg = <sysvkit_msgbuf *>&stackbuf
        cdef const char *p
        cdef Py_ssize_t n
        cdef int r, err
        cdef double deadline = 0
        cdef bint timed = False
        cdef bint blocking = block
        if timeout is not None:
            timed = parse_timeout(timeout, &deadline)
        if PyBytes_CheckExact(data):
            p = PyBytes_AS_STRING(data)
            n = PyBytes_GET_SIZE(data)
        elif isinstance(data, str) or not PyObject_CheckBuffer(data):
            raise TypeError("data must be a bytes-like object, not %s" % _type_name(data))
        else:
            return self._send_buffer(data, mtype, blocking, timed, deadline)
        if n > self._msgmax:
            self._check_size(n)
        if self._id < 0:
            self._closed()
        if n > SYSVKIT_STACK_MSG:
            return self._send_slow(p, n, mtype, blocking, timed, deadline)
        msg.mtype = mtype
        memcpy(msg.mtext, p, n)
        r = sysv.msgsnd(self._id, msg, n, IPC_NOWAIT)
        if r == 0:
            return None
        return self._send_wait(errno, msg, n, blocking, timed, deadline)

    cdef object _send_buffer(self, object data, long mtype, bint blocking, bint timed,
                             double deadline):
        """send() of a bytes-like object other than bytes."""
        cdef Py_buffer src
        try:
            PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        except BufferError:     # not C-contiguous: send a contiguous copy
            data = memoryview(data).tobytes()
            PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        try:
            if src.len > self._msgmax:
                self._check_size(src.len)
            if self._id < 0:
                self._closed()
            return self._send_slow(<const char *>src.buf, src.len, mtype, blocking, timed,
                                   deadline)
        finally:
            PyBuffer_Release(&src)

    cdef object _send_slow(self, const char *p, Py_ssize_t n, long mtype, bint blocking,
                           bint timed, double deadline):
        """send() through a heap buffer when needed (the checks are done)."""
        cdef sysvkit_stackmsg stackbuf
        cdef sysvkit_msgbuf *msg
        cdef int r
        if n <= SYSVKIT_STACK_MSG:
            msg = <sysvkit_msgbuf *>&stackbuf
        else:
            msg = <sysvkit_msgbuf *>malloc(sizeof(long) + n)
            if msg == NULL:
                raise MemoryError()
        try:
            msg.mtype = mtype
            memcpy(msg.mtext, p, n)
            r = sysv.msgsnd(self._id, msg, n, IPC_NOWAIT)
            if r == 0:
                return None
            return self._send_wait(errno, msg, n, blocking, timed, deadline)
        finally:
            if <void *>msg != <void *>&stackbuf:
                free(msg)

    cdef object _send_wait(self, int err, sysvkit_msgbuf *msg, Py_ssize_t n, bint blocking,
                           bint timed, double deadline):
        """After the IPC_NOWAIT attempt failed with ``err``: wait if allowed."""
        cdef msqid_ds ds
        if err == EAGAIN and blocking and not (timed and deadline <= sysvkit_monotonic()):
            # A message larger than the queue's capacity would wait for ever.
            if sysv.msgctl(self._id, IPC_STAT, &ds) == 0 and <size_t>n > ds.msg_qbytes:
                raise ValueError(
                    "message of %d bytes can never fit in %s: its max_bytes is %d"
                    % (n, self._name(), ds.msg_qbytes))
            err = _msgsnd_wait(self._id, msg, n, 0, timed, deadline)
        elif err == EINTR:      # not expected with IPC_NOWAIT; retry politely
            PyErr_CheckSignals()
            err = _msgsnd_wait(self._id, msg, n, IPC_NOWAIT, False, 0)
        if err == 0:
            return None
        if err == ETIMEDOUT or (err == EAGAIN and blocking):
            raise TimeoutError(ETIMEDOUT, "timed out (msgsnd, %s)" % self._name())
        if err == EINVAL and self._id >= 0 and self.exists():
            # msgmax was lowered since the queue was opened
            self._check_size(n)
        self._fail(self._error(err, "msgsnd"))

    def receive(self, type=0, *, block=True, timeout=None, except_type=False,
                max_size=None, truncate=False):
        """receive($self, /, type=0, *, block=True, timeout=None, except_type=False, max_size=None, truncate=False)
--

        Receive a message -> (data, type).

        ``type`` 0 takes the first message; > 0 the first of that type (the
        first of any other type with ``except_type=True``); < 0 the first of
        the lowest type <= -type.  An empty queue blocks; ``timeout``
        (seconds) bounds the wait (``0`` tries once).  A message longer than
        ``max_size`` (default: the system's msgmax) stays in the queue and
        raises ValueError, unless ``truncate=True`` cuts it to ``max_size``.
        Raises TypeError for non-int arguments; ValueError for a negative
        max_size, a negative or NaN timeout, except_type with a type < 1;
        BlockingIOError if no message is there and ``block`` is false;
        TimeoutError when the timeout expires; RemovedError if the queue was
        removed (also while waiting); ValueError once closed.
        """
        cdef long mtype = _long_arg(type, "type", LONG_MIN)
        cdef Py_ssize_t size, cap
        cdef sysvkit_stackmsg stackbuf
        cdef sysvkit_msgbuf *msg = <sysvkit_msgbuf *>&stackbuf
        cdef ssize_t r
        cdef int flags = 0
        cdef double deadline = 0
        cdef bint timed = False
        if max_size is None:
            size = self._msgmax
        else:
            size = _long_arg(max_size, "max_size", 0)
            if size > INT_MAX:
                raise ValueError("max_size must be in 0..%d, got %d" % (INT_MAX, size))
        if timeout is not None:
            timed = parse_timeout(timeout, &deadline)
        if except_type:
            if mtype < 1:
                raise ValueError("except_type=True needs a type >= 1, got %d" % mtype)
            flags = MSG_EXCEPT
        if self._id < 0:
            self._closed()
        cap = size if size <= SYSVKIT_STACK_MSG else SYSVKIT_STACK_MSG
        r = sysv.msgrcv(self._id, msg, cap, mtype,
                        flags | IPC_NOWAIT | (MSG_NOERROR if truncate and cap == size else 0))
        if r >= 0:
            return (PyBytes_FromStringAndSize(msg.mtext, r), msg.mtype)
        return self._receive_slow(errno, size, mtype, flags, truncate, block, timed, deadline)

    cdef object _receive_slow(self, int err, Py_ssize_t size, long mtype, int flags,
                              bint truncate, bint blocking, bint timed, double deadline):
        """After the first IPC_NOWAIT attempt failed with ``err``: take a
        message longer than the stack buffer into a heap one, wait if
        allowed, and raise what the user should see."""
        cdef sysvkit_stackmsg stackbuf
        cdef sysvkit_msgbuf *msg = <sysvkit_msgbuf *>&stackbuf
        cdef Py_ssize_t cap = size if size <= SYSVKIT_STACK_MSG else SYSVKIT_STACK_MSG
        cdef bint waiting = False
        cdef ssize_t r
        cdef int f
        try:
            while True:
                if err == E2BIG and cap < size:
                    # Longer than the buffer: grow it, to no more than the
                    # bytes now in the queue (no message is longer), so a
                    # huge max_size does not mean a huge allocation.
                    cap = self._grown(cap, size)
                    if <void *>msg != <void *>&stackbuf:
                        free(msg)
                        msg = <sysvkit_msgbuf *>&stackbuf
                    msg = <sysvkit_msgbuf *>malloc(sizeof(long) + cap)
                    if msg == NULL:
                        msg = <sysvkit_msgbuf *>&stackbuf
                        raise MemoryError()
                elif (err == ENOMSG and blocking and not waiting
                      and not (timed and deadline <= sysvkit_monotonic())):
                    waiting = True
                elif err == EINTR and not waiting:  # not expected with IPC_NOWAIT
                    PyErr_CheckSignals()
                else:
                    break
                f = flags | (MSG_NOERROR if truncate and cap == size else 0)
                if waiting:
                    r = _msgrcv_wait(self._id, msg, cap, mtype, f, timed, deadline, &err)
                else:
                    r = sysv.msgrcv(self._id, msg, cap, mtype, f | IPC_NOWAIT)
                    if r == -1:
                        err = errno
                if r >= 0:
                    return (PyBytes_FromStringAndSize(msg.mtext, r), msg.mtype)
        finally:
            if <void *>msg != <void *>&stackbuf:
                free(msg)
        if err == ETIMEDOUT or (err == ENOMSG and blocking):
            raise TimeoutError(ETIMEDOUT, "timed out (msgrcv, %s)" % self._name())
        if err == ENOMSG:
            raise BlockingIOError(ENOMSG, "no message (msgrcv, %s)" % self._name())
        if err == E2BIG and self._id >= 0:
            raise ValueError(
                "the next message in %s is longer than max_size=%d bytes and stays in "
                "the queue: pass a larger max_size (messages are at most msgmax=%d "
                "bytes) or truncate=True" % (self._name(), size, _msgmax_now()))
        self._fail(self._error(err, "msgrcv"))

    cdef Py_ssize_t _grown(self, Py_ssize_t cap, Py_ssize_t size) except -1:
        """A buffer size for a message longer than ``cap``: the bytes in the
        queue (msg_cbytes), at least twice ``cap``, at most ``size``."""
        cdef msqid_ds ds
        cdef Py_ssize_t want = 2 * cap
        if sysv.msgctl(self._id, IPC_STAT, &ds) == 0 and <Py_ssize_t>ds.msg_cbytes > want:
            want = ds.msg_cbytes
        return want if want < size else size

    cdef int _check_size(self, Py_ssize_t n) except -1:
        """ValueError if a message of n bytes is over msgmax (read afresh,
        since the cached value may be stale)."""
        self._msgmax = _msgmax_now()
        if n > self._msgmax:
            raise ValueError("message of %d bytes is longer than msgmax, the system's "
                             "limit of %d bytes" % (n, self._msgmax))
        return 0

    cdef int _closed(self) except -1:
        self._fail(OSError(EBADF, "closed"))    # IPCObject._fail: ValueError once closed
        raise ValueError("operation on a closed message queue")

    cdef object _error(self, int err, str call):
        """The OSError for errno ``err``, naming the call and the queue."""
        cls = _ERRNO_CLASSES.get(err, OSError)
        return cls(err, "%s (%s, %s)" % (strerror(err).decode("utf-8", "replace"), call,
                                         self._name()))
