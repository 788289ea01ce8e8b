"""Channel: a first-in, first-out queue of byte messages in one shared
memory segment.

The ring and its operations are compiled (``sysvkit._core.ChannelBase``,
layout in ``csrc/channel.h``); opening, creating and checking the segment
come from Structure, like every structure in a segment.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from . import _core
from ._args import check_int
from ._keys import StrPath
from ._structure import Structure

__all__ = ["Channel"]

DEFAULT_CAPACITY = 1 << 20
_RING_OFFSET: int = _core.CHANNEL_RING_OFFSET
_MIN_CAPACITY: int = _core.CHANNEL_MIN_RING
# Positions are 64-bit and a record's length 32-bit; the kernel's shmmax
# limits a segment well before this.
_MAX_CAPACITY = 1 << 46


def _segment_size(capacity: int) -> int:
    return _RING_OFFSET + (capacity + 7) // 8 * 8


class Channel(Structure, _core.ChannelBase):
    """A first-in, first-out queue of byte messages in one System V shared
    memory segment, for any number of senders and receivers in any
    processes and threads.

    Parameters:
        path, proj_id: name the channel through ftok(path, proj_id).
        key: the key itself instead (``IPC_PRIVATE`` always creates).
        create: create the channel if it does not exist.
        exclusive: with ``create``, fail if it already exists.
        capacity: bytes of messages it holds (default 1 MiB), used when
            creating; each message takes its length rounded up to 8, plus
            8.  Opening takes the channel's own; a different capacity given
            when opening is ValueError.
        mode: permission bits of a new channel (default 0o600).

    Every message is delivered once, whole and unchanged, in the order the
    sends completed.  A sender or receiver killed at any instant loses at
    most the message it was sending (a receiver killed mid-copy loses
    nothing: the message stays for the next one) and never stops the
    others.  The processes sharing a channel must be in one PID namespace
    (its locks record thread ids).

    Raises TypeError for both or neither of (path, proj_id) and key, or a
    non-int capacity; ValueError for a capacity out of range or different
    from an existing channel's, or a segment that is not a channel;
    FileNotFoundError if it does not exist and ``create`` is false;
    FileExistsError if it exists and ``exclusive`` is true; PermissionError
    if the caller may not use it.
    """

    _kind = "channel"
    _kind_code = _core.STRUCT_KIND_CHANNEL
    _version = _core.CHANNEL_VERSION
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

    def _attach_and_settle(self, t: Tuple[int, ...], created: bool, size: int) -> None:
        self._created_now = created
        if not created:
            # The size matters only to an opener that re-initialises a
            # half-made segment: the segment's own, unless a capacity was given.
            size = 0 if self._want_capacity is None else _segment_size(self._want_capacity)
        super()._attach_and_settle(t, created, size)

    def _init_body(self) -> None:
        capacity = self._want_capacity
        if capacity is None:
            if self._created_now:
                capacity = DEFAULT_CAPACITY
            else:
                # A half-made segment someone else created: as much as it holds.
                capacity = (self._seg_size - _RING_OFFSET) // 8 * 8
        self._ch_format(capacity)

    def _check_body(self) -> None:
        size = self._st_header()[4]
        self._ch_bind(size)

    # send, receive, receive_into, send_many, receive_many, len(),
    # capacity and max_message_size come from _core.ChannelBase.

    def remove(self) -> None:
        """Mark the channel's segment for destruction: the kernel frees it when
        the last process detaches.  Calls blocked on it (in any process)
        raise RemovedError; calls that need not wait still work until this
        handle is closed.  RemovedError if it was already removed."""
        super().remove()
        self._ch_wake_all()

    def _repr_extra(self) -> str:
        if self.closed:
            return ""
        return " capacity=%d" % self.capacity

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self).from_id, (self.id,))

    # -- asyncio twins (the machinery is sysvkit._aio's) ---------------------------------

    async def asend(self, data: Any, *, block: bool = True,
                    timeout: Optional[float] = None) -> None:
        """send() for asyncio: the same arguments, result and exceptions; the
        event loop runs while it waits for room.  Cancelled, it sends nothing."""
        from . import _aio
        return await _aio.chan_send(self, data, block, timeout)

    async def areceive(self, *, block: bool = True, timeout: Optional[float] = None) -> bytes:
        """receive() for asyncio: the same arguments, result and exceptions;
        the event loop runs while it waits.  Cancelled, it takes no message."""
        from . import _aio
        return await _aio.chan_receive(self, block, timeout)  # type: ignore[no-any-return]

    async def areceive_into(self, buffer: Any, *, block: bool = True,
                            timeout: Optional[float] = None) -> int:
        """receive_into() for asyncio (see areceive)."""
        from . import _aio
        return await _aio.chan_receive(self, block, timeout,  # type: ignore[no-any-return]
                                       "receive_into", buffer)

    async def asend_many(self, messages: Any, *, block: bool = True,
                         timeout: Optional[float] = None) -> int:
        """send_many() for asyncio: sends in order and returns how many were
        sent; timed out or cancelled after some were sent, it returns that
        count (with none sent: TimeoutError, or the cancellation)."""
        from . import _aio
        return await _aio.chan_send_many(self, messages, block, timeout)

    async def areceive_many(self, max_messages: int, *, block: bool = True,
                            timeout: Optional[float] = None) -> List[bytes]:
        """receive_many() for asyncio: waits for at least one message, then
        takes those there, up to max_messages.  Cancelled, it takes none."""
        from . import _aio
        return await _aio.chan_receive(self, block, timeout,  # type: ignore[no-any-return]
                                       "receive_many", max_messages)
