# Channel hot path: a compiled base class over the ring of channel.h.
#
# sysvkit.channel.Channel subclasses it (with sysvkit._structure.Structure,
# which opens, creates and checks the segment) and keeps the policy: which
# capacity, argument defaults, docs.  Every operation pins the mapping while
# it may touch it (the robust list points into it while a lock is held), and
# checks each position and length it reads from the segment against the ring
# size this process cached when it opened the channel.

cimport cython
from libc.errno cimport EBUSY, EINTR, ETIMEDOUT, EINVAL, EIDRM

cdef extern from "<errno.h>":
    enum:
        EOWNERDEAD
from libc.stdlib cimport malloc, free
from libc.stdint cimport uint32_t, uint64_t
from cpython.buffer cimport (
    PyObject_CheckBuffer, PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE, PyBUF_WRITABLE,
)
from cpython.bytes cimport (
    PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE,
)
from cpython.exc cimport PyErr_CheckSignals
from sysv cimport (
    svk_channel, svk_chan_mutex, svk_chan_snap, SVK_CHANNEL_VERSION, SVK_CHAN_RECORD_HEADER,
    SVK_CHAN_MIN_RING, SVK_CHAN_MAX_MESSAGE, SVK_CHAN_RING_OFFSET,
    svk_chan_record_size, svk_chan_expected_kind, svk_chan_init, svk_chan_kind_ok,
    svk_chan_snapshot, svk_chan_unlock, svk_chan_owner, svk_chan_wake_all, svk_chan_announce,
    svk_chan_mark_removed, svk_chan_removed,
    svk_chan_load, svk_chan_span_ok, svk_chan_publish_send, svk_chan_publish_receive,
    svk_chan_repair_send, svk_chan_repair_receive, svk_chan_copy_in, svk_chan_copy_out,
    svk_chan_put_header, svk_chan_get_header, svk_chan_thread_exists, svk_chan_spin,
    pthread_mutex_trylock, pthread_mutex_consistent, svk_robust_lock, svk_futex_wait,
)

CHANNEL_VERSION = SVK_CHANNEL_VERSION
CHANNEL_RING_OFFSET = SVK_CHAN_RING_OFFSET
CHANNEL_MIN_RING = SVK_CHAN_MIN_RING
CHANNEL_MAX_MESSAGE = SVK_CHAN_MAX_MESSAGE
CHANNEL_RECORD_HEADER = SVK_CHAN_RECORD_HEADER

# The __kind word glibc writes into our mutexes; a mutex in a segment that
# does not carry it was overwritten.
cdef int _chan_kind = svk_chan_expected_kind()

# Copies longer than this release the GIL.
cdef Py_ssize_t _CH_BIG = 65536
# A sleeper wakes at least this often (a peer killed between publishing and
# waking, a removed segment); a blocked call still uses far under 1% of a core.
cdef double _CH_SLICE = 0.1
# Before sleeping, poll this long (nanoseconds) for the other side.
cdef long _CH_SPIN_NS = 10000
# A lock waiter checks this often that the lock's owner exists.
cdef double _CH_LOCK_SLICE = 0.5
# A lock is held only for a copy: block=False and short timeouts still wait
# this long for it.
cdef double _CH_LOCK_GRACE = 0.2


cdef inline uint64_t _ch_round8(uint64_t n) nogil:
    return (n + 7) & ~(<uint64_t>7)


