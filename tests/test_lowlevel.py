"""sysvkit.lowlevel against the real kernel: every wrapper, its round
trips, each errno path, signals, the GIL, timeouts, and a leak loop."""

from __future__ import annotations

import array
import ctypes
import errno
import gc
import json
import os
import pickle
import platform
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from typing import Any, Callable, Iterator, List, Optional

import pytest

import sysvkit
from sysvkit import lowlevel as ll

RunPy = Callable[..., "subprocess.CompletedProcess[str]"]

NOBODY = 65534
PAGE = resource.getpagesize()


# -- helpers ------------------------------------------------------------------------------


def posix_timers() -> str:
    """This process's POSIX timers (empty when none is left)."""
    with open("/proc/self/timers") as f:
        return f.read().strip()

def sysctl(name: str) -> List[int]:
    with open("/proc/sys/kernel/" + name) as f:
        return [int(x) for x in f.read().split()]


def key_hex(key: int) -> str:
    return "0x%08x" % (key & 0xFFFFFFFF)


# System call numbers, to see that a thread or process is blocked in a call.
_SYSCALLS = {
    "x86_64": {"semop": {65, 220}, "msgsnd": {69}, "msgrcv": {70}},
    "aarch64": {"semop": {193, 192}, "msgsnd": {189}, "msgrcv": {188}},
}.get(platform.machine())


