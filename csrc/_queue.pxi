# Queue hot path: Python objects over the channel's ring (layout in queue.h).
#
# sysvkit.objqueue.Queue subclasses QueueBase (with Structure).  put()
# pickles with protocol 5, out-of-band buffers apart, and writes header,
# pickle and buffers straight into one record of the ring under the send
# lock (the channel's reservation and commit: room checked at tail, copy,
# publish tail).  An object too large for the ring goes into a segment of
# its own and the ring carries a reference; queue.h says how ownership of
# that segment passes from sender to receiver.  get() copies a record out
# once, under the receive lock, and unpickles it after, with buffers that
# are slices of that copy.

from libc.stdint cimport int32_t, uintptr_t
from cpython.bytearray cimport PyByteArray_FromStringAndSize, PyByteArray_AS_STRING
from posix.unistd cimport getpid
from sysv cimport (
    SVK_KIND_QUEUE, SVK_QUEUE_VERSION, SVK_Q_MAGIC, SVK_Q_PICKLE, SVK_Q_BYTES,
    SVK_Q_BYTEARRAY, SVK_Q_SPILL, SVK_Q_HEAD, SVK_Q_REF, SVK_Q_ALIGN, SVK_Q_SIDE_MAGIC,
    SVK_Q_NSLOTS, SVK_Q_FREE, SVK_Q_CLAIMED, SVK_Q_SENT, SVK_Q_RECEIVING, SVK_Q_SPILL_MAGIC,
    SVK_Q_SPILL_HEAD, SVK_Q_SIDE_SIZE, svk_qslot, svk_qside, svk_qspill,
    svk_q_word, svk_q_state, svk_q_pid, svk_q_gen, svk_q_load, svk_q_cas, svk_q_store_id,
    svk_q_load_id, svk_q_fence, svk_q_init, svk_q_seg_matches, svk_q_seg_remove,
    svk_q_ref_pending, svk_q_pid_exists, svk_q_scatter_ring, svk_q_scatter_mem,
)
cdef extern from "<sys/mman.h>" nogil:
    enum:
        MADV_HUGEPAGE

import pickle as _pickle
import queue as _stdqueue
import io as _io
import time as _time

STRUCT_KIND_QUEUE = SVK_KIND_QUEUE
QUEUE_VERSION = SVK_QUEUE_VERSION
QUEUE_SIDE_SIZE = SVK_Q_SIDE_SIZE
QUEUE_SLOTS = SVK_Q_NSLOTS
QUEUE_SPILL_HEAD = SVK_Q_SPILL_HEAD

_p_dumps = _pickle.dumps
_p_loads = _pickle.loads
_PickleBuffer = _pickle.PickleBuffer
_Full = _stdqueue.Full
_Empty = _stdqueue.Empty

# bytes and bytearray of at least this size inside a tuple, list or dict
# travel out of band too (pickle keeps them in the stream otherwise).
cdef Py_ssize_t _Q_OOB_MIN = 65536


cdef void _q_fresh(char *p, uint64_t n, bint populate) noexcept nogil:
    """Ask for huge pages over a large buffer about to be written (fewer
    page faults), and with ``populate`` fault it in at once (one system
    call instead of one fault per page).  Advice only: errors are ignored."""
    cdef uintptr_t huge = 2 << 20, start, end
    if n < 2 * huge:
        return
    start = (<uintptr_t>p + huge - 1) & ~(huge - 1)
    end = (<uintptr_t>p + n) & ~(huge - 1)
    if end > start:
        madvise(<void *>start, end - start, MADV_HUGEPAGE)
    if populate:
        start = (<uintptr_t>p + 4095) & ~(<uintptr_t>4095)
        end = (<uintptr_t>p + n) & ~(<uintptr_t>4095)
        if end > start:
            madvise(<void *>start, end - start, MADV_POPULATE_WRITE)


cdef inline uint64_t _q_align(uint64_t n) nogil:
    return (n + SVK_Q_ALIGN - 1) & ~(<uint64_t>(SVK_Q_ALIGN - 1))


