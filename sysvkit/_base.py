"""What every IPC object class shares: naming, opening and creating,
from_id, stat, remove, close, pickling by id, repr and error translation.

Written once here; SharedMemory, MessageQueue, SemaphoreSet, Semaphore and
Lock subclass it and supply the few kind-specific calls as class attributes.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Callable, ClassVar, NoReturn, Optional, Tuple, Type, TypeVar

from . import _core
from ._args import check_int, check_mode
from ._core import RemovedError
from ._keys import IPC_PRIVATE, StrPath, key_hex, resolve_key

_T = TypeVar("_T", bound="IPCObject")

# Access asked for when opening an existing object: read and write.  The
# kernel checks it against the object's mode (ipcperms), so an object the
# caller may not use fails at open with PermissionError, not at first use.
ACCESS_RW = 0o600
ACCESS_R = 0o400


def describe_name(path: Optional[StrPath], proj_id: Optional[int], key: int) -> str:
    """How the caller named an object: the path and proj_id when given, and the key."""
    if path is not None:
        return "for path %r, proj_id %d (key %s)" % (os.fsdecode(path), proj_id or 0,
                                                     key_hex(key))
    return "with key %s" % key_hex(key)


def open_or_create(get: Callable[[int, int], int], key: int, *, create: bool,
                   exclusive: bool, mode: int, access: int = ACCESS_RW,
                   kind: str = "object", path: Optional[StrPath] = None,
                   proj_id: Optional[int] = None) -> Tuple[int, bool]:
    """Open or create the object for ``key`` with ``get(key, flags) -> id``
    (a bound shmget/msgget/semget).  Returns (id, created).

    IPC_PRIVATE always creates.  create=False: the object must exist
    (FileNotFoundError naming the ``kind`` and the ``path`` and ``proj_id``
    it was asked for, if given).  create=True: open it, or create it if missing;
    exclusive=True: FileExistsError if it exists.  Knowing whether this call
    created the object lets the caller initialise it (semaphores) or decide
    what size= means (shared memory).
    """
    if exclusive and not create:
        raise ValueError("exclusive=True needs create=True")
    perms = check_mode(mode)
    if key == IPC_PRIVATE:
        return get(key, _core.IPC_CREAT | _core.IPC_EXCL | perms), True
    for _ in range(100):
        if create:
            try:
                return get(key, _core.IPC_CREAT | _core.IPC_EXCL | perms), True
            except FileExistsError:
                if exclusive:
                    raise
        try:
            return get(key, access), False
        except FileNotFoundError as exc:
            if not create:
                if exc.errno != errno.ENOENT:
                    raise
                raise FileNotFoundError(errno.ENOENT, "no %s %s: create=True creates it" % (
                    kind, describe_name(path, proj_id, key))) from None
            # Removed between our two calls: try to create it again.
    raise FileExistsError(errno.EEXIST, "object for key %s keeps appearing and "
                          "disappearing" % key_hex(key))


class IPCObject:
    """Base of every sysvkit object class (not used directly)."""

    _kind: ClassVar[str] = "IPC object"
    _closed_id: ClassVar[int] = -1

    _key: int
    _ident: int          # the kernel id, kept after close() (for remove/stat)
    _id: int             # the id used by calls; -1 once closed

    # -- kind-specific calls, supplied by subclasses --------------------------

    @staticmethod
    def _stat_raw(ident: int) -> Tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _rmid(ident: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _record(t: Tuple[int, ...]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- identity ---------------------------------------------------------------

    @staticmethod
    def _resolve(path: Optional[StrPath], proj_id: Optional[int], key: Optional[int]) -> int:
        return resolve_key(path, proj_id, key)

    def _set_ids(self, key: int, ident: int) -> None:
        self._key = key
        self._ident = ident
        self._id = ident

    @classmethod
    def _stat_id(cls, ident: object) -> Tuple[int, ...]:
        """IPC_STAT of an id, with a missing or removed id as RemovedError."""
        ident = check_int(ident, "ident", 0, 0x7FFFFFFF)
        try:
            return cls._stat_raw(ident)
        except RemovedError:
            raise
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RemovedError(errno.EIDRM, "no %s with id %d (removed, or never existed)"
                                   % (cls._kind, ident)) from None
            raise

    @classmethod
    def from_id(cls: Type[_T], ident: int) -> _T:
        """Open an existing object by its id.

        FileNotFoundError (RemovedError) if no object has that id;
        PermissionError if the caller may not use it.
        """
        t = cls._stat_id(ident)
        obj = cls.__new__(cls)
        obj._init_from_stat(t)
        return obj

    def _init_from_stat(self, t: Tuple[int, ...]) -> None:
        """Set the object up from its IPC_STAT tuple (from_id, unpickling)."""
        self._set_ids(t[1], t[0])

    @property
    def key(self) -> int:
        """The key (signed key_t); 0 for IPC_PRIVATE."""
        return self._key

    @property
    def id(self) -> int:
        """The kernel's id for the object."""
        return self._ident

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._id == self._closed_id

    # -- operations ---------------------------------------------------------------

    def stat(self) -> Any:
        """The object's kernel record (a frozen dataclass).

        RemovedError if the object was removed.
        """
        try:
            return self._record(self._stat_id(self._ident))
        except RemovedError:
            raise RemovedError(errno.EIDRM, "%s was removed" % self._name()) from None

    def remove(self) -> None:
        """Remove the kernel object (IPC_RMID).  RemovedError if already gone."""
        try:
            self._rmid(self._ident)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EIDRM):
                raise RemovedError(errno.EIDRM, "%s was already removed" % self._name()) from None
            raise

    def close(self) -> None:
        """Let go of the handle; the kernel object stays (see remove())."""
        self._id = self._closed_id

    def exists(self) -> bool:
        """True while the kernel object exists (not yet removed)."""
        try:
            self._stat_raw(self._ident)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EIDRM):
                return False
        return True

    def _name(self) -> str:
        return "%s %s (id %d)" % (self._kind, key_hex(self._key), self._ident)

    def _fail(self, exc: OSError) -> NoReturn:
        """Re-raise a failed call's error in the user's terms: ValueError
        once closed, RemovedError once the object is gone."""
        if self._id == self._closed_id:
            raise ValueError("operation on a closed %s" % self._kind) from None
        if exc.errno == errno.EIDRM:
            raise RemovedError(errno.EIDRM, "%s was removed" % self._name()) from None
        if exc.errno == errno.EINVAL and not self.exists():
            raise RemovedError(errno.EIDRM, "%s was removed" % self._name()) from None
        raise exc

    # -- protocols ---------------------------------------------------------------

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self).from_id, (self._ident,))

    def _repr_extra(self) -> str:
        return ""

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return "<sysvkit.%s key=%s id=%d%s%s>" % (
            type(self).__name__, key_hex(self._key), self._ident, self._repr_extra(), state)
