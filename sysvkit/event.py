"""Event: threading.Event across processes, on one semaphore.

Value 1 is clear and 0 set; wait() waits for zero, which the kernel grants
to every waiting process at the instant the value becomes 0.  The calls are
C methods of the compiled base ``_core.EventBase`` (csrc/_rwlock.pxi);
naming, opening, stat, remove, close, pickling and repr come from
IPCObject, and race-free creation (clear before any other process can see
it) from the semaphore sets' handshake (semaphores.py).
"""

from __future__ import annotations

from typing import Optional

from . import _core
from ._base import IPCObject
from ._keys import StrPath
from ._records import SemaphoreSetInfo, sem_info
from .semaphores import _open_set, _sem_rmid, _sem_stat_raw

__all__ = ["Event"]


class Event(_core.EventBase, IPCObject):
    """threading.Event across processes.

    ``Event(path, proj_id, *, key=None, mode=0o600)`` opens the event, or
    creates it clear if missing, race-free: no process sees a new event
    before it is clear (mode: permission bits of a new event).

    set(), clear(), is_set() and wait(timeout=None) -> bool as
    threading.Event: every process waiting when set() is called wakes, even
    if clear() follows at once.  The flag stays as it was left when the
    process that set or cleared it exits.

    ``with Event(...) as ev:`` closes the handle at the end; close() lets go
    of the handle and remove() removes the event from the kernel.  A wait
    on an event another process removes raises RemovedError.
    """

    _kind = "event"
    _stat_raw = staticmethod(_sem_stat_raw)
    _rmid = staticmethod(_sem_rmid)
    _record = staticmethod(sem_info)

    def __init__(self, path: Optional[StrPath] = None, proj_id: Optional[int] = None, *,
                 key: Optional[int] = None, mode: int = 0o600) -> None:
        k, ident, _ = _open_set(self, path, proj_id, key, create=True, exclusive=False,
                                mode=mode, count=1, initial=1, need_count="")
        self._set_ids(k, ident)

    __reduce__ = IPCObject.__reduce__

    def stat(self) -> SemaphoreSetInfo:
        """The event's kernel record (SemaphoreSetInfo).  RemovedError once removed."""
        return IPCObject.stat(self)  # type: ignore[no-any-return]

    # -- asyncio twins (the machinery is sysvkit._aio's) ---------------------------------

    async def await_set(self, timeout: Optional[float] = None) -> bool:
        """wait() for asyncio (``await`` is a keyword): the same arguments,
        result and exceptions; the event loop runs while it waits."""
        from . import _aio
        return await _aio.event_wait(self, timeout)