class _OutOfBand:
    """Stands in for a large bytes or bytearray object in a container, so
    that pickle sends its data out of band (it keeps bytes in the stream
    otherwise); it unpickles as the object itself."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __reduce_ex__(self, protocol):
        return type(self.obj), (_PickleBuffer(self.obj),)


cdef inline bint _q_big_bytes(object item):
    cdef object t = type(item)
    return (t is bytes or t is bytearray) and len(item) >= _Q_OOB_MIN


cdef object _q_out_of_band(object obj):
    """obj, or a shallow copy of a tuple, list or dict (of up to 64 items)
    with its large bytes and bytearray items stood in for by _OutOfBand."""
    cdef object t = type(obj)
    if t is tuple or t is list:
        if len(obj) > 64 or not any(_q_big_bytes(x) for x in obj):
            return obj
        items = [_OutOfBand(x) if _q_big_bytes(x) else x for x in obj]
        return tuple(items) if t is tuple else items
    if t is dict:
        if len(obj) > 64 or not any(_q_big_bytes(x) for x in (<dict>obj).values()):
            return obj
        return {k: (_OutOfBand(v) if _q_big_bytes(v) else v) for k, v in (<dict>obj).items()}
    return obj


def _q_alive(unsigned int pid):
    """True while process ``pid`` exists and is not a zombie."""
    if not svk_q_pid_exists(pid):
        return False
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            st = f.read()
    except OSError:
        return True
    i = st.rfind(b")")
    return st[i + 2:i + 3] not in (b"Z", b"X")


def _q_orphans(unsigned int creator, unsigned long long size):
    """Ids of unattached private segments made by ``creator`` of exactly
    ``size`` bytes (a spill whose id its dead sender never recorded)."""
    found = []
    try:
        with open("/proc/sysvipc/shm", "rb") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        cols = line.split()
        try:
            if (int(cols[0]) == 0 and int(cols[3]) == size and int(cols[4]) == creator
                    and int(cols[6]) == 0):
                found.append(int(cols[1]))
        except (IndexError, ValueError):
            continue
    return found


def _q_unpickle_error(exc):
    err = _pickle.UnpicklingError("the object received could not be unpickled (%s: %s); it "
                                  "was taken from the queue" % (type(exc).__name__, exc))
    err.__cause__ = exc
    return err


@cython.auto_pickle(False)
@cython.binding(False)
@cython.embedsignature(False)
cdef class QueueBase(ChannelBase):
    """The compiled half of sysvkit.Queue: objects in and out of the ring."""

    cdef svk_qside *_side
    cdef int _spill_mode

    def __cinit__(self, *args, **kwargs):
        self._side = NULL
        self._spill_mode = 0o600

    # -- format and bind ------------------------------------------------------------
    def _q_format(self, unsigned long long capacity):
        """Write a fresh slot table after the ring (the segment was zeroed)."""
        cdef uint64_t at = SVK_CHAN_RING_OFFSET + _ch_round8(capacity)
        self._st_check()
        if at + SVK_Q_SIDE_SIZE > <uint64_t>self._size:
            raise ValueError("a %d-byte segment cannot hold a queue of capacity %d"
                             % (self._size, capacity))
        svk_q_init(<svk_qside *>(self._addr + at))

    def _q_bind(self, unsigned long long size, int mode):
        """After _ch_bind: check the slot table fits in ``size`` bytes and
        looks like one."""
        cdef uint64_t at
        cdef svk_qside *s
        if self._ch == NULL:
            raise ValueError("the channel is not bound")
        at = SVK_CHAN_RING_OFFSET + self._rsize
        if at + SVK_Q_SIDE_SIZE > size or size > <uint64_t>self._size:
            raise CorruptError("%s: %d bytes cannot hold a queue with a ring of %d bytes"
                               % (self._name(), size, self._rsize))
        s = <svk_qside *>(self._addr + at)
        if s.magic != SVK_Q_SIDE_MAGIC or s.nslots != SVK_Q_NSLOTS:
            raise CorruptError("%s: its table of big objects is damaged" % self._name())
        self._side = s
        self._spill_mode = mode & 0o666

    cdef int _q_ready(self) except -1:
        if self._addr == NULL or self._side == NULL:
            raise ValueError("operation on a closed queue")
        return 0

    # -- sending ----------------------------------------------------------------------
    cdef int _q_ring_send(self, const char **ptrs, uint64_t *lens, uint64_t *offs,
                          Py_ssize_t nparts, uint64_t total, bint blocking, bint timed,
                          double deadline) except -1:
        """Write one record of ``total`` bytes made of the parts, with the
        channel's protocol: room at tail under the send lock, copy, publish."""
        cdef svk_channel *c = self._ch
        cdef uint64_t rec = svk_chan_record_size(total)
        cdef uint64_t tail, off
        self._pins += 1
        try:
            while True:
                if not self._take(&c.send_lock, &self._snap_send, True, blocking, timed,
                                  deadline):
                    self._not_now(blocking, "put")
                tail = self._send_tail()
                if self._room(tail, rec) == 0:
                    off = svk_chan_put_header(self._ring, self._rsize, tail, <uint32_t>total)
                    if total > <uint64_t>_CH_BIG:
                        self._exports += 1
                        with nogil:
                            svk_q_scatter_ring(self._ring, self._rsize, off, ptrs, lens, offs,
                                               nparts)
                        self._exports -= 1
                    else:
                        svk_q_scatter_ring(self._ring, self._rsize, off, ptrs, lens, offs, nparts)
                    svk_chan_publish_send(c, tail + rec, 1)
                    svk_chan_unlock(&c.send_lock, &self._snap_send)
                    return 0
                svk_chan_unlock(&c.send_lock, &self._snap_send)
                if not blocking:
                    raise BlockingIOError(EAGAIN, "the queue is full (put, %s)" % self._name())
                self._sleep(False, rec, timed, deadline)
        finally:
            self._pins -= 1

    def put(self, obj, block=True, timeout=None):
        """put($self, /, obj, block=True, timeout=None)
--

        Put ``obj`` at the end of the queue (pickled, protocol 5).

        A full queue blocks until there is room; ``timeout`` (seconds)
        bounds the wait.  Raises queue.Full if there is no room by then, or
        at once with ``block`` false; the pickling error itself if ``obj``
        cannot be pickled (nothing is sent); ValueError for a negative
        timeout or once closed; RemovedError if the queue is removed.
        """
        cdef double deadline = 0
        cdef bint timed = False
        cdef object t = type(obj)
        cdef int kind
        cdef list bufs = None
        cdef object data
        if block and timeout is not None:
            timed = parse_timeout(timeout, &deadline)
        self._q_ready()
        if t is bytes:
            kind = SVK_Q_BYTES
            data = obj
        elif t is bytearray:
            kind = SVK_Q_BYTEARRAY
            data = obj
        else:
            kind = SVK_Q_PICKLE
            bufs = []
            data = _p_dumps(_q_out_of_band(obj), 5, buffer_callback=bufs.append)
        try:
            self._q_put(kind, data, bufs, block, timed, deadline)
        except (BlockingIOError, TimeoutError):
            raise _Full() from None

    def put_nowait(self, obj):
        """put_nowait($self, /, obj)
--

        put(obj, block=False)."""
        return self.put(obj, False)

    cdef int _q_put(self, int kind, object data, list bufs, bint blocking, bint timed,
                    double deadline) except -1:
        cdef Py_ssize_t nbufs = 0 if bufs is None else len(bufs)
        cdef Py_ssize_t nparts = 2 + nbufs, nviews = 0, i
        cdef uint64_t hlen = SVK_Q_HEAD + 8 * <uint64_t>nbufs
        cdef uint64_t cur
        cdef char *hdr = NULL
        cdef const char **ptrs = NULL
        cdef uint64_t *lens = NULL
        cdef uint64_t *offs = NULL
        cdef Py_buffer *views = NULL
        cdef Py_buffer *v
        cdef uint32_t *h32
        cdef uint64_t *h64
        cdef char small[SVK_Q_HEAD]
        cdef const char *sptrs[2]
        cdef uint64_t slens[2]
        cdef uint64_t soffs[2]
        cdef Py_buffer dview
        if nbufs == 0 and PyBytes_CheckExact(data):
            # The common case: one pickle (or bytes) and no buffers.
            h32 = <uint32_t *>small
            h64 = <uint64_t *>small
            h32[0] = SVK_Q_MAGIC | kind
            h32[1] = 0
            h64[1] = PyBytes_GET_SIZE(data)
            sptrs[0] = small
            slens[0] = SVK_Q_HEAD
            soffs[0] = 0
            sptrs[1] = PyBytes_AS_STRING(data)
            slens[1] = h64[1]
            soffs[1] = SVK_Q_HEAD
            return self._q_dispatch(sptrs, slens, soffs, 2, SVK_Q_HEAD + slens[1], blocking,
                                    timed, deadline)
        hdr = <char *>malloc(hlen)
        ptrs = <const char **>malloc(nparts * sizeof(char *))
        lens = <uint64_t *>malloc(nparts * sizeof(uint64_t))
        offs = <uint64_t *>malloc(nparts * sizeof(uint64_t))
        views = <Py_buffer *>malloc((nbufs + 1) * sizeof(Py_buffer))
        try:
            if hdr == NULL or ptrs == NULL or lens == NULL or offs == NULL or views == NULL:
                raise MemoryError()
            PyObject_GetBuffer(data, &views[0], PyBUF_SIMPLE)
            nviews = 1
            for i in range(nbufs):
                b = bufs[i]
                try:
                    raw = b.raw()
                except BufferError:          # not contiguous: a contiguous copy
                    raw = memoryview(b).tobytes()
                PyObject_GetBuffer(raw, &views[nviews], PyBUF_SIMPLE)
                nviews += 1
            h32 = <uint32_t *>hdr
            h64 = <uint64_t *>hdr
            h32[0] = SVK_Q_MAGIC | kind
            h32[1] = <uint32_t>nbufs
            h64[1] = views[0].len
            ptrs[0] = hdr
            lens[0] = hlen
            offs[0] = 0
            ptrs[1] = <const char *>views[0].buf
            lens[1] = views[0].len
            offs[1] = hlen
            cur = hlen + <uint64_t>views[0].len
            for i in range(nbufs):
                v = &views[i + 1]
                h64[2 + i] = v.len
                cur = _q_align(cur)
                ptrs[2 + i] = <const char *>v.buf
                lens[2 + i] = v.len
                offs[2 + i] = cur
                cur += v.len
            return self._q_dispatch(ptrs, lens, offs, nparts, cur, blocking, timed, deadline)
        finally:
            for i in range(nviews):
                PyBuffer_Release(&views[i])
            free(hdr)
            free(ptrs)
            free(lens)
            free(offs)
            free(views)

    cdef int _q_dispatch(self, const char **ptrs, uint64_t *lens, uint64_t *offs,
                         Py_ssize_t nparts, uint64_t total, bint blocking, bint timed,
                         double deadline) except -1:
        if total <= self._maxmsg:
            return self._q_ring_send(ptrs, lens, offs, nparts, total, blocking, timed, deadline)
        return self._q_spill_put(ptrs, lens, offs, nparts, total, blocking, timed, deadline)

    # -- spills: the sender's side --------------------------------------------------------
    cdef int _q_claim(self, uint32_t pid, bint blocking, bint timed, double deadline,
                      uint64_t *gen_out) except -1:
        """A free slot, now CLAIMED by pid; waits (in slices) while all are
        taken; raises BlockingIOError / TimeoutError."""
        cdef svk_qslot *s
        cdef uint64_t w, gen
        cdef int i
        cdef double pause = 0.001, now
        cdef bint reaped = False
        while True:
            for i in range(SVK_Q_NSLOTS):
                s = &self._side.slots[i]
                w = svk_q_load(&s.word)
                if svk_q_state(w) == SVK_Q_FREE:
                    gen = (svk_q_gen(w) + 1) & 0xffffff
                    if svk_q_cas(&s.word, w, svk_q_word(gen, SVK_Q_CLAIMED, pid)):
                        gen_out[0] = gen
                        return i
            if not reaped:
                self._q_reap(False)
                reaped = True
                continue
            if not blocking:
                raise BlockingIOError(EAGAIN, "every slot for big objects is taken (%s)"
                                      % self._name())
            now = sysvkit_monotonic()
            if timed and now >= deadline:
                raise TimeoutError(ETIMEDOUT, "timed out (put, %s)" % self._name())
            if svk_chan_removed(self._ch):
                self._check_removed()
            _time.sleep(min(pause, deadline - now) if timed else pause)
            pause = min(pause * 2, 0.05)
            reaped = False

    cdef int _q_spill_put(self, const char **ptrs, uint64_t *lens, uint64_t *offs,
                          Py_ssize_t nparts, uint64_t total, bint blocking, bint timed,
                          double deadline) except -1:
        cdef uint32_t pid = <uint32_t>getpid()
        cdef uint64_t gen = 0, size
        cdef int i, shmid = -1, err
        cdef svk_qslot *s
        cdef char *addr = NULL
        cdef svk_qspill *sp
        cdef uint32_t ref[6]
        cdef const char *rptrs[1]
        cdef uint64_t rlens[1]
        cdef uint64_t roffs[1]
        cdef uint64_t page = 4096
        self._q_reap(False)          # what dead senders and receivers left
        i = self._q_claim(pid, blocking, timed, deadline, &gen)
        s = &self._side.slots[i]
        # The exact size marks the segment as this slot's (a reaper that
        # never saw its id finds it by creator and size).
        size = (SVK_Q_SPILL_HEAD + total + page - 1) // page * page
        size += 8 * (1 + (<uint64_t>i * 37 + <uint64_t>self._shmid) % 509)
        try:
            s.creator = pid
            s.size = size
            svk_q_store_id(&s.shmid, -1)
            svk_q_fence()
            with nogil:
                shmid = sysv.shmget(IPC_PRIVATE, size, IPC_CREAT | self._spill_mode)
            if shmid < 0:
                err = errno
                if err == EINVAL:
                    raise ValueError("an object of %d bytes (pickled) is larger than the "
                                     "kernel's shmmax allows for one segment" % total)
                raise_errno(err, "shmget", WHAT_ID, self._shmid)
            svk_q_store_id(&s.shmid, shmid)
            if svk_chan_removed(self._ch):
                raise RemovedError(EIDRM, "%s was removed" % self._name())
            with nogil:
                addr = <char *>sysv.shmat(shmid, NULL, 0)
            if addr == <char *>-1:
                addr = NULL
                raise_errno(errno, "shmat", WHAT_ID, shmid)
            sp = <svk_qspill *>addr
            sp.magic = SVK_Q_SPILL_MAGIC
            sp.slot = i
            sp.gen = gen
            sp.length = total
            sp.queue_id = self._shmid
            with nogil:
                _q_fresh(addr, size, True)
                svk_q_scatter_mem(addr + SVK_Q_SPILL_HEAD, ptrs, lens, offs, nparts)
                sysv.shmdt(addr)
            addr = NULL
            ref[0] = SVK_Q_MAGIC | SVK_Q_SPILL
            ref[1] = i
            ref[2] = <uint32_t>gen
            ref[3] = 0
            ref[4] = <uint32_t>total
            ref[5] = <uint32_t>(total >> 32)
            rptrs[0] = <const char *>ref
            rlens[0] = SVK_Q_REF
            roffs[0] = 0
            self._q_ring_send(rptrs, rlens, roffs, 1, SVK_Q_REF, blocking, timed, deadline)
        except BaseException:
            if addr != NULL:
                sysv.shmdt(addr)
            if shmid >= 0:
                svk_q_seg_remove(shmid, pid, size)
            self._q_free(s, svk_q_word(gen, SVK_Q_CLAIMED, pid))
            raise
        svk_q_cas(&s.word, svk_q_word(gen, SVK_Q_CLAIMED, pid), svk_q_word(gen, SVK_Q_SENT, pid))
        return 0

    cdef void _q_free(self, svk_qslot *s, uint64_t w):
        """Clear a slot (seen as w) and make it FREE (same generation)."""
        svk_q_store_id(&s.shmid, -1)
        s.creator = 0
        s.size = 0
        svk_q_cas(&s.word, w, svk_q_word(svk_q_gen(w), SVK_Q_FREE, 0))

    # -- reaping ------------------------------------------------------------------------
    cdef int _q_drop(self, int i, uint64_t w) except -1:
        """Remove slot i's segment (as it describes it) and free the slot."""
        cdef svk_qslot *s = &self._side.slots[i]
        cdef int shmid = svk_q_load_id(&s.shmid)
        cdef uint32_t creator = s.creator
        cdef uint64_t size = s.size
        if shmid >= 0:
            svk_q_seg_remove(shmid, creator, size)
        elif svk_q_state(w) == SVK_Q_CLAIMED and creator != 0 and size != 0:
            for ident in _q_orphans(creator, size):
                svk_q_seg_remove(ident, creator, size)
        self._q_free(s, w)
        return 0

    def _q_reap(self, bint everything=False):
        """Free the slots of dead senders and receivers, removing their
        segments unless a reference to them is still in the ring.  With
        ``everything``, remove every spill (the queue is being removed).
        Returns how many slots were freed."""
        cdef int i, freed = 0
        cdef uint64_t w
        cdef svk_qslot *s
        cdef list cands = []
        cdef svk_channel *c
        self._q_ready()
        c = self._ch
        for i in range(SVK_Q_NSLOTS):
            w = svk_q_load(&self._side.slots[i].word)
            if svk_q_state(w) == SVK_Q_FREE:
                continue
            if everything:
                self._q_drop(i, w)
                freed += 1
                continue
            if svk_q_state(w) == SVK_Q_SENT or _q_alive(svk_q_pid(w)):
                continue
            cands.append(i)
        if not cands:
            return freed
        self._pins += 1
        try:
            self._take(&c.recv_lock, &self._snap_recv, False, True, False, 0)
            try:
                for i in cands:
                    s = &self._side.slots[i]
                    w = svk_q_load(&s.word)
                    if svk_q_state(w) not in (SVK_Q_CLAIMED, SVK_Q_RECEIVING) or _q_alive(
                            svk_q_pid(w)):
                        continue
                    if svk_q_ref_pending(c, self._ring, self._rsize, i, svk_q_gen(w)):
                        svk_q_cas(&s.word, w, svk_q_word(svk_q_gen(w), SVK_Q_SENT,
                                                         svk_q_pid(w)))
                    else:
                        self._q_drop(i, w)
                        freed += 1
            finally:
                svk_chan_unlock(&c.recv_lock, &self._snap_recv)
        finally:
            self._pins -= 1
        return freed

    def _q_slots(self):
        """[(index, state, pid, shmid, creator, size)] of the slots in use."""
        cdef int i
        cdef uint64_t w
        cdef svk_qslot *s
        self._q_ready()
        out = []
        for i in range(SVK_Q_NSLOTS):
            s = &self._side.slots[i]
            w = svk_q_load(&s.word)
            if svk_q_state(w) != SVK_Q_FREE:
                out.append((i, svk_q_state(w), svk_q_pid(w), svk_q_load_id(&s.shmid),
                            s.creator, s.size))
        return out

    # -- receiving ---------------------------------------------------------------------
    def get(self, block=True, timeout=None):
        """get($self, /, block=True, timeout=None)
--

        Remove and return the object at the front of the queue.

        An empty queue blocks until an object comes; ``timeout`` (seconds)
        bounds the wait.  Raises queue.Empty if none came by then, or at
        once with ``block`` false; pickle.UnpicklingError, with the original
        error as its cause, if the object cannot be unpickled here (it is
        taken from the queue all the same); ValueError for a negative
        timeout or once closed; RemovedError if the queue is removed while
        the call waits.
        """
        cdef double deadline = 0
        cdef bint timed = False
        if block and timeout is not None:
            timed = parse_timeout(timeout, &deadline)
        self._q_ready()
        try:
            return self._q_get(block, timed, deadline)
        except (BlockingIOError, TimeoutError):
            raise _Empty() from None

    def get_nowait(self):
        """get_nowait($self, /)
--

        get(block=False)."""
        return self.get(False)

    cdef object _q_get(self, bint blocking, bint timed, double deadline):
        cdef svk_channel *c = self._ch
        cdef uint64_t head, off, rec, plen
        cdef uint32_t n, kind
        cdef uint32_t hdr[6]
        cdef object out
        self._pins += 1
        try:
            self._begin_receive(blocking, timed, deadline, &head, &n, &off)
            rec = svk_chan_record_size(n)
            try:
                if n < SVK_Q_HEAD:
                    raise CorruptError("%s: a message of %d bytes is not an object" % (
                        self._name(), n))
                svk_chan_copy_out(self._ring, self._rsize, off, <char *>hdr, SVK_Q_HEAD)
                kind = hdr[0] ^ SVK_Q_MAGIC
                plen = (<uint64_t *>hdr)[1]
                if kind > 0xff:
                    raise CorruptError("%s: a message that is not an object (0x%08x)" % (
                        self._name(), hdr[0]))
                if kind == SVK_Q_SPILL:
                    if n != SVK_Q_REF:
                        raise CorruptError("%s: a damaged reference to a big object" %
                                           self._name())
                    svk_chan_copy_out(self._ring, self._rsize, off, <char *>hdr, SVK_Q_REF)
                    out = self._q_take_spill(hdr[1], hdr[2], hdr[4] | (<uint64_t>hdr[5] << 32))
                elif (kind == SVK_Q_PICKLE and hdr[1] == 0) or kind == SVK_Q_BYTES:
                    if plen != n - SVK_Q_HEAD:
                        raise CorruptError("%s: a damaged object record" % self._name())
                    out = PyBytes_FromStringAndSize(NULL, plen)
                    self._get(PyBytes_AS_STRING(out), (off + SVK_Q_HEAD) % self._rsize,
                              <uint32_t>plen)
                elif kind == SVK_Q_BYTEARRAY:
                    if plen != n - SVK_Q_HEAD:
                        raise CorruptError("%s: a damaged object record" % self._name())
                    out = PyByteArray_FromStringAndSize(NULL, plen)
                    self._get(PyByteArray_AS_STRING(out), (off + SVK_Q_HEAD) % self._rsize,
                              <uint32_t>plen)
                elif kind == SVK_Q_PICKLE:
                    out = PyByteArray_FromStringAndSize(NULL, n)
                    _q_fresh(PyByteArray_AS_STRING(out), n, False)
                    self._get(PyByteArray_AS_STRING(out), off, n)
                else:
                    raise CorruptError("%s: a message of unknown kind %d" % (self._name(), kind))
            except BaseException as exc:
                if isinstance(exc, CorruptError):
                    # Take the damaged record away: the queue goes on.
                    svk_chan_publish_receive(c, head + rec, 1)
                svk_chan_unlock(&c.recv_lock, &self._snap_recv)
                raise
            svk_chan_publish_receive(c, head + rec, 1)
            svk_chan_unlock(&c.recv_lock, &self._snap_recv)
        finally:
            self._pins -= 1
        if kind == SVK_Q_SPILL:
            return self._q_read_spill(out)
        if kind == SVK_Q_PICKLE:
            if hdr[1] == 0:
                try:
                    return _p_loads(out)
                except Exception as exc:
                    raise _q_unpickle_error(exc)
            return self._q_decode(out, 0)
        return out

    cdef object _q_take_spill(self, uint32_t i, uint32_t gen, uint64_t length):
        """With the receive lock held, at a reference: take slot i for this
        process (RECEIVING) -> (i, gen, shmid, creator, size, length)."""
        cdef svk_qslot *s
        cdef uint64_t w
        cdef uint32_t pid = <uint32_t>getpid()
        if i >= SVK_Q_NSLOTS:
            raise CorruptError("%s: a reference to big-object slot %d (of %d)" % (
                self._name(), i, SVK_Q_NSLOTS))
        s = &self._side.slots[i]
        while True:
            w = svk_q_load(&s.word)
            if svk_q_state(w) == SVK_Q_FREE or svk_q_gen(w) != (gen & 0xffffff):
                raise CorruptError("%s: the segment of a big object is gone" % self._name())
            # Under the receive lock with the reference still at head, a
            # RECEIVING slot belongs to a receiver that died before taking it.
            if svk_q_cas(&s.word, w, svk_q_word(gen, SVK_Q_RECEIVING, pid)):
                break
        return (i, gen, svk_q_load_id(&s.shmid), s.creator, s.size, length)

    cdef object _q_read_spill(self, tuple t):
        """Attach the spill, mark it removed, free its slot, copy it out once
        (its pages mapped in one pass first: a fresh attach faults page by
        page otherwise)."""
        cdef uint32_t i = t[0], pid = <uint32_t>getpid()
        cdef uint64_t gen = t[1], size = t[4], length = t[5], plen
        cdef int shmid = t[2]
        cdef uint32_t creator = t[3]
        cdef svk_qslot *s = &self._side.slots[i]
        cdef uint64_t w = svk_q_word(gen, SVK_Q_RECEIVING, pid)
        cdef char *addr = NULL
        cdef svk_qspill *sp
        cdef uint32_t *h32
        cdef object out = None
        cdef uint32_t kind = 0
        cdef bint ok
        cdef char *dst
        cdef int err
        if not svk_q_seg_matches(shmid, creator, size):
            self._q_free(s, w)
            if svk_chan_removed(self._ch):
                raise RemovedError(EIDRM, "%s was removed" % self._name())
            raise CorruptError("%s: the segment of a big object is gone" % self._name())
        with nogil:
            addr = <char *>sysv.shmat(shmid, NULL, 0)
        if addr == <char *>-1:
            err = errno
            svk_q_seg_remove(shmid, creator, size)
            self._q_free(s, w)
            raise_errno(err, "shmat", WHAT_ID, shmid)
        # From here the kernel frees the segment when this process detaches
        # or dies.
        ok = svk_q_seg_matches(shmid, creator, size)
        if ok:
            sysv.shmctl(shmid, IPC_RMID, NULL)
        self._q_free(s, w)
        try:
            if not ok:
                raise CorruptError("%s: the segment of a big object was replaced" % self._name())
            sp = <svk_qspill *>addr
            if (sp.magic != SVK_Q_SPILL_MAGIC or sp.slot != i or sp.length != length
                    or (sp.gen & 0xffffff) != (gen & 0xffffff) or length < SVK_Q_HEAD
                    or length > size - SVK_Q_SPILL_HEAD):
                raise CorruptError("%s: the segment of a big object is damaged" % self._name())
            h32 = <uint32_t *>(addr + SVK_Q_SPILL_HEAD)
            kind = h32[0] ^ SVK_Q_MAGIC
            plen = (<uint64_t *>h32)[1]
            if kind == SVK_Q_BYTES or kind == SVK_Q_BYTEARRAY:
                if plen != length - SVK_Q_HEAD:
                    raise CorruptError("%s: a damaged object record" % self._name())
                if kind == SVK_Q_BYTES:
                    out = PyBytes_FromStringAndSize(NULL, plen)
                    dst = PyBytes_AS_STRING(out)
                else:
                    out = PyByteArray_FromStringAndSize(NULL, plen)
                    dst = PyByteArray_AS_STRING(out)
                with nogil:
                    _q_fresh(dst, plen, False)
                    svk_copy_out(dst, addr + SVK_Q_SPILL_HEAD + SVK_Q_HEAD, plen, 1)
            elif kind == SVK_Q_PICKLE:
                out = PyByteArray_FromStringAndSize(NULL, length)
                dst = PyByteArray_AS_STRING(out)
                with nogil:
                    _q_fresh(dst, length, False)
                    svk_copy_out(dst, addr + SVK_Q_SPILL_HEAD, length, 1)
            else:
                raise CorruptError("%s: a big object of unknown kind %d" % (self._name(), kind))
        finally:
            sysv.shmdt(addr)
        self._q_reap(False)          # what dead senders and receivers left
        if kind == SVK_Q_PICKLE:
            return self._q_decode(out, 0)
        return out

    cdef object _q_decode(self, bytearray rec, int unused):
        """Unpickle a record copied out (private memory, still checked):
        header, pickle, buffers as slices of the copy."""
        cdef const char *p = PyByteArray_AS_STRING(rec)
        cdef uint64_t n = len(rec)
        cdef uint32_t nbufs
        cdef uint64_t plen, hlen, cur, blen
        cdef uint32_t k
        if n < SVK_Q_HEAD:
            raise CorruptError("%s: a damaged object record" % self._name())
        nbufs = (<const uint32_t *>p)[1]
        plen = (<const uint64_t *>p)[1]
        hlen = SVK_Q_HEAD + 8 * <uint64_t>nbufs
        if hlen > n or plen > n - hlen:
            raise CorruptError("%s: a damaged object record" % self._name())
        mv = memoryview(rec)
        cur = hlen + plen
        buffers = []
        for k in range(nbufs):
            blen = (<const uint64_t *>(p + SVK_Q_HEAD))[k]
            cur = _q_align(cur)
            if cur > n or blen > n - cur:
                raise CorruptError("%s: a damaged object record" % self._name())
            buffers.append(mv[cur:cur + blen])
            cur += blen
        try:
            return _p_loads(mv[hlen:hlen + plen], buffers=buffers)
        except Exception as exc:
            raise _q_unpickle_error(exc)

    # -- sizes -------------------------------------------------------------------------
    def qsize(self):
        """qsize($self, /)
--

        The number of objects waiting."""
        return len(self)

    def empty(self):
        """empty($self, /)
--

        True if no object is waiting."""
        return len(self) == 0

    def full(self):
        """full($self, /)
--

        True if a small object put now would have to wait for room."""
        cdef uint64_t head, tail
        self._q_ready()
        head = svk_chan_load(&self._ch.head)
        tail = svk_chan_load(&self._ch.tail)
        if not svk_chan_span_ok(head, tail, self._rsize):
            self._bad_span(head, tail)
        return tail - head + svk_chan_record_size(64) > self._rsize


def bench_c_two_memcpy(Py_ssize_t size, Py_ssize_t n):
    """The floor of a queue carrying ``size``-byte objects: per iteration, one
    memcpy into a shared buffer and one out of it (all buffers warm).
    Returns seconds per iteration."""
    cdef char *src = <char *>malloc(size if size > 0 else 1)
    cdef char *mid = <char *>malloc(size if size > 0 else 1)
    cdef char *dst = <char *>malloc(size if size > 0 else 1)
    cdef Py_ssize_t i
    cdef double t0, t1
    if src == NULL or mid == NULL or dst == NULL:
        free(src)
        free(mid)
        free(dst)
        raise MemoryError()
    memset(src, 1, size)
    memset(mid, 0, size)
    memset(dst, 0, size)
    with nogil:
        t0 = sysvkit_monotonic()
        for i in range(n):
            memcpy(mid, src, size)
            memcpy(dst, mid, size)
            src[i % size if size else 0] = <char>i
        t1 = sysvkit_monotonic()
    free(src)
    free(mid)
    free(dst)
    return (t1 - t0) / (n if n > 0 else 1)