def wait_blocked(tid: int, call: str, pid: Optional[int] = None, timeout: float = 10) -> None:
    """Wait until thread ``tid`` (of process ``pid``, default this one) sits
    in the system call ``call``; where /proc cannot tell, wait a little."""
    path = "/proc/%d/task/%d/syscall" % (pid or os.getpid(), tid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                nr = f.read().split()[0]
        except (OSError, IndexError):
            nr = "?"
        if _SYSCALLS is None or not nr.lstrip("-").isdigit():
            time.sleep(0.3)
            return
        if int(nr) in _SYSCALLS[call]:
            time.sleep(0.02)   # past the syscall entry, asleep in the kernel
            return
        time.sleep(0.005)
    raise AssertionError("thread %d never blocked in %s" % (tid, call))


class Background:
    """Run ``fn`` in a thread; keep its result or exception and timing."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.result: Any = None
        self.exc: Optional[BaseException] = None
        self.elapsed = -1.0
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.started.wait()

    def _run(self) -> None:
        t0 = time.monotonic()
        self.started.set()
        try:
            self.result = self.fn()
        except BaseException as exc:   # noqa: B902 - reported to the test
            self.exc = exc
        self.elapsed = time.monotonic() - t0

    @property
    def tid(self) -> int:
        tid = self.thread.native_id
        assert tid is not None
        return tid

    def join(self, timeout: float = 10) -> "Background":
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background call did not finish"
        return self


def check_oserror(exc: BaseException, cls: type, err: int, call: str, what: str) -> None:
    """The exception is exactly ``cls`` with ``errno`` kept and a message
    naming the call and the object."""
    assert type(exc) is cls, repr(exc)
    assert isinstance(exc, OSError)
    assert exc.errno == err, repr(exc)
    assert call in str(exc) and what in str(exc), str(exc)


@pytest.fixture
def new_msq(ipc: Any) -> Callable[..., int]:
    def make(mode: int = 0o600, key: Optional[int] = None) -> int:
        k = ll.IPC_PRIVATE if key is None else key
        return ipc.track_id("msg", ll.msgget(k, ll.IPC_CREAT | ll.IPC_EXCL | mode))
    return make


@pytest.fixture
def new_sem(ipc: Any) -> Callable[..., int]:
    def make(n: int = 1, mode: int = 0o600, key: Optional[int] = None) -> int:
        k = ll.IPC_PRIVATE if key is None else key
        return ipc.track_id("sem", ll.semget(k, n, ll.IPC_CREAT | ll.IPC_EXCL | mode))
    return make


@pytest.fixture
def new_shm(ipc: Any) -> Callable[..., int]:
    def make(size: int = 4096, mode: int = 0o600, key: Optional[int] = None) -> int:
        k = ll.IPC_PRIVATE if key is None else key
        return ipc.track_id("shm", ll.shmget(k, size, ll.IPC_CREAT | ll.IPC_EXCL | mode))
    return make


@pytest.fixture
def attach() -> Iterator[Callable[..., Any]]:
    """shmat() whose attachments are detached at teardown."""
    made: List[Any] = []

    def do(shmid: int, flags: int = 0) -> Any:
        att = ll.shmat(shmid, flags)
        made.append(att)
        return att
    yield do
    for att in made:
        try:
            att.detach()
        except BufferError:
            pass


@pytest.fixture
def itimer() -> Iterator[List[float]]:
    """A SIGALRM handler that records when it ran; restored afterwards."""
    calls: List[float] = []
    old = signal.signal(signal.SIGALRM, lambda signo, frame: calls.append(time.monotonic()))
    try:
        yield calls
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- constants -----------------------------------------------------------------------------

LINUX_VALUES = {
    "IPC_PRIVATE": 0, "IPC_CREAT": 0o1000, "IPC_EXCL": 0o2000, "IPC_NOWAIT": 0o4000,
    "IPC_RMID": 0, "IPC_SET": 1, "IPC_STAT": 2, "IPC_INFO": 3,
    "SHM_RDONLY": 0o10000, "SHM_RND": 0o20000, "SHM_EXEC": 0o100000,
    "SHM_LOCK": 11, "SHM_UNLOCK": 12, "SHM_STAT": 13, "SHM_INFO": 14, "SHM_STAT_ANY": 15,
    "SHM_DEST": 0o1000, "SHM_LOCKED": 0o2000, "SHM_HUGETLB": 0o4000, "SHM_NORESERVE": 0o10000,
    "MSG_NOERROR": 0o10000, "MSG_EXCEPT": 0o20000, "MSG_COPY": 0o40000,
    "MSG_STAT": 11, "MSG_INFO": 12, "MSG_STAT_ANY": 13,
    "SEM_UNDO": 0x1000, "GETPID": 11, "GETVAL": 12, "GETALL": 13, "GETNCNT": 14,
    "GETZCNT": 15, "SETVAL": 16, "SETALL": 17, "SEM_STAT": 18, "SEM_INFO": 19,
    "SEM_STAT_ANY": 20, "SEMVMX": 32767,
}


def test_constants_have_linux_values() -> None:
    for name, value in LINUX_VALUES.items():
        got = getattr(ll, name)
        assert type(got) is int, name
        assert got == value, (name, got, value)


def test_lowlevel_exports() -> None:
    for name in ("ftok", "shmget", "shmat", "shmdt", "shmctl", "msgget", "msgsnd", "msgrcv",
                 "msgctl", "semget", "semop", "semtimedop", "semctl", "Attachment",
                 "RemovedError"):
        assert name in ll.__all__, name
    for name in LINUX_VALUES:
        assert name in ll.__all__, name
    public = {name for name in dir(ll) if not name.startswith("_")}
    assert set(ll.__all__) == public


def test_monotonic_is_clock_monotonic() -> None:
    a = time.clock_gettime(time.CLOCK_MONOTONIC)
    b = ll.monotonic()
    c = time.clock_gettime(time.CLOCK_MONOTONIC)
    assert type(b) is float
    assert a - 1e-6 <= b <= c + 1e-6


def test_removed_error_class() -> None:
    assert ll.RemovedError is sysvkit.RemovedError
    exc = ll.RemovedError(errno.EIDRM, "Identifier removed (msgrcv, id 3)")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is ll.RemovedError and back.errno == errno.EIDRM
    assert str(back) == str(exc)
    assert issubclass(ll.RemovedError, FileNotFoundError)
    assert ll.RemovedError.__module__ == "sysvkit"
    assert ll.RemovedError.__name__ == "RemovedError"


# -- shared memory ---------------------------------------------------------------------------

def test_shmget_create_open_and_errors(ipc: Any, new_shm: Callable[..., int]) -> None:
    key = ipc.key()
    with pytest.raises(FileNotFoundError) as info:
        ll.shmget(key, 0, 0)
    check_oserror(info.value, FileNotFoundError, errno.ENOENT, "shmget", key_hex(key))
    shmid = new_shm(8192, key=key)
    assert ll.shmget(key, 0, 0) == shmid
    assert ll.shmget(key & 0xFFFFFFFF, 4096, 0o600) == shmid
    with pytest.raises(FileExistsError) as info:
        ll.shmget(key, 8192, ll.IPC_CREAT | ll.IPC_EXCL | 0o600)
    check_oserror(info.value, FileExistsError, errno.EEXIST, "shmget", key_hex(key))
    with pytest.raises(OSError) as info:      # larger than the segment
        ll.shmget(key, 8193, 0)
    check_oserror(info.value, OSError, errno.EINVAL, "shmget", key_hex(key))
    with pytest.raises(OSError) as info:      # size 0 cannot create
        ll.shmget(ll.IPC_PRIVATE, 0, ll.IPC_CREAT | 0o600)
    assert info.value.errno == errno.EINVAL
    assert "key 0x00000000" in str(info.value)


def test_shmat_buffer_roundtrip(new_shm: Callable[..., int], attach: Any) -> None:
    shmid = new_shm(10000)
    a = attach(shmid)
    assert isinstance(a, ll.Attachment)
    assert (len(a), a.size, a.shmid, a.readonly, a.closed, a.exports) == (
        10000, 10000, shmid, False, False, 0)
    assert a.address != 0 and a.address % PAGE == 0
    assert a.read() == bytes(10000)                       # new segments read as zeros
    with memoryview(a) as m:
        assert a.exports == 1
        assert (m.nbytes, m.readonly, m.format, m.itemsize) == (10000, False, "B", 1)
        m[:5] = b"hello"
        m[-3:] = b"end"
    assert a.exports == 0
    assert a.read(5) == b"hello"
    assert a.read(3, 9997) == b"end"
    assert a.read(offset=9998) == b"nd"
    assert a.read(0, 10000) == b""
    assert a.write(b"world", 5) == 5
    assert a.write(bytearray(b"ab"), 0) == 2
    assert a.write(memoryview(b"xyz"), 9997) == 3
    assert a.write(array.array("B", [1, 2]), 100) == 2
    assert a.read(10) == b"abllowor" + b"ld"[:2]
    # A second attachment of the same segment sees the same bytes.
    b = attach(shmid)
    assert b.address != a.address
    assert b.read(10) == a.read(10)
    b.write(b"Z", 0)
    assert a.read(1) == b"Z"
    assert ll.shmctl(shmid, ll.IPC_STAT)[8] == 2
    assert "shmid=%d" % shmid in repr(a) and "size=10000" in repr(a)


def test_shmat_large_write_and_numpy(new_shm: Callable[..., int], attach: Any) -> None:
    np = pytest.importorskip("numpy")
    shmid = new_shm(1 << 20)
    a = attach(shmid)
    data = bytes(range(256)) * 4096
    assert a.write(data) == len(data)                     # the GIL-free copy path
    assert a.read() == data
    # np.frombuffer holds the buffer export (np.ndarray(buffer=...) does not:
    # numpy releases the export and keeps only a reference).
    arr = np.frombuffer(a, "u8")                          # zero copy
    arr.flags.writeable = True
    assert a.exports == 1
    arr[0] = 0xFFFFFFFFFFFFFFFF
    assert a.read(8) == b"\xff" * 8
    with pytest.raises(BufferError):
        a.detach()
    del arr
    assert a.exports == 0
    a.detach()
    assert a.closed


def test_attachment_write_from_overlapping_view(new_shm: Callable[..., int],
                                                attach: Any) -> None:
    """Writing a view of the segment into itself behaves like memmove."""
    a = attach(new_shm(1 << 20))
    src = os.urandom(1 << 20)
    for n, offset in ((100, 1), (300000, 1), (300000, 4097), (100, 50)):
        a.write(src)
        with memoryview(a) as m:
            view = m[:n]
            a.write(view, offset)
            view.release()
        expected = bytearray(src)
        expected[offset:offset + n] = src[:n]
        assert a.read() == bytes(expected), (n, offset)


def test_numpy_array_over_a_detached_attachment_never_crashes(run_py: RunPy) -> None:
    """numpy.ndarray(buffer=...) keeps the object, not a buffer export: the
    detach that it cannot prevent must still leave no unmapped memory."""
    pytest.importorskip("numpy")
    proc = run_py("""
        import numpy as np
        from sysvkit import lowlevel as ll
        shmid = ll.shmget(ll.IPC_PRIVATE, 1 << 16, ll.IPC_CREAT | 0o600)
        try:
            a = ll.shmat(shmid)
            a.write(b"\\x07" * 16)
            arr = np.ndarray((1 << 16,), "u1", buffer=a)
            before = int(arr[0])
            try:
                a.detach()
                outcome = "detached"
            except BufferError:
                outcome = "refused"
            arr[:] = 1                      # must not crash either way
            print(before, outcome, int(arr.sum()), ll.shmctl(shmid, ll.IPC_STAT)[8])
        finally:
            ll.shmctl(shmid, ll.IPC_RMID)
    """)
    before, outcome, total, nattch = proc.stdout.split()
    assert before == "7"
    assert total == str(1 << 16)
    assert (outcome, nattch) in (("detached", "0"), ("refused", "1"))


def test_attachment_bounds_nothing_written(new_shm: Callable[..., int], attach: Any) -> None:
    a = attach(new_shm(100))
    a.write(b"x" * 100)
    for data, offset in ((b"12345", 96), (b"1", 100), (b"1", -1), (b"1" * 101, 0)):
        with pytest.raises(ValueError):
            a.write(data, offset)
    assert a.read() == b"x" * 100
    for size, offset in ((1, 100), (101, 0), (5, 96), (0, 101), (1, -1), (-1, 101)):
        with pytest.raises(ValueError):
            a.read(size, offset)
    with pytest.raises(TypeError):
        a.write("text")
    with pytest.raises(TypeError):
        a.write(12)
    assert a.read() == b"x" * 100


def test_attachment_detach_refused_while_exported(new_shm: Callable[..., int], attach: Any) -> None:
    shmid = new_shm(4096)
    a = attach(shmid)
    m = memoryview(a)
    m2 = m[10:20]                      # a slice holds the same export
    with pytest.raises(BufferError):
        a.detach()
    with pytest.raises(BufferError):
        ll.shmdt(a)
    m.release()
    with pytest.raises(BufferError):
        a.detach()
    assert a.read(1) == b"\0"          # still attached and usable
    m2.release()
    assert a.exports == 0
    ll.shmdt(a)
    assert a.closed and a.address == 0
    a.detach()                         # idempotent
    ll.shmdt(a)
    assert ll.shmctl(shmid, ll.IPC_STAT)[8] == 0
    for use in (lambda: a.read(), lambda: a.write(b"x"), lambda: len(a), lambda: memoryview(a)):
        with pytest.raises(ValueError):
            use()
    assert "detached" in repr(a)
    assert a.size == 4096 and a.shmid == shmid


def test_attachment_readonly(new_shm: Callable[..., int], attach: Any) -> None:
    shmid = new_shm(4096)
    rw = attach(shmid)
    rw.write(b"data")
    ro = attach(shmid, ll.SHM_RDONLY)
    assert ro.readonly and "readonly" in repr(ro)
    assert ro.read(4) == b"data"
    with memoryview(ro) as m:
        assert m.readonly
        with pytest.raises(TypeError):
            m[0] = 1
    with pytest.raises(TypeError):
        ro.write(b"x")
    with pytest.raises((BufferError, TypeError)):   # a writable buffer is refused
        (ctypes.c_char * 4096).from_buffer(ro)
    assert ro.read(4) == b"data"


def test_attachment_not_constructible_or_picklable(new_shm: Callable[..., int], attach: Any) -> None:
    with pytest.raises(TypeError):
        ll.Attachment()
    a = attach(new_shm())
    with pytest.raises(TypeError):
        pickle.dumps(a)
    with pytest.raises(TypeError):
        ll.shmdt(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ll.shmdt(a.address)  # type: ignore[arg-type]


def test_attachment_resource_warning(new_shm: Callable[..., int]) -> None:
    shmid = new_shm()
    a = ll.shmat(shmid)
    assert ll.shmctl(shmid, ll.IPC_STAT)[8] == 1
    with pytest.warns(ResourceWarning, match="detached at garbage collection"):
        del a
        gc.collect()
    assert ll.shmctl(shmid, ll.IPC_STAT)[8] == 0
    # A detached attachment does not warn.
    b = ll.shmat(shmid)
    b.detach()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del b
        gc.collect()


def test_attachment_resource_warning_as_error_in_subprocess(run_py: RunPy) -> None:
    proc = run_py("""
        import gc
        from sysvkit import lowlevel as ll
        shmid = ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600)
        try:
            a = ll.shmat(shmid)
            m = memoryview(a)
            del a            # the memoryview keeps the attachment alive
            m[0] = 7
            assert m[0] == 7
            m.release()      # now it is collected, attached: warns
            gc.collect()
            print("nattch", ll.shmctl(shmid, ll.IPC_STAT)[8])
            keep = ll.shmat(shmid)   # left attached at exit: no crash
        finally:
            ll.shmctl(shmid, ll.IPC_RMID)
    """, env=dict(os.environ, PYTHONWARNINGS="error::ResourceWarning"))
    assert "nattch 0" in proc.stdout
    assert "ResourceWarning" in proc.stderr


def test_attachment_detach_races_a_large_write(run_py: RunPy) -> None:
    """detach() from one thread while another copies into the segment
    without the GIL is refused (BufferError), never a crash."""
    proc = run_py("""
        import threading
        from sysvkit import lowlevel as ll
        shmid = ll.shmget(ll.IPC_PRIVATE, 16 << 20, ll.IPC_CREAT | 0o600)
        data = bytes(16 << 20)
        refused = 0
        try:
            for i in range(30):
                att = ll.shmat(shmid)
                errors = []
                def writer():
                    try:
                        att.write(data)
                    except ValueError:
                        errors.append("detached first")
                t = threading.Thread(target=writer)
                t.start()
                while True:
                    try:
                        att.detach()
                        break
                    except BufferError:
                        refused += 1
                t.join()
        finally:
            ll.shmctl(shmid, ll.IPC_RMID)
        print("ok", refused > 0)
    """)
    assert proc.stdout.startswith("ok")


def test_shmat_errors(new_shm: Callable[..., int], attach: Any) -> None:
    shmid = new_shm()
    ll.shmctl(shmid, ll.IPC_RMID)
    with pytest.raises(OSError) as info:
        ll.shmat(shmid)
    check_oserror(info.value, OSError, errno.EINVAL, "shmat", "id %d" % shmid)


def test_shmctl_stat_set_rmid(ipc: Any, new_shm: Callable[..., int], attach: Any) -> None:
    key = ipc.key()
    # The kernel stamps IPC times from its coarse clock, which can still
    # show the previous second: compare with before - 1.
    before = int(time.time())
    shmid = new_shm(5000, key=key)
    t = ll.shmctl(shmid, ll.IPC_STAT)
    assert len(t) == 14
    ident, k, uid, gid, cuid, cgid, mode, size, nattch, cpid, lpid, atime, dtime, ctime = t
    assert (ident, k, uid, gid, cuid, cgid) == (shmid, key, os.getuid(), os.getgid(),
                                                 os.getuid(), os.getgid())
    assert (mode & 0o777, size, nattch, cpid, atime, dtime) == (0o600, 5000, 0, os.getpid(), 0, 0)
    assert before - 1 <= ctime <= time.time() + 1
    a = attach(shmid)
    t = ll.shmctl(shmid, ll.IPC_STAT)
    assert t[8] == 1 and t[10] == os.getpid() and t[11] >= before - 1
    a.detach()
    assert ll.shmctl(shmid, ll.IPC_STAT)[12] >= before - 1
    # IPC_SET: owner and mode.
    assert ll.shmctl(shmid, ll.IPC_SET, (NOBODY, NOBODY, 0o640)) == 0
    t = ll.shmctl(shmid, ll.IPC_STAT)
    assert (t[2], t[3], t[6] & 0o777, t[4]) == (NOBODY, NOBODY, 0o640, os.getuid())
    with pytest.raises(TypeError):
        ll.shmctl(shmid, ll.IPC_SET)
    with pytest.raises(TypeError):
        ll.shmctl(shmid, ll.IPC_SET, (1, 2))
    # IPC_RMID while attached: marked for destruction, key gone, still usable.
    b = attach(shmid)
    b.write(b"still here")
    assert ll.shmctl(shmid, ll.IPC_RMID) == 0
    t = ll.shmctl(shmid, ll.IPC_STAT)
    assert t[6] & ll.SHM_DEST and t[1] == ll.IPC_PRIVATE
    with pytest.raises(FileNotFoundError):
        ll.shmget(key, 0, 0)
    assert b.read(10) == b"still here"
    b.detach()          # the last detach frees it
    with pytest.raises(OSError) as info:
        ll.shmctl(shmid, ll.IPC_STAT)
    check_oserror(info.value, OSError, errno.EINVAL, "shmctl", "id %d" % shmid)


def test_shmctl_lock_unlock(new_shm: Callable[..., int]) -> None:
    shmid = new_shm()
    try:
        assert ll.shmctl(shmid, ll.SHM_LOCK) == 0
    except PermissionError:      # pragma: no cover - no CAP_IPC_LOCK here
        pytest.skip("SHM_LOCK not permitted")
    assert ll.shmctl(shmid, ll.IPC_STAT)[6] & ll.SHM_LOCKED
    assert ll.shmctl(shmid, ll.SHM_UNLOCK) == 0
    assert not ll.shmctl(shmid, ll.IPC_STAT)[6] & ll.SHM_LOCKED


def test_shmctl_info(new_shm: Callable[..., int]) -> None:
    ids = [new_shm(3 * PAGE) for _ in range(2)]
    info = ll.shmctl(0, ll.IPC_INFO)
    assert len(info) == 6
    maxindex, shmmax, shmmin, shmmni, shmseg, shmall = info
    assert (shmmax, shmmni, shmall) == (sysctl("shmmax")[0], sysctl("shmmni")[0],
                                        sysctl("shmall")[0])
    assert shmmin == 1 and shmseg >= 1 and maxindex >= 1
    sinfo = ll.shmctl(0, ll.SHM_INFO)
    assert len(sinfo) == 7
    assert sinfo[0] >= 1 and sinfo[1] >= 2          # used_ids
    assert sinfo[2] >= 6                            # shm_tot, in pages
    assert sinfo[0] >= 1          # the highest index in use (others may be creating too)


def test_shmctl_stat_by_index(new_shm: Callable[..., int]) -> None:
    shmid = new_shm(PAGE)
    maxindex = ll.shmctl(0, ll.SHM_INFO)[0]
    for cmd in (ll.SHM_STAT, ll.SHM_STAT_ANY):
        found = {}
        for index in range(maxindex + 1):
            try:
                t = ll.shmctl(index, cmd)
            except OSError as exc:
                assert exc.errno == errno.EINVAL
                assert "index %d" % index in str(exc)
                continue
            found[t[0]] = t
        assert found[shmid] == ll.shmctl(shmid, ll.IPC_STAT)
    with pytest.raises(OSError) as info:
        ll.shmctl(maxindex + 1000, ll.SHM_STAT)
    check_oserror(info.value, OSError, errno.EINVAL, "shmctl", "index %d" % (maxindex + 1000))


# -- message queues -----------------------------------------------------------------------------

def test_msgget_create_open_and_errors(ipc: Any, new_msq: Callable[..., int]) -> None:
    key = ipc.key()
    with pytest.raises(FileNotFoundError) as info:
        ll.msgget(key, 0)
    check_oserror(info.value, FileNotFoundError, errno.ENOENT, "msgget", key_hex(key))
    qid = new_msq(key=key)
    assert ll.msgget(key, 0o600) == qid
    with pytest.raises(FileExistsError) as info:
        ll.msgget(key, ll.IPC_CREAT | ll.IPC_EXCL | 0o600)
    check_oserror(info.value, FileExistsError, errno.EEXIST, "msgget", key_hex(key))
    private = ipc.track_id("msg", ll.msgget(ll.IPC_PRIVATE, 0))   # always creates
    assert private != qid
    assert ll.msgctl(private, ll.IPC_STAT)[1] == ll.IPC_PRIVATE


def test_msg_roundtrip_and_types(new_msq: Callable[..., int]) -> None:
    q = new_msq()
    for data in (b"hello", bytearray(b"bytearray"), memoryview(b"view"), array.array("i", [1, 2]),
                 b""):
        ll.msgsnd(q, data, 3)
        assert ll.msgrcv(q, 8192) == (bytes(data), 3)
    big = os.urandom(sysctl("msgmax")[0])           # exactly msgmax
    ll.msgsnd(q, big, 1)
    assert ll.msgrcv(q, 100000) == (big, 1)         # a buffer larger than the stack's
    with pytest.raises(TypeError):
        ll.msgsnd(q, "text", 1)
    with pytest.raises(TypeError):
        ll.msgsnd(q, 5, 1)
    with pytest.raises(ValueError):
        ll.msgrcv(q, -1)
    with pytest.raises(OSError) as info:            # type 0 is not a message type
        ll.msgsnd(q, b"x", 0)
    check_oserror(info.value, OSError, errno.EINVAL, "msgsnd", "id %d" % q)
    with pytest.raises(OSError) as info:            # larger than msgmax
        ll.msgsnd(q, bytes(sysctl("msgmax")[0] + 1), 1)
    check_oserror(info.value, OSError, errno.EINVAL, "msgsnd", "id %d" % q)
    assert ll.msgctl(q, ll.IPC_STAT)[7] == 0


def test_msgrcv_selects_by_type(new_msq: Callable[..., int]) -> None:
    q = new_msq()
    for t in (5, 3, 7, 3, 1, 9):
        ll.msgsnd(q, b"m%d" % t, t)
    assert ll.msgrcv(q, 100, 3) == (b"m3", 3)                     # first of type 3
    assert ll.msgrcv(q, 100, -4) == (b"m1", 1)                    # lowest <= 4
    assert ll.msgrcv(q, 100, -4) == (b"m3", 3)
    assert ll.msgrcv(q, 100, 5, ll.MSG_EXCEPT) == (b"m7", 7)      # first not of type 5
    assert ll.msgrcv(q, 100, 0) == (b"m5", 5)                     # first of any
    with pytest.raises(OSError) as info:
        ll.msgrcv(q, 100, 4, ll.IPC_NOWAIT)
    check_oserror(info.value, OSError, errno.ENOMSG, "msgrcv", "id %d" % q)
    assert ll.msgrcv(q, 100, 0) == (b"m9", 9)
    with pytest.raises(OSError) as info:
        ll.msgrcv(q, 100, 0, ll.IPC_NOWAIT)
    assert info.value.errno == errno.ENOMSG


def test_msgrcv_msg_copy_peeks_by_index(new_msq: Callable[..., int]) -> None:
    q = new_msq()
    ll.msgsnd(q, b"first", 1)
    ll.msgsnd(q, b"second", 2)
    try:
        assert ll.msgrcv(q, 100, 1, ll.MSG_COPY | ll.IPC_NOWAIT) == (b"second", 2)
    except OSError as exc:      # pragma: no cover - kernel without CONFIG_CHECKPOINT_RESTORE
        if exc.errno == errno.ENOSYS:
            pytest.skip("MSG_COPY not supported by this kernel")
        raise
    assert ll.msgrcv(q, 100, 0, ll.MSG_COPY | ll.IPC_NOWAIT) == (b"first", 1)
    with pytest.raises(OSError) as info:
        ll.msgrcv(q, 100, 2, ll.MSG_COPY | ll.IPC_NOWAIT)      # no message at index 2
    assert info.value.errno == errno.ENOMSG
    with pytest.raises(OSError) as info:
        ll.msgrcv(q, 100, 0, ll.MSG_COPY)                      # MSG_COPY needs IPC_NOWAIT
    assert info.value.errno == errno.EINVAL
    assert ll.msgctl(q, ll.IPC_STAT)[7] == 2                   # nothing was taken
    assert ll.msgrcv(q, 100, timeout=float("inf")) == (b"first", 1)   # inf: for ever


def test_msgrcv_e2big_keeps_message_and_noerror_truncates(new_msq: Callable[..., int]) -> None:
    q = new_msq()
    ll.msgsnd(q, b"0123456789", 2)
    with pytest.raises(OSError) as info:
        ll.msgrcv(q, 4)
    check_oserror(info.value, OSError, errno.E2BIG, "msgrcv", "id %d" % q)
    assert ll.msgctl(q, ll.IPC_STAT)[7] == 1         # still queued
    assert ll.msgrcv(q, 4, 0, ll.MSG_NOERROR) == (b"0123", 2)
    assert ll.msgctl(q, ll.IPC_STAT)[7] == 0          # truncated and taken


def test_msgsnd_full_queue(new_msq: Callable[..., int]) -> None:
    q = new_msq()
    t = ll.msgctl(q, ll.IPC_STAT)
    ll.msgctl(q, ll.IPC_SET, (t[2], t[3], 0o600, 100))
    assert ll.msgctl(q, ll.IPC_STAT)[9] == 100
    ll.msgsnd(q, bytes(60), 1)
    with pytest.raises(BlockingIOError) as info:
        ll.msgsnd(q, bytes(60), 1, ll.IPC_NOWAIT)
    check_oserror(info.value, BlockingIOError, errno.EAGAIN, "msgsnd", "id %d" % q)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as tinfo:
        ll.msgsnd(q, bytes(60), 1, timeout=0.2)
    assert 0.18 <= time.monotonic() - t0 < 2
    check_oserror(tinfo.value, TimeoutError, errno.ETIMEDOUT, "msgsnd", "id %d" % q)
    with pytest.raises(TimeoutError):
        ll.msgsnd(q, bytes(60), 1, timeout=0)
    assert ll.msgctl(q, ll.IPC_STAT)[7] == 1          # nothing more was queued
    # A blocked send completes when room appears.
    bg = Background(lambda: ll.msgsnd(q, b"late", 2, timeout=10))
    wait_blocked(bg.tid, "msgsnd")
    assert ll.msgrcv(q, 100) == (bytes(60), 1)
    bg.join()
    assert bg.exc is None
    assert ll.msgrcv(q, 100, 0, ll.IPC_NOWAIT) == (b"late", 2)


def test_msgrcv_timeout(new_msq: Callable[..., int]) -> None:
    q = new_msq()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        ll.msgrcv(q, 100, timeout=0.25)
    assert 0.24 <= time.monotonic() - t0 < 2
    check_oserror(info.value, TimeoutError, errno.ETIMEDOUT, "msgrcv", "id %d" % q)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        ll.msgrcv(q, 100, timeout=0)
    assert time.monotonic() - t0 < 0.5
    for bad in (-1, -0.5, float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            ll.msgrcv(q, 100, timeout=bad)
        with pytest.raises(ValueError, match="timeout"):
            ll.msgsnd(q, b"x", 1, timeout=bad)
    for wrong in ("1", True, [1]):
        with pytest.raises(TypeError, match="timeout"):
            ll.msgrcv(q, 100, timeout=wrong)
    assert ll.msgctl(q, ll.IPC_STAT)[7] == 0           # the bad msgsnd sent nothing
    # A message that arrives while waiting is taken at once.
    threading.Timer(0.2, lambda: ll.msgsnd(q, b"hi", 4)).start()
    t0 = time.monotonic()
    assert ll.msgrcv(q, 100, timeout=10) == (b"hi", 4)
    assert time.monotonic() - t0 < 5
    # A message already there with timeout=0 is received.
    ll.msgsnd(q, b"now", 1)
    assert ll.msgrcv(q, 100, timeout=0) == (b"now", 1)
    assert not posix_timers()   # no POSIX timer left behind


def test_callers_ipc_nowait_wins_over_timeout(new_msq: Callable[..., int],
                                              new_sem: Callable[..., int]) -> None:
    """An explicit IPC_NOWAIT means "do not wait": the kernel's answer
    (ENOMSG / EAGAIN) comes back as it is, even with a timeout, as semop does."""
    q = new_msq()
    for timeout in (None, 0, 5.0):
        with pytest.raises(OSError) as info:
            ll.msgrcv(q, 10, 0, ll.IPC_NOWAIT, timeout=timeout)
        check_oserror(info.value, OSError, errno.ENOMSG, "msgrcv", "id %d" % q)
    ll.msgctl(q, ll.IPC_SET, (os.getuid(), os.getgid(), 0o600, 4))
    ll.msgsnd(q, b"1234", 1)
    for timeout in (None, 0, 5.0):
        with pytest.raises(BlockingIOError):
            ll.msgsnd(q, b"x", 1, ll.IPC_NOWAIT, timeout=timeout)
    s = new_sem()
    for timeout in (None, 0, 5.0):
        with pytest.raises(BlockingIOError):
            ll.semop(s, [(0, -1, ll.IPC_NOWAIT)], timeout=timeout)


def test_numbers_of_other_types_are_accepted(ipc: Any, new_msq: Callable[..., int]) -> None:
    """Like os: keys take any integer (__index__), timeouts any real number."""
    np = pytest.importorskip("numpy")
    import decimal
    import fractions
    key = ipc.key()
    keyed = new_msq(key=key)
    assert ll.msgget(np.uint32(key & 0xFFFFFFFF), 0) == keyed   # unsigned form, numpy
    assert ll.msgget(np.int64(key), 0) == keyed
    q = new_msq()
    with pytest.raises(TypeError, match="key"):
        ll.msgget(np.float64(1), 0)
    for timeout in (np.float32(0.01), np.int64(0), fractions.Fraction(1, 100),
                    decimal.Decimal("0.01")):
        with pytest.raises(TimeoutError):
            ll.msgrcv(q, 10, timeout=timeout)
    ll.msgsnd(q, b"x", 1, timeout=10 ** 400)                # beyond any double: for ever
    assert ll.msgrcv(q, 10, timeout=10 ** 400) == (b"x", 1)
    with pytest.raises(ValueError, match="timeout"):
        ll.msgrcv(q, 10, timeout=-(10 ** 400))
    with pytest.raises(ValueError, match="timeout"):
        ll.msgrcv(q, 10, timeout=np.float64("nan"))


def test_msgctl_stat_set_rmid(ipc: Any, new_msq: Callable[..., int]) -> None:
    key = ipc.key()
    before = int(time.time())
    q = new_msq(key=key)
    t = ll.msgctl(q, ll.IPC_STAT)
    assert len(t) == 15
    ident, k, uid, gid, cuid, cgid, mode, qnum, cbytes, qbytes, lspid, lrpid, stime, rtime, ctime = t
    assert (ident, k, uid, gid, cuid, cgid, mode & 0o777) == (
        q, key, os.getuid(), os.getgid(), os.getuid(), os.getgid(), 0o600)
    assert (qnum, cbytes, qbytes, lspid, lrpid, stime, rtime) == (
        0, 0, sysctl("msgmnb")[0], 0, 0, 0, 0)
    assert ctime >= before - 1
    ll.msgsnd(q, b"12345", 1)
    ll.msgsnd(q, b"123", 1)
    t = ll.msgctl(q, ll.IPC_STAT)
    assert (t[7], t[8], t[10]) == (2, 8, os.getpid()) and t[12] >= before - 1
    ll.msgrcv(q, 10)
    t = ll.msgctl(q, ll.IPC_STAT)
    assert (t[7], t[8], t[11]) == (1, 3, os.getpid()) and t[13] >= before - 1
    assert ll.msgctl(q, ll.IPC_SET, (NOBODY, NOBODY, 0o604, 4096)) == 0
    t = ll.msgctl(q, ll.IPC_STAT)
    assert (t[2], t[3], t[6] & 0o777, t[9]) == (NOBODY, NOBODY, 0o604, 4096)
    with pytest.raises(TypeError):
        ll.msgctl(q, ll.IPC_SET, (0, 0, 0o600))
    assert ll.msgctl(q, ll.IPC_RMID) == 0
    with pytest.raises(FileNotFoundError):
        ll.msgget(key, 0)
    for call in (lambda: ll.msgctl(q, ll.IPC_STAT), lambda: ll.msgsnd(q, b"x", 1),
                 lambda: ll.msgrcv(q, 10, 0, ll.IPC_NOWAIT), lambda: ll.msgctl(q, ll.IPC_RMID)):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EINVAL and "id %d" % q in str(info.value)


def test_msgctl_info_and_stat_by_index(new_msq: Callable[..., int]) -> None:
    q = new_msq()
    ll.msgsnd(q, b"abc", 1)
    info = ll.msgctl(0, ll.IPC_INFO)
    assert len(info) == 9
    assert (info[3], info[4], info[5]) == (sysctl("msgmax")[0], sysctl("msgmnb")[0],
                                           sysctl("msgmni")[0])
    minfo = ll.msgctl(0, ll.MSG_INFO)
    assert minfo[1] >= 1            # msgpool: queues in use
    assert minfo[2] >= 1            # msgmap: messages in the system
    assert minfo[7] >= 3            # msgtql: bytes in the system
    maxindex = minfo[0]
    for cmd in (ll.MSG_STAT, ll.MSG_STAT_ANY):
        found = {}
        for index in range(maxindex + 1):
            try:
                t = ll.msgctl(index, cmd)
            except OSError as exc:
                assert exc.errno == errno.EINVAL and "index %d" % index in str(exc)
                continue
            found[t[0]] = t
        assert found[q] == ll.msgctl(q, ll.IPC_STAT)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_cross_process_round_trip(new_msq: Callable[..., int], new_sem: Callable[..., int],
                                  method: str) -> None:
    """Children started both ways reach the same kernel objects by id."""
    import multiprocessing
    ctx = multiprocessing.get_context(method)
    q = new_msq()
    s = new_sem(2)
    children = [ctx.Process(target=ll.msgsnd, args=(q, b"from child", 7)),
                ctx.Process(target=ll.semop, args=(s, [(0, 2, 0), (1, 1, 0)]))]
    for child in children:
        child.start()
    try:
        assert ll.msgrcv(q, 100, timeout=30) == (b"from child", 7)
        ll.semop(s, [(0, -2, 0), (1, -1, 0)], timeout=30)     # both at once, or none
    finally:
        for child in children:
            child.join(30)
    assert [child.exitcode for child in children] == [0, 0]
    assert ll.msgctl(q, ll.IPC_STAT)[10] == children[0].pid     # lspid
    assert ll.semctl(s, 1, ll.GETPID) == os.getpid()


def _blocked_then_removed(call: Callable[[], Any], syscall: str,
                          remove: Callable[[], Any]) -> BaseException:
    bg = Background(call)
    wait_blocked(bg.tid, syscall)
    remove()
    bg.join()
    assert bg.exc is not None, "the blocked call returned %r" % (bg.result,)
    return bg.exc


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_eidrm_in_thread(new_msq: Callable[..., int], new_sem: Callable[..., int],
                         timeout: Optional[float]) -> None:
    q = new_msq()
    exc = _blocked_then_removed(lambda: ll.msgrcv(q, 10, timeout=timeout), "msgrcv",
                                lambda: ll.msgctl(q, ll.IPC_RMID))
    check_oserror(exc, sysvkit.RemovedError, errno.EIDRM, "msgrcv", "id %d" % q)
    assert isinstance(exc, FileNotFoundError)
    s = new_sem(2)
    exc = _blocked_then_removed(lambda: ll.semop(s, [(1, -1, 0)], timeout=timeout), "semop",
                                lambda: ll.semctl(s, 0, ll.IPC_RMID))
    check_oserror(exc, sysvkit.RemovedError, errno.EIDRM, "semop" if timeout is None
                  else "semtimedop", "id %d" % s)
    # A full queue: the blocked sender sees the removal too.
    q2 = new_msq()
    ll.msgctl(q2, ll.IPC_SET, (os.getuid(), os.getgid(), 0o600, 10))
    ll.msgsnd(q2, bytes(10), 1)
    exc = _blocked_then_removed(lambda: ll.msgsnd(q2, bytes(10), 1, timeout=timeout), "msgsnd",
                                lambda: ll.msgctl(q2, ll.IPC_RMID))
    check_oserror(exc, sysvkit.RemovedError, errno.EIDRM, "msgsnd", "id %d" % q2)


CHILD_BLOCKS = """
import json, sys
from sysvkit import lowlevel as ll
kind, ident = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
try:
    if kind == "msg":
        ll.msgrcv(ident, 100)
    else:
        ll.semop(ident, [(0, -1, 0)])
    print(json.dumps({"returned": True}))
