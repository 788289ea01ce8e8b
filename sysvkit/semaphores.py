"""Semaphores: SemaphoreSet, Semaphore (one member) and Lock (a mutex).

The hot paths (acquire, release, wait_zero, Lock) are C methods of the
compiled bases ``_core.SemaphoreBase`` / ``_core.LockBase``; naming, opening,
stat, remove, close, pickling and repr come from IPCObject.

Creation is race-free through the ``sem_otime`` handshake (Stevens, UNP 2):
the process whose semget(IPC_CREAT | IPC_EXCL) succeeded sets the values and
then performs one semop, which makes ``sem_otime`` non-zero; a process that
opens an existing set waits (briefly, at most about a second) until
``sem_otime`` is non-zero, so it never sees a set before it is initialised.
"""

from __future__ import annotations

import errno
import time
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

from . import _core
from ._args import check_int, check_timeout
from ._base import IPCObject, open_or_create
from ._keys import StrPath
from ._records import SemaphoreSetInfo, sem_info

__all__ = ["Lock", "Semaphore", "SemaphoreSet"]

SEMVMX: int = _core.SEMVMX

# How long an opener waits for the creator to initialise the set, and the
# pauses between looks.  Only here does sysvkit sleep: the kernel offers no
# way to wait for sem_otime to change.
_INIT_WAIT = 1.0
_INIT_PAUSE_MIN = 0.0005
_INIT_PAUSE_MAX = 0.02


# -- kind-specific calls for IPCObject ---------------------------------------------

def _sem_stat_raw(ident: int) -> Tuple[int, ...]:
    return _core.semctl(ident, 0, _core.IPC_STAT)  # type: ignore[no-any-return]


def _sem_rmid(ident: int) -> None:
    _core.semctl(ident, 0, _core.IPC_RMID)


def _sem_limits() -> Tuple[int, int]:
    """(semmsl, semopm): members per set, operations per semop."""
    info = _core.semctl(0, 0, _core.IPC_INFO)
    return info[5], info[6]


def _check_value(value: object, name: str) -> int:
    try:
        return check_int(value, name, 0, SEMVMX)
    except ValueError:
        raise ValueError("%s must be in 0..%d (SEMVMX), got %r" % (name, SEMVMX, value)) from None


def _initial_values(initial: Union[int, Sequence[int]], count: int) -> List[int]:
    """``initial`` (an int, or one int per member) as a list of ``count`` values."""
    if isinstance(initial, (list, tuple)):
        if len(initial) != count:
            raise ValueError("initial must hold count=%d values, got %d" % (count, len(initial)))
        return [_check_value(v, "initial[%d]" % i) for i, v in enumerate(initial)]
    return [_check_value(initial, "initial")] * count


def _initialise(ident: int, values: List[int]) -> None:
    """Set a new set's values, then make sem_otime non-zero with one semop
    that changes nothing (+1 then -1 on member 0, atomically)."""
    if any(values):
        _core.semctl(ident, 0, _core.SETALL, values)
    nowait = _core.IPC_NOWAIT
    up_down = [(0, 1, nowait), (0, -1, nowait)]
    down_up = [(0, -1, nowait), (0, 1, nowait)]
    first, second = (up_down, down_up) if values[0] < SEMVMX else (down_up, up_down)
    try:
        _core.semop(ident, first)
    except (BlockingIOError, OSError) as exc:
        # Only if another tool changed member 0 meanwhile (to 0 or SEMVMX).
        if exc.errno not in (errno.EAGAIN, errno.ERANGE):
            raise
        _core.semop(ident, second)


def _wait_initialised(cls: Any, ident: int) -> Tuple[int, ...]:
    """IPC_STAT of an existing set once its creator has operated on it
    (sem_otime != 0), or after about a second (a set another tool made and
    never used)."""
    deadline = time.monotonic() + _INIT_WAIT
    pause = _INIT_PAUSE_MIN
    while True:
        t = cls._stat_id(ident)
        if t[8] != 0 or time.monotonic() >= deadline:
            return t  # type: ignore[no-any-return]
        time.sleep(pause)
        pause = min(pause * 2, _INIT_PAUSE_MAX)


