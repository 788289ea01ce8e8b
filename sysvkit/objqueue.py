"""Queue: Python objects between processes, with the interface of
``queue.Queue`` and ``multiprocessing.Queue``, over a Channel.

The ring, the pickling and the big-object segments are compiled
(``sysvkit._core.QueueBase``, layout in ``csrc/queue.h``); opening, creating
and checking the segment come from Structure.
"""

from __future__ import annotations

import errno
from typing import Any, Optional, Tuple

from . import _core
from ._args import check_int
from ._core import RemovedError
from ._keys import StrPath
from ._structure import Structure

__all__ = ["Queue"]

DEFAULT_CAPACITY = 1 << 20
_RING_OFFSET: int = _core.CHANNEL_RING_OFFSET
_SIDE: int = _core.QUEUE_SIDE_SIZE
_MIN_CAPACITY = 256
_MAX_CAPACITY = 1 << 46


def _segment_size(capacity: int) -> int:
    return _RING_OFFSET + (capacity + 7) // 8 * 8 + _SIDE


class Queue(Structure, _core.QueueBase):
    """A first-in, first-out queue of Python objects in one System V shared
    memory segment, for any number of producers and consumers in any
    processes and threads: ``put``/``get`` as in ``queue.Queue``.

    Parameters:
        path, proj_id: name the queue through ftok(path, proj_id).
        key: the key itself instead (``IPC_PRIVATE`` always creates).
        create: create the queue if it does not exist.
        exclusive: with ``create``, fail if it already exists.
        capacity: bytes of pickled objects the queue holds in its own
            segment (default 1 MiB), used when creating; opening takes the
            queue's own, and a different capacity is ValueError.  An object
            larger than that travels in a segment of its own, removed once
            it is received, so any object up to the kernel's shmmax fits.
        mode: permission bits of a new queue (default 0o600), also given to
            the segments of big objects.

    Objects travel pickled with protocol 5; out-of-band buffers (numpy
    arrays, PickleBuffer, and large bytes and bytearray objects) are copied
    straight into shared memory, and out again once, into the object the
    receiver gets.  ``put`` raises the pickling error itself (nothing is
    sent); an object that cannot be unpickled makes ``get`` raise
    pickle.UnpicklingError with the original error as its cause (the object
    is taken all the same).  Blocking calls wait for ever by default and
    raise queue.Full / queue.Empty.

    A producer or consumer killed at any instant loses at most the object
    it was putting or getting, never stops the others, and leaves no
    segment behind: the next put or get of a big object, opening the
    queue, or remove() frees what it held.  The processes sharing a queue
    must be in one PID namespace.
    """

    _kind = "queue"
    _kind_code = _core.STRUCT_KIND_QUEUE
    _version = _core.QUEUE_VERSION
    _want_capacity: Optional[int] = None
    _created_now = False

    def __init__(self, path: Optional[StrPath] = None, proj_id: Optional[int] = None, *,
                 key: Optional[int] = None, create: bool = False, exclusive: bool = False,
                 capacity: Optional[int] = None, mode: int = 0o600) -> None:
        if capacity is not None:
            capacity = check_int(capacity, "capacity", _MIN_CAPACITY, _MAX_CAPACITY)
        self._want_capacity = capacity
        size = _segment_size(DEFAULT_CAPACITY if capacity is None else capacity)
        created = self._open_structure(path, proj_id, key, create=create, exclusive=exclusive,
                                       mode=mode, size=size)
        if not created and capacity is not None and capacity != self.capacity:
            have = self.capacity
            self._drop_mapping()
            raise ValueError("capacity=%d differs from the capacity of the existing %s, %d "
                             "bytes: open it without capacity=" % (capacity, self._name(), have))
        if not created:
            self._q_reap(False)

    def _attach_and_settle(self, t: Tuple[int, ...], created: bool, size: int) -> None:
        self._created_now = created
        self._seg_mode = t[6]
        if not created:
            size = 0 if self._want_capacity is None else _segment_size(self._want_capacity)
        super()._attach_and_settle(t, created, size)

    def _init_body(self) -> None:
        capacity = self._want_capacity
        if capacity is None:
            if self._created_now:
                capacity = DEFAULT_CAPACITY
            else:
                capacity = (self._seg_size - _RING_OFFSET - _SIDE) // 8 * 8
        self._ch_format(capacity)
        self._q_format(capacity)

    def _check_body(self) -> None:
        size = self._st_header()[4]
        self._ch_bind(size)
        self._q_bind(size, self._seg_mode)

    # put, get, put_nowait, get_nowait, qsize, empty, full come from
    # _core.QueueBase.

    def remove(self) -> None:
        """Mark the queue's segment for destruction, and remove the segments
        of big objects still in it (they are lost).  Calls blocked on it (in
        any process) raise RemovedError.  RemovedError if it was already
        removed."""
        try:
            removed = bool(self._stat_raw(self._ident)[6] & _core.SHM_DEST)
        except OSError:
            removed = False
        if removed:
            raise RemovedError(errno.EIDRM, "%s was already removed" % self._name())
        handle: Optional[Queue] = self
        if self.closed:
            try:
                handle = type(self).from_id(self._ident)
            except OSError:
                handle = None
        if handle is not None:
            try:
                handle._ch_wake_all()      # marks it removed: new big puts refuse
                handle._q_reap(True)
            finally:
                if handle is not self:
                    handle.close()
        super().remove()
        if not self.closed:
            self._ch_wake_all()

    def _repr_extra(self) -> str:
        if self.closed:
            return ""
        return " capacity=%d" % self.capacity

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self).from_id, (self.id,))

    async def aget(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """get() for asyncio: the same arguments, result and exceptions
        (queue.Empty); the event loop runs while it waits.  Cancelled, it
        takes no object."""
        from . import _aio
        return await _aio.queue_get(self, block, timeout)

    async def aput(self, obj: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        """put() for asyncio: the same arguments and exceptions (queue.Full,
        the pickling error); the event loop runs while it waits for room.
        Cancelled while waiting, it puts nothing."""
        from . import _aio
        await _aio.queue_put(self, obj, block, timeout)