except OSError as exc:
    print(json.dumps({"cls": type(exc).__name__, "module": type(exc).__module__,
                      "errno": exc.errno, "msg": str(exc),
                      "fnf": isinstance(exc, FileNotFoundError)}))
"""


@pytest.mark.parametrize("kind", ["msg", "sem"])
def test_eidrm_in_child_process(new_msq: Callable[..., int], new_sem: Callable[..., int],
                                kind: str) -> None:
    ident = new_msq() if kind == "msg" else new_sem()
    child = subprocess.Popen([sys.executable, "-c", CHILD_BLOCKS, kind, str(ident)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        if kind == "sem":
            deadline = time.monotonic() + 10
            while ll.semctl(ident, 0, ll.GETNCNT) != 1:
                assert time.monotonic() < deadline
                time.sleep(0.005)
        else:
            wait_blocked(child.pid, "msgrcv", pid=child.pid)
        if kind == "msg":
            ll.msgctl(ident, ll.IPC_RMID)
        else:
            ll.semctl(ident, 0, ll.IPC_RMID)
        out, _ = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0
    result = json.loads(out)
    assert result == {"cls": "RemovedError", "module": "sysvkit", "errno": errno.EIDRM,
                      "msg": result["msg"], "fnf": True}
    assert "id %d" % ident in result["msg"]


# -- semaphores ------------------------------------------------------------------------------------

def test_semget_create_open_and_errors(ipc: Any, new_sem: Callable[..., int]) -> None:
    key = ipc.key()
    with pytest.raises(FileNotFoundError) as info:
        ll.semget(key, 0, 0)
    check_oserror(info.value, FileNotFoundError, errno.ENOENT, "semget", key_hex(key))
    s = new_sem(3, key=key)
    assert ll.semget(key, 0, 0) == s
    assert ll.semget(key, 3, 0o600) == s
    with pytest.raises(FileExistsError) as info:
        ll.semget(key, 3, ll.IPC_CREAT | ll.IPC_EXCL | 0o600)
    check_oserror(info.value, FileExistsError, errno.EEXIST, "semget", key_hex(key))
    with pytest.raises(OSError) as info:          # more members than the set has
        ll.semget(key, 4, 0)
    check_oserror(info.value, OSError, errno.EINVAL, "semget", key_hex(key))
    with pytest.raises(OSError) as info:          # more than semmsl
        ll.semget(ll.IPC_PRIVATE, sysctl("sem")[0] + 1, ll.IPC_CREAT | 0o600)
    assert info.value.errno == errno.EINVAL


def test_semctl_values(new_sem: Callable[..., int], run_py: RunPy) -> None:
    s = new_sem(3)
    assert ll.semctl(s, 0, ll.GETALL) == (0, 0, 0)
    assert ll.semctl(s, 1, ll.SETVAL, 5) == 0
    assert ll.semctl(s, 1, ll.GETVAL) == 5
    assert ll.semctl(s, 0, ll.SETALL, [1, 2, ll.SEMVMX]) == 0
    assert ll.semctl(s, 0, ll.GETALL) == (1, 2, ll.SEMVMX)
    assert ll.semctl(s, 0, ll.SETALL, (0, 0, 0)) == 0
    with pytest.raises(OSError) as info:
        ll.semctl(s, 0, ll.SETVAL, ll.SEMVMX + 1)
    check_oserror(info.value, OSError, errno.ERANGE, "semctl", "id %d" % s)
    with pytest.raises(OSError) as info:
        ll.semctl(s, 0, ll.SETALL, [0, ll.SEMVMX + 1, 0])
    assert info.value.errno == errno.ERANGE
    assert ll.semctl(s, 0, ll.GETALL) == (0, 0, 0)          # nothing set
    with pytest.raises(ValueError, match="3"):
        ll.semctl(s, 0, ll.SETALL, [1, 2])
    with pytest.raises(TypeError):
        ll.semctl(s, 0, ll.SETVAL)
    with pytest.raises(OSError) as info:
        ll.semctl(s, 3, ll.GETVAL)                           # no member 3
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OSError) as info:
        ll.semctl(s, 0, 9999)                                # no such command
    assert info.value.errno == errno.EINVAL
    assert ll.semctl(s, 0, ll.GETPID) == os.getpid()        # SETALL sets sempid too
    pid = run_py("""
        import os, sys
        from sysvkit import lowlevel as ll
        ll.semop(int(sys.argv[1]), [(2, 1, 0)])
        print(os.getpid())
    """, str(s)).stdout
    assert ll.semctl(s, 2, ll.GETPID) == int(pid)
    assert ll.semctl(s, 1, ll.GETPID) == os.getpid()
    assert ll.semctl(s, 0, ll.GETNCNT) == 0 and ll.semctl(s, 0, ll.GETZCNT) == 0


def test_semop_atomic_all_or_nothing(new_sem: Callable[..., int]) -> None:
    s = new_sem(3)
    ll.semctl(s, 0, ll.SETALL, [1, 0, 5])
    with pytest.raises(BlockingIOError) as info:
        ll.semop(s, [(0, -1, 0), (2, -2, 0), (1, -1, ll.IPC_NOWAIT)])
    check_oserror(info.value, BlockingIOError, errno.EAGAIN, "semop", "id %d" % s)
    assert ll.semctl(s, 0, ll.GETALL) == (1, 0, 5)          # none applied
    ll.semop(s, [(0, -1, 0), (1, 2, 0), (2, -5, 0)])
    assert ll.semctl(s, 0, ll.GETALL) == (0, 2, 0)
    # delta 0 waits for zero: satisfied now for member 0.
    ll.semop(s, [(0, 0, ll.IPC_NOWAIT)])
    with pytest.raises(BlockingIOError):
        ll.semop(s, [(1, 0, ll.IPC_NOWAIT)])
    # More operations than fit on the stack, applied in one call.
    ll.semop(s, [(2, 1, 0)] * 100)
    assert ll.semctl(s, 2, ll.GETVAL) == 100
    with pytest.raises(OSError) as info:
        ll.semop(s, [(2, 1, 0)] * (sysctl("sem")[2] + 1))   # more than semopm
    check_oserror(info.value, OSError, errno.E2BIG, "semop", "id %d" % s)
    with pytest.raises(OSError) as info:
        ll.semop(s, [(7, 1, 0)])                            # no member 7
    assert info.value.errno == errno.EFBIG
    with pytest.raises(OSError) as info:
        ll.semop(s, [(2, ll.SEMVMX, 0)])                    # past SEMVMX
    assert info.value.errno == errno.ERANGE
    assert ll.semctl(s, 0, ll.GETALL) == (0, 2, 100)
    with pytest.raises(ValueError):
        ll.semop(s, [])
    with pytest.raises(TypeError):
        ll.semop(s, [(0, 1)])
    with pytest.raises((TypeError, OverflowError)):
        ll.semop(s, [(-1, 1, 0)])


def test_semop_blocks_until_all_can_apply(new_sem: Callable[..., int]) -> None:
    s = new_sem(2)
    bg = Background(lambda: ll.semop(s, [(0, -1, 0), (1, -1, 0)]))
    wait_blocked(bg.tid, "semop")
    assert ll.semctl(s, 0, ll.GETNCNT) == 1
    ll.semctl(s, 0, ll.SETVAL, 1)
    time.sleep(0.1)
    assert bg.thread.is_alive()                               # member 1 still 0
    assert ll.semctl(s, 0, ll.GETALL) == (1, 0)
    ll.semop(s, [(1, 1, 0)])
    bg.join()
    assert bg.exc is None
    assert ll.semctl(s, 0, ll.GETALL) == (0, 0)
    # Waiting for zero: GETZCNT.
    ll.semctl(s, 1, ll.SETVAL, 2)
    bg = Background(lambda: ll.semop(s, [(1, 0, 0)]))
    wait_blocked(bg.tid, "semop")
    assert ll.semctl(s, 1, ll.GETZCNT) == 1
    ll.semop(s, [(1, -2, 0)])
    bg.join()
    assert bg.exc is None


def test_semop_timeout(new_sem: Callable[..., int]) -> None:
    s = new_sem(2)
    ll.semctl(s, 0, ll.SETVAL, 1)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        ll.semop(s, [(0, -1, 0), (1, -1, 0)], timeout=0.25)
    assert 0.24 <= time.monotonic() - t0 < 2
    check_oserror(info.value, TimeoutError, errno.ETIMEDOUT, "semtimedop", "id %d" % s)
    assert ll.semctl(s, 0, ll.GETALL) == (1, 0)              # nothing applied
    with pytest.raises(TimeoutError):
        ll.semop(s, [(1, -1, 0)], timeout=0)
    with pytest.raises(BlockingIOError):
        ll.semop(s, [(1, -1, ll.IPC_NOWAIT)], timeout=5)
    ll.semop(s, [(0, -1, 0)], timeout=0)                      # can apply: applied
    assert ll.semctl(s, 0, ll.GETVAL) == 0
    threading.Timer(0.2, lambda: ll.semctl(s, 1, ll.SETVAL, 1)).start()
    ll.semop(s, [(1, -1, 0)], timeout=10)
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            ll.semop(s, [(0, 1, 0)], timeout=bad)
    with pytest.raises(TypeError, match="timeout"):
        ll.semop(s, [(0, 1, 0)], timeout="1")
    assert ll.semctl(s, 0, ll.GETALL) == (0, 0)


def test_sem_undo_reverted_at_exit(new_sem: Callable[..., int], run_py: RunPy) -> None:
    s = new_sem(2)
    run_py("""
        import sys
        from sysvkit import lowlevel as ll
        s = int(sys.argv[1])
        ll.semop(s, [(0, 3, ll.SEM_UNDO), (1, 2, 0)])
        print(ll.semctl(s, 0, ll.GETALL))
    """, str(s))
    assert ll.semctl(s, 0, ll.GETALL) == (0, 2)       # the undo change is reversed
    assert ll.semctl(s, 1, ll.GETPID) != os.getpid()  # the child did it


def test_semctl_stat_set_rmid_info(ipc: Any, new_sem: Callable[..., int]) -> None:
    key = ipc.key()
    before = int(time.time())
    s = new_sem(4, key=key)
    t = ll.semctl(s, 0, ll.IPC_STAT)
    assert len(t) == 10
    assert t[:8] == (s, key, os.getuid(), os.getgid(), os.getuid(), os.getgid(),
                     t[6], 4)
    assert t[6] & 0o777 == 0o600 and t[8] == 0 and t[9] >= before - 1
    ll.semop(s, [(0, 1, 0)])
    assert ll.semctl(s, 0, ll.IPC_STAT)[8] >= before - 1           # otime set by semop
    assert ll.semctl(s, 0, ll.IPC_SET, (NOBODY, NOBODY, 0o660)) == 0
    t = ll.semctl(s, 0, ll.IPC_STAT)
    assert (t[2], t[3], t[6] & 0o777) == (NOBODY, NOBODY, 0o660)
    with pytest.raises(TypeError):
        ll.semctl(s, 0, ll.IPC_SET, (1,))
    info = ll.semctl(0, 0, ll.IPC_INFO)
    assert len(info) == 11
    semmsl, semmns, semopm, semmni = sysctl("sem")
    assert (info[5], info[3], info[6], info[2], info[9]) == (semmsl, semmns, semopm, semmni,
                                                             ll.SEMVMX)
    sinfo = ll.semctl(0, 0, ll.SEM_INFO)
    assert sinfo[8] >= 1 and sinfo[10] >= 4          # semusz: sets, semaem: semaphores
    maxindex = sinfo[0]
    for cmd in (ll.SEM_STAT, ll.SEM_STAT_ANY):
        found = {}
        for index in range(maxindex + 1):
            try:
                st = ll.semctl(index, 0, cmd)
            except OSError as exc:
                assert exc.errno == errno.EINVAL and "index %d" % index in str(exc)
                continue
            found[st[0]] = st
        assert found[s] == ll.semctl(s, 0, ll.IPC_STAT)
    assert ll.semctl(s, 0, ll.IPC_RMID) == 0
    with pytest.raises(FileNotFoundError):
        ll.semget(key, 0, 0)
    for cmd in (ll.IPC_STAT, ll.GETALL, ll.GETVAL):
        with pytest.raises(OSError) as einfo:
            ll.semctl(s, 0, cmd)
        assert einfo.value.errno == errno.EINVAL and "id %d" % s in str(einfo.value)


# -- permissions (EACCES) from a child that is user nobody ---------------------------------------------

AS_NOBODY = """
import errno, json, os, sys
from sysvkit import lowlevel as ll
shm_key, msg_key, sem_key = (int(x) for x in sys.argv[1:4])
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
results = {}
def attempt(name, fn):
    try:
        fn()
        results[name] = "ok"
    except OSError as exc:
        results[name] = [type(exc).__name__, exc.errno, str(exc)]
