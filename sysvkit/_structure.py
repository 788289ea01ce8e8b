"""Structure: what Mutex, Channel and SharedArray share, living in a segment.

Each is one System V shared memory segment that starts with the common
64-byte header of ``csrc/structs.h`` (magic, kind, format version, state,
size), so ``ipcs -m`` lists it and ``rm`` removes it.  This module decides
who initialises a new segment and how long others wait; the kind supplies
``_init_body()`` and ``_check_body()`` in its compiled base class.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any, ClassVar, Optional, Tuple

from . import _core
from ._args import check_int, check_mode
from ._base import IPCObject, open_or_create
from ._core import CorruptError, RemovedError
from ._keys import IPC_PRIVATE, StrPath
from ._records import ShmInfo, shm_info

__all__ = ["Structure"]

HEADER_SIZE: int = _core.STRUCT_HEADER_SIZE
_FRESH, _INIT, _READY = _core.STRUCT_STATE_FRESH, _core.STRUCT_STATE_INIT, _core.STRUCT_STATE_READY

# How long an opener waits for another process's initialisation before it
# takes over, even if that process still lives (it may be stopped).
SETTLE_SECONDS = 1.0


def _alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):   # a pid read from a scribbled header
        return False
    except PermissionError:
        pass
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return True          # exists (kill said so) but unreadable: assume alive
    state = stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")


class Structure(_core._Structure, IPCObject):
    """Base of the structures that live inside one shared memory segment
    (not used directly).

    A kind is ``class K(Structure, _core.KBase)`` (KBase a compiled
    subclass of ``_core._Structure``) with ``_kind``,
    ``_kind_code`` and ``_version``; its ``__init__`` checks its own
    arguments, computes the segment size it needs and calls
    ``_open_structure``.
    """

    _kind_code: ClassVar[int] = 0
    _version: ClassVar[int] = 1

    _stat_raw = staticmethod(lambda ident: _core.shmctl(ident, _core.IPC_STAT))
    _rmid = staticmethod(lambda ident: _core.shmctl(ident, _core.IPC_RMID))
    _record = staticmethod(shm_info)

    # -- opening and creating ----------------------------------------------------

    def _open_structure(self, path: Optional[StrPath], proj_id: Optional[int],
                        key: Optional[int], *, create: bool, exclusive: bool, mode: int,
                        size: int) -> bool:
        """Open, or create with ``size`` bytes, the segment and settle it:
        initialised exactly once, checked, ready.  Returns True if this call
        created the segment.  Arguments are checked before any system call."""
        check_mode(mode)
        nbytes = check_int(size, "size", HEADER_SIZE)
        if exclusive and not create:
            raise ValueError("exclusive=True needs create=True")
        k = self._resolve(path, proj_id, key)

        def get(key: int, flags: int) -> int:
            return _core.shmget(key, nbytes if flags & _core.IPC_CREAT else 0, flags)

        ident, created = open_or_create(get, k, create=bool(create), exclusive=exclusive,
                                        mode=mode, kind=self._kind, path=path, proj_id=proj_id)
        try:
            self._set_ids(k, ident)
            self._attach_and_settle(self._stat_id(ident), created, nbytes)
        except BaseException:
            if created:
                try:
                    _core.shmctl(ident, _core.IPC_RMID)
                except OSError:
                    pass
            self._drop_mapping()
            raise
        return created

    def _init_from_stat(self, t: Tuple[int, ...]) -> None:
        """from_id and unpickling: attach the existing segment and check it."""
        if t[6] & _core.SHM_DEST:
            raise RemovedError(errno.EIDRM, "%s with id %d was removed" % (self._kind, t[0]))
        IPCObject._init_from_stat(self, t)
        try:
            self._attach_and_settle(t, False, 0)
        except BaseException:
            self._drop_mapping()
            raise

    def _attach_and_settle(self, t: Tuple[int, ...], created: bool, size: int) -> None:
        seg_size, creator = t[7], t[9]
        if seg_size < HEADER_SIZE:
            raise ValueError("%s is %d bytes: too small to be a sysvkit %s"
                             % (self._name(), seg_size, self._kind))
        try:
            self._seg_attach(t[0], 0)
        except OSError as exc:
            self._fail(exc)
        self._st_bind()
        self._settle(created, size or seg_size, creator)

    def _settle(self, created: bool, size: int, creator: int) -> None:
        """Wait until the segment is READY, initialising it if this process
        created it, or if its initialiser died or took over a second."""
        deadline = time.monotonic() + SETTLE_SECONDS
        pause = 0.0005
        while True:
            state = self._st_state()
            phase, pid = state & 0xFF, state >> 8
            if phase == _READY:
                break
            if phase not in (_FRESH, _INIT):
                raise CorruptError("%s is not a sysvkit %s (state word 0x%x)"
                                   % (self._name(), self._kind, state))
            owner = pid if phase == _INIT else creator
            if ((created and phase == _FRESH) or not _alive(owner)
                    or time.monotonic() >= deadline):
                mine = self._st_claim(state)
                if mine:
                    if not (created and phase == _FRESH):
                        self._st_wipe(size)       # half-made: start from zeros
                    self._init_body()
                    self._st_publish(mine, self._kind_code, self._version, size)
                    continue                      # check what is there now
                continue
            time.sleep(pause)
            pause = min(pause * 2, 0.01)
        self._check_header()
        self._check_body()

    def _check_header(self) -> None:
        magic, kind, version, _state, size = self._st_header()
        if magic != _core.STRUCT_MAGIC:
            raise ValueError("%s is not a sysvkit structure (magic 0x%08x)" % (self._name(), magic))
        if kind != self._kind_code:
            raise ValueError("%s holds a sysvkit structure of kind %d, not a %s"
                             % (self._name(), kind, self._kind))
        if version != self._version:
            raise ValueError("%s is a %s of format version %d; this sysvkit reads version %d"
                             % (self._name(), self._kind, version, self._version))
        if not HEADER_SIZE <= size <= self._seg_size:
            raise CorruptError("%s: its header claims %d bytes but the segment has %d"
                               % (self._name(), size, self._seg_size))

    def _drop_mapping(self) -> None:
        try:
            if self._seg_attached:
                self._seg_detach()
        except (BufferError, RuntimeError):  # pragma: no cover - nothing exported yet
            pass

    # -- lifetime ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return not self._seg_attached

    def close(self) -> None:
        """Detach the segment; the structure stays for other processes (see
        remove()).  Idempotent.  RuntimeError while this process holds it
        (a locked mutex); BufferError while buffers of it are alive."""
        self._seg_detach()
        IPCObject.close(self)

    def remove(self) -> None:
        """Mark the segment for destruction (IPC_RMID): the kernel frees it when
        the last process detaches.  RemovedError if it was already removed."""
        try:
            removed = bool(self._stat_raw(self._ident)[6] & _core.SHM_DEST)
        except OSError:
            removed = False
        if removed:
            raise RemovedError(errno.EIDRM, "%s was already removed" % self._name())
        super().remove()

    def stat(self) -> ShmInfo:
        """The segment's kernel record.  RemovedError once it is freed."""
        info: ShmInfo = super().stat()
        return info

    def _check_open(self) -> None:
        if not self._seg_attached:
            raise ValueError("operation on a closed %s" % self._kind)

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self).from_id, (self._ident,))
