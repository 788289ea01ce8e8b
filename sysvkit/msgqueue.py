"""MessageQueue: a System V message queue.

send() and receive() are compiled (``sysvkit._core.MessageQueueBase``):
a 16-byte send+receive pair costs little more than the two system calls
made from C.  Everything else -- naming, opening and creating, stat, remove,
close, pickling, repr -- comes from IPCObject, as for every sysvkit object.
"""

from __future__ import annotations

import errno
from typing import Any, Optional, Tuple

from . import _core
from ._args import check_int
from ._base import IPCObject, open_or_create
from ._keys import StrPath
from ._records import MessageQueueInfo, msg_info

__all__ = ["MessageQueue"]

# msg_qbytes is an int in the kernel's limits (msgmnb); 0 would take nothing.
_MAX_BYTES_MAX = 0x7FFFFFFF


def _msgmax() -> int:
    """The system's msgmax now (msgctl IPC_INFO)."""
    return int(_core.msgctl(0, _core.IPC_INFO)[3])


def _msgmnb() -> int:
    return int(_core.msgctl(0, _core.IPC_INFO)[4])


def _stat_raw(ident: int) -> Tuple[int, ...]:
    return _core.msgctl(ident, _core.IPC_STAT)  # type: ignore[no-any-return]


def _rmid(ident: int) -> None:
    _core.msgctl(ident, _core.IPC_RMID)


class MessageQueue(_core.MessageQueueBase, IPCObject):
    """A System V message queue, named by ``(path, proj_id)`` or ``key=``.

    Parameters:
        path, proj_id: name the queue through ftok(path, proj_id).
        key: the key itself instead (``IPC_PRIVATE`` always creates).
        create: create the queue if it does not exist.
        exclusive: with ``create``, fail if it already exists.
        mode: permission bits of a new queue (default 0o600).
        max_bytes: capacity in bytes: set on a queue this call creates; an
            existing queue must hold at least that much.

    Raises TypeError for both or neither of (path, proj_id) and key;
    FileNotFoundError if the queue does not exist and ``create`` is false;
    FileExistsError if it exists and ``exclusive`` is true; PermissionError
    if the caller may not use it (or may not raise max_bytes above the
    system's msgmnb); ValueError for a bad mode or max_bytes, or an
    existing queue smaller than ``max_bytes``.
    """

    _kind = "message queue"
    _stat_raw = staticmethod(_stat_raw)
    _rmid = staticmethod(_rmid)
    _record = staticmethod(msg_info)

    def __init__(self, path: Optional[StrPath] = None, proj_id: Optional[int] = None, *,
                 key: Optional[int] = None, create: bool = False, exclusive: bool = False,
                 mode: int = 0o600, max_bytes: Optional[int] = None) -> None:
        k = self._resolve(path, proj_id, key)
        if max_bytes is not None:
            max_bytes = check_int(max_bytes, "max_bytes", 1, _MAX_BYTES_MAX)
        ident, created = open_or_create(_core.msgget, k, create=create, exclusive=exclusive,
                                        mode=mode, kind=self._kind, path=path, proj_id=proj_id)
        self._set_ids(k, ident)
        try:
            self._msgmax = _msgmax()
            if max_bytes is not None:
                if created:
                    self._set_max_bytes(max_bytes)
                else:
                    have = self.stat().max_bytes
                    if have < max_bytes:
                        raise ValueError("max_bytes=%d is more than the %d bytes of the "
                                         "existing %s" % (max_bytes, have, self._name()))
        except BaseException:
            if created:
                try:
                    _rmid(ident)
                except OSError:
                    pass
            self._id = self._closed_id
            raise

    def _init_from_stat(self, t: Tuple[int, ...]) -> None:
        super()._init_from_stat(t)
        self._msgmax = _msgmax()

    # send() and receive() come from _core.MessageQueueBase.

    def stat(self) -> MessageQueueInfo:
        """The queue's kernel record (MessageQueueInfo).

        RemovedError if the queue was removed.
        """
        return super().stat()  # type: ignore[no-any-return]

    def _live_stat(self) -> MessageQueueInfo:
        """stat() for an operation on the queue: ValueError once closed."""
        if self.closed:
            raise ValueError("operation on a closed %s" % self._kind)
        return self.stat()

    def __len__(self) -> int:
        """The number of messages in the queue.

        RemovedError if the queue was removed; ValueError once closed.
        """
        return self._live_stat().messages

    def __bool__(self) -> bool:
        # An empty queue is still a queue (len() alone would make it false).
        return True

    @property
    def max_bytes(self) -> int:
        """The queue's capacity in bytes (msg_qbytes); settable.

        Setting needs the caller to own the queue (else PermissionError), and
        CAP_SYS_RESOURCE above the system's msgmnb (else PermissionError naming
        it); a value outside 1..2**31-1 is ValueError.  RemovedError if the
        queue was removed; ValueError once closed.
        """
        return self._live_stat().max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        value = check_int(value, "max_bytes", 1, _MAX_BYTES_MAX)
        if self.closed:
            raise ValueError("operation on a closed %s" % self._kind)
        self._set_max_bytes(value)

    def _set_max_bytes(self, value: int) -> None:
        info = self.stat()
        try:
            _core.msgctl(self._ident, _core.IPC_SET, (info.uid, info.gid, info.mode, value))
        except PermissionError as exc:
            limit = _msgmnb()
            if value > limit:
                raise PermissionError(
                    errno.EPERM, "max_bytes=%d is above msgmnb, the system's limit of %d "
                    "bytes: raising it needs CAP_SYS_RESOURCE (%s)"
                    % (value, limit, self._name())) from None
            raise PermissionError(exc.errno, "setting max_bytes needs the owner of %s"
                                  % self._name()) from None
        except OSError as exc:
            self._fail(exc)

    def __reduce__(self) -> Tuple[Any, ...]:
        return IPCObject.__reduce__(self)

    # -- asyncio twins (the machinery is sysvkit._aio's) ---------------------------------

    async def asend(self, data: Any, type: int = 1, *, block: bool = True,
                    timeout: Optional[float] = None) -> None:
        """send() for asyncio: the same arguments, result and exceptions; the
        event loop runs while it waits.  Cancelled, it sends nothing (unless
        the message had already gone: then it returns normally)."""
        from . import _aio
        return await _aio.msg_send(self, data, type, block, timeout)

    async def areceive(self, type: int = 0, *, block: bool = True,
                       timeout: Optional[float] = None, except_type: bool = False,
                       max_size: Optional[int] = None,
                       truncate: bool = False) -> Tuple[bytes, int]:
        """receive() for asyncio: the same arguments, result and exceptions;
        the event loop runs while it waits.  Cancelled, it takes no message."""
        from . import _aio
        return await _aio.msg_receive(self, type, block, timeout, except_type, max_size,
                                      truncate)