attempt("shmget", lambda: ll.shmget(shm_key, 0, 0o600))
attempt("msgget", lambda: ll.msgget(msg_key, 0o600))
attempt("semget", lambda: ll.semget(sem_key, 0, 0o600))
shmid, msqid, semid = ll.shmget(shm_key, 0, 0), ll.msgget(msg_key, 0), ll.semget(sem_key, 0, 0)
attempt("shmat", lambda: ll.shmat(shmid).detach())
attempt("shmctl", lambda: ll.shmctl(shmid, ll.IPC_STAT))
attempt("msgsnd", lambda: ll.msgsnd(msqid, b"x", 1))
attempt("msgrcv", lambda: ll.msgrcv(msqid, 10, 0, ll.IPC_NOWAIT))
attempt("msgctl", lambda: ll.msgctl(msqid, ll.IPC_RMID))
attempt("semop", lambda: ll.semop(semid, [(0, 1, 0)]))
attempt("semctl", lambda: ll.semctl(semid, 0, ll.GETVAL))
attempt("semctl_rmid", lambda: ll.semctl(semid, 0, ll.IPC_RMID))
# *_STAT needs read permission; *_STAT_ANY does not (it is for listing).
for kind, ctl, ident, stat, stat_any, info in (
        ("shm", lambda i, c: ll.shmctl(i, c), shmid, ll.SHM_STAT, ll.SHM_STAT_ANY, ll.SHM_INFO),
        ("msg", lambda i, c: ll.msgctl(i, c), msqid, ll.MSG_STAT, ll.MSG_STAT_ANY, ll.MSG_INFO),
        ("sem", lambda i, c: ll.semctl(i, 0, c), semid, ll.SEM_STAT, ll.SEM_STAT_ANY,
         ll.SEM_INFO)):
    for index in range(ctl(0, info)[0] + 1):
        try:
            t = ctl(index, stat_any)
        except OSError:
            continue
        if t[0] == ident:
            results[kind + "_stat_any"] = "ok"
            attempt(kind + "_stat", lambda: ctl(index, stat))