def _open_set(obj: IPCObject, path: Optional[StrPath], proj_id: Optional[int],
              key: Optional[int], *, create: bool, exclusive: bool, mode: int,
              count: int, initial: Union[int, Sequence[int]],
              need_count: str) -> Tuple[int, int, int]:
    """Open or create a set, race-free.  Returns (key, id, nsems).

    ``count`` is the number of members to create (0: this call must not
    create; ``need_count`` then says why).  The creator initialises the set
    from ``initial``; an opener waits until the creator has done so.
    """
    k = obj._resolve(path, proj_id, key)
    values = _initial_values(initial, count) if count else []
    if count == 0 and (exclusive or k == _core.IPC_PRIVATE):
        raise ValueError(need_count)

    def get(kk: int, flags: int) -> int:
        creating = bool(flags & _core.IPC_CREAT)
        try:
            return _core.semget(kk, count if creating else 0, flags)
        except OSError as exc:
            # nsems=0 lets an existing set open (EEXIST, then the open path)
            # but makes creating a new one fail with EINVAL.
            if creating and count == 0 and exc.errno == errno.EINVAL:
                raise ValueError(need_count) from None
            raise

    ident, created = open_or_create(get, k, create=create, exclusive=exclusive, mode=mode,
                                    kind=obj._kind, path=path, proj_id=proj_id)
    if created:
        try:
            _initialise(ident, values)
        except BaseException:
            # Nobody may find a set that was never initialised.
            try:
                _sem_rmid(ident)
            except OSError:
                pass
            raise
        return k, ident, count
    t = _wait_initialised(type(obj), ident)
    return k, ident, t[7]


# -- SemaphoreSet ---------------------------------------------------------------------

