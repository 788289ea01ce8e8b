"""asyncio twins of sysvkit's blocking calls: the machinery behind
``await q.areceive()``, ``await sem.aacquire()``, ``async with mutex:``...

The classes gain small coroutine methods that call the functions here; there
is no second set of classes.  Each twin takes the blocking call's arguments
and gives its results and exceptions:

1. It first makes the call without blocking, on the event loop's thread (a
   system call with IPC_NOWAIT, or a trylock): when the call would not have
   waited, that is all, and no thread is involved.
2. Otherwise a worker thread waits in the kernel (``_core._AioRequest``,
   csrc/_aio.pxi) until the operation could proceed, consuming nothing: a
   msgrcv of at most 0 bytes (a longer message stays in the queue), one
   semop of the operations and their inverses (no value changes), a futex
   wait on a Mutex's lock word.  Then the loop's thread makes the real call,
   again without blocking, and waits again if someone else was faster.
   A wait for zero (``await_zero``, ``Event.await_set``) is its own probe:
   the kernel grants it at the instant the value is 0, so its success is
   the result.  An RWLock writer joins the writers' queue first (readers
   arriving later wait), as the blocking call does, and leaves it if it
   gives up.  Sending a message cannot be probed: there the worker sends.
3. Cancelling the coroutine retargets the worker's timer so that its signal
   ends the system call (EINTR) at once, waits (briefly) for the worker to
   let go, and raises CancelledError.  A wait that had already taken
   something when the cancellation reached it gives it back: a 0-byte
   message (the only kind a probe takes) is sent back to the queue, a
   Mutex wake-up is passed on to the next sleeper.  A send (or a semop too
   long to probe) that was complete is not undone: the coroutine returns
   normally, as if the cancellation had come a moment later.

Workers are daemon threads in one pool per process, started on demand and
reused; one that has had nothing to do for ``IDLE_SECONDS`` ends.  At most
``MAX_THREADS`` exist: beyond that, waits share the workers in time slices
of ``SLICE_SECONDS`` (a running wait is cut short when others queue up), so
any number of coroutines can wait at once.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import operator
import os
import signal
import threading
import time
import weakref
from typing import Any, Callable, Deque, List, Optional, Sequence, Set, Tuple

from . import _core
from ._args import check_timeout

__all__: List[str] = []

MAX_THREADS = 32
IDLE_SECONDS = 1.0
SLICE_SECONDS = 0.02

_READY: int = _core.AIO_READY
_DONE: int = _core.AIO_DONE
_TIMEDOUT: int = _core.AIO_TIMEDOUT
_CANCELLED: int = _core.AIO_CANCELLED
_SLICE: int = _core.AIO_SLICE
_ERROR: int = _core.AIO_ERROR

_FOREVER = 1e300            # a slice that never ends
_RAISE = object()           # from a "late" hook: let the CancelledError through

Request = Any               # _core._AioRequest

# -- the pool of waiting threads -------------------------------------------------


def _block_signals() -> None:
    """Process signals go to other threads (the main thread runs handlers);
    only the signal of the waits' timers reaches a worker."""
    sigs = {int(s) for s in signal.valid_signals()}
    try:
        sigs.discard(int(_core._aio_timer_signal()))
    except OSError:
        pass
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    except (OSError, ValueError):
        pass