print(json.dumps(results))
"""


def test_eacces_for_another_user(ipc: Any, new_shm: Callable[..., int],
                                 new_msq: Callable[..., int], new_sem: Callable[..., int],
                                 run_py: RunPy) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    keys = [ipc.key() for _ in range(3)]
    shmid, msqid, semid = new_shm(key=keys[0]), new_msq(key=keys[1]), new_sem(key=keys[2])
    ll.msgsnd(msqid, b"private", 1)
    out = json.loads(run_py(AS_NOBODY, *map(str, keys)).stdout)
    for name, what in (("shmget", key_hex(keys[0])), ("msgget", key_hex(keys[1])),
                       ("semget", key_hex(keys[2])), ("shmat", "id %d" % shmid),
                       ("shmctl", "id %d" % shmid), ("msgsnd", "id %d" % msqid),
                       ("msgrcv", "id %d" % msqid), ("msgctl", "id %d" % msqid),
                       ("semop", "id %d" % semid), ("semctl", "id %d" % semid),
                       ("semctl_rmid", "id %d" % semid)):
        cls, err, msg = out[name]
        assert cls == "PermissionError", (name, out[name])
        assert err in (errno.EACCES, errno.EPERM), (name, out[name])
        assert name.split("_")[0] in msg and what in msg, (name, msg)
    assert out["msgget"][1] == errno.EACCES
    for kind in ("shm", "msg", "sem"):
        assert out[kind + "_stat_any"] == "ok"
        assert out[kind + "_stat"][:2] == ["PermissionError", errno.EACCES], out[kind + "_stat"]
    assert ll.msgrcv(msqid, 10, 0, ll.IPC_NOWAIT) == (b"private", 1)   # untouched
    # IPC_SET opens them up: now nobody may use them.
    for ctl, ident in ((ll.shmctl, shmid), (ll.msgctl, msqid)):
        t = ctl(ident, ll.IPC_STAT)
        ctl(ident, ll.IPC_SET, (t[2], t[3], 0o666) + ((t[9],) if ctl is ll.msgctl else ()))
    ll.semctl(semid, 0, ll.IPC_SET, (0, 0, 0o666))
    out = json.loads(run_py(AS_NOBODY, *map(str, keys)).stdout)
    for name in ("shmget", "msgget", "semget", "shmat", "shmctl", "msgsnd", "msgrcv", "semop",
                 "semctl"):
        assert out[name] == "ok", (name, out[name])
    assert out["msgctl"][0] == "PermissionError"     # only the owner or creator may remove
    assert out["semctl_rmid"][0] == "PermissionError"


# -- signals -------------------------------------------------------------------------------------------

def _send_later(delay: float, fn: Callable[[], Any]) -> threading.Timer:
    t = threading.Timer(delay, fn)
    t.start()
    return t


def test_signal_during_blocked_msgrcv_resumes(new_msq: Callable[..., int],
                                               itimer: List[float]) -> None:
    q = new_msq()
    _send_later(0.6, lambda: ll.msgsnd(q, b"data", 2))
    signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)
    t0 = time.monotonic()
    assert ll.msgrcv(q, 100) == (b"data", 2)
    elapsed = time.monotonic() - t0
    signal.setitimer(signal.ITIMER_REAL, 0)
    assert len(itimer) >= 2                 # handlers ran while it was blocked
    assert itimer[0] - t0 < 0.5
    assert 0.55 <= elapsed < 5


def test_signal_during_blocked_semop_resumes(new_sem: Callable[..., int],
                                              itimer: List[float]) -> None:
    s = new_sem(1)
    _send_later(0.6, lambda: ll.semop(s, [(0, 1, 0)]))
    signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)
    t0 = time.monotonic()
    ll.semop(s, [(0, -1, 0)])
    elapsed = time.monotonic() - t0
    signal.setitimer(signal.ITIMER_REAL, 0)
    assert len(itimer) >= 2
    assert 0.55 <= elapsed < 5
    assert ll.semctl(s, 0, ll.GETVAL) == 0


def _three_alarms(calls: List[float]) -> None:
    """SIGALRM every 0.2 s, three times, then no more."""
    def handler(signo: int, frame: Any) -> None:
        calls.append(time.monotonic())
        if len(calls) >= 3:
            signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.2, 0.2)


@pytest.mark.parametrize("call", ["msgrcv", "semop", "msgsnd"])
def test_signal_during_timed_wait_keeps_deadline(new_msq: Callable[..., int],
                                                  new_sem: Callable[..., int],
                                                  itimer: List[float], call: str) -> None:
    """Handlers at 0.2, 0.4 and 0.6 s run during a 1 s timed wait, which
    still times out at 1 s (restarting the full timeout would give 1.6 s)."""
    q = new_msq()
    s = new_sem(1)
    if call == "msgsnd":
        ll.msgctl(q, ll.IPC_SET, (os.getuid(), os.getgid(), 0o600, 8))
        ll.msgsnd(q, bytes(8), 1)
    fns = {"msgrcv": lambda: ll.msgrcv(q, 100, timeout=1.0),
           "semop": lambda: ll.semop(s, [(0, -1, 0)], timeout=1.0),
           "msgsnd": lambda: ll.msgsnd(q, bytes(8), 1, timeout=1.0)}
    _three_alarms(itimer)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        fns[call]()
    elapsed = time.monotonic() - t0
    assert len(itimer) == 3
    assert 0.95 <= elapsed < 1.45, elapsed


def test_handler_exception_propagates_from_blocked_call(new_msq: Callable[..., int],
                                                         new_sem: Callable[..., int]) -> None:
    q = new_msq()
    s = new_sem(1)

    class Boom(Exception):
        pass

    def handler(signo: int, frame: Any) -> None:
        raise Boom()
    old = signal.signal(signal.SIGALRM, handler)
    try:
        for fn in (lambda: ll.msgrcv(q, 10), lambda: ll.msgrcv(q, 10, timeout=30),
                   lambda: ll.semop(s, [(0, -1, 0)]), lambda: ll.semop(s, [(0, -1, 0)], timeout=30)):
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            t0 = time.monotonic()
            with pytest.raises(Boom):
                fn()
            assert time.monotonic() - t0 < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not posix_timers()
    assert ll.semctl(s, 0, ll.GETNCNT) == 0


CTRL_C = r"""
import os, signal, sys, threading, time
from sysvkit import lowlevel as ll
how = sys.argv[1]
# Python installs its SIGINT handler only if SIGINT was not ignored when it
# started (a background job inherits it ignored): install it in any case.
signal.signal(signal.SIGINT, signal.default_int_handler)
q = ll.msgget(ll.IPC_PRIVATE, ll.IPC_CREAT | 0o600)
full = ll.msgget(ll.IPC_PRIVATE, ll.IPC_CREAT | 0o600)
s = ll.semget(ll.IPC_PRIVATE, 1, ll.IPC_CREAT | 0o600)
ll.msgctl(full, ll.IPC_SET, (0, 0, 0o600, 4))
ll.msgsnd(full, b"1234", 1)
main = threading.main_thread().ident