class SemaphoreSet(IPCObject):
    """A System V semaphore set: ``count`` semaphores changed atomically together.

    ``SemaphoreSet(path, proj_id, *, key=None, create=False, exclusive=False,
    mode=0o600, count=None, initial=0, undo=False)``

    - Identity: ``(path, proj_id)`` or ``key=`` (exactly one of them);
      ``key=IPC_PRIVATE`` always creates a new set.
    - create: open the set, or create it if missing (else it must exist:
      FileNotFoundError); exclusive (with create): FileExistsError if it
      exists.  mode: permission bits of a new set (default 0o600).
    - count: the number of members, required to create (1..semmsl).  When
      opening, None or 0 takes the set's own; more than it has is ValueError.
    - initial: the value of every member of a new set, or a list of one
      value per member; each in 0..32767 (SEMVMX), else ValueError.  A new
      set is initialised before any other process can use it: openers wait
      (at most about a second) for the creator (the sem_otime handshake).
    - undo: the default for op() and for the members ``s[i]``: use SEM_UNDO,
      so the kernel reverses a process's changes when it exits.  Right when
      the same process takes and gives back (a lock, a pool); wrong for
      signalling between processes.  Off by default, as in C.

    TypeError/ValueError for bad arguments (before any system call),
    PermissionError if the caller may not use the set.
    """

    _kind = "semaphore set"
    _stat_raw = staticmethod(_sem_stat_raw)
    _rmid = staticmethod(_sem_rmid)
    _record = staticmethod(sem_info)

    _count: int
    _undo: bool
    _semopm: int

    def __init__(self, path: Optional[StrPath] = None, proj_id: Optional[int] = None, *,
                 key: Optional[int] = None, create: bool = False, exclusive: bool = False,
                 mode: int = 0o600, count: Optional[int] = None,
                 initial: Union[int, Sequence[int]] = 0, undo: bool = False) -> None:
        semmsl, self._semopm = _sem_limits()
        if count is None and isinstance(initial, (list, tuple)):
            count = len(initial)
        n = 0 if count is None else check_int(count, "count", 0)
        if n > semmsl:
            raise ValueError("count must be in 1..%d (semmsl), got %d" % (semmsl, n))
        k, ident, nsems = _open_set(
            self, path, proj_id, key, create=create, exclusive=exclusive, mode=mode,
            count=n, initial=initial,
            need_count="count is required to create a semaphore set (1..%d)" % semmsl)
        if n > nsems:
            raise ValueError("count=%d is more than the %d semaphores of the existing set"
                             % (n, nsems))
        self._set_ids(k, ident)
        self._count = nsems
        self._undo = bool(undo)

    def _init_from_stat(self, t: Tuple[int, ...]) -> None:
        super()._init_from_stat(t)
        self._count = t[7]
        self._undo = False
        self._semopm = _sem_limits()[1]

    @property
    def count(self) -> int:
        """The number of semaphores in the set."""
        return self._count

    @property
    def undo(self) -> bool:
        """The default for op(undo=None) and for the members s[i]."""
        return self._undo

    def __len__(self) -> int:
        return self._count

    def _index(self, index: object, name: str = "index") -> int:
        i = check_int(index, name)
        if not -self._count <= i < self._count:
            raise IndexError("%s %d out of range for a set of %d" % (name, i, self._count))
        return i + self._count if i < 0 else i

    def __getitem__(self, index: int) -> Semaphore:
        """A Semaphore view of member ``index`` (negative counts from the end).

        IndexError out of range; TypeError for a non-int.
        """
        if isinstance(index, slice):
            raise TypeError("semaphore sets cannot be sliced")
        return Semaphore._member_of(self._key, self._ident, self._id, self._index(index),
                                    self._undo)

    def __iter__(self) -> Iterator[Semaphore]:
        for i in range(self._count):
            yield self[i]

    def values(self) -> List[int]:
        """Every member's value (GETALL).  ValueError once closed; RemovedError."""
        try:
            return list(_core.semctl(self._id, 0, _core.GETALL))
        except OSError as exc:
            self._fail(exc)

    def set_values(self, values: Sequence[int]) -> None:
        """Set every member's value at once (SETALL), waking waiters.

        values: one int in 0..32767 (SEMVMX) per member, else ValueError.
        ValueError once closed; RemovedError if the set was removed.
        """
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise TypeError("values must be a sequence of ints, not %s" % type(values).__name__)
        if len(values) != self._count:
            raise ValueError("values must hold count=%d values, got %d"
                             % (self._count, len(values)))
        vals = [_check_value(v, "values[%d]" % i) for i, v in enumerate(values)]
        try:
            _core.semctl(self._id, 0, _core.SETALL, vals)
        except OSError as exc:
            self._fail(exc)

    def op(self, ops: Sequence[Tuple[int, int]], *, block: bool = True,
           timeout: Optional[float] = None, undo: Optional[bool] = None) -> None:
        """Apply every ``(index, delta)`` change atomically, in one semop.

        A negative delta waits until the value can be lowered by that much,
        a positive one adds, 0 waits until the value is 0; either every
        change happens or none does.  block=False: BlockingIOError instead of
        waiting.  timeout: seconds (None for ever, 0 tries once);
        TimeoutError when it expires.  undo: SEM_UNDO for these changes
        (None: the set's default).  Indexes (negative counts from the end)
        out of range are IndexError; deltas outside -32767..32767, no
        operations, or more than semopm of them are ValueError; all checked
        before the call.  RemovedError if the set is removed (also while
        waiting); ValueError once closed.
        """
        if isinstance(ops, (str, bytes)) or not hasattr(ops, "__len__"):
            raise TypeError("ops must be a sequence of (index, delta) pairs")
        if not 1 <= len(ops) <= self._semopm:
            raise ValueError("ops must hold 1..%d (semopm) operations, got %d"
                             % (self._semopm, len(ops)))
        t = check_timeout(timeout)
        use_undo = self._undo if undo is None else bool(undo)
        flags = (_core.SEM_UNDO if use_undo else 0) | (0 if block else _core.IPC_NOWAIT)
        sops = []
        for pos, item in enumerate(ops):
            try:
                index, delta = item
            except (TypeError, ValueError):
                raise TypeError("ops[%d] must be an (index, delta) pair, got %r"
                                % (pos, item)) from None
            i = self._index(index, "ops[%d] index" % pos)
            d = check_int(delta, "ops[%d] delta" % pos, -SEMVMX, SEMVMX)
            sops.append((i, d, flags))
        try:
            if block:
                _core.semop(self._id, sops, timeout=t)
            else:
                _core.semop(self._id, sops)
        except (TimeoutError, BlockingIOError) as exc:
            raise type(exc)(exc.errno, "%s (semop, %s)" % (exc.strerror, self._name())) from None
        except OSError as exc:
            if exc.errno == errno.ERANGE:
                raise ValueError("the operations would raise a value above SEMVMX (%d)"
                                 % SEMVMX) from None
            self._fail(exc)

    def stat(self) -> SemaphoreSetInfo:
        """The set's kernel record (SemaphoreSetInfo).  RemovedError once removed."""
        return super().stat()  # type: ignore[no-any-return]

    def _repr_extra(self) -> str:
        return " count=%d" % self._count

    # -- asyncio twins (the machinery is sysvkit._aio's) ---------------------------------

    async def aop(self, ops: Sequence[Tuple[int, int]], *, block: bool = True,
                  timeout: Optional[float] = None, undo: Optional[bool] = None) -> None:
        """op() for asyncio: the same arguments, result and exceptions; the
        event loop runs while it waits.  Cancelled, it changes no value."""
        from . import _aio
        return await _aio.sem_op(self, ops, block, timeout, undo)



