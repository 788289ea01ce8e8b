"""SemaphoreSet, Semaphore and Lock: SPEC.md "Semaphores" and "Opening and
creating", across threads and processes (fork and spawn)."""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable, List, Optional

import pytest

import sysvkit
from sysvkit import IPC_PRIVATE, Lock, RemovedError, Semaphore, SemaphoreSet
from sysvkit import lowlevel as ll

METHODS = ["fork", "spawn"]


# -- helpers ------------------------------------------------------------------------
def start(method: str, code: str, *args: Any) -> Any:
    """Start a process (fork or spawn) running ``code`` with ARGS = args.

    The target is the builtin exec, which pickles by name, so spawned
    children need nothing importable from this test module."""
    ctx = multiprocessing.get_context(method)
    proc = ctx.Process(target=exec, args=(textwrap.dedent(code), {"ARGS": args}))
    proc.start()
    return proc


def join_all(procs: List[Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert [p.exitcode for p in procs] == [0] * len(procs)


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``cond`` (test side only) until it is true."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %s s" % timeout
        time.sleep(0.005)


class Waiter(threading.Thread):
    """Runs ``fn`` in a thread and keeps its result or exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: Any = None
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        # Signals for the main thread only (setitimer tests).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: B902 - kept for the test to check
            self.error = exc


def sem_ids_with_key(key: int) -> List[int]:
    with open("/proc/sysvipc/sem") as f:
        next(f)
        rows = [line.split() for line in f if line.strip()]
    return [int(r[1]) for r in rows if int(r[0]) == key]


@pytest.fixture
def sset(ipc: Any) -> SemaphoreSet:
    return ipc.new(SemaphoreSet, key=IPC_PRIVATE, count=3, initial=[1, 2, 3])


@pytest.fixture
def sem(ipc: Any) -> Semaphore:
    return ipc.new(Semaphore, key=IPC_PRIVATE, initial=0)


@pytest.fixture
def lock(ipc: Any) -> Lock:
    return ipc.new(Lock, *ipc.path())


# -- SemaphoreSet: opening and creating ---------------------------------------------
def test_create_set_with_values(ipc: Any) -> None:
    path, proj = ipc.path()
    s = ipc.new(SemaphoreSet, path, proj, create=True, count=3, initial=[0, 7, 32767])
    assert len(s) == s.count == 3
    assert s.values() == [0, 7, 32767]
    assert [m.value for m in s] == [0, 7, 32767]
    assert s.key == sysvkit.ftok(path, proj)
    info = s.stat()
    assert isinstance(info, sysvkit.SemaphoreSetInfo)
    assert (info.key, info.id, info.count, info.mode) == (s.key, s.id, 3, 0o600)
    assert info.uid == os.geteuid() and info.cuid == os.geteuid()
    assert info.op_time > 0 and info.change_time > 0   # the handshake's semop


def test_initial_int_sets_every_member(ipc: Any) -> None:
    s = ipc.new(SemaphoreSet, key=ipc.key(), create=True, count=4, initial=9)
    assert s.values() == [9, 9, 9, 9]


def test_count_from_initial_list(ipc: Any) -> None:
    s = ipc.new(SemaphoreSet, key=IPC_PRIVATE, initial=[3, 4])
    assert s.values() == [3, 4]


@pytest.mark.parametrize("initial", [-1, 32768, [1, 40000], [0, -5]])
def test_initial_out_of_range(ipc: Any, initial: Any) -> None:
    key = ipc.key()
    with pytest.raises(ValueError, match="32767"):
        SemaphoreSet(key=key, create=True, count=2, initial=initial)
    assert sem_ids_with_key(key) == []       # checked before any system call


def test_initial_wrong_length_or_type(ipc: Any) -> None:
    with pytest.raises(ValueError, match="count=3"):
        SemaphoreSet(key=ipc.key(), create=True, count=3, initial=[1, 2])
    with pytest.raises(TypeError, match="initial"):
        SemaphoreSet(key=ipc.key(), create=True, count=1, initial=1.5)


def test_count_required_to_create(ipc: Any) -> None:
    key = ipc.key()
    with pytest.raises(ValueError, match="count"):
        SemaphoreSet(key=key, create=True)
    with pytest.raises(ValueError, match="count"):
        SemaphoreSet(key=key, create=True, exclusive=True)
    with pytest.raises(ValueError, match="count"):
        SemaphoreSet(key=IPC_PRIVATE)
    assert sem_ids_with_key(key) == []


def test_count_limits() -> None:
    semmsl = sysvkit.limits().semmsl
    with pytest.raises(ValueError, match="semmsl|%d" % semmsl):
        SemaphoreSet(key=IPC_PRIVATE, count=semmsl + 1)
    with pytest.raises(ValueError, match="count"):
        SemaphoreSet(key=IPC_PRIVATE, count=-1)
    with pytest.raises(TypeError, match="count"):
        SemaphoreSet(key=IPC_PRIVATE, count=True)
    with pytest.raises(TypeError, match="count"):
        SemaphoreSet(key=IPC_PRIVATE, count="2")


def test_open_existing_takes_its_count(ipc: Any) -> None:
    path, proj = ipc.path()
    a = ipc.new(SemaphoreSet, path, proj, create=True, count=3, initial=2)
    b = SemaphoreSet(path, proj)
    assert (b.id, len(b), b.values()) == (a.id, 3, [2, 2, 2])
    c = SemaphoreSet(path, proj, count=2)        # fewer: fine, still the whole set
    assert len(c) == 3
    d = SemaphoreSet(path, proj, create=True, count=0, initial=5)    # opens, keeps values
    assert d.id == a.id and d.values() == [2, 2, 2]
    with pytest.raises(ValueError, match="count=4"):
        SemaphoreSet(path, proj, count=4)
    with pytest.raises(ValueError, match="count=4"):
        SemaphoreSet(path, proj, create=True, count=4)


def test_open_missing_and_exclusive(ipc: Any) -> None:
    path, proj = ipc.path()
    with pytest.raises(FileNotFoundError):
        SemaphoreSet(path, proj)
    with pytest.raises(FileNotFoundError):
        Semaphore(path, proj)
    s = ipc.new(SemaphoreSet, path, proj, create=True, exclusive=True, count=1)
    with pytest.raises(FileExistsError):
        SemaphoreSet(path, proj, create=True, exclusive=True, count=1)
    with pytest.raises(FileExistsError):
        Semaphore(path, proj, create=True, exclusive=True)
    assert SemaphoreSet(path, proj, create=True, count=1).id == s.id
    with pytest.raises(ValueError, match="exclusive"):
        SemaphoreSet(path, proj, exclusive=True, count=1)


@pytest.mark.parametrize("cls", [SemaphoreSet, Semaphore, Lock])
def test_identity_arguments(cls: Any, ipc: Any) -> None:
    path, proj = ipc.path()
    with pytest.raises(TypeError):
        cls(path, proj, key=1234)
    with pytest.raises(TypeError):
        cls()
    with pytest.raises(TypeError):
        cls(path)
    with pytest.raises(FileNotFoundError):
        cls(os.path.join(os.path.dirname(path), "missing"), proj)
    with pytest.raises(ValueError):
        cls(path, 0)


def test_private_key_always_creates(ipc: Any) -> None:
    a = ipc.new(SemaphoreSet, key=IPC_PRIVATE, count=1)
    b = ipc.new(SemaphoreSet, key=IPC_PRIVATE, count=1)
    c = ipc.new(Semaphore, key=IPC_PRIVATE)
    d = ipc.new(Lock, key=IPC_PRIVATE)
    assert len({a.id, b.id, c.id, d.id}) == 4
    assert a.key == c.key == d.key == 0


def test_unsigned_key_names_same_set(ipc: Any) -> None:
    key = ipc.key()
    s = ipc.new(SemaphoreSet, key=key, create=True, count=1)
    assert SemaphoreSet(key=key & 0xFFFFFFFF).id == s.id
    assert s.key == key


@pytest.mark.parametrize("cls", [SemaphoreSet, Semaphore, Lock])
def test_mode(cls: Any, ipc: Any) -> None:
    kwargs = {"count": 1} if cls is SemaphoreSet else {}
    if cls is not Lock:
        kwargs["create"] = True
    default = ipc.new(cls, key=ipc.key(), **kwargs)
    assert default.stat().mode == 0o600
    custom = ipc.new(cls, key=ipc.key(), mode=0o640, **kwargs)
    assert custom.stat().mode == 0o640
    with pytest.raises(ValueError, match="mode"):
        cls(key=ipc.key(), mode=0o1777, **kwargs)


@pytest.mark.parametrize("cls", [SemaphoreSet, Semaphore, Lock])
def test_permission_error(cls: Any, ipc: Any, run_py: Any) -> None:
    kwargs = {"count": 1} if cls is SemaphoreSet else {}
    if cls is not Lock:
        kwargs["create"] = True
    obj = ipc.new(cls, key=ipc.key(), mode=0o600, **kwargs)
    code = """
        import os, sys, sysvkit
        if os.geteuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        cls = getattr(sysvkit, sys.argv[1])
        for opener in (lambda: cls(key=int(sys.argv[2])), lambda: cls.from_id(int(sys.argv[3]))):
            try:
                opener()
            except PermissionError:
                pass
            else:
                raise SystemExit("opened a 0o600 object of another user")
    """
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    run_py(code, cls.__name__, str(obj.key), str(obj.id))


@pytest.mark.parametrize("cls", [SemaphoreSet, Semaphore, Lock])
def test_from_id_repr_and_pickle(cls: Any, ipc: Any, run_py: Any) -> None:
    kwargs = {"count": 2, "initial": [4, 5]} if cls is SemaphoreSet else {}
    if cls is Semaphore:
        kwargs = {"initial": 4}
    if cls is not Lock:
        kwargs["create"] = True
    obj = ipc.new(cls, key=ipc.key(), **kwargs)
    same = cls.from_id(obj.id)
    assert (type(same), same.id, same.key) == (cls, obj.id, obj.key)
    r = repr(obj)
    assert cls.__name__ in r and "0x%08x" % (obj.key & 0xFFFFFFFF) in r and "id=%d" % obj.id in r
    clone = pickle.loads(pickle.dumps(obj))
    assert (type(clone), clone.id, clone.key) == (cls, obj.id, obj.key)
    # Unpickled in another process: opens (never creates) the same object.
    code = """
        import pickle, sys, sysvkit
        obj = pickle.loads(bytes.fromhex(sys.argv[1]))
        print(obj.id, obj.key, obj.stat().count)
    """
    out = run_py(code, pickle.dumps(obj).hex()).stdout.split()
    assert [int(x) for x in out] == [obj.id, obj.key, obj.stat().count]
    obj.remove()
    proc = run_py(code, pickle.dumps(obj).hex(), check=False)
    assert proc.returncode == 1 and "RemovedError" in proc.stderr
    with pytest.raises(RemovedError):
        cls.from_id(obj.id)
    with pytest.raises(FileNotFoundError):
        cls.from_id(0x7FFFFFF0)


@pytest.mark.parametrize("cls", [SemaphoreSet, Semaphore, Lock])
def test_close_and_context_manager_never_remove(cls: Any, ipc: Any) -> None:
    kwargs: dict = {"count": 1} if cls is SemaphoreSet else {}
    if cls is not Lock:
        kwargs["create"] = True
    key = ipc.key()
    obj = ipc.new(cls, key=key, **kwargs)
    if cls is SemaphoreSet:
        with obj as entered:
            assert entered is obj
        assert obj.closed
    obj.close()
    obj.close()
    assert obj.closed and "closed" in repr(obj)
    assert sem_ids_with_key(key) == [obj.id]
    assert obj.stat().id == obj.id          # stat and remove still work by id
    with pytest.raises(ValueError, match="closed"):
        if cls is SemaphoreSet:
            obj.values()
        else:
            obj.acquire(blocking=False)
    obj.remove()
    assert sem_ids_with_key(key) == []


# -- the sem_otime handshake ----------------------------------------------------------
RACE_CHILD = """
    import sysvkit
    barrier, path, proj, lock_path, lock_proj = ARGS
    barrier.wait()
    s = sysvkit.SemaphoreSet(path, proj, create=True, count=2, initial=5)
    s.op([(0, 1), (1, 2)])
    lock = sysvkit.Lock(lock_path, lock_proj)
    with lock:
        pass
"""


@pytest.mark.parametrize("method", METHODS)
def test_racing_creators_initialise_once(method: str, ipc: Any) -> None:
    n = 12
    path, proj = ipc.path()
    lock_path, lock_proj = ipc.path()
    key, lock_key = sysvkit.ftok(path, proj), sysvkit.ftok(lock_path, lock_proj)
    barrier = multiprocessing.get_context(method).Barrier(n)
    procs = []
    try:
        for _ in range(n):
            procs.append(start(method, RACE_CHILD, barrier, path, proj, lock_path, lock_proj))
        join_all(procs)
    finally:
        for ident in sem_ids_with_key(key) + sem_ids_with_key(lock_key):
            ipc.track_id("sem", ident)
    assert len(sem_ids_with_key(key)) == 1 and len(sem_ids_with_key(lock_key)) == 1
    s = SemaphoreSet(path, proj)
    assert s.values() == [5 + n, 5 + 2 * n]
    lk = Lock(lock_path, lock_proj)
    assert not lk.locked() and Semaphore.from_id(lk.id).value == 1


def test_opener_waits_for_the_creator(ipc: Any) -> None:
    key = ipc.key()
    # A creator that made the set but has not initialised it yet.
    ident = ipc.track_id("sem", ll.semget(key, 2, ll.IPC_CREAT | ll.IPC_EXCL | 0o600))
    opener = Waiter(lambda: SemaphoreSet(key=key).values())
    t0 = time.monotonic()
    opener.start()
    time.sleep(0.2)
    assert opener.is_alive()                    # still waiting for sem_otime
    ll.semctl(ident, 0, ll.SETALL, [3, 4])
    ll.semop(ident, [(0, 1, 0), (0, -1, 0)])    # what the creator does last
    opener.join(5)
    assert opener.error is None and opener.result == [3, 4]
    assert time.monotonic() - t0 < 0.9


@pytest.mark.parametrize("cls", [SemaphoreSet, Semaphore, Lock])
def test_set_never_operated_on_opens_within_a_second(cls: Any, ipc: Any) -> None:
    key = ipc.key()
    ident = ipc.track_id("sem", ll.semget(key, 1, ll.IPC_CREAT | ll.IPC_EXCL | 0o600))
    ll.semctl(ident, 0, ll.SETVAL, 1)           # another tool: no semop, sem_otime stays 0
    t0 = time.monotonic()
    obj = cls(key=key)
    elapsed = time.monotonic() - t0
    assert obj.id == ident
    assert 0.8 <= elapsed < 3.0
    assert ll.semctl(ident, 0, ll.GETVAL) == 1    # opening never re-initialises


def test_creator_failure_leaves_nothing(ipc: Any) -> None:
    # initial is checked before the call; a failing count leaves no set behind.
    key = ipc.key()
    with pytest.raises(ValueError):
        Semaphore(key=key, create=True, index=1)
    assert sem_ids_with_key(key) == []


# -- SemaphoreSet: values, members, op ------------------------------------------------
def test_set_values(sset: SemaphoreSet) -> None:
    sset.set_values([10, 0, 32767])
    assert sset.values() == [10, 0, 32767]
    with pytest.raises(ValueError, match="count=3"):
        sset.set_values([1, 2])
    with pytest.raises(ValueError, match="32767"):
        sset.set_values([1, 2, 32768])
    with pytest.raises(ValueError, match="32767"):
        sset.set_values([-1, 2, 3])
    with pytest.raises(TypeError):
        sset.set_values(5)  # type: ignore[arg-type]
    assert sset.values() == [10, 0, 32767]


def test_set_values_wakes_waiters(sset: SemaphoreSet) -> None:
    sset.set_values([0, 0, 0])
    w = Waiter(lambda: sset[1].acquire(timeout=5))
    w.start()
    wait_for(lambda: sset[1].waiting == 1)
    sset.set_values([0, 1, 0])
    w.join(5)
    assert w.result is True and sset.values() == [0, 0, 0]


def test_members(sset: SemaphoreSet) -> None:
    m = sset[1]
    assert isinstance(m, Semaphore)
    assert (m.id, m.key, m.index, m.value) == (sset.id, sset.key, 1, 2)
    assert sset[-1].index == 2 and sset[-3].index == 0
    assert [x.value for x in sset] == [1, 2, 3]
    for bad in (3, -4, 100):
        with pytest.raises(IndexError):
            sset[bad]
    with pytest.raises(TypeError):
        sset["0"]  # type: ignore[index]
    with pytest.raises(TypeError):
        sset[0:2]  # type: ignore[index]
    m.value = 7
    assert sset.values() == [1, 7, 3]
    assert not sset[0].undo and sset[0].stat().id == sset.id
    undo_set = SemaphoreSet.from_id(sset.id)
    assert undo_set.undo is False


def test_op_applies_all_changes_atomically(sset: SemaphoreSet) -> None:
    sset.op([(0, -1), (1, 2), (2, -3)])
    assert sset.values() == [0, 4, 0]
    # One change cannot proceed: none is made.
    with pytest.raises(BlockingIOError) as info:
        sset.op([(1, -1), (2, 5), (0, -1)], block=False)
    assert sset.values() == [0, 4, 0]
    assert "0x%08x" % (sset.key & 0xFFFFFFFF) in str(info.value) or "id %d" % sset.id in str(info.value)
    with pytest.raises(BlockingIOError):
        sset.op([(1, 0)], block=False)           # waiting for zero would block
    sset.op([(0, 0), (2, 0)], block=False)       # both are zero: proceeds
    sset.op([(-2, -4)])
    assert sset.values() == [0, 0, 0]


def test_op_timeout(sset: SemaphoreSet) -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        sset.op([(1, -1), (0, -2)], timeout=0.2)
    assert 0.15 <= time.monotonic() - t0 < 3
    assert sset.values() == [1, 2, 3]
    with pytest.raises(TimeoutError):
        sset.op([(0, -2)], timeout=0)            # 0 tries once
    sset.op([(0, -1)], timeout=0)
    assert sset.values() == [0, 2, 3]


def test_op_waits_then_proceeds(sset: SemaphoreSet) -> None:
    w = Waiter(lambda: sset.op([(0, -2), (2, 0)], timeout=5))
    w.start()
    wait_for(lambda: sset[0].waiting == 1 or sset[2].waiting_for_zero == 1)
    sset.set_values([2, 2, 0])
    w.join(5)
    assert w.error is None and sset.values() == [0, 2, 0]


def test_op_wait_for_zero(sset: SemaphoreSet) -> None:
    w = Waiter(lambda: sset.op([(2, 0)]))
    w.start()
    wait_for(lambda: sset[2].waiting_for_zero == 1)
    assert w.is_alive()
    sset.op([(2, -3)])
    w.join(5)
    assert not w.is_alive() and w.error is None


@pytest.mark.parametrize("ops, exc, match", [
    ([], ValueError, "ops"),
    ([(3, 1)], IndexError, "index"),
    ([(0, 1), (-4, 1)], IndexError, "index"),
    ([(0, 32768)], ValueError, "32767"),
    ([(0, -32768)], ValueError, "32767"),
    ([(0,)], TypeError, "ops"),
    ([(0, 1, 2)], TypeError, "ops"),
    ([("0", 1)], TypeError, "index"),
    ([(0, 1.0)], TypeError, "delta"),
    ("ab", TypeError, "ops"),
])
def test_op_arguments_checked_before_the_call(sset: SemaphoreSet, ops: Any, exc: Any,
                                              match: str) -> None:
    with pytest.raises(exc, match=match):
        sset.op(ops)
    assert sset.values() == [1, 2, 3]


def test_op_too_many_operations(sset: SemaphoreSet) -> None:
    semopm = sysvkit.limits().semopm
    with pytest.raises(ValueError, match="semopm|%d" % semopm):
        sset.op([(0, 0)] * (semopm + 1))
    sset.op([(0, 1), (0, -1)] * (semopm // 2))
    assert sset.values() == [1, 2, 3]


@pytest.mark.parametrize("timeout", [-1, -0.5, math.nan])
def test_op_bad_timeout(sset: SemaphoreSet, timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        sset.op([(0, -1)], timeout=timeout)
    assert sset.values() == [1, 2, 3]


def test_op_above_semvmx(sset: SemaphoreSet) -> None:
    sset.set_values([32767, 0, 0])
    with pytest.raises(ValueError, match="32767"):
        sset.op([(1, 1), (0, 1)])
    assert sset.values() == [32767, 0, 0]


# -- undo -------------------------------------------------------------------------------
UNDO_CHILD = """
    import sysvkit
    ident, undo, how = ARGS
    if how == "op":
        sysvkit.SemaphoreSet.from_id(ident).op([(0, -1), (1, 1)], undo=undo)
    else:
        assert sysvkit.Semaphore.from_id(ident, 0, undo).acquire(blocking=False)
"""


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("undo", [True, False])
def test_undo_on_exit(method: str, undo: bool, ipc: Any) -> None:
    s = ipc.new(SemaphoreSet, key=IPC_PRIVATE, count=2, initial=[3, 0])
    join_all([start(method, UNDO_CHILD, s.id, undo, "acquire")])
    assert s.values() == ([3, 0] if undo else [2, 0])
    join_all([start(method, UNDO_CHILD, s.id, undo, "op")])
    assert s.values() == ([3, 0] if undo else [1, 1])


def test_undo_defaults(ipc: Any) -> None:
    s = ipc.new(SemaphoreSet, key=IPC_PRIVATE, count=1, undo=True)
    assert s.undo and s[0].undo
    assert not ipc.new(Semaphore, key=IPC_PRIVATE).undo
    u = ipc.new(Semaphore, key=IPC_PRIVATE, undo=True)
    assert u.undo and "undo" in repr(u)
    assert pickle.loads(pickle.dumps(u)).undo


def test_set_undo_default_applies_to_op(ipc: Any, run_py: Any) -> None:
    path, proj = ipc.path()
    s = ipc.new(SemaphoreSet, path, proj, create=True, count=2, initial=[3, 0])
    code = """
        import sys, sysvkit
        undo = sys.argv[3] == "1"
        s = sysvkit.SemaphoreSet(sys.argv[1], int(sys.argv[2]), undo=undo)
        s.op([(0, -1), (1, 1)])
        s.op([(0, -1)], undo=not undo)
        s[1].acquire()
    """
    run_py(code, path, str(proj), "1")
    # undo: the first op and the acquire are undone, the second -1 stays.
    assert s.values() == [2, 0]
    # no undo: the first op and the acquire stay, the second -1 is undone.
    run_py(code, path, str(proj), "0")
    assert s.values() == [1, 0]


# -- Semaphore --------------------------------------------------------------------------
def test_semaphore_is_a_set_of_one(ipc: Any) -> None:
    path, proj = ipc.path()
    s = ipc.new(Semaphore, path, proj, create=True, initial=2)
    assert s.value == 2 and s.index == 0 and s.stat().count == 1
    assert s.key == sysvkit.ftok(path, proj)
    again = Semaphore(path, proj, create=True, initial=9)     # opens: value kept
    assert again.id == s.id and again.value == 2
    assert len(SemaphoreSet(path, proj)) == 1


def test_semaphore_member_of_existing_set(ipc: Any) -> None:
    path, proj = ipc.path()
    s = ipc.new(SemaphoreSet, path, proj, create=True, count=3, initial=[1, 2, 3])
    m = Semaphore(path, proj, index=2)
    assert (m.id, m.index, m.value) == (s.id, 2, 3)
    assert m.acquire() and s.values() == [1, 2, 2]
    with pytest.raises(ValueError, match="index"):
        Semaphore(path, proj, index=3)
    with pytest.raises(ValueError, match="index"):
        Semaphore(path, proj, index=-1)
    with pytest.raises(ValueError, match="index"):
        Semaphore.from_id(s.id, 3)
    assert Semaphore.from_id(s.id, 1).value == 2
    assert pickle.loads(pickle.dumps(m)).index == 2


def test_semaphore_create_with_index_needs_existing_set(ipc: Any) -> None:
    key = ipc.key()
    with pytest.raises(ValueError, match="index"):
        Semaphore(key=key, create=True, exclusive=True, index=1)
    with pytest.raises(ValueError, match="index"):
        Semaphore(key=IPC_PRIVATE, index=1)
    assert sem_ids_with_key(key) == []


@pytest.mark.parametrize("initial", [-1, 32768])
def test_semaphore_initial_range(initial: int, ipc: Any) -> None:
    with pytest.raises(ValueError, match="32767"):
        Semaphore(key=ipc.key(), create=True, initial=initial)


def test_acquire_release_like_threading(sem: Semaphore) -> None:
    assert sem.acquire(blocking=False) is False
    assert sem.acquire(timeout=0) is False
    sem.release()
    assert sem.value == 1
    assert sem.acquire() is True and sem.value == 0
    sem.release(3)
    assert sem.value == 3
    assert sem.acquire(True, None) is True
    assert sem.acquire(timeout=-1) is True
    assert sem.acquire(blocking=True, timeout=1.0) is True
    assert sem.value == 0


def test_acquire_timeout_returns_false(sem: Semaphore) -> None:
    t0 = time.monotonic()
    assert sem.acquire(timeout=0.2) is False
    assert 0.15 <= time.monotonic() - t0 < 3


def test_acquire_timeout_minus_one_waits_for_ever(sem: Semaphore) -> None:
    w = Waiter(lambda: sem.acquire(timeout=-1))
    w.start()
    wait_for(lambda: sem.waiting == 1)
    time.sleep(0.1)
    assert w.is_alive()
    sem.release()
    w.join(5)
    assert w.result is True and sem.value == 0


@pytest.mark.parametrize("kwargs, exc", [
    ({"timeout": -2}, ValueError),
    ({"timeout": -0.5}, ValueError),
    ({"timeout": math.nan}, ValueError),
    ({"timeout": "1"}, TypeError),
    ({"blocking": False, "timeout": 1}, ValueError),
])
def test_acquire_bad_arguments(sem: Semaphore, kwargs: Any, exc: Any) -> None:
    sem.release()
    with pytest.raises(exc, match="timeout"):
        sem.acquire(**kwargs)
    assert sem.value == 1


def test_release_arguments(sem: Semaphore) -> None:
    for bad in (0, -1, 32768):
        with pytest.raises(ValueError, match="n"):
            sem.release(bad)
    with pytest.raises(TypeError):
        sem.release(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sem.release(True)
    sem.release(32767)
    with pytest.raises(ValueError, match="32767"):
        sem.release()
    assert sem.value == 32767


def test_with_acquires_and_releases(sem: Semaphore) -> None:
    sem.value = 2
    with sem as entered:
        assert entered is sem
        assert sem.value == 1
    assert sem.value == 2 and not sem.closed
    with pytest.raises(ZeroDivisionError):
        with sem:
            1 / 0
    assert sem.value == 2


def test_value_setter(sem: Semaphore) -> None:
    sem.value = 32767
    assert sem.value == 32767
    for bad in (-1, 32768):
        with pytest.raises(ValueError, match="32767"):
            sem.value = bad
    with pytest.raises(TypeError):
        sem.value = "3"  # type: ignore[assignment]
    assert sem.value == 32767


def test_value_setter_wakes_waiter(sem: Semaphore) -> None:
    w = Waiter(lambda: sem.acquire(timeout=5))
    w.start()
    wait_for(lambda: sem.waiting == 1)
    sem.value = 1
    w.join(5)
    assert w.result is True


def test_waiting_counts_and_last_pid(sem: Semaphore, run_py: Any) -> None:
    assert (sem.waiting, sem.waiting_for_zero) == (0, 0)
    sem.release()
    assert sem.last_pid == os.getpid()
    sem.value = 0
    waiters = [Waiter(lambda: sem.acquire(timeout=5)) for _ in range(2)]
    for w in waiters:
        w.start()
    wait_for(lambda: sem.waiting == 2)
    sem.release(2)
    for w in waiters:
        w.join(5)
    assert [w.result for w in waiters] == [True, True]
    out = run_py("""
        import os, sys, sysvkit
        s = sysvkit.Semaphore.from_id(int(sys.argv[1]))
        s.release()
        print(os.getpid())
    """, str(sem.id)).stdout
    assert sem.last_pid == int(out) != os.getpid()
    z = Waiter(lambda: sem.wait_zero(timeout=5))
    z.start()
    wait_for(lambda: sem.waiting_for_zero == 1)
    assert z.is_alive()
    sem.acquire()
    z.join(5)
    assert z.result is True and sem.waiting_for_zero == 0


def test_wait_zero(sem: Semaphore) -> None:
    assert sem.wait_zero() is True
    assert sem.wait_zero(timeout=0) is True
    sem.release()
    assert sem.wait_zero(timeout=0) is False
    t0 = time.monotonic()
    assert sem.wait_zero(timeout=0.2) is False
    assert 0.15 <= time.monotonic() - t0 < 3
    for bad in (-1, math.nan):
        with pytest.raises(ValueError, match="timeout"):
            sem.wait_zero(timeout=bad)
    assert sem.value == 1


def test_semaphore_across_threads(sem: Semaphore) -> None:
    # Signalling: one thread releases, another acquires.
    got: List[int] = []

    def consumer() -> None:
        for i in range(50):
            assert sem.acquire(timeout=5)
            got.append(i)

    t = threading.Thread(target=consumer)
    t.start()
    for _ in range(50):
        sem.release()
    t.join(10)
    assert got == list(range(50)) and sem.value == 0


# -- Lock ---------------------------------------------------------------------------------
def test_lock_like_threading(lock: Lock) -> None:
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(blocking=False) is False
    assert lock.acquire(timeout=0) is False
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.2) is False
    assert 0.15 <= time.monotonic() - t0 < 3
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    assert not lock.locked() and Semaphore.from_id(lock.id).value == 1
    assert lock.acquire(True, -1) is True
    assert lock.acquire(False) is False
    lock.release()


def test_lock_with(lock: Lock) -> None:
    with lock as entered:
        assert entered is lock
        assert lock.locked()
    assert not lock.locked() and not lock.closed
    with pytest.raises(KeyError):
        with lock:
            raise KeyError("x")
    assert not lock.locked()


@pytest.mark.parametrize("kwargs, exc", [
    ({"blocking": False, "timeout": 1}, ValueError),
    ({"timeout": -2}, ValueError),
    ({"timeout": math.nan}, ValueError),
    ({"timeout": "x"}, TypeError),
])
def test_lock_bad_arguments(lock: Lock, kwargs: Any, exc: Any) -> None:
    with pytest.raises(exc, match="timeout"):
        lock.acquire(**kwargs)
    assert not lock.locked()


def test_lock_opens_or_creates_unlocked(ipc: Any) -> None:
    path, proj = ipc.path()
    a = ipc.new(Lock, path, proj)
    assert a.key == sysvkit.ftok(path, proj)
    assert a.acquire()
    b = Lock(path, proj)                       # opens the same lock, still held
    assert b.id == a.id and b.locked()
    assert not b.acquire(blocking=False)
    a.release()
    assert b.acquire(blocking=False)
    b.release()
    info = a.stat()
    assert (info.key, info.id, info.count, info.mode) == (a.key, a.id, 1, 0o600)
    assert Lock(key=a.key).id == a.id


def test_lock_release_in_another_thread_of_the_process(lock: Lock) -> None:
    lock.acquire()
    w = Waiter(lock.acquire)
    w.start()
    wait_for(lambda: Semaphore.from_id(lock.id).waiting == 1)
    lock.release()
    w.join(5)
    assert w.result is True and lock.locked()
    lock.release()


def test_lock_is_not_a_counting_semaphore(lock: Lock) -> None:
    for name in ("value", "wait_zero", "set_values", "op"):
        assert not hasattr(lock, name)
    with pytest.raises(TypeError):
        lock.release(2)  # type: ignore[call-arg]
    assert not lock.locked()


def test_no_leaks_on_hot_and_error_paths(lock: Lock, sem: Semaphore,
                                         rss_flat: Callable[..., int]) -> None:
    def cycle() -> None:
        lock.acquire()
        lock.acquire(blocking=False)
        lock.release()
        try:
            lock.release()
        except RuntimeError:
            pass
        sem.release()
        sem.acquire(timeout=0)
        sem.acquire(blocking=False)
        sem.wait_zero(0)
        try:
            sem.acquire(timeout=-5)
        except ValueError:
            pass

    rss_flat(cycle, times=50_000)


MUTEX_CHILD = """
    import sysvkit
    lock, shm_id, n = ARGS
    with sysvkit.SharedMemory.from_id(shm_id) as shm:
        for _ in range(n):
            with lock:
                v = int.from_bytes(shm.read(8, 0), "little")
                shm.write((v + 1).to_bytes(8, "little"), 0)
"""


@pytest.mark.parametrize("method", METHODS)
def test_lock_mutual_exclusion(method: str, ipc: Any) -> None:
    # 6 processes x 2,000 read-modify-write increments of a shared counter.
    nproc, n = 6, 2000
    lk = ipc.new(Lock, key=IPC_PRIVATE)
    shm = ipc.new(sysvkit.SharedMemory, key=IPC_PRIVATE, size=8)
    procs = [start(method, MUTEX_CHILD, lk, shm.id, n) for _ in range(nproc)]
    join_all(procs, timeout=120)
    assert int.from_bytes(shm.read(8, 0), "little") == nproc * n
    assert not lk.locked()


def _held_child(what: str, ident: int) -> "subprocess.Popen[str]":
    code = """
        import sys, time, sysvkit
        what, ident = sys.argv[1], int(sys.argv[2])
        if what == "lock":
            obj = sysvkit.Lock.from_id(ident)
        else:
            obj = sysvkit.Semaphore.from_id(ident, 0, what == "undo")
        assert obj.acquire(timeout=5)
        print("held", flush=True)
        time.sleep(60)
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), what, str(ident)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_holder_killed_releases_it(lock: Lock) -> None:
    proc = _held_child("lock", lock.id)
    try:
        assert lock.locked() and not lock.acquire(blocking=False)
        w = Waiter(lambda: lock.acquire(timeout=10))
        w.start()
        wait_for(lambda: Semaphore.from_id(lock.id).waiting == 1)
        t0 = time.monotonic()
        proc.kill()
        w.join(10)
        assert w.result is True
        assert time.monotonic() - t0 < 2
    finally:
        proc.kill()
        proc.wait()
    assert lock.locked()
    lock.release()


@pytest.mark.parametrize("undo", [True, False])
def test_semaphore_holder_killed(undo: bool, ipc: Any) -> None:
    s = ipc.new(Semaphore, key=IPC_PRIVATE, initial=1, undo=undo)
    proc = _held_child("undo" if undo else "plain", s.id)
    assert s.value == 0
    proc.kill()
    proc.wait()
    assert s.value == (1 if undo else 0)


# -- signals --------------------------------------------------------------------------------
def _blocker(kind: str, ipc: Any) -> Any:
    """An object whose acquire() blocks, and a function that unblocks it."""
    if kind == "lock":
        lk = ipc.new(Lock, key=IPC_PRIVATE)
        lk.acquire()
        return lk, lk.release
    s = ipc.new(Semaphore, key=IPC_PRIVATE, initial=0)
    return s, s.release


@pytest.mark.parametrize("kind", ["semaphore", "lock"])
def test_signal_handler_runs_and_acquire_resumes(kind: str, ipc: Any) -> None:
    obj, unblock = _blocker(kind, ipc)
    calls: List[int] = []

    def later() -> None:
        time.sleep(0.4)
        unblock()

    w = Waiter(later)
    old = signal.signal(signal.SIGALRM, lambda *a: calls.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
        w.start()
        assert obj.acquire(timeout=10) is True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        w.join(5)
    assert len(calls) >= 3


@pytest.mark.parametrize("kind", ["semaphore", "lock"])
def test_signals_do_not_extend_the_timeout(kind: str, ipc: Any) -> None:
    obj, _ = _blocker(kind, ipc)
    calls: List[int] = []
    old = signal.signal(signal.SIGALRM, lambda *a: calls.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.03, 0.03)
        t0 = time.monotonic()
        assert obj.acquire(timeout=0.4) is False
        elapsed = time.monotonic() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(calls) >= 3
    assert 0.35 <= elapsed < 3


def test_signal_handler_exception_ends_the_wait(sem: Semaphore, sset: SemaphoreSet) -> None:
    def boom(*a: Any) -> None:
        raise ZeroDivisionError("from the handler")

    old = signal.signal(signal.SIGALRM, boom)
    try:
        for call in (sem.acquire, lambda: sem.acquire(timeout=30), sset[2].wait_zero,
                     lambda: sset.op([(0, -5)])):
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            with pytest.raises(ZeroDivisionError):
                call()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert sem.value == 0 and sset.values() == [1, 2, 3]


@pytest.mark.parametrize("kind", ["semaphore", "lock", "wait_zero", "op"])
def test_ctrl_c_interrupts_blocked_call(kind: str, ipc: Any) -> None:
    s = ipc.new(SemaphoreSet, key=IPC_PRIVATE, count=1, initial=1)
    lk = ipc.new(Lock, key=IPC_PRIVATE)
    lk.acquire()
    if kind == "semaphore":
        s.set_values([0])
    code = """
        import sys, time, sysvkit
        kind, sid, lid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        calls = {
            "semaphore": lambda: sysvkit.Semaphore.from_id(sid).acquire(),
            "lock": lambda: sysvkit.Lock.from_id(lid).acquire(),
            "wait_zero": lambda: sysvkit.Semaphore.from_id(sid).wait_zero(),
            "op": lambda: sysvkit.SemaphoreSet.from_id(sid).op([(0, -2)]),
        }
        print("ready", flush=True)
        try:
            calls[kind]()
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
            sys.exit(0)
        sys.exit(3)
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), kind,
                             str(s.id), str(lk.id)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        member = Semaphore.from_id(s.id if kind != "lock" else lk.id)
        wait_for(lambda: member.waiting + member.waiting_for_zero == 1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert time.monotonic() - t0 < 2
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0 and "KeyboardInterrupt" in out


# -- removal --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["semaphore", "lock", "wait_zero", "op", "op-timeout",
                                  "acquire-timeout"])
def test_removed_by_another_process_wakes_waiters(kind: str, ipc: Any, run_py: Any) -> None:
    s = ipc.new(SemaphoreSet, key=IPC_PRIVATE, count=1, initial=0)
    lk = ipc.new(Lock, key=IPC_PRIVATE)
    lk.acquire()
    calls = {
        "semaphore": lambda: s[0].acquire(),
        "acquire-timeout": lambda: s[0].acquire(timeout=30),
        "lock": lambda: lk.acquire(),
        "wait_zero": lambda: (s.set_values([1]), s[0].wait_zero()),
        "op": lambda: s.op([(0, -1)]),
        "op-timeout": lambda: s.op([(0, -1)], timeout=30),
    }
    target = lk if kind == "lock" else s
    w = Waiter(calls[kind])
    w.start()
    member = Semaphore.from_id(target.id)
    wait_for(lambda: member.waiting + member.waiting_for_zero == 1)
    run_py("""
        import sys, sysvkit
        sysvkit.SemaphoreSet.from_id(int(sys.argv[1])).remove()
    """, str(target.id))
    w.join(5)
    assert not w.is_alive()
    assert isinstance(w.error, RemovedError)
    assert isinstance(w.error, FileNotFoundError)


def test_use_after_remove(ipc: Any) -> None:
    s = ipc.new(SemaphoreSet, key=IPC_PRIVATE, count=2, initial=1)
    m = s[0]
    single = ipc.new(Semaphore, key=IPC_PRIVATE, initial=1)
    lk = ipc.new(Lock, key=IPC_PRIVATE)
    s.remove()
    single.remove()
    lk.remove()
    calls = [
        s.values, lambda: s.set_values([1, 1]), lambda: s.op([(0, -1)]),
        lambda: s.op([(0, 1)], block=False), s.stat, s.remove,
        m.acquire, m.release, lambda: m.value, lambda: setattr(m, "value", 1),
        lambda: m.waiting, lambda: m.wait_zero(0), lambda: m.acquire(blocking=False),
        single.acquire, single.release, lambda: single.last_pid,
        lk.acquire, lk.release, lk.locked, lk.stat, lk.remove,
        lambda: lk.acquire(blocking=False), lambda: lk.__enter__(),
    ]
    for call in calls:
        with pytest.raises(RemovedError) as info:
            call()
        assert info.value.errno is not None
    with pytest.raises(RemovedError):
        SemaphoreSet.from_id(s.id)
    with pytest.raises(RemovedError):
        Lock.from_id(lk.id)
    assert "0x" in repr(s) and not s.exists()


def test_errors_name_the_object(sset: SemaphoreSet) -> None:
    sset.remove()
    with pytest.raises(RemovedError) as info:
        sset[0].acquire()
    assert "id %d" % sset.id in str(info.value)


# -- interop with sysv_ipc ------------------------------------------------------------------
def test_interop_sysv_ipc_creates(ipc: Any) -> None:
    sysv_ipc = pytest.importorskip("sysv_ipc")
    key = ipc.key()
    theirs = sysv_ipc.Semaphore(key, sysv_ipc.IPC_CREX, mode=0o600, initial_value=2)
    ipc.track_id("sem", theirs.id)
    theirs.release()                    # an operation: sem_otime set, no waiting
    ours = Semaphore(key=key)
    assert ours.id == theirs.id and ours.value == 3
    assert ours.acquire() and theirs.value == 2
    theirs.acquire()
    theirs.acquire()
    assert not ours.acquire(blocking=False)
    ours.release(2)
    theirs.acquire()
    assert ours.value == 1
    lk = Lock(key=key)                  # a Lock on their semaphore (value 1: unlocked)
    assert not lk.locked() and lk.acquire(blocking=False)
    assert theirs.value == 0
    lk.release()
    assert theirs.value == 1


def test_interop_sysvkit_creates(ipc: Any) -> None:
    sysv_ipc = pytest.importorskip("sysv_ipc")
    ours = ipc.new(Semaphore, key=ipc.key(), create=True, initial=1)
    theirs = sysv_ipc.Semaphore(ours.key)
    assert theirs.id == ours.id and theirs.value == 1
    theirs.acquire()
    assert ours.value == 0 and not ours.acquire(blocking=False)
    w = Waiter(lambda: ours.acquire(timeout=5))
    w.start()
    wait_for(lambda: ours.waiting == 1)
    theirs.release()
    w.join(5)
    assert w.result is True
    ours.release()
    theirs.acquire()
    lk = ipc.new(Lock, key=ipc.key())
    their_lock = sysv_ipc.Semaphore(lk.key)
    their_lock.block = False
    with lk:
        assert their_lock.value == 0
        with pytest.raises(sysv_ipc.BusyError):
            their_lock.acquire()
    assert their_lock.value == 1
    s = ipc.new(SemaphoreSet, key=ipc.key(), create=True, count=2, initial=[4, 5])
    assert sysv_ipc.Semaphore(s.key).value == 4    # sysv_ipc sees member 0


def test_set_made_by_sysv_ipc_never_operated_on(ipc: Any) -> None:
    sysv_ipc = pytest.importorskip("sysv_ipc")
    key = ipc.key()
    theirs = sysv_ipc.Semaphore(key, sysv_ipc.IPC_CREX, mode=0o600, initial_value=4)
    ipc.track_id("sem", theirs.id)
    t0 = time.monotonic()
    ours = Semaphore(key=key)
    assert time.monotonic() - t0 < 3
    assert ours.value == 4


# -- the reference loop ---------------------------------------------------------------------
def test_bench_c_lock_pair_makes_the_lock_calls(lock: Lock) -> None:
    from sysvkit import _core
    assert _core.bench_c_lock_pair(lock.id, 1000) > 0
    assert not lock.locked()
    lock.acquire()
    with pytest.raises(BlockingIOError):
        _core.bench_c_lock_pair(lock.id, 1)   # IPC_NOWAIT, as Lock's first try
    lock.release()


def test_signatures_follow_threading() -> None:
    import inspect
    lock_acquire = inspect.signature(Lock.acquire).parameters
    sem_acquire = inspect.signature(Semaphore.acquire).parameters
    assert (lock_acquire["blocking"].default, lock_acquire["timeout"].default) == (True, -1)
    assert (sem_acquire["blocking"].default, sem_acquire["timeout"].default) == (True, None)
    assert inspect.signature(Semaphore.release).parameters["n"].default == 1
    assert list(inspect.signature(Lock.release).parameters) == ["self"]
    for cls in (SemaphoreSet, Semaphore, Lock):
        assert cls.__doc__ and "Error" in cls.__doc__
    for meth in (Lock.acquire, Lock.release, Lock.locked, Semaphore.acquire,
                 Semaphore.release, Semaphore.wait_zero, SemaphoreSet.op):
        assert meth.__doc__ and len(meth.__doc__.splitlines()) > 1