def ctrl_c():
    time.sleep(0.3)
    if how == "thread":
        signal.pthread_kill(main, signal.SIGINT)
    elif how == "child":
        import subprocess
        subprocess.run([sys.executable, "-c", "import os, signal; os.kill(%d, signal.SIGINT)" % os.getpid()])

def raise_ki(signo, frame):
    raise KeyboardInterrupt

calls = [
    ("msgrcv", lambda: ll.msgrcv(q, 10)),
    ("msgrcv-timed", lambda: ll.msgrcv(q, 10, timeout=30)),
    ("msgsnd", lambda: ll.msgsnd(full, b"5678", 1)),
    ("msgsnd-timed", lambda: ll.msgsnd(full, b"5678", 1, timeout=30)),
    ("semop", lambda: ll.semop(s, [(0, -1, 0)])),
    ("semop-timed", lambda: ll.semop(s, [(0, -1, 0)], timeout=30)),
]
try:
    for name, call in calls:
        if how == "itimer":
            signal.signal(signal.SIGALRM, raise_ki)
            signal.setitimer(signal.ITIMER_REAL, 0.3)
        else:
            threading.Thread(target=ctrl_c).start()
        t0 = time.monotonic()
        try:
            call()
            print(name, "returned")
        except KeyboardInterrupt:
            print(name, "KeyboardInterrupt", "%.2f" % (time.monotonic() - t0), flush=True)
