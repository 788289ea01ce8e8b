"""RWLock: many readers or one writer, across processes, on a semaphore set.

The acquires and releases are C methods of the compiled base
``_core.RWLockBase`` (csrc/_rwlock.pxi, which also describes the three
semaphores and why a killed process always gives back what it held);
naming, opening, stat, remove, close, pickling and repr come from IPCObject,
and race-free creation from the semaphore sets' handshake (semaphores.py).
"""

from __future__ import annotations

from typing import Optional, Tuple

from . import _core
from ._base import IPCObject
from ._core import RemovedError
from ._keys import StrPath
from ._records import SemaphoreSetInfo, sem_info
from .semaphores import _open_set, _sem_rmid, _sem_stat_raw

__all__ = ["RWLock"]

# Members of the set: readers, writer, waiting writers.
_COUNT = 3


def _check_count(nsems: int, name: str) -> None:
    if nsems < _COUNT:
        raise ValueError("%s is a set of %d semaphores; an RWLock needs %d"
                         % (name, nsems, _COUNT))


class RWLock(_core.RWLockBase, IPCObject):
    """A readers-writer lock across processes: many readers or one writer.

    ``RWLock(path, proj_id, *, key=None, mode=0o600)`` opens the lock, or
    creates it free if missing, race-free (mode: permission bits of a new
    lock).  ValueError if the key names a semaphore set of fewer than three
    members (not an RWLock).

    acquire_read() / release_read(), acquire_write() / release_write(), and
    ``with rw.read():`` / ``with rw.write():`` (both take ``timeout=`` and
    raise TimeoutError when it expires).  A writer that waits holds back the
    readers that arrive after it, so a stream of readers cannot starve it.

    Every hold is taken with SEM_UNDO in one atomic semop: a process that
    dies holding it (reading or writing, even by SIGKILL), or dies while it
    waits to write, gives back what it had.  Holds belong to the process
    that took them (any of its threads may release them); releasing what
    this process does not hold raises RuntimeError, and a forked child holds
    nothing of its parent's.  It is not reentrant: while a writer waits, a
    second acquire_read() waits behind it like any other reader, so a thread
    that already reads and asks again (or asks for the write lock) waits for
    itself; give the first hold back, or pass a timeout.

    ``with RWLock(...) as rw:`` closes the handle at the end (as other
    objects do); close() lets go of the handle and remove() removes the lock
    from the kernel.
    """

    _kind = "rwlock"
    _stat_raw = staticmethod(_sem_stat_raw)
    _rmid = staticmethod(_sem_rmid)
    _record = staticmethod(sem_info)

    def __init__(self, path: Optional[StrPath] = None, proj_id: Optional[int] = None, *,
                 key: Optional[int] = None, mode: int = 0o600) -> None:
        k, ident, nsems = _open_set(self, path, proj_id, key, create=True, exclusive=False,
                                    mode=mode, count=_COUNT, initial=0, need_count="")
        self._set_ids(k, ident)
        _check_count(nsems, self._name())
        self._track()

    def _init_from_stat(self, t: Tuple[int, ...]) -> None:
        super()._init_from_stat(t)
        _check_count(t[7], self._name())
        self._track()

    def remove(self) -> None:
        """Remove the lock from the kernel (IPC_RMID); holds end with it.

        RemovedError if it was already removed.
        """
        try:
            IPCObject.remove(self)
        except RemovedError:
            self._forget()
            raise
        self._forget()

    __reduce__ = IPCObject.__reduce__

    def stat(self) -> SemaphoreSetInfo:
        """The lock's kernel record (SemaphoreSetInfo).  RemovedError once removed."""
        return IPCObject.stat(self)  # type: ignore[no-any-return]

    def _repr_extra(self) -> str:
        reads, writes = self._held
        if writes:
            return " held for writing"
        if reads:
            return " held for reading (%d)" % reads
        return ""

    # -- asyncio twins (the machinery is sysvkit._aio's) ---------------------------------
    # ``async with rw.read():`` and ``async with rw.write():`` come with the
    # holds that read() and write() return.

    async def aacquire_read(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """acquire_read() for asyncio: the same arguments, result and
        exceptions; the event loop runs while it waits.  Cancelled, it holds nothing."""
        from . import _aio
        return await _aio.rw_acquire_read(self, blocking, timeout)

    async def aacquire_write(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """acquire_write() for asyncio: the same arguments, result and
        exceptions; while it waits, readers arriving later wait behind it.
        Cancelled, it holds nothing and leaves the writers' queue."""
        from . import _aio
        return await _aio.rw_acquire_write(self, blocking, timeout)