# -- Semaphore ------------------------------------------------------------------------
# with-blocks acquire and release (threading semantics), so the compiled
# base's __enter__/__exit__ deliberately override IPCObject's (which close).

class Semaphore(_core.SemaphoreBase, IPCObject):  # type: ignore[misc]
    """One semaphore, used as threading.Semaphore across processes.

    ``Semaphore(path, proj_id, *, key=None, create=False, exclusive=False,
    mode=0o600, initial=0, undo=False, index=0)``: a new set of one member,
    or member ``index`` of an existing set (``SemaphoreSet(...)[index]``
    gives the same).  Identity, create, exclusive and mode as for
    SemaphoreSet; ``initial`` (0..32767, SEMVMX) is the value of a new one,
    set before any other process can use it.

    undo: use SEM_UNDO, so the kernel reverses this process's acquires and
    releases when it exits (even killed).  Right for a lock or a resource
    pool, where a process acquires and releases itself: a crash gives the
    resources back.  Wrong for signalling between processes (one releases,
    another acquires): the kernel would take back the releases of a process
    that exits.  Hence off by default, as in C and sysv_ipc.

    ``with sem:`` acquires and releases (as threading); close() lets go of
    the handle and remove() removes the whole set.  ValueError for an index
    the set does not have; ValueError when creating with index > 0.
    """

    _kind = "semaphore"
    _stat_raw = staticmethod(_sem_stat_raw)
    _rmid = staticmethod(_sem_rmid)
    _record = staticmethod(sem_info)

    def __init__(self, path: Optional[StrPath] = None, proj_id: Optional[int] = None, *,
                 key: Optional[int] = None, create: bool = False, exclusive: bool = False,
                 mode: int = 0o600, initial: int = 0, undo: bool = False,
                 index: int = 0) -> None:
        i = check_int(index, "index", 0, 0xFFFF)
        if isinstance(initial, (list, tuple)):
            raise TypeError("initial must be an int for a Semaphore (a set of one)")
        _check_value(initial, "initial")
        k, ident, nsems = _open_set(
            self, path, proj_id, key, create=create, exclusive=exclusive, mode=mode,
            count=1 if i == 0 else 0, initial=initial,
            need_count="index=%d names a member of an existing set; a new Semaphore is a "
                       "set of one (index=0)" % i)
        if i >= nsems:
            raise ValueError("index must be in 0..%d for this set of %d, got %d"
                             % (nsems - 1, nsems, i))
        self._set_ids(k, ident)
        self._prepare(i, bool(undo))

    @classmethod
    def _member_of(cls, key: int, ident: int, handle: int, index: int,
                   undo: bool) -> Semaphore:
        """A view of member ``index`` of an open set (SemaphoreSet[i])."""
        obj = cls.__new__(cls)
        obj._set_ids(key, ident)
        obj._id = handle
        obj._prepare(index, undo)
        return obj

    @classmethod
    def from_id(cls, ident: int, index: int = 0, undo: bool = False) -> Semaphore:
        """Open member ``index`` of an existing set by the set's id.

        FileNotFoundError (RemovedError) if no set has that id; ValueError
        for an index the set does not have; PermissionError.
        """
        t = cls._stat_id(ident)
        i = check_int(index, "index", 0, 0xFFFF)
        if i >= t[7]:
            raise ValueError("index must be in 0..%d for this set of %d, got %d"
                             % (t[7] - 1, t[7], i))
        obj = cls.__new__(cls)
        obj._init_from_stat(t)
        obj._prepare(i, bool(undo))
        return obj

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self).from_id, (self._ident, self._member, self._undo))

    @property
    def index(self) -> int:
        """The member of the set this semaphore is."""
        return self._member

    @property
    def undo(self) -> bool:
        """True if acquire and release use SEM_UNDO."""
        return self._undo

    def _ctl(self, cmd: int) -> int:
        return self._get(cmd)

    @property
    def value(self) -> int:
        """The current value (GETVAL); settable (SETVAL, 0..32767), waking waiters.

        ValueError once closed or for a value out of range; RemovedError.
        """
        return self._ctl(_core.GETVAL)

    @value.setter
    def value(self, value: int) -> None:
        v = _check_value(value, "value")
        try:
            _core.semctl(self._id, self._member, _core.SETVAL, v)
        except OSError as exc:
            self._fail(exc)

    @property
    def waiting(self) -> int:
        """How many processes wait to decrement it (GETNCNT)."""
        return self._ctl(_core.GETNCNT)

    @property
    def waiting_for_zero(self) -> int:
        """How many processes wait for it to be 0 (GETZCNT)."""
        return self._ctl(_core.GETZCNT)

    @property
    def last_pid(self) -> int:
        """The pid of the last process that operated on it (GETPID); 0 for none."""
        return self._ctl(_core.GETPID)

    def wait_zero(self, timeout: Optional[float] = None) -> bool:
        """Wait until the value is 0.

        timeout: seconds; None waits for ever, 0 only checks.  Returns True
        when the value is 0, False on timeout.  ValueError for a negative or
        NaN timeout; ValueError once closed; RemovedError if the set was
        removed (also while waiting).  Ctrl-C raises KeyboardInterrupt.
        """
        return self._wait_zero(timeout)

    def stat(self) -> SemaphoreSetInfo:
        """The record of the set this semaphore belongs to.  RemovedError once removed."""
        return IPCObject.stat(self)  # type: ignore[no-any-return]

    def _repr_extra(self) -> str:
        return " index=%d%s" % (self._member, " undo" if self._undo else "")

    # -- asyncio twins (the machinery is sysvkit._aio's) ---------------------------------

    async def aacquire(self, blocking: bool = True, timeout: Optional[float] = None) -> bool:
        """acquire() for asyncio: the same arguments, result and exceptions;
        the event loop runs while it waits.  Cancelled, it takes nothing."""
        from . import _aio
        return await _aio.sem_acquire(self, blocking, timeout)

    async def await_zero(self, timeout: Optional[float] = None) -> bool:
        """wait_zero() for asyncio: True once the value is 0, False on timeout."""
        from . import _aio
        return await _aio.sem_wait_zero(self, timeout)

    async def __aenter__(self) -> Semaphore:
        """``async with sem:`` acquires (waiting for ever) and releases."""
        await self.aacquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()