finally:
    ll.msgctl(q, ll.IPC_RMID)
    ll.msgctl(full, ll.IPC_RMID)
    ll.semctl(s, 0, ll.IPC_RMID)
"""


@pytest.mark.parametrize("how", ["thread", "child", "itimer"])
def test_ctrl_c_interrupts_blocked_calls(run_py: RunPy, how: str) -> None:
    proc = run_py(CTRL_C, how, timeout=60)
    lines = proc.stdout.split("\n")
    names = ["msgrcv", "msgrcv-timed", "msgsnd", "msgsnd-timed", "semop", "semop-timed"]
    assert len([ln for ln in lines if ln]) == len(names), proc.stdout
    for name, line in zip(names, lines):
        got, what, secs = line.split()
        assert (got, what) == (name, "KeyboardInterrupt"), line
        assert 0.25 <= float(secs) < 5, line


def test_uncaught_ctrl_c_exits_like_python(run_py: RunPy) -> None:
    """An uncaught KeyboardInterrupt from a blocked call ends the program
    the usual way (traceback, then death by SIGINT as Python reports it)."""
    code = textwrap.dedent("""
        import os, signal, threading, time
        from sysvkit import lowlevel as ll
        signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started ignored
        q = ll.msgget(ll.IPC_PRIVATE, ll.IPC_CREAT | 0o600)
        main = threading.main_thread().ident
        threading.Timer(0.3, lambda: signal.pthread_kill(main, signal.SIGINT)).start()
        try:
            ll.msgrcv(q, 10)
        finally:
            ll.msgctl(q, ll.IPC_RMID)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "KeyboardInterrupt" in proc.stderr
    assert "Traceback" in proc.stderr
    assert proc.returncode in (-signal.SIGINT, 1, 128 + signal.SIGINT)


# -- the GIL ----------------------------------------------------------------------------------------------

def _progress_while(blocked: Background, syscall: str) -> int:
    """Count Python work done in this thread while ``blocked`` waits."""
    wait_blocked(blocked.tid, syscall)
    n = 0
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        n += 1
    assert blocked.thread.is_alive()
    return n


@pytest.mark.parametrize("timeout", [None, 20.0])
def test_gil_released_while_blocked(new_msq: Callable[..., int], new_sem: Callable[..., int],
                                    timeout: Optional[float]) -> None:
    q = new_msq()
    bg = Background(lambda: ll.msgrcv(q, 100, timeout=timeout))
    assert _progress_while(bg, "msgrcv") > 10000
    ll.msgsnd(q, b"go", 1)
    assert bg.join().result == (b"go", 1)

    s = new_sem(1)
    bg = Background(lambda: ll.semop(s, [(0, -1, 0)], timeout=timeout))
    assert _progress_while(bg, "semop") > 10000
    ll.semop(s, [(0, 1, 0)])
    assert bg.join().exc is None

    full = new_msq()
    ll.msgctl(full, ll.IPC_SET, (os.getuid(), os.getgid(), 0o600, 4))
    ll.msgsnd(full, b"1234", 1)
    bg = Background(lambda: ll.msgsnd(full, b"5678", 2, timeout=timeout))
    assert _progress_while(bg, "msgsnd") > 10000
    assert ll.msgrcv(full, 10) == (b"1234", 1)
    assert bg.join().exc is None
    assert ll.msgrcv(full, 10) == (b"5678", 2)


# -- timed waits -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", ["msgrcv", "msgsnd", "semop"])
def test_concurrent_timed_waits_each_time_out_on_their_own(new_msq: Callable[..., int],
                                                          new_sem: Callable[..., int],
                                                          call: str) -> None:
    q = new_msq()
    s = new_sem(1)
    if call == "msgsnd":
        ll.msgctl(q, ll.IPC_SET, (os.getuid(), os.getgid(), 0o600, 4))
        ll.msgsnd(q, b"1234", 1)
    timeouts = [0.2, 0.4, 0.6, 0.8, 0.3]

    def wait(t: float) -> Callable[[], Any]:
        if call == "msgrcv":
            return lambda: ll.msgrcv(q, 100, timeout=t)
        if call == "msgsnd":
            return lambda: ll.msgsnd(q, b"5678", 1, timeout=t)
        return lambda: ll.semop(s, [(0, -1, 0)], timeout=t)
    waiters = [Background(wait(t)) for t in timeouts]
    for bg, t in zip(waiters, timeouts):
        bg.join()
        assert isinstance(bg.exc, TimeoutError), bg.exc
        assert t - 0.01 <= bg.elapsed < t + 0.6, (t, bg.elapsed)
    assert not posix_timers()


@pytest.mark.parametrize("call", ["msgrcv", "msgsnd", "semop"])
def test_timed_wait_uses_almost_no_cpu(new_msq: Callable[..., int], new_sem: Callable[..., int],
                                       call: str) -> None:
    q = new_msq()
    s = new_sem(1)
    if call == "msgsnd":
        ll.msgctl(q, ll.IPC_SET, (os.getuid(), os.getgid(), 0o600, 4))
        ll.msgsnd(q, b"1234", 1)
    fn = {"msgrcv": lambda: ll.msgrcv(q, 100, timeout=1.0),
          "msgsnd": lambda: ll.msgsnd(q, b"5678", 1, timeout=1.0),
          "semop": lambda: ll.semop(s, [(0, -1, 0)], timeout=1.0)}[call]
    cpu0, t0 = time.process_time(), time.monotonic()
    with pytest.raises(TimeoutError):
        fn()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    assert wall >= 0.99
    assert cpu < 0.1, cpu