@cython.auto_pickle(False)
@cython.binding(False)
@cython.embedsignature(False)
cdef class ChannelBase(_Structure):
    """The compiled half of sysvkit.Channel: the ring and its operations."""

    cdef svk_channel *_ch
    cdef char *_ring
    cdef uint64_t _rsize
    cdef uint64_t _capacity
    cdef uint64_t _maxmsg
    cdef uint64_t _head_seen     # senders: a head seen (heads only grow)
    cdef uint64_t _tail_seen     # receivers: a tail seen
    cdef svk_chan_snap _snap_send
    cdef svk_chan_snap _snap_recv

    def __cinit__(self, *args, **kwargs):
        self._ch = NULL
        self._ring = NULL
        self._rsize = 0
        self._capacity = 0
        self._maxmsg = 0
        self._head_seen = 0
        self._tail_seen = 0

    # -- format and bind (called by sysvkit.channel) ----------------------------
    def _ch_format(self, unsigned long long capacity):
        """Write a fresh channel header for ``capacity`` bytes after the
        common header (the segment was zeroed)."""
        cdef uint64_t ring = _ch_round8(capacity)
        cdef int r
        self._st_check()
        if ring < SVK_CHAN_MIN_RING or <uint64_t>self._size < SVK_CHAN_RING_OFFSET + ring:
            raise ValueError("a %d-byte segment cannot hold a channel of capacity %d"
                             % (self._size, capacity))
        r = svk_chan_init(<svk_channel *>(self._addr + SVK_HEADER_SIZE), capacity, ring)
        if r:
            raise OSError(r, strerror(r).decode("utf-8", "replace"))

    def _ch_bind(self, unsigned long long size):
        """Check the channel header against ``size`` (the bytes the common
        header claims, already checked against the segment) and cache the
        ring's geometry.  CorruptError if it is not a channel's."""
        cdef svk_channel *c
        cdef uint64_t ring, cap
        self._st_check()
        if size < SVK_CHAN_RING_OFFSET + SVK_CHAN_MIN_RING or size > <uint64_t>self._size:
            raise CorruptError("%s: %d bytes cannot hold a channel" % (self._name(), size))
        c = <svk_channel *>(self._addr + SVK_HEADER_SIZE)
        ring = c.ring_size
        cap = c.capacity
        if (c.ring_offset != SVK_CHAN_RING_OFFSET or ring < SVK_CHAN_MIN_RING
                or ring != _ch_round8(cap) or ring > size - SVK_CHAN_RING_OFFSET):
            raise CorruptError("%s: its channel header is damaged (capacity %d, ring %d bytes "
                               "at %d, in %d bytes)" % (self._name(), cap, ring, c.ring_offset,
                                                        size))
        if not svk_chan_kind_ok(&c.send_lock, _chan_kind) or not svk_chan_kind_ok(
                &c.recv_lock, _chan_kind):
            raise CorruptError("%s: its locks were overwritten" % self._name())
        self._ch = c
        self._ring = self._addr + SVK_CHAN_RING_OFFSET
        self._rsize = ring
        self._capacity = cap
        self._maxmsg = ring - SVK_CHAN_RECORD_HEADER
        if self._maxmsg > SVK_CHAN_MAX_MESSAGE:
            self._maxmsg = SVK_CHAN_MAX_MESSAGE
        self._head_seen = 0
        self._tail_seen = 0

    def _ch_wake_all(self):
        """Mark the channel removed and wake every sleeper (remove() calls it)."""
        if self._addr == NULL or self._ch == NULL:
            return
        svk_chan_mark_removed(self._ch)
        svk_chan_wake_all(&self._ch.data_word)
        svk_chan_wake_all(&self._ch.space_word)

    # -- errors -------------------------------------------------------------------
    cdef int _closed(self) except -1:
        raise ValueError("operation on a closed channel")

    cdef int _corrupt(self, str what) except -1:
        raise CorruptError("%s: %s" % (self._name(), what))

    cdef int _bad_span(self, uint64_t head, uint64_t tail) except -1:
        raise CorruptError("%s: its positions are impossible (head %d, tail %d, ring of %d "
                           "bytes)" % (self._name(), head, tail, self._rsize))

    cdef int _too_big(self, Py_ssize_t n) except -1:
        raise ValueError("message of %d bytes is longer than max_message_size, %d bytes for "
                         "this channel (capacity %d)" % (n, self._maxmsg, self._capacity))

    cdef int _not_now(self, bint blocking, str what) except -1:
        if blocking:
            raise TimeoutError(ETIMEDOUT, "timed out (%s, %s)" % (what, self._name()))
        raise BlockingIOError(EAGAIN, "%s would block (%s)" % (what, self._name()))

    cdef int _check_removed(self) except -1:
        """RemovedError if the segment was removed (marked for destruction)."""
        cdef shmid_ds ds
        cdef int r
        with nogil:
            r = sysv.shmctl(self._shmid, IPC_STAT, &ds)
        if (r == -1 and (errno == EINVAL or errno == EIDRM)) or (r == 0 and ds.shm_perm.mode & SHM_DEST):
            raise RemovedError(EIDRM, "%s was removed" % self._name())
        return 0

    # -- locks and sleeping ----------------------------------------------------------
    cdef bint _take(self, svk_chan_mutex *m, svk_chan_snap *snap, bint sending, bint blocking,
                    bint timed, double deadline) except -1:
        """Take a side's lock: True, or False if not taken by the deadline
        (at least _CH_LOCK_GRACE from now when not blocking or timed)."""
        cdef int r
        cdef uint32_t owner
        cdef double now, end, limit = 0
        cdef bint limited = timed or not blocking
        cdef timespec ts
        if not svk_chan_kind_ok(m, _chan_kind):
            self._corrupt("its %s lock was overwritten" % ("send" if sending else "receive"))
        r = pthread_mutex_trylock(&m.m)
        if r == EBUSY:
            now = sysvkit_monotonic()
            if limited:
                limit = now + _CH_LOCK_GRACE
                if timed and deadline > limit:
                    limit = deadline
            while True:
                end = now + _CH_LOCK_SLICE
                if limited and limit < end:
                    end = limit
                sysvkit_to_timespec(end, &ts)
                with nogil:
                    r = svk_robust_lock(&m.m, &ts)
                if r == 0 or r == EOWNERDEAD:
                    break
                if r != EINTR and r != ETIMEDOUT:
                    break
                PyErr_CheckSignals()
                now = sysvkit_monotonic()
                if r == ETIMEDOUT:
                    owner = svk_chan_owner(m)
                    if owner != 0 and not svk_chan_thread_exists(owner):
                        self._corrupt("its %s lock is held by thread %d, which does not exist"
                                      % ("send" if sending else "receive", owner))
                    if limited and now >= limit:
                        return False
        if r == EOWNERDEAD:
            # The holder died: it published all of its operation or none.
            if sending:
                svk_chan_repair_send(self._ch)
            else:
                svk_chan_repair_receive(self._ch)
            pthread_mutex_consistent(&m.m)
        elif r != 0:
            self._corrupt("its %s lock is unusable (%s)" % ("send" if sending else "receive",
                          strerror(r).decode("utf-8", "replace")))
        svk_chan_snapshot(m, snap)
        return True

    cdef int _sleep(self, bint for_data, uint64_t rec, bint timed, double deadline) except -1:
        """Sleep until the other side may have made progress (no lock held):
        a message for a receiver, room for ``rec`` bytes for a sender.
        Returns at once if that is already so; TimeoutError past the deadline."""
        cdef svk_channel *c = self._ch
        cdef uint32_t *word = &c.data_word if for_data else &c.space_word
        cdef uint32_t v
        cdef uint64_t head, tail, rsize = self._rsize
        cdef double now, end
        cdef timespec ts
        cdef int r
        if not (timed and deadline <= sysvkit_monotonic()):
            with nogil:
                r = svk_chan_spin(c, for_data, rec, rsize, _CH_SPIN_NS)
            if r:
                return 0
        v = svk_chan_announce(word)
        head = svk_chan_load(&c.head)
        tail = svk_chan_load(&c.tail)
        if not svk_chan_span_ok(head, tail, self._rsize):
            return 0            # the locked path reports it
        if (tail != head) if for_data else (tail + rec - head <= self._rsize):
            return 0
        now = sysvkit_monotonic()
        if timed and now >= deadline:
            raise TimeoutError(ETIMEDOUT, "timed out (%s, %s)" % (
                "receive" if for_data else "send", self._name()))
        end = now + _CH_SLICE
        if timed and deadline < end:
            end = deadline
        sysvkit_to_timespec(end, &ts)
        with nogil:
            r = svk_futex_wait(word, v, &ts)
        if r == EINTR or r == ETIMEDOUT:
            PyErr_CheckSignals()
        if r == ETIMEDOUT or svk_chan_removed(c):
            self._check_removed()
        return 0

    # -- the side's critical sections -------------------------------------------------
    cdef int _put(self, uint64_t pos, const char *p, Py_ssize_t n):
        """Write one record at pos (send lock held, room checked)."""
        cdef uint64_t off = svk_chan_put_header(self._ring, self._rsize, pos, <uint32_t>n)
        if n > _CH_BIG:
            self._exports += 1
            with nogil:
                svk_chan_copy_in(self._ring, self._rsize, off, p, n)
            self._exports -= 1
        else:
            svk_chan_copy_in(self._ring, self._rsize, off, p, n)
        return 0

    cdef uint64_t _room(self, uint64_t tail, uint64_t rec) except? 1:
        """With the send lock held: 0 if rec bytes fit at tail, else 2
        (unlocks and raises CorruptError on impossible positions)."""
        cdef uint64_t head = self._head_seen
        if svk_chan_span_ok(head, tail, self._rsize) and tail + rec - head <= self._rsize:
            return 0
        head = svk_chan_load(&self._ch.head)
        if not svk_chan_span_ok(head, tail, self._rsize):
            svk_chan_unlock(&self._ch.send_lock, &self._snap_send)
            self._bad_span(head, tail)
        self._head_seen = head
        return 0 if tail + rec - head <= self._rsize else 2

    cdef uint64_t _send_tail(self) except? 1:
        """With the send lock held: the tail, checked (unlocks and raises if bad)."""
        cdef uint64_t tail = svk_chan_load(&self._ch.tail)
        if tail & 7:
            svk_chan_unlock(&self._ch.send_lock, &self._snap_send)
            self._bad_span(self._head_seen, tail)
        return tail

    cdef object _send1(self, const char *p, Py_ssize_t n, bint blocking, bint timed,
                       double deadline):
        cdef svk_channel *c
        cdef uint64_t rec = svk_chan_record_size(n)
        cdef uint64_t tail
        if self._addr == NULL or self._ch == NULL:
            self._closed()
        c = self._ch
        self._pins += 1
        try:
            while True:
                if not self._take(&c.send_lock, &self._snap_send, True, blocking, timed,
                                  deadline):
                    self._not_now(blocking, "send")
                tail = self._send_tail()
                if self._room(tail, rec) == 0:
                    self._put(tail, p, n)
                    svk_chan_publish_send(c, tail + rec, 1)
                    svk_chan_unlock(&c.send_lock, &self._snap_send)
                    return None
                svk_chan_unlock(&c.send_lock, &self._snap_send)
                if not blocking:
                    raise BlockingIOError(EAGAIN, "the channel is full (send, %s)" % self._name())
                self._sleep(False, rec, timed, deadline)
        finally:
            self._pins -= 1

    cdef int _peek(self, uint64_t *head_out, uint32_t *n, uint64_t *off) except -1:
        """With the receive lock held: 1 and the record at head, or 0 if
        empty (unlocks and raises CorruptError on anything impossible)."""
        cdef svk_channel *c = self._ch
        cdef uint64_t head = svk_chan_load(&c.head)
        cdef uint64_t tail = self._tail_seen
        if tail == head or not svk_chan_span_ok(head, tail, self._rsize):
            tail = svk_chan_load(&c.tail)
            if not svk_chan_span_ok(head, tail, self._rsize):
                svk_chan_unlock(&c.recv_lock, &self._snap_recv)
                self._bad_span(head, tail)
            self._tail_seen = tail
            if tail == head:
                return 0
        if svk_chan_get_header(self._ring, self._rsize, head, tail, n, off) != 0:
            svk_chan_unlock(&c.recv_lock, &self._snap_recv)
            self._corrupt("no valid message header at position %d" % head)
        head_out[0] = head
        return 1

    cdef int _get(self, char *dst, uint64_t off, uint32_t n):
        if n > _CH_BIG:
            self._exports += 1
            with nogil:
                svk_chan_copy_out(self._ring, self._rsize, off, dst, n)
            self._exports -= 1
        else:
            svk_chan_copy_out(self._ring, self._rsize, off, dst, n)
        return 0

    cdef int _begin_receive(self, bint blocking, bint timed, double deadline,
                            uint64_t *head, uint32_t *n, uint64_t *off) except -1:
        """Take the receive lock with a record at head (waiting for one);
        raises TimeoutError / BlockingIOError otherwise."""
        cdef svk_channel *c = self._ch
        while True:
            if not self._take(&c.recv_lock, &self._snap_recv, False, blocking, timed, deadline):
                self._not_now(blocking, "receive")
            if self._peek(head, n, off):
                return 0
            svk_chan_unlock(&c.recv_lock, &self._snap_recv)
            if not blocking:
                raise BlockingIOError(EAGAIN, "the channel is empty (receive, %s)" % self._name())
            self._sleep(True, 0, timed, deadline)

    # -- the public operations ------------------------------------------------------------
    def send(self, data, *, block=True, timeout=None):
        """send($self, /, data, *, block=True, timeout=None)
--

        Send ``data`` (any bytes-like object) as one message.

        A full channel blocks until there is room; ``timeout`` (seconds)
        bounds the wait (``0`` tries once).  Raises TypeError for ``str`` or
        a non-buffer; ValueError for a message longer than max_message_size,
        a negative or NaN timeout, or once closed; BlockingIOError if the
        channel is full and ``block`` is false; TimeoutError when the
        timeout expires; RemovedError if the channel is removed while the
        call waits; CorruptError if the segment holds impossible values.
        """
        cdef Py_buffer view
        cdef double deadline = 0
        cdef bint timed = False
        cdef Py_ssize_t n
        if timeout is not None:
            timed = parse_timeout(timeout, &deadline)
        if PyBytes_CheckExact(data):
            n = PyBytes_GET_SIZE(data)
            if <uint64_t>n > self._maxmsg:
                if self._addr == NULL:
                    self._closed()
                self._too_big(n)
            return self._send1(PyBytes_AS_STRING(data), n, block, timed, deadline)
        if isinstance(data, str) or not PyObject_CheckBuffer(data):
            raise TypeError("data must be a bytes-like object, not %s" % type(data).__name__)
        try:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        except BufferError:     # not C-contiguous: send a contiguous copy
            data = memoryview(data).tobytes()
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            if <uint64_t>view.len > self._maxmsg:
                if self._addr == NULL:
                    self._closed()
                self._too_big(view.len)
            return self._send1(<const char *>view.buf, view.len, block, timed, deadline)
        finally:
            PyBuffer_Release(&view)

    def receive(self, *, block=True, timeout=None):
        """receive($self, /, *, block=True, timeout=None)
--

        Take the oldest message -> bytes.

        An empty channel blocks until a message comes; ``timeout`` (seconds)
        bounds the wait (``0`` tries once).  Raises BlockingIOError if it is
        empty and ``block`` is false; TimeoutError when the timeout expires;
        ValueError for a negative or NaN timeout, or once closed;
        RemovedError if the channel is removed while the call waits;
        CorruptError if the segment holds impossible values.
        """
        cdef double deadline = 0
        cdef bint timed = False
        cdef uint64_t head, off
        cdef uint32_t n
        cdef bytes out
        if timeout is not None:
            timed = parse_timeout(timeout, &deadline)
        if self._addr == NULL or self._ch == NULL:
            self._closed()
        self._pins += 1
        try:
            self._begin_receive(block, timed, deadline, &head, &n, &off)
            try:
                out = PyBytes_FromStringAndSize(NULL, n)
            except BaseException:
                svk_chan_unlock(&self._ch.recv_lock, &self._snap_recv)
                raise
            self._get(PyBytes_AS_STRING(out), off, n)
            svk_chan_publish_receive(self._ch, head + svk_chan_record_size(n), 1)
            svk_chan_unlock(&self._ch.recv_lock, &self._snap_recv)
            return out
        finally:
            self._pins -= 1

    def receive_into(self, buffer, *, block=True, timeout=None):
        """receive_into($self, /, buffer, *, block=True, timeout=None)
--

        Take the oldest message into ``buffer`` (a writable bytes-like
        object) -> its length.

        A message longer than the buffer stays in the channel and raises
        ValueError.  Blocking, timeouts and errors as for receive(); a
        read-only buffer is TypeError.
        """
        cdef Py_buffer view
        cdef double deadline = 0
        cdef bint timed = False
        cdef uint64_t head, off
        cdef uint32_t n
        if timeout is not None:
            timed = parse_timeout(timeout, &deadline)
        if isinstance(buffer, (str, bytes)) or not PyObject_CheckBuffer(buffer):
            raise TypeError("buffer must be a writable bytes-like object, not %s"
                            % type(buffer).__name__)
        try:
            PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE)
        except BufferError as exc:
            raise TypeError("buffer must be a writable, contiguous bytes-like object (%s)"
                            % exc) from None
        try:
            if self._addr == NULL or self._ch == NULL:
                self._closed()
            self._pins += 1
            try:
                self._begin_receive(block, timed, deadline, &head, &n, &off)
                if n > view.len:
                    svk_chan_unlock(&self._ch.recv_lock, &self._snap_recv)
                    raise ValueError("the next message is %d bytes, longer than the buffer "
                                     "(%d bytes); it stays in the channel" % (n, view.len))
                self._get(<char *>view.buf, off, n)
                svk_chan_publish_receive(self._ch, head + svk_chan_record_size(n), 1)
                svk_chan_unlock(&self._ch.recv_lock, &self._snap_recv)
                return n
            finally:
                self._pins -= 1
        finally:
            PyBuffer_Release(&view)

    def send_many(self, messages, *, block=True, timeout=None):
        """send_many($self, /, messages, *, block=True, timeout=None)
--

        Send each bytes-like object of ``messages`` in order -> how many
        were sent.

        Every message is checked first (TypeError, ValueError as for send(),
        naming its index; nothing is sent then).  Waits for room as send()
        does; if the timeout expires, or the channel is full with ``block``
        false, after some were sent, returns that count; with none sent it
        raises TimeoutError or BlockingIOError.
        """
        cdef double deadline = 0
        cdef bint timed = False
        cdef Py_ssize_t count, i, done = 0, k
        cdef const char **ptrs = NULL
        cdef uint64_t *lens = NULL
        cdef Py_buffer *views = NULL
        cdef Py_ssize_t nviews = 0
        cdef uint64_t tail, pos, rec
        cdef svk_channel *c
        cdef list items
        if timeout is not None:
            timed = parse_timeout(timeout, &deadline)
        items = list(messages)
        count = len(items)
        if self._addr == NULL or self._ch == NULL:
            self._closed()
        if count == 0:
            return 0
        ptrs = <const char **>malloc(count * sizeof(char *))
        lens = <uint64_t *>malloc(count * sizeof(uint64_t))
        views = <Py_buffer *>malloc(count * sizeof(Py_buffer))
        try:
            if ptrs == NULL or lens == NULL or views == NULL:
                raise MemoryError()
            for i in range(count):
                item = items[i]
                if not PyBytes_CheckExact(item):
                    if isinstance(item, str) or not PyObject_CheckBuffer(item):
                        raise TypeError("messages[%d] must be a bytes-like object, not %s"
                                        % (i, type(item).__name__))
                    try:
                        PyObject_GetBuffer(item, &views[nviews], PyBUF_SIMPLE)
                    except BufferError:
                        item = memoryview(item).tobytes()
                        items[i] = item
                    else:
                        ptrs[i] = <const char *>views[nviews].buf
                        lens[i] = views[nviews].len
                        nviews += 1
                if PyBytes_CheckExact(item):
                    ptrs[i] = PyBytes_AS_STRING(item)
                    lens[i] = PyBytes_GET_SIZE(item)
                if lens[i] > self._maxmsg:
                    raise ValueError("messages[%d] is %d bytes, longer than max_message_size, "
                                     "%d bytes for this channel" % (i, lens[i], self._maxmsg))
            c = self._ch
            self._pins += 1
            try:
                while done < count:
                    if not self._take(&c.send_lock, &self._snap_send, True, block, timed,
                                      deadline):
                        if done:
                            return done
                        self._not_now(block, "send_many")
                    tail = self._send_tail()
                    pos = tail
                    k = 0
                    while done < count:
                        rec = svk_chan_record_size(lens[done])
                        if self._room(pos, rec) != 0:
                            break
                        self._put(pos, ptrs[done], lens[done])
                        pos += rec
                        done += 1
                        k += 1
                    if k:
                        svk_chan_publish_send(c, pos, k)
                    svk_chan_unlock(&c.send_lock, &self._snap_send)
                    if done == count:
                        break
                    if not block:
                        if done:
                            return done
                        raise BlockingIOError(EAGAIN, "the channel is full (send_many, %s)"
                                              % self._name())
                    try:
                        self._sleep(False, svk_chan_record_size(lens[done]), timed, deadline)
                    except TimeoutError:
                        if done:
                            return done
                        raise
                return done
            finally:
                self._pins -= 1
        finally:
            for i in range(nviews):
                PyBuffer_Release(&views[i])
            free(ptrs)
            free(lens)
            free(views)

    def receive_many(self, max_messages, *, block=True, timeout=None):
        """receive_many($self, /, max_messages, *, block=True, timeout=None)
--

        Wait for at least one message, then take those there, up to
        ``max_messages`` (>= 1) -> list of bytes, oldest first.

        Blocking, timeouts and errors as for receive().
        """
        cdef double deadline = 0
        cdef bint timed = False
        cdef Py_ssize_t limit = _long_arg(max_messages, "max_messages", 1)
        cdef uint64_t head, off, pos, rec, taken = 0
        cdef uint32_t n
        cdef bytes out
        cdef list result = []
        cdef svk_channel *c
        if timeout is not None:
            timed = parse_timeout(timeout, &deadline)
        if self._addr == NULL or self._ch == NULL:
            self._closed()
        c = self._ch
        self._pins += 1
        try:
            self._begin_receive(block, timed, deadline, &head, &n, &off)
            pos = head
            try:
                while True:
                    out = PyBytes_FromStringAndSize(NULL, n)
                    self._get(PyBytes_AS_STRING(out), off, n)
                    result.append(out)
                    pos += svk_chan_record_size(n)
                    taken += 1
                    if <Py_ssize_t>taken >= limit:
                        break
                    if not self._more(pos, &n, &off):
                        break
            except BaseException:
                if taken == 0:
                    svk_chan_unlock(&c.recv_lock, &self._snap_recv)
                    raise
            svk_chan_publish_receive(c, pos, taken)
            svk_chan_unlock(&c.recv_lock, &self._snap_recv)
            return result
        finally:
            self._pins -= 1

    cdef bint _more(self, uint64_t pos, uint32_t *n, uint64_t *off) except -1:
        """With the receive lock held, past records taken up to pos: True
        and the next record if one is there (a damaged one ends the batch;
        the next call reports it)."""
        cdef uint64_t tail = self._tail_seen
        if pos >= tail:
            tail = svk_chan_load(&self._ch.tail)
            if not svk_chan_span_ok(pos, tail, self._rsize):
                return False
            self._tail_seen = tail
            if tail == pos:
                return False
        return svk_chan_get_header(self._ring, self._rsize, pos, tail, n, off) == 0

    # -- the bench's reference loops ----------------------------------------------------
    def _bench_send(self, Py_ssize_t n, Py_ssize_t size):
        """Send n messages of size bytes in a C loop -> seconds (the bench's
        floor: the same ring and locks, without Python's per-call cost)."""
        cdef bytes data = b"x" * size
        cdef const char *p = PyBytes_AS_STRING(data)
        cdef Py_ssize_t i
        cdef double t0
        if <uint64_t>size > self._maxmsg:
            self._too_big(size)
        t0 = sysvkit_monotonic()
        for i in range(n):
            self._send1(p, size, True, False, 0)
        return sysvkit_monotonic() - t0

    def _bench_receive(self, Py_ssize_t n, Py_ssize_t size):
        """Receive n messages of at most size bytes into one buffer in a C
        loop -> seconds."""
        cdef bytearray buf = bytearray(size)
        cdef char *dst = buf
        cdef uint64_t head, off
        cdef uint32_t k
        cdef Py_ssize_t i
        cdef double t0
        if self._addr == NULL or self._ch == NULL:
            self._closed()
        t0 = sysvkit_monotonic()
        self._pins += 1
        try:
            for i in range(n):
                self._begin_receive(True, False, 0, &head, &k, &off)
                if k > size:
                    svk_chan_unlock(&self._ch.recv_lock, &self._snap_recv)
                    raise ValueError("a message of %d bytes is longer than %d" % (k, size))
                self._get(dst, off, k)
                svk_chan_publish_receive(self._ch, head + svk_chan_record_size(k), 1)
                svk_chan_unlock(&self._ch.recv_lock, &self._snap_recv)
        finally:
            self._pins -= 1
        return sysvkit_monotonic() - t0

    # -- sizes -----------------------------------------------------------------------------
    def __len__(self):
        """The number of messages waiting."""
        cdef uint64_t sent, received
        if self._addr == NULL or self._ch == NULL:
            self._closed()
        received = svk_chan_load(&self._ch.received)
        sent = svk_chan_load(&self._ch.sent)
        if sent <= received:
            return 0
        if sent - received > self._rsize // SVK_CHAN_RECORD_HEADER:
            self._corrupt("its message counters are impossible (sent %d, received %d)"
                          % (sent, received))
        return <Py_ssize_t>(sent - received)

    @property
    def capacity(self):
        """Bytes of messages the channel holds (each message takes its length
        rounded up to 8, plus 8)."""
        return self._capacity

    @property
    def max_message_size(self):
        """The largest message that fits, in bytes."""
        return self._maxmsg