class _Pool:
    """Daemon threads that run requests; see the module's docstring."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: Deque[Request] = collections.deque()   # waiting for a worker
        self._running: Set[Request] = set()                  # a worker has them
        self._threads = 0
        self._idle = 0

    def submit(self, req: Request) -> None:
        start = False
        with self._cond:
            self._queue.append(req)
            if self._idle >= len(self._queue):
                self._cond.notify()
            elif self._threads < MAX_THREADS:
                self._threads += 1
                start = True
            else:
                self._share()
        if start:
            try:
                threading.Thread(target=self._work, name="sysvkit-aio", daemon=True).start()
            except RuntimeError:        # no more threads: share those there are
                with self._cond:
                    self._threads -= 1
                    if self._threads == 0:
                        self._queue.remove(req)
                        raise
                    self._share()

    def withdraw(self, req: Request) -> bool:
        """Take back a request no worker has started: True if it was queued."""
        with self._cond:
            try:
                self._queue.remove(req)
            except ValueError:
                return False
            return True

    def _share(self) -> None:
        """More waits than workers: every running wait ends its slice soon."""
        end = time.monotonic() + SLICE_SECONDS
        for r in self._running:
            if r.slice_end > end:
                r.preempt(end)

    def _work(self) -> None:
        _block_signals()
        cond = self._cond
        while True:
            with cond:
                give_up = time.monotonic() + IDLE_SECONDS
                while not self._queue:
                    left = give_up - time.monotonic()
                    if left <= 0:
                        self._threads -= 1
                        return
                    self._idle += 1
                    try:
                        cond.wait(left)
                    finally:
                        self._idle -= 1
                req = self._queue.popleft()
                req.begin_slice(time.monotonic() + SLICE_SECONDS if self._queue else _FOREVER)
                self._running.add(req)
            try:
                outcome = req.run()
            except BaseException:       # MemoryError and the like: let the caller retry
                outcome = _ERROR
            if outcome != _SLICE and not req.pushed:
                _deliver(req, outcome)  # first: the loop wakes during the rest
            with cond:
                self._running.discard(req)
                if outcome == _SLICE:
                    self._queue.append(req)

    def threads(self) -> int:
        with self._cond:
            return self._threads


_pool_lock = threading.Lock()
_the_pool: Optional[_Pool] = None


def _pool() -> _Pool:
    global _the_pool
    pool = _the_pool
    if pool is None:
        with _pool_lock:
            if _the_pool is None:
                _the_pool = _Pool()
            pool = _the_pool
    return pool


def _forget_pool() -> None:
    """In a forked child: none of the parent's workers exist here."""
    global _the_pool, _pool_lock
    _the_pool = None
    _inboxes.clear()
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


# -- from the worker back to the loop ----------------------------------------------------


def _deliver(req: Request, outcome: int) -> None:
    """(Worker thread) hand the outcome to the request's event loop."""
    try:
        req.loop.call_soon_threadsafe(_settle, req, outcome)
    except RuntimeError:        # the loop is closed: nobody will look
        req.outcome = outcome
        if req.late is not None:
            try:
                req.late(outcome)
            except Exception:
                pass


def _settle(req: Request, outcome: int) -> None:
    req.outcome = outcome
    fut = req.future
    if fut is not None and not fut.done():
        fut.set_result(outcome)


# Each event loop's inbox (see _core._AioInbox), watched with add_reader;
# None for a loop that cannot watch a file descriptor.
_inboxes: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _inbox(loop: Any) -> Any:
    try:
        return _inboxes[loop]
    except KeyError:
        pass
    inbox: Any = _core._AioInbox()
    try:
        loop.add_reader(inbox.fileno(), _drain, inbox)
    except (NotImplementedError, AttributeError):
        inbox = None
    _inboxes[loop] = inbox
    return inbox


def _drain(inbox: Any) -> None:
    for req, outcome in inbox.drain():
        _settle(req, outcome)


async def _wait(req: Request, late: Optional[Callable[[int], Any]] = None) -> int:
    """Run ``req`` in the pool and return its outcome.

    Cancelled: end the wait, wait until the worker has let go, then raise
    CancelledError -- unless ``late(outcome)``, called when the wait ended
    other than by the cancellation, returns something other than _RAISE:
    then that is the outcome (the operation was done; report it).
    """
    loop = asyncio.get_running_loop()
    req.loop = loop
    req.late = late
    inbox = _inbox(loop)
    if inbox is not None:
        req.use_inbox(inbox)
    req.future = fut = loop.create_future()
    _pool().submit(req)
    try:
        return await fut     # type: ignore[no-any-return]
    except asyncio.CancelledError:
        req.cancel()
        if req.outcome is None and _pool().withdraw(req):
            req.outcome = _CANCELLED        # no worker had it: nothing to wait for
        outcome = await _let_go(req)
        if outcome != _CANCELLED and late is not None:
            req.late = None
            if late(outcome) is not _RAISE:
                return outcome
        raise
    except BaseException:
        req.cancel()            # KeyboardInterrupt & co.: do not wait on the loop
        raise