def test_timed_wait_leaves_programs_alarm_and_rt_handlers_alone(run_py: RunPy) -> None:
    proc = run_py(r"""
        import json, signal, time
        from sysvkit import lowlevel as ll
        q = ll.msgget(ll.IPC_PRIVATE, ll.IPC_CREAT | 0o600)
        hits = {"alrm": [], "rtmin": [], "rtmax": []}
        try:
            # The program's own handlers: SIGALRM with an itimer, and SIGRTMIN
            # installed before any timed wait.
            t0 = time.monotonic()
            signal.signal(signal.SIGALRM, lambda n, f: hits["alrm"].append(time.monotonic() - t0))
            signal.signal(signal.SIGRTMIN, lambda n, f: hits["rtmin"].append(1))
            signal.setitimer(signal.ITIMER_REAL, 0.5)
            for _ in range(5):
                try:
                    ll.msgrcv(q, 10, timeout=0.05)
                except TimeoutError:
                    pass
            remaining = signal.getitimer(signal.ITIMER_REAL)[0]
            # SIGRTMAX installed after the core chose its signal.
            signal.signal(signal.SIGRTMAX, lambda n, f: hits["rtmax"].append(1))
            for _ in range(5):
                try:
                    ll.msgrcv(q, 10, timeout=0.05)
                except TimeoutError:
                    pass
            time.sleep(0.4)
            out = {k: v for k, v in hits.items()}
            out["remaining"] = remaining
            out["rtmin_handler"] = signal.getsignal(signal.SIGRTMIN) is not signal.SIG_DFL
            print(json.dumps(out))
        finally:
            ll.msgctl(q, ll.IPC_RMID)
    """)
    out = json.loads(proc.stdout)
    assert out["rtmin"] == [] and out["rtmax"] == []
    assert len(out["alrm"]) == 1 and 0.45 <= out["alrm"][0] < 1.5
    assert 0 < out["remaining"] < 0.5              # the itimer kept running, undisturbed
    assert out["rtmin_handler"]


@pytest.mark.parametrize("disposition", ["SIG_DFL", "SIG_IGN"])
def test_timed_wait_after_program_resets_the_timer_signal(run_py: RunPy,
                                                          disposition: str) -> None:
    """A program (or library) that resets every real-time signal to SIG_DFL
    or SIG_IGN after a timed wait must not be killed by the next timed wait's
    timer (SIG_DFL), nor see it wait for ever (SIG_IGN)."""
    proc = run_py("""
        import signal, sys, time
        from sysvkit import lowlevel as ll
        disposition = getattr(signal, sys.argv[1])
        q = ll.msgget(ll.IPC_PRIVATE, ll.IPC_CREAT | 0o600)
        try:
            for round in range(3):
                t0 = time.monotonic()
                try:
                    ll.msgrcv(q, 10, timeout=0.1)
                except TimeoutError:
                    pass
                assert time.monotonic() - t0 < 5
                # All of them to SIG_DFL; the top four to SIG_IGN (with every
                # one ignored there is no signal left for the timer, and the
                # timed wait raises BlockingIOError rather than hang).
                low = signal.SIGRTMIN if disposition == signal.SIG_DFL else signal.SIGRTMAX - 3
                for signo in range(low, signal.SIGRTMAX + 1):
                    signal.signal(signo, disposition)
            print("survived")
        finally:
            ll.msgctl(q, ll.IPC_RMID)
    """, disposition, timeout=30)
    assert proc.stdout.strip() == "survived"


def test_timed_wait_in_many_threads_at_once(new_msq: Callable[..., int]) -> None:
    """Twenty threads in timed receives; messages wake exactly as many."""
    q = new_msq()
    waiters = [Background(lambda: ll.msgrcv(q, 100, timeout=1.5)) for _ in range(20)]
    for i in range(10):
        ll.msgsnd(q, b"%d" % i, 1)
    for bg in waiters:
        bg.join()
    got = sorted(bg.result[0] for bg in waiters if bg.exc is None)
    assert got == sorted(b"%d" % i for i in range(10))
    assert sum(isinstance(bg.exc, TimeoutError) for bg in waiters) == 10


# -- leak loop ------------------------------------------------------------------------------------------------

def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def vsz() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * PAGE


def _leak_body(q: int, s: int, shmid: int, path: str, absent: int) -> Callable[[], None]:
    payload = b"x" * 100
    big = b"y" * 9000          # heap-allocated receive buffer path
    values = [1, 2, 3]

    def once() -> None:
        ll.msgsnd(q, payload, 1)
        ll.msgrcv(q, 200)
        ll.msgsnd(q, payload, 2, timeout=5)
        ll.msgrcv(q, 200, timeout=5)             # timer created and deleted
        ll.semop(s, [(0, 1, 0), (1, 1, 0)])
        ll.semop(s, [(0, -1, 0), (1, -1, 0)], timeout=5)
        ll.semctl(s, 0, ll.SETALL, values)
        ll.semctl(s, 0, ll.GETALL)
        ll.semctl(s, 0, ll.IPC_STAT)
        ll.msgctl(q, ll.IPC_STAT)
        a = ll.shmat(shmid)
        with memoryview(a) as m:
            m[0] = 1
        a.write(payload, 10)
        a.read(100)
        a.detach()
        ll.ftok(path, 5)
        try:
            ll.msgrcv(q, 20000, 0, ll.IPC_NOWAIT)
        except OSError:
            pass
        try:
            ll.msgrcv(q, 10, timeout=0)
        except TimeoutError:
            pass
        try:
            ll.msgsnd(q, big, 0)
        except OSError:
            pass
        try:
            ll.semop(s, [(0, -5, ll.IPC_NOWAIT)])
        except BlockingIOError:
            pass
        try:
            ll.semctl(s, 0, ll.SETALL, [1])
        except ValueError:
            pass
        try:
            ll.msgget(absent, 0)
        except FileNotFoundError:
            pass
        try:
            ll.ftok(path + "-missing", 1)
        except FileNotFoundError:
            pass
    return once


@pytest.mark.slow
def test_no_leaks_in_core_loop(ipc: Any, new_msq: Callable[..., int], new_sem: Callable[..., int],
                               new_shm: Callable[..., int], tmp_path: Any) -> None:
    if os.environ.get("SYSVKIT_SANITIZER"):
        pytest.skip("RSS is meaningless under a sanitizer's allocator")
    q, s, shmid = new_msq(), new_sem(3), new_shm(4096)
    path = str(tmp_path)
    once = _leak_body(q, s, shmid, path, ipc.key())     # a key nothing uses
    for _ in range(3000):                 # warm-up: caches, freelists, arenas
        once()
    gc.collect()
    before, before_vsz = rss(), vsz()
    t0 = time.monotonic()
    n = 0
    while n < 50000 and time.monotonic() - t0 < 8:
        once()
        n += 1
    gc.collect()
    grown = rss() - before
    assert vsz() - before_vsz < 64 << 20       # no mapping left behind by shmat/detach
    assert n >= 5000, "too slow to measure: %d iterations" % n
    # A leak of a single small object per iteration would show as >= 16 bytes
    # x n; allow a little noise from the allocator.
    assert grown < max(512 * 1024, 16 * n // 2), (n, grown)
    assert ll.shmctl(shmid, ll.IPC_STAT)[8] == 0
    assert ll.msgctl(q, ll.IPC_STAT)[7] == 0
    assert not posix_timers()
    print("leak loop: %d iterations, RSS grew by %d bytes" % (n, grown))


# -- semtimedop ---------------------------------------------------------------------------------------

def test_semtimedop_applies_times_out_and_errors_as_semop(new_sem: Callable[..., int]) -> None:
    s = new_sem(2)
    ll.semtimedop(s, [(0, 2, 0), (1, 1, 0)], 1.0)              # applied at once, atomically
    assert ll.semctl(s, 0, ll.GETALL) == (2, 1)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:                  # the kernel's EAGAIN, time up
        ll.semtimedop(s, [(0, -1, 0), (1, -2, 0)], 0.25)
    assert 0.24 <= time.monotonic() - t0 < 2
    check_oserror(info.value, TimeoutError, errno.ETIMEDOUT, "semtimedop", "id %d" % s)
    assert ll.semctl(s, 0, ll.GETALL) == (2, 1)               # nothing applied
    with pytest.raises(TimeoutError):
        ll.semtimedop(s, [(1, -2, 0)], 0)
    with pytest.raises(BlockingIOError) as blocking:         # the caller's IPC_NOWAIT wins
        ll.semtimedop(s, [(1, -2, ll.IPC_NOWAIT)], 5)
    check_oserror(blocking.value, BlockingIOError, errno.EAGAIN, "semtimedop", "id %d" % s)
    threading.Timer(0.2, lambda: ll.semop(s, [(1, 1, 0)])).start()
    ll.semtimedop(s, [(1, -2, 0)], 10)                        # woken before the limit
    bg = Background(lambda: ll.semtimedop(s, [(1, -1, 0)], None))   # None: no limit
    wait_blocked(bg.tid, "semop")
    ll.semop(s, [(1, 1, 0)])
    assert bg.join().exc is None
    with pytest.raises(OSError) as big:
        ll.semtimedop(s, [(0, 1, 0)] * (sysctl("sem")[2] + 1), 1)   # more than semopm
    check_oserror(big.value, OSError, errno.E2BIG, "semtimedop", "id %d" % s)
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            ll.semtimedop(s, [(0, 1, 0)], bad)
    with pytest.raises(TypeError, match="timeout"):
        ll.semtimedop(s, [(0, 1, 0)], "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ll.semtimedop(s, [(0, 1, 0)])  # type: ignore[call-arg]   # the limit is not optional
    ll.semctl(s, 0, ll.IPC_RMID)
    with pytest.raises(OSError) as gone:
        ll.semtimedop(s, [(0, 1, 0)], 1)
    assert gone.value.errno == errno.EINVAL and "semtimedop" in str(gone.value)


@pytest.mark.parametrize("timeout", [None, 20.0])
def test_semtimedop_releases_the_gil(new_sem: Callable[..., int],
                                     timeout: Optional[float]) -> None:
    s = new_sem(1)
    bg = Background(lambda: ll.semtimedop(s, [(0, -1, 0)], timeout))
    assert _progress_while(bg, "semop") > 10000
    ll.semop(s, [(0, 1, 0)])
    assert bg.join().exc is None


def test_semtimedop_signal_runs_handlers_and_keeps_the_deadline(new_sem: Callable[..., int],
                                                               itimer: List[float]) -> None:
    s = new_sem(1)
    _three_alarms(itimer)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        ll.semtimedop(s, [(0, -1, 0)], 1.0)
    elapsed = time.monotonic() - t0
    assert len(itimer) == 3
    assert 0.95 <= elapsed < 1.45, elapsed
