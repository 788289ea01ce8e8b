"""Mutex: a robust, process-shared futex mutex in a System V segment."""

from __future__ import annotations

import mmap
from typing import Any, Optional, Tuple

from . import _core
from ._keys import StrPath
from ._structure import Structure

__all__ = ["Mutex"]


class Mutex(Structure, _core.MutexBase):  # type: ignore[misc]
    """A mutex shared by processes, as fast as ``multiprocessing.Lock`` and
    released when its holder dies.

    ``Mutex(path, proj_id)`` (or ``key=``) opens the mutex named so, or
    creates it unlocked if there is none: processes that race to create it
    end up with one mutex.  ``Mutex(key=sysvkit.IPC_PRIVATE)`` makes a new
    one, shared through its id, by pickling or by ``fork``.

    It lives in a one-page shared memory segment (``ipcs -m`` lists it) as
    a robust, process-shared pthread mutex: taking a free mutex is one
    atomic instruction, no system call; a blocked ``acquire`` sleeps in the
    kernel on the mutex's futex and lets signal handlers run (Ctrl-C).

    The interface is ``threading.Lock``'s: ``acquire(blocking=True,
    timeout=-1)``, ``release()``, ``locked()``, ``with m:``.  It is not
    reentrant.  ``release()`` by a thread that does not hold it raises
    ``RuntimeError``; a forked child does not hold its parent's hold.

    A thread or process that dies holding it (killed, ``os._exit``, an
    uncaught exception, the end of the script) releases it: the next
    ``acquire()`` returns ``True`` at once with ``owner_died`` set for
    that hold, a sign that the data it guards may be half-updated.  While
    this process holds it, its segment stays attached: ``close()`` raises
    ``RuntimeError`` and neither garbage collection nor interpreter shutdown
    detach it (the kernel finds a dead holder's mutexes through that
    mapping).

    Limits: the holder is recorded as a thread id, so the processes sharing
    a Mutex must be in one PID namespace (containers sharing an IPC
    namespace but not a PID namespace must not share one).  The kernel
    releases at most 2048 robust mutexes held by one dying thread.
    """

    _kind = "mutex"
    _kind_code = _core.STRUCT_KIND_MUTEX
    _version = _core.MUTEX_VERSION

    def __init__(self, path: Optional[StrPath] = None, proj_id: Optional[int] = None, *,
                 key: Optional[int] = None, mode: int = 0o600) -> None:
        self._open_structure(path, proj_id, key, create=True, exclusive=False, mode=mode,
                             size=mmap.PAGESIZE)

    def close(self) -> None:
        """Detach this process from the mutex's segment; the mutex stays for
        other processes (see remove()).  Idempotent.  RuntimeError while a
        thread of this process holds it."""
        if self._seg_pins:
            self._drop_stale_hold()
        if self._seg_pins:
            raise RuntimeError("close() of a %s this process holds: release() it first"
                               % self._name())
        super().close()

    def __repr__(self) -> str:
        if self.closed:
            return "<sysvkit.Mutex id=%d closed>" % self._ident
        return "<sysvkit.Mutex key=0x%08x id=%d %s>" % (
            self._key & 0xFFFFFFFF, self._ident, "locked" if self.locked() else "unlocked")

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self).from_id, (self._ident,))

    # -- asyncio twins (the machinery is sysvkit._aio's) ---------------------------------

    async def aacquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """acquire() for asyncio: the same arguments, result and exceptions;
        the event loop runs while it waits, and the loop's thread holds the
        mutex once it returns True (release it there).  Tasks, not threads,
        take turns: a second task waits, and a task that already holds it
        raises RuntimeError.  Cancelled, it does not hold the mutex."""
        from . import _aio
        return await _aio.mutex_acquire(self, blocking, timeout)

    async def __aenter__(self) -> "Mutex":
        """``async with m:`` acquires (waiting for ever) and releases."""
        await self.aacquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        from . import _aio
        _aio.mutex_released(self)
        self.release()