async def _let_go(req: Request) -> int:
    """The outcome of a cancelled request, once its worker has let go (a
    matter of a millisecond: its system call fails with EINTR)."""
    while req.outcome is None:
        req.future = fut = req.loop.create_future()
        try:
            await fut
        except asyncio.CancelledError:
            pass                # cancelled again: the first one will be raised
    return req.outcome       # type: ignore[no-any-return]


def _deadline(t: Optional[float]) -> float:
    """An absolute deadline for a timeout in seconds; -1.0 for ever."""
    if t is None or t < 0 or t > 1e9:
        return -1.0
    return time.monotonic() + t


# -- MessageQueue ------------------------------------------------------------------------


async def msg_send(q: Any, data: Any, type: int, block: bool, timeout: Any) -> None:
    try:
        return q.send(data, type, block=False, timeout=timeout)    # type: ignore[no-any-return]
    except BlockingIOError:
        if not block:
            raise
    t = check_timeout(timeout)
    if t == 0:
        return q.send(data, type, timeout=0)     # type: ignore[no-any-return]
    deadline = _deadline(t)
    n = memoryview(data).nbytes
    qbytes = q.max_bytes
    if n > qbytes:
        raise ValueError("message of %d bytes can never fit in %s: its max_bytes is %d"
                         % (n, q._name(), qbytes))
    mtype = operator.index(type)
    while True:
        req = _core._AioRequest.msg_send(q, q._id, data, mtype, deadline)
        outcome = await _wait(req, lambda o: None if o == _DONE else _RAISE)
        if outcome == _DONE:
            return None
        if outcome == _TIMEDOUT:
            return q.send(data, type, timeout=0)     # type: ignore[no-any-return]
        try:
            return q.send(data, type, block=False)    # type: ignore[no-any-return]
        except BlockingIOError:
            _core._aio_error(q, req.err, "msgsnd")


async def msg_receive(q: Any, type: int, block: bool, timeout: Any, except_type: bool,
                      max_size: Optional[int], truncate: bool) -> Tuple[bytes, int]:
    kw = {"except_type": except_type, "max_size": max_size, "truncate": truncate}
    try:
        return q.receive(type, block=False, timeout=timeout, **kw)    # type: ignore[no-any-return]
    except BlockingIOError:
        if not block:
            raise
    t = check_timeout(timeout)
    if t == 0:
        return q.receive(type, timeout=0, **kw)    # type: ignore[no-any-return]
    deadline = _deadline(t)
    mtype = operator.index(type)
    flags = _core.MSG_EXCEPT if except_type else 0
    ident = q._id

    def late(outcome: int) -> Any:
        # A 0-byte message taken as the cancellation came: send it back (to
        # the end of the queue); if the queue is full, report it received.
        if outcome != _DONE:
            return _RAISE
        try:
            _core.msgsnd(ident, b"", req.got_type, _core.IPC_NOWAIT)
        except OSError:
            return None
        return _RAISE

    while True:
        req = _core._AioRequest.msg_probe(q, ident, mtype, flags, deadline)
        outcome = await _wait(req, late)
        if outcome == _DONE:
            return (b"", req.got_type)
        if outcome == _TIMEDOUT:
            return q.receive(type, timeout=0, **kw)    # type: ignore[no-any-return]
        try:
            return q.receive(type, block=False, timeout=timeout, **kw)   # type: ignore[no-any-return]
        except BlockingIOError:
            if outcome == _ERROR:
                _core._aio_error(q, req.err, "msgrcv")


# -- semaphores --------------------------------------------------------------------------


async def _sem_wait(sem: Any, ops: Sequence[Tuple[int, int, int]], deadline: float,
                    attempt: Callable[[], Any], waited_is_done: bool = False) -> Any:
    """Probe ``ops`` until attempt() (the real call, without blocking)
    returns something true; at the deadline, attempt()'s last answer.
    ``waited_is_done``: the probe is the whole operation (a wait for zero,
    which the kernel grants at the instant the value is 0, even if it
    changes again before anyone looks): its success is True."""
    while True:
        req = _core._AioRequest.sem(sem, sem._id, ops, True, deadline)
        outcome = await _wait(req)
        if outcome == _READY and waited_is_done:
            return True
        r = attempt()
        if r or outcome == _TIMEDOUT:
            return r
        if outcome == _ERROR:
            _core._aio_error(sem, req.err, "semop")