# -- Lock -----------------------------------------------------------------------------

class Lock(_core.LockBase, IPCObject):  # type: ignore[misc]  # __exit__: as Semaphore
    """A cross-process mutex, used as threading.Lock.

    ``Lock(path, proj_id, *, key=None, mode=0o600)`` opens the lock, or
    creates it unlocked if missing, race-free (mode: permission bits of a
    new lock).  acquire(), release(), locked() and ``with lock:`` as
    threading.Lock; releasing a lock that is not locked raises RuntimeError.

    A Lock is a semaphore set of one (value 1: unlocked) and always uses
    SEM_UNDO: a process that dies holding it, even by SIGKILL, releases it,
    and another process acquires it at once.  So release it in the process
    that acquired it.  ``with lock:`` acquires and releases; close() lets go
    of the handle and remove() removes the lock from the kernel.
    """

    _kind = "lock"
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
        """The lock's kernel record (SemaphoreSetInfo).  RemovedError once removed."""
        return IPCObject.stat(self)  # type: ignore[no-any-return]


    # -- asyncio twins (the machinery is sysvkit._aio's) ---------------------------------

    async def aacquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """acquire() for asyncio: the same arguments, result and exceptions;
        the event loop runs while it waits.  Cancelled, it does not hold the lock."""
        from . import _aio
        return await _aio.sem_acquire(self, blocking, timeout)

    async def __aenter__(self) -> Lock:
        """``async with lock:`` acquires (waiting for ever) and releases."""
        await self.aacquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