async def sem_acquire(sem: Any, blocking: bool, timeout: Any) -> bool:
    """Semaphore.aacquire and Lock.aacquire (their own timeout defaults)."""
    if not blocking:
        return sem.acquire(blocking, timeout)  # type: ignore[no-any-return]
    t = _core._aio_timeout(timeout, True)
    if sem.acquire(False):
        return True
    if t == 0:
        return False
    i = sem._member
    return await _sem_wait(sem, [(i, -1, 0), (i, 1, 0)], _deadline(t),  # type: ignore[no-any-return]
                           lambda: sem.acquire(False))


async def sem_wait_zero(sem: Any, timeout: Any) -> bool:
    t = _core._aio_timeout(timeout, False)
    if sem.wait_zero(0):
        return True
    if t == 0:
        return False
    return await _sem_wait(sem, [(sem._member, 0, 0)], _deadline(t),  # type: ignore[no-any-return]
                           lambda: sem.wait_zero(0), True)


async def sem_op(s: Any, ops: Sequence[Tuple[int, int]], block: bool, timeout: Any,
                 undo: Optional[bool]) -> None:
    try:
        return s.op(ops, block=False, timeout=timeout, undo=undo)  # type: ignore[no-any-return]
    except BlockingIOError:
        if not block:
            raise
    t = check_timeout(timeout)
    if t == 0:
        return s.op(ops, timeout=0, undo=undo)  # type: ignore[no-any-return]
    deadline = _deadline(t)
    pairs = [(s._index(i), operator.index(d)) for i, d in ops]     # checked by op() above
    probe = [(i, d, 0) for i, d in pairs] + [(i, -d, 0) for i, d in reversed(pairs) if d]

    def attempt() -> bool:
        try:
            s.op(ops, block=False, undo=undo)
        except BlockingIOError:
            return False
        return True

    if len(probe) <= s._semopm:
        if not await _sem_wait(s, probe, deadline, attempt):
            s.op(ops, timeout=0, undo=undo)     # timed out: the blocking call's TimeoutError
        return None
    # Too many operations to probe with their inverses: the worker does them.
    flags = _core.SEM_UNDO if (s.undo if undo is None else undo) else 0
    do = [(i, d, flags) for i, d in pairs]
    while True:
        req = _core._AioRequest.sem(s, s._id, do, False, deadline)
        outcome = await _wait(req, lambda o: None if o == _DONE else _RAISE)
        if outcome == _DONE:
            return None
        if outcome == _TIMEDOUT:
            return s.op(ops, timeout=0, undo=undo)  # type: ignore[no-any-return]
        if not attempt():
            _core._aio_error(s, req.err, "semop")
        return None


# -- Mutex -------------------------------------------------------------------------------

# The task that took each Mutex with aacquire, while this thread holds it:
# tasks share the loop's thread, so the thread-level "already holds" check
# of the blocking acquire cannot tell them apart.
_holders: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _took(m: Any) -> bool:
    _holders[m] = asyncio.current_task()
    return True


async def mutex_acquire(m: Any, blocking: bool, timeout: Any) -> bool:
    if not blocking:
        return m.acquire(blocking, timeout)  # type: ignore[no-any-return]
    t = _core._aio_timeout(timeout, True)
    if m.acquire(False):
        return _took(m)
    if (_core._aio_mutex_held_here(m) and _holders.get(m) is asyncio.current_task()):
        raise RuntimeError("this task already holds the mutex (it is not reentrant)")
    if t == 0:
        return False
    deadline = _deadline(t)

    def late(outcome: int) -> Any:
        if outcome == _READY:   # the wake-up may have been meant for the next sleeper
            _core._aio_mutex_pass_on(m)
        return _RAISE

    while True:
        req = _core._AioRequest.mutex_probe(m, deadline)
        outcome = await _wait(req, late)
        if _core._aio_mutex_take(m, True):
            return _took(m)
        if outcome == _TIMEDOUT:
            return False
        if outcome == _ERROR:
            raise OSError(req.err, "%s (timer_create, %s)" % (os.strerror(req.err), m._name()))


def mutex_released(m: Any) -> None:
    _holders.pop(m, None)


def threads() -> int:
    """How many worker threads exist now (for tests and the bench)."""
    pool = _the_pool
    return 0 if pool is None else pool.threads()


# -- RWLock and Event ----------------------------------------------------------------------------
_RW_READERS, _RW_WRITER, _RW_WAITING = 0, 1, 2


async def rw_acquire_read(rw: Any, blocking: bool, timeout: Any) -> bool:
    if not blocking:
        return rw.acquire_read(blocking, timeout)  # type: ignore[no-any-return]
    t = _core._aio_timeout(timeout, True)
    if rw.acquire_read(False):
        return True
    if t == 0:
        return False
    # No writer holds it, and none waits for it.
    return await _sem_wait(rw, [(_RW_WRITER, 0, 0), (_RW_WAITING, 0, 0)],  # type: ignore[no-any-return]
                           _deadline(t), lambda: rw.acquire_read(False))


async def rw_acquire_write(rw: Any, blocking: bool, timeout: Any) -> bool:
    if not blocking:
        return rw.acquire_write(blocking, timeout)  # type: ignore[no-any-return]
    t = _core._aio_timeout(timeout, True)
    if rw.acquire_write(False):
        return True
    if t == 0:
        return False
    _core._aio_rw_queue(rw)         # readers arriving from now on wait
    taken = False
    try:
        taken = _core._aio_rw_take_queued(rw)
        if not taken:
            # Nobody reads, nobody writes.
            taken = await _sem_wait(rw, [(_RW_READERS, 0, 0), (_RW_WRITER, 0, 0)],
                                    _deadline(t), lambda: _core._aio_rw_take_queued(rw))
        return taken
    finally:
        if not taken:
            _core._aio_rw_unqueue(rw)


async def rw_hold_enter(rw: Any, write: bool, t: float) -> Any:
    """``async with rw.read()`` / ``rw.write()``: as ``with`` (TimeoutError)."""
    timeout = None if t < 0 else t
    got = await (rw_acquire_write if write else rw_acquire_read)(rw, True, timeout)
    if not got:
        raise TimeoutError(errno.ETIMEDOUT, "timed out waiting to %s %s"
                           % ("write" if write else "read", rw._name()))
    return rw


async def rw_hold_exit(rw: Any, write: bool) -> None:
    if write:
        rw.release_write()
    else:
        rw.release_read()


async def event_wait(ev: Any, timeout: Any) -> bool:
    """Event.await_set: Event.wait's twin."""
    t = _core._aio_timeout(timeout, False)
    if ev.wait(0):
        return True
    if t == 0:
        return False
    return await _sem_wait(ev, [(0, 0, 0)], _deadline(t),  # type: ignore[no-any-return]
                           lambda: ev.wait(0), True)


# -- Channel -----------------------------------------------------------------------------------


async def _chan_wait(ch: Any, for_data: bool, nbytes: int, deadline: float,
                     attempt: Callable[[], Any], final: Callable[[], Any]) -> Any:
    """Probe until attempt() (the call without blocking) does not raise
    BlockingIOError; at the deadline, final() (the call with timeout=0)."""
    while True:
        req = _core._AioRequest.chan_probe(ch, for_data, nbytes, deadline)
        outcome = await _wait(req)
        if outcome == _TIMEDOUT:
            return final()
        try:
            return attempt()
        except BlockingIOError:
            if outcome == _ERROR:
                _core._aio_chan_check_removed(ch)


async def chan_receive(ch: Any, block: bool, timeout: Any, call: str = "receive",
                       *args: Any) -> Any:
    """Channel.areceive, areceive_into(buffer), areceive_many(max_messages)."""
    fn = getattr(ch, call)
    try:
        return fn(*args, block=False, timeout=timeout)
    except BlockingIOError:
        if not block:
            raise
    t = check_timeout(timeout)
    if t == 0:
        return fn(*args, timeout=0)
    return await _chan_wait(ch, True, 0, _deadline(t), lambda: fn(*args, block=False),
                            lambda: fn(*args, timeout=0))


async def chan_send(ch: Any, data: Any, block: bool, timeout: Any) -> None:
    try:
        return ch.send(data, block=False, timeout=timeout)    # type: ignore[no-any-return]
    except BlockingIOError:
        if not block:
            raise
    t = check_timeout(timeout)
    if t == 0:
        return ch.send(data, timeout=0)     # type: ignore[no-any-return]
    n = memoryview(data).nbytes
    return await _chan_wait(ch, False, n, _deadline(t),  # type: ignore[no-any-return]
                            lambda: ch.send(data, block=False), lambda: ch.send(data, timeout=0))


async def chan_send_many(ch: Any, messages: Any, block: bool, timeout: Any) -> int:
    """Channel.asend_many: sends in order; waits for room as asend does.
    Timed out or cancelled after some were sent, it returns how many."""
    items = list(messages)
    try:
        total = ch.send_many(items, block=False, timeout=timeout)
    except BlockingIOError:
        if not block:
            raise
        total = 0
    if total == len(items) or not block:
        return total  # type: ignore[no-any-return]
    t = check_timeout(timeout)
    deadline = _deadline(t)
    rest = items[total:]
    while rest:
        if t == 0 or (deadline >= 0 and time.monotonic() >= deadline):
            try:
                return total + ch.send_many(rest, timeout=0)  # type: ignore[no-any-return]
            except TimeoutError:
                if total:
                    return total  # type: ignore[no-any-return]
                raise
        req = _core._AioRequest.chan_probe(ch, False, memoryview(rest[0]).nbytes, deadline)
        try:
            outcome = await _wait(req)
        except asyncio.CancelledError:
            if total:
                return total  # type: ignore[no-any-return]
            raise
        try:
            n = ch.send_many(rest, block=False)
        except BlockingIOError:
            if outcome == _ERROR:
                _core._aio_chan_check_removed(ch)
            continue
        total += n
        rest = rest[n:]
    return total  # type: ignore[no-any-return]


async def _queue_wait(q: Any, for_data: bool, nbytes: int, deadline: float,
                      attempt: Callable[[], Any], nothing: "type[BaseException]") -> Any:
    """Probe the queue's channel (for an object, or for ``nbytes`` of room)
    until attempt() (the call without blocking) stops raising ``nothing``
    (queue.Empty or queue.Full); at the deadline, attempt() once more, whose
    exception is the result.  A probe that found room too small for the
    whole record (nbytes is a lower bound) is retried after a millisecond."""
    while True:
        req = _core._AioRequest.chan_probe(q, for_data, nbytes, deadline)
        outcome = await _wait(req)
        if outcome == _TIMEDOUT:
            return attempt()
        try:
            return attempt()
        except nothing:
            if outcome == _ERROR:
                _core._aio_chan_check_removed(q)
            elif not for_data:
                await asyncio.sleep(0.001)


async def queue_get(q: Any, block: bool, timeout: Any) -> Any:
    """Queue.aget: get() for asyncio."""
    import queue as stdlib_queue
    t = check_timeout(timeout) if block else None
    try:
        return q.get(False)
    except stdlib_queue.Empty:
        if not block:
            raise
    if t == 0:
        return q.get(False)
    return await _queue_wait(q, True, 0, _deadline(t), lambda: q.get(False), stdlib_queue.Empty)


async def queue_put(q: Any, obj: Any, block: bool, timeout: Any) -> None:
    """Queue.aput: put() for asyncio (a full queue is tried again as room
    comes; the object is pickled again on each try)."""
    import pickle
    import queue as stdlib_queue
    t = check_timeout(timeout) if block else None
    try:
        return q.put(obj, False)  # type: ignore[no-any-return]
    except stdlib_queue.Full:
        if not block:
            raise
    if t == 0:
        return q.put(obj, False)  # type: ignore[no-any-return]
    # The room to wait for: at least the in-band pickle (buffers go beside it).
    nbytes = len(pickle.dumps(obj, protocol=5, buffer_callback=lambda b: None)) + 16
    return await _queue_wait(q, False, nbytes, _deadline(t),  # type: ignore[no-any-return]
                             lambda: q.put(obj, False), stdlib_queue.Full)
