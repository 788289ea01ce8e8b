"""sysvkit.SharedMemory: SPEC.md "Opening and creating" and "SharedMemory".

Every kernel object is owned by the ``ipc`` fixture; dangerous sequences run
in a fresh interpreter (``run_py``) that must not die by a signal.
"""

from __future__ import annotations

import errno
import gc
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any, Callable, Set

import numpy
import pytest

import sysvkit
from sysvkit import lowlevel as ll

SHM = sysvkit.SharedMemory
RunPy = Callable[..., "subprocess.CompletedProcess[str]"]


def shm_ids() -> Set[int]:
    with open("/proc/sysvipc/shm") as f:
        next(f)
        return {int(line.split()[1]) for line in f if line.strip()}


def huge_pages_free() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                return int(line.split()[1])
    return 0


def run_script(tmp_path: Path, code: str, *args: str, timeout: float = 60) -> str:
    """Run ``code`` as a script file (so that multiprocessing's spawn can
    re-import its functions); fail if it was killed by a signal or failed."""
    script = tmp_path / ("script_%d.py" % len(list(tmp_path.glob("script_*.py"))))
    script.write_text(textwrap.dedent(code))
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode >= 0, "killed by signal %d\n%s" % (-proc.returncode, proc.stderr)
    assert proc.returncode == 0, "failed (%d)\n%s\n%s" % (proc.returncode, proc.stdout,
                                                          proc.stderr)
    return proc.stdout


# -- opening and creating --------------------------------------------------------------

def test_path_and_proj_id_create_then_open_same_segment(ipc: Any) -> None:
    path, proj = ipc.path()
    a = ipc.new(SHM, path, proj, size=4096, create=True)
    assert a.key == sysvkit.ftok(path, proj)
    a.write(b"shared", 10)
    b = ipc.new(SHM, path, proj)
    assert (b.id, b.key) == (a.id, a.key)
    assert b.read(6, 10) == b"shared"


def test_key_argument_names_the_same_segment_as_path(ipc: Any) -> None:
    path, proj = ipc.path()
    a = ipc.new(SHM, key=sysvkit.ftok(path, proj), size=64, create=True)
    b = ipc.new(SHM, path, proj)
    assert b.id == a.id
    assert a.key == b.key == sysvkit.ftok(path, proj)


@pytest.mark.parametrize("args, kwargs", [
    ((), {}),                                   # neither
    ((None, 1), {}),                            # half a pair
    (("PATH",), {}),
    (("PATH", 1), {"key": 1234}),               # both
    ((), {"proj_id": 1, "key": 1234}),
])
def test_both_or_neither_identity_is_typeerror(ipc: Any, args: Any, kwargs: Any) -> None:
    path, _ = ipc.path()
    args = tuple(path if a == "PATH" else a for a in args)
    before = shm_ids()
    with pytest.raises(TypeError):
        SHM(*args, size=64, create=True, **kwargs)
    assert shm_ids() == before


def test_missing_segment_is_filenotfounderror(ipc: Any) -> None:
    path, proj = ipc.path()
    with pytest.raises(FileNotFoundError):
        SHM(path, proj)
    with pytest.raises(FileNotFoundError):
        SHM(key=ipc.key(), size=64)
    with pytest.raises(FileNotFoundError):        # a missing path, from ftok
        SHM(path + ".missing", proj, size=64, create=True)


def test_create_opens_an_existing_segment(ipc: Any) -> None:
    key = ipc.key()
    a = ipc.new(SHM, key=key, size=64, create=True)
    a.write(b"kept")
    b = ipc.new(SHM, key=key, size=64, create=True)
    assert b.id == a.id
    assert b.read(4) == b"kept"


def test_exclusive_refuses_an_existing_segment(ipc: Any) -> None:
    key = ipc.key()
    a = ipc.new(SHM, key=key, size=64, create=True, exclusive=True)
    with pytest.raises(FileExistsError):
        SHM(key=key, size=64, create=True, exclusive=True)
    with pytest.raises(ValueError, match="exclusive"):
        SHM(key=key, exclusive=True)
    assert a.stat().attached == 1


def test_mode_defaults_to_0o600_and_is_settable(ipc: Any) -> None:
    assert ipc.new(SHM, key=ipc.key(), size=64, create=True).stat().mode == 0o600
    assert ipc.new(SHM, key=ipc.key(), size=64, create=True, mode=0o640).stat().mode == 0o640
    assert ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=64, mode=0o444).stat().mode == 0o444
    with pytest.raises(ValueError, match="mode"):
        SHM(key=ipc.key(), size=64, create=True, mode=0o1000)
    with pytest.raises(TypeError, match="mode"):
        SHM(key=ipc.key(), size=64, create=True, mode="0o600")  # type: ignore[arg-type]


def test_ipc_private_always_creates(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=64)
    b = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=64, create=True)
    c = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=64, create=True, exclusive=True)
    assert len({a.id, b.id, c.id}) == 3
    assert a.key == b.key == c.key == 0
    with pytest.raises(ValueError, match="size"):
        SHM(key=sysvkit.IPC_PRIVATE)         # creating needs a size


def test_signed_and_unsigned_keys_name_the_same_segment(ipc: Any) -> None:
    path, _ = ipc.path()
    signed = sysvkit.ftok(path, 200)          # proj_id >= 128: the top bit is set
    assert signed < 0
    unsigned = signed & 0xFFFFFFFF
    a = ipc.new(SHM, key=unsigned, size=64, create=True)
    b = ipc.new(SHM, key=signed)
    c = ipc.new(SHM, path, 200)
    assert a.id == b.id == c.id
    assert a.key == b.key == c.key == signed == a.stat().key
    with pytest.raises(ValueError, match="key"):
        SHM(key=1 << 32, size=64, create=True)


def test_from_id_opens_and_attaches(ipc: Any) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=128, create=True)
    a.write(b"by id")
    b = ipc.track(SHM.from_id(a.id))
    assert (b.id, b.key, b.size) == (a.id, a.key, 128)
    assert b.read(5) == b"by id"
    b.write(b"BY")
    assert a.read(5) == b"BY id"
    assert a.stat().attached == 2
    ro = ipc.track(SHM.from_id(a.id, readonly=True))
    assert ro.readonly and ro.read(2) == b"BY"


def test_from_id_of_a_missing_id_is_filenotfounderror(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=64)
    ident = a.id
    a.close()
    a.remove()
    with pytest.raises(FileNotFoundError):
        SHM.from_id(ident)
    with pytest.raises(sysvkit.RemovedError):
        SHM.from_id(ident)
    with pytest.raises(FileNotFoundError):
        SHM.from_id(0x7FFFFFFF)
    with pytest.raises(ValueError):
        SHM.from_id(-1)
    with pytest.raises(TypeError):
        SHM.from_id("1")  # type: ignore[arg-type]


def test_from_id_of_a_removed_but_attached_segment_is_removederror(ipc: Any) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=64, create=True)
    a.remove()
    assert a.stat().removed            # still attached: the kernel keeps it
    with pytest.raises(sysvkit.RemovedError):
        SHM.from_id(a.id)


def test_pickles_by_id_into_another_process(ipc: Any, run_py: RunPy) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=64, create=True)
    data = pickle.dumps(a)
    assert len(data) < 200                   # the id, not the bytes
    run_py("""
        import pickle, sys
        shm = pickle.loads(bytes.fromhex(sys.argv[1]))
        assert shm.size == 64 and not shm.readonly
        shm.write(b"from the child")
        shm.close()
        """, data.hex())
    assert a.read(14) == b"from the child"
    ro = pickle.loads(pickle.dumps(ipc.track(SHM.from_id(a.id, readonly=True))))
    ipc.track(ro)
    assert ro.readonly and ro.read(4) == b"from"


def test_unpickling_never_creates(ipc: Any, run_py: RunPy) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=64, create=True)
    data = pickle.dumps(a).hex()
    a.close()
    a.remove()
    before = shm_ids()
    run_py("""
        import pickle, sys, sysvkit
        try:
            pickle.loads(bytes.fromhex(sys.argv[1]))
        except sysvkit.RemovedError:
            pass
        else:
            raise SystemExit("unpickled a removed segment")
        """, data)
    assert shm_ids() == before


PERMISSION_CHILD = """
    import os, sys
    import sysvkit, sysvkit.shm                    # import before dropping root
    key, ident = int(sys.argv[1]), int(sys.argv[2])
    os.setgid(65534)
    os.setuid(65534)
    def refused(fn, **kw):
        try:
            fn(**kw).close()
        except PermissionError:
            return True
        return False
    results = [
        refused(sysvkit.SharedMemory, key=key),
        refused(sysvkit.SharedMemory, key=key, readonly=True),
        refused(sysvkit.SharedMemory, key=key, size=64, create=True),
        refused(lambda **kw: sysvkit.SharedMemory.from_id(ident, **kw)),
        refused(lambda **kw: sysvkit.SharedMemory.from_id(ident, **kw), readonly=True),
    ]
    print(" ".join(str(int(r)) for r in results))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to user nobody")
def test_permission_error_for_a_segment_the_caller_may_not_use(ipc: Any,
                                                              run_py: RunPy) -> None:
    private = ipc.new(SHM, key=ipc.key(), size=64, create=True)            # 0o600
    out = run_py(PERMISSION_CHILD, str(private.key), str(private.id)).stdout.split()
    assert out == ["1", "1", "1", "1", "1"]
    readable = ipc.new(SHM, key=ipc.key(), size=64, create=True, mode=0o644)
    out = run_py(PERMISSION_CHILD, str(readable.key), str(readable.id)).stdout.split()
    # read-write refused, read-only allowed
    assert out == ["1", "0", "1", "1", "0"]


# -- size ----------------------------------------------------------------------------

def test_size_is_required_to_create(ipc: Any) -> None:
    before = shm_ids()
    with pytest.raises(ValueError, match="size"):
        SHM(key=ipc.key(), create=True)
    with pytest.raises(ValueError, match="size"):
        SHM(key=ipc.key(), size=-1, create=True)
    with pytest.raises(TypeError, match="size"):
        SHM(key=ipc.key(), size=1.5, create=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="size"):
        SHM(key=ipc.key(), size=True, create=True)
    shmmax = sysvkit.limits().shmmax
    with pytest.raises(ValueError, match=r"size.*kernel's shmmax, %d bytes" % shmmax):
        SHM(key=ipc.key(), size=shmmax + 1, create=True)
    path, proj = ipc.path()
    with pytest.raises(ValueError, match="size"):      # checked before ftok sees the path
        SHM(path + ".missing", proj, size=-1, create=True)
    with pytest.raises(ValueError, match="mode"):
        SHM(path + ".missing", proj, size=64, create=True, mode=-1)
    assert shm_ids() == before


def test_size_when_opening(ipc: Any) -> None:
    key = ipc.key()
    a = ipc.new(SHM, key=key, size=5000, create=True)
    assert len(a) == a.size == 5000 == a.stat().size
    assert ipc.new(SHM, key=key).size == 5000               # size=0: the segment's
    assert ipc.new(SHM, key=key, size=100).size == 5000     # smaller: still the segment
    assert ipc.new(SHM, key=key, size=5000, create=True).size == 5000
    with pytest.raises(ValueError, match=r"size=5001.*5000"):
        SHM(key=key, size=5001)
    with pytest.raises(ValueError, match=r"size=5001.*5000"):
        SHM(key=key, size=5001, create=True)
    assert a.stat().attached == 4
    assert len(a.buf) == a.buf.nbytes == 5000


def test_new_segments_read_as_zeros(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=123457)
    assert a.read() == bytes(123457)
    assert bytes(a) == bytes(123457)
    assert not numpy.frombuffer(a, dtype="u1").any()


def test_hugetlb(ipc: Any) -> None:
    before = shm_ids()
    if huge_pages_free() == 0:
        with pytest.raises(OSError, match="huge pages are unavailable") as info:
            SHM(key=ipc.key(), size=2 << 20, create=True, hugetlb=True)
        assert info.value.errno in (errno.ENOMEM, errno.EINVAL, errno.EPERM)
        assert shm_ids() == before
    else:  # pragma: no cover - depends on the machine
        a = ipc.new(SHM, key=ipc.key(), size=2 << 20, create=True, hugetlb=True)
        a.buf[-1] = 7
        assert a.read(1, (2 << 20) - 1) == b"\x07"


# -- zero copy -----------------------------------------------------------------------

def test_buf_is_a_memoryview_of_the_segment_itself(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=4096)
    b = ipc.track(SHM.from_id(a.id))
    view = a.buf
    assert isinstance(view, memoryview)
    assert view.nbytes == 4096 and not view.readonly and view.format == "B"
    view[:5] = b"hello"
    assert b.read(5) == b"hello"                  # another attachment sees it
    assert bytes(memoryview(b)[:5]) == b"hello"   # the object is a buffer too
    b.buf[100:103] = b"abc"
    assert bytes(view[100:103]) == b"abc"
    view.release()


def test_numpy_zero_copy_in_one_process(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=8 * 1024)
    b = ipc.track(SHM.from_id(a.id))
    x = numpy.ndarray((1024,), "f8", buffer=a.buf)
    y = numpy.frombuffer(b, dtype="f8")
    x[:] = numpy.arange(1024)
    assert (y == numpy.arange(1024)).all()
    y[7] = -1.5
    assert x[7] == -1.5
    assert numpy.shares_memory(x, numpy.frombuffer(a.buf, dtype="f8"))
    del x, y


NUMPY_CHILD = """
    import sys, numpy, sysvkit
    shm = sysvkit.SharedMemory(key=int(sys.argv[1]))
    arr = numpy.ndarray((1024,), "f8", buffer=shm.buf)
    assert (arr == numpy.arange(1024) * 2).all(), arr[:4]     # the parent's data
    arr[:] = -arr                                             # and back
    del arr
    shm.close()
"""


def test_numpy_zero_copy_across_processes(ipc: Any, run_py: RunPy) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=8 * 1024, create=True)
    arr = numpy.ndarray((1024,), "f8", buffer=a.buf)
    arr[:] = numpy.arange(1024) * 2
    run_py(NUMPY_CHILD, str(a.key))
    assert (arr == -numpy.arange(1024) * 2).all()
    del arr


def shm_rss_pages() -> int:
    """Resident shared memory pages in this IPC namespace (SHM_INFO)."""
    return int(ll.shmctl(0, ll.SHM_INFO)[3])


@pytest.mark.parametrize("readonly", [False, True])
def test_prefault_makes_every_page_resident_and_keeps_the_data(ipc: Any,
                                                               readonly: bool) -> None:
    size = 8 << 20
    a = ipc.new(SHM, key=ipc.key(), size=size, create=True)
    a.write(b"kept", size - 4)
    before = shm_rss_pages()
    b = ipc.new(SHM, key=a.key, readonly=readonly)
    b.prefault()
    page = os.sysconf("SC_PAGE_SIZE")
    assert shm_rss_pages() - before >= size // page - 1
    assert b.read(4, size - 4) == b"kept" and b.read(4) == bytes(4)
    b.close()
    b.close()
    with pytest.raises(ValueError):
        b.prefault()


# -- readonly ------------------------------------------------------------------------

def test_readonly_attachment(ipc: Any) -> None:
    key = ipc.key()
    a = ipc.new(SHM, key=key, size=64, create=True)
    a.write(b"data")
    ro = ipc.new(SHM, key=key, readonly=True)
    assert ro.readonly and not a.readonly
    assert ro.read(4) == b"data" and bytes(ro.buf[:4]) == b"data"
    view = ro.buf
    assert view.readonly
    with pytest.raises(TypeError):
        view[0] = 1
    with pytest.raises(TypeError):
        ro.buf[:2] = b"xx"
    with pytest.raises(TypeError):
        ro.write(b"x")
    arr = numpy.frombuffer(ro, dtype="u1")
    assert not arr.flags.writeable
    with pytest.raises(ValueError):
        arr.setflags(write=True)
    assert not numpy.ndarray((4,), "u1", buffer=ro.buf).flags.writeable
    del arr
    view.release()
    assert a.read(4) == b"data"
    assert "readonly" in repr(ro)


def test_readonly_create_makes_a_zeroed_segment(ipc: Any) -> None:
    ro = ipc.new(SHM, key=ipc.key(), size=64, create=True, readonly=True)
    assert ro.read() == bytes(64)
    with pytest.raises(TypeError):
        ro.write(b"x")


# -- read and write --------------------------------------------------------------------

def test_read_and_write_are_bounds_checked(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=100)
    assert a.write(b"0123456789") == 10
    assert a.write(bytearray(b"xy"), 98) == 2
    assert a.write(b"", 100) == 0
    assert a.read(3) == b"012"
    assert a.read(offset=95) == b"\0\0\0xy"
    assert a.read(0, 100) == b""
    assert len(a.read()) == 100
    snapshot = a.read()
    for size, offset in [(101, 0), (1, 100), (0, 101), (10, 95), (-2, 0), (1, -1)]:
        with pytest.raises(ValueError):
            a.read(size, offset)
    for data, offset in [(b"x" * 101, 0), (b"xy", 99), (b"x", 101), (b"x", -1)]:
        with pytest.raises(ValueError, match="offset|segment"):
            a.write(data, offset)
    assert a.read() == snapshot                     # nothing written
    with pytest.raises(TypeError):
        a.write("text")
    with pytest.raises(TypeError):
        a.write(12)
    with pytest.raises(TypeError):
        a.read("1")
    with pytest.raises(TypeError):
        a.write(b"x", 1.0)


def test_write_accepts_any_bytes_like(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=1 << 20)
    strided = numpy.arange(20, dtype="u1")[::2]            # not contiguous
    assert a.write(strided, 1) == 10
    assert a.read(10, 1) == bytes(range(0, 20, 2))
    assert a.write(memoryview(b"abcdef")[1:4]) == 3
    assert a.read(3) == b"bcd"
    big = numpy.random.default_rng(1).integers(0, 255, 300000, dtype="u1")
    assert a.write(big, 5) == 300000                     # copied without the GIL
    assert a.read(300000, 5) == big.tobytes()
    assert a.write(a.buf[5:300005], 1) == 300000        # overlapping: memmove
    assert a.read(300000, 1) == big.tobytes()


# -- close, with, remove -------------------------------------------------------------------

def test_close_is_idempotent_and_then_use_is_valueerror(ipc: Any) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=64, create=True)
    a.close()
    a.close()
    assert a.closed
    for use in (lambda: a.buf, lambda: a.read(), lambda: a.write(b"x"), lambda: len(a),
                lambda: memoryview(a), lambda: bytes(a), lambda: numpy.frombuffer(a)):
        with pytest.raises(ValueError):
            use()
    assert a.stat().attached == 0                # stat and remove still work
    assert "closed" in repr(a)
    with pytest.raises(ValueError, match="again"):
        a._seg_attach(a.id)                      # the core's in-place attach, once only


@pytest.mark.parametrize("export", ["memoryview", "slice", "numpy", "numpy_view", "cast",
                                    "pickle_buffer"])
def test_close_with_live_views_is_buffererror_and_stays_usable(ipc: Any, export: str) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=64, create=True)
    if export == "memoryview":
        live: Any = a.buf
    elif export == "slice":
        live = a.buf[10:20]                 # the parent view is gone; the slice pins
    elif export == "numpy":
        live = numpy.ndarray((8,), "u8", buffer=a.buf)
    elif export == "numpy_view":
        live = numpy.frombuffer(a, dtype="u1")[::3].reshape(2, -1)[1:]
    elif export == "cast":
        live = memoryview(a).cast("Q")[2:]
    else:
        live = pickle.PickleBuffer(a)
    with pytest.raises(BufferError):
        a.close()
    assert not a.closed
    a.write(b"still here")
    assert a.read(10) == b"still here"
    with pytest.raises(BufferError):
        with a:
            pass
    del live
    a.close()
    assert a.closed


def test_with_block_closes_and_never_removes(ipc: Any) -> None:
    key = ipc.key()
    with SHM(key=key, size=64, create=True) as a:
        ipc.track(a)
        a.write(b"persist")
        assert not a.closed
    assert a.closed
    with SHM(key=key) as b:
        assert b.id == a.id and b.read(7) == b"persist"
    assert b.closed and a.stat().attached == 0


def test_forgotten_segment_is_detached_at_gc_with_resourcewarning(ipc: Any) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=64, create=True)
    b = SHM(key=a.key)
    setattr(b, "cycle", b)               # only the cycle collector can free it
    assert a.stat().attached == 2
    with pytest.warns(ResourceWarning, match="never closed"):
        del b
        gc.collect()
    assert a.stat().attached == 1
    with warnings.catch_warnings():      # a closed one says nothing
        warnings.simplefilter("error")
        c = SHM(key=a.key)
        c.close()
        del c
        gc.collect()


def test_remove_keeps_an_attached_segment_working(ipc: Any) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=64, create=True)
    b = ipc.track(SHM.from_id(a.id))
    a.remove()
    a.write(b"after remove")
    assert b.read(12) == b"after remove"
    info = a.stat()
    assert info.removed and info.key == 0 and info.attached == 2
    with pytest.raises(FileNotFoundError):
        SHM(key=a.key)                  # the key no longer names it
    with pytest.raises(sysvkit.RemovedError):
        a.remove()
    a.close()
    assert b.read(5) == b"after"
    b.close()
    with pytest.raises(sysvkit.RemovedError):
        a.stat()                        # freed at the last detach
    with pytest.raises(sysvkit.RemovedError):
        SHM.from_id(a.id)


# -- stat and repr ----------------------------------------------------------------------

def test_stat(ipc: Any) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=4321, create=True, mode=0o640)
    info = a.stat()
    assert isinstance(info, sysvkit.ShmInfo)
    assert info.key == a.key and info.id == a.id
    assert (info.size, info.mode, info.attached) == (4321, 0o640, 1)
    assert (info.uid, info.gid, info.cuid, info.cgid) == (os.geteuid(), os.getegid(),
                                                          os.geteuid(), os.getegid())
    assert info.creator_pid == info.last_pid == os.getpid()
    for t in (info.attach_time, info.detach_time, info.change_time):
        assert type(t) is int
    assert info.attach_time > 0 and info.detach_time == 0 and info.change_time > 0
    assert not info.removed and not info.locked
    with pytest.raises(AttributeError):
        info.size = 1


def test_repr(ipc: Any) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=4096, create=True)
    r = repr(a)
    assert "SharedMemory" in r and "key=0x%08x" % (a.key & 0xFFFFFFFF) in r
    assert "id=%d" % a.id in r and "size=4096" in r


# -- across processes ----------------------------------------------------------------------

def _fork_child_write(shm: Any, offset: int) -> None:
    shm.write(b"fork-%d" % offset, offset)     # the parent's attachment, inherited


def _fork_child_open(key: int, offset: int) -> None:
    with SHM(key=key) as shm:
        numpy.ndarray((4,), "u1", buffer=shm.buf, offset=offset)[:] = [1, 2, 3, 4]


def test_multiprocessing_fork(ipc: Any) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=64, create=True)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_fork_child_write, args=(a, 0)),
             ctx.Process(target=_fork_child_open, args=(a.key, 32))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert a.read(6) == b"fork-0"
    assert a.read(4, 32) == bytes([1, 2, 3, 4])
    assert a.stat().attached == 1


SPAWN_SCRIPT = """
    import multiprocessing, sys
    import numpy, sysvkit

    def child(shm, value):
        # shm arrives pickled by id: opened and attached in this process
        assert shm.size == 4096 and not shm.closed
        arr = numpy.frombuffer(shm.buf, dtype="i4")
        assert arr[0] == 1234, arr[0]
        arr[1:] = value
        del arr
        shm.close()

    if __name__ == "__main__":
        shm = sysvkit.SharedMemory.from_id(int(sys.argv[1]))
        ctx = multiprocessing.get_context("spawn")
        p = ctx.Process(target=child, args=(shm, 77))
        p.start()
        p.join(60)
        assert p.exitcode == 0, p.exitcode
        assert (numpy.frombuffer(shm.buf, dtype="i4")[1:] == 77).all()
        shm.close()
        print("ok")
"""


def test_multiprocessing_spawn(ipc: Any, tmp_path: Path) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=4096)
    numpy.frombuffer(a.buf, dtype="i4")[0] = 1234
    assert run_script(tmp_path, SPAWN_SCRIPT, str(a.id)).strip() == "ok"
    assert (numpy.frombuffer(a.buf, dtype="i4")[1:] == 77).all()


def test_plain_subprocess_by_path(ipc: Any, run_py: RunPy) -> None:
    path, proj = ipc.path()
    a = ipc.new(SHM, path, proj, size=64, create=True)
    a.write(b"hello")
    out = run_py("""
        import sys, sysvkit
        with sysvkit.SharedMemory(sys.argv[1], int(sys.argv[2])) as shm:
            print(shm.read(5).decode(), shm.size)
            shm.write(b"world", 5)
        """, path, str(proj))
    assert out.stdout.split() == ["hello", "64"]
    assert a.read(10) == b"helloworld"


# -- interoperability with sysv_ipc ------------------------------------------------------------

def test_sysv_ipc_sees_the_same_bytes(ipc: Any, run_py: RunPy) -> None:
    pytest.importorskip("sysv_ipc")
    a = ipc.new(SHM, key=ipc.key(), size=4096, create=True)
    a.write(b"from sysvkit")
    # sysv_ipc's own detach is known to crash: its part runs in a subprocess,
    # which exits without detaching (the kernel detaches at exit).
    out = run_py("""
        import os, sys, sysv_ipc
        m = sysv_ipc.SharedMemory(int(sys.argv[1]))
        print(m.size, m.read(12).decode())
        m.write(b"from sysv_ipc", 100)
        sys.stdout.flush()
        os._exit(0)
        """, str(a.key)).stdout.split()
    assert out == ["4096", "from", "sysvkit"]
    assert a.read(13, 100) == b"from sysv_ipc"


def test_sysvkit_opens_a_sysv_ipc_segment(ipc: Any, run_py: RunPy) -> None:
    pytest.importorskip("sysv_ipc")
    key = ipc.key()
    out = run_py("""
        import os, sys, sysv_ipc
        m = sysv_ipc.SharedMemory(int(sys.argv[1]), sysv_ipc.IPC_CREX, size=8192)
        m.write(b"made by sysv_ipc")
        print(m.id)
        sys.stdout.flush()
        os._exit(0)
        """, str(key)).stdout
    ipc.track_id("shm", int(out))
    b = ipc.new(SHM, key=key)
    assert b.id == int(out) and b.size == 8192 and b.stat().mode == 0o600
    assert b.read(16) == b"made by sysv_ipc"


# -- dangerous sequences, in a fresh interpreter ---------------------------------------------------

DANGER_PRELUDE = """
import gc, os, pickle, sys, threading, time, warnings
import numpy, sysvkit, sysvkit.lowlevel
warnings.simplefilter("ignore", ResourceWarning)
MADE = []
def new(size=1 << 16):
    shm = sysvkit.SharedMemory(key=sysvkit.IPC_PRIVATE, size=size)
    MADE.append(shm.id)
    return shm
def expect(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return
    raise AssertionError("%r did not raise %s" % (fn, exc.__name__))
def cleanup():
    for ident in MADE:
        try:
            sysvkit.lowlevel.shmctl(ident, sysvkit.lowlevel.IPC_RMID)
        except OSError:
            pass
"""

DANGERS = {
    "close_with_live_views": """
shm = new()
views = [shm.buf, shm.buf[1:9], memoryview(shm).cast("I"), numpy.frombuffer(shm, "u2")]
for i in range(len(views)):
    expect(BufferError, shm.close)
    views[-1][0] = 1            # still mapped
    views.pop()
shm.close()
expect(ValueError, lambda: shm.buf)
""",
    "use_after_close": """
shm = new()
view = shm.buf
view.release()
shm.close()
for fn in (lambda: shm.buf, shm.read, lambda: shm.write(b"x"), lambda: len(shm),
           lambda: memoryview(shm), lambda: bytes(shm), lambda: numpy.frombuffer(shm),
           lambda: numpy.ndarray((1,), "u1", buffer=shm)):
    expect(ValueError, fn)
expect(ValueError, view.__getitem__, 0)      # released memoryview
""",
    "del_with_live_numpy_views": """
shm = new()
arr = numpy.frombuffer(shm.buf, dtype="u8")
sub = arr[::7]
del shm, arr
gc.collect()
sub[:] = 42                   # the segment stays mapped while a view lives
assert sub.sum() == 42 * len(sub)
del sub
gc.collect()                  # now detached (with a ResourceWarning)
""",
    "remove_then_use": """
shm = new()
shm.remove()
shm.buf[:4] = b"live"
assert shm.read(4) == b"live" and shm.stat().removed
arr = numpy.frombuffer(shm, "u1")
expect(BufferError, shm.close)
del arr
shm.close()
expect(ValueError, shm.read)
expect(sysvkit.RemovedError, shm.stat)
expect(sysvkit.RemovedError, sysvkit.SharedMemory.from_id, shm.id)
""",
    "gc_with_live_exports": """
shm = new()
shm.me = shm                        # a cycle through the instance dict
view = memoryview(shm)
holder = [view, shm]
holder.append(holder)
del shm, holder
for _ in range(3):
    gc.collect()
view[0] = 9
assert view[0] == 9
ref = view.obj
del ref
view.release()
gc.collect()
""",
    "use_after_fork": """
shm = new()
arr = numpy.frombuffer(shm.buf, dtype="u1")
pid = os.fork()
if pid == 0:
    try:
        arr[0] = 7                   # the inherited mapping works in the child
        expect(BufferError, shm.close)
        del arr
        shm.close()
        expect(ValueError, shm.read)
        os._exit(0)
    except BaseException:
        os._exit(1)
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
assert arr[0] == 7 and shm.read(1) == b"\\x07"
del arr
shm.close()
""",
    "threads_cannot_bypass_the_count": """
# Copies run without the GIL; close() from another thread must wait for them
# (BufferError) rather than let a write land anywhere but the segment.
REGION = 4 << 20
shm = new(3 * REGION)
twin = sysvkit.SharedMemory.from_id(shm.id)
stop = threading.Event()
errors, last = [], [None] * 3
def writer(k):
    n = 0
    while not stop.is_set():
        n = (n + 1) % 256
        data = bytes([n]) * REGION
        try:
            shm.write(data, k * REGION)
            last[k] = n
            if shm.read(REGION, k * REGION) != data:
                errors.append("read back other data in region %d" % k)
            v = shm.buf
            v[k * REGION] = n
            del v
            time.sleep(0.0002)       # let the closer in with nothing in flight
        except ValueError:           # closed meanwhile: fine
            return
        except Exception as e:
            errors.append(repr(e))
            return
threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
for t in threads:
    t.start()
deadline = time.monotonic() + 3
while time.monotonic() < deadline:
    try:
        shm.close()
        print("closed while the threads ran")
        break
    except BufferError:      # a copy or a view is in flight
        pass
stop.set()
for t in threads:
    t.join()
shm.close()
assert not errors, errors
for k, n in enumerate(last):
    if n is not None:                # every write that returned reached the segment
        assert twin.read(1, (k + 1) * REGION - 1) == bytes([n]), (k, n)
twin.close()
""",
    "pickling_does_not_leak_exports": """
shm = new()
arr = numpy.frombuffer(shm, "u1")
copy = pickle.loads(pickle.dumps(arr))           # bytes copied, not the mapping
expect(TypeError, pickle.dumps, shm.buf)
twin = pickle.loads(pickle.dumps(shm))            # a second attachment, by id
del arr
gc.collect()
shm.close()
copy[0] = 1
twin.write(b"ok")
twin.close()
""",
}


@pytest.mark.parametrize("name", sorted(DANGERS))
def test_dangerous_sequences_never_crash(run_py: RunPy, name: str) -> None:
    code = DANGER_PRELUDE + "try:\n" + textwrap.indent(DANGERS[name], "    ") + (
        "finally:\n    cleanup()\nprint('survived')\n")
    assert run_py(code).stdout.strip().endswith("survived")


# -- the low-level attachment the class is built on ---------------------------------------------------

def test_lowlevel_attachment_still_safe(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=64)
    att = ll.shmat(a.id)
    assert isinstance(att, ll.Attachment) and att.shmid == a.id and len(att) == 64
    att.write(b"low")
    assert a.read(3) == b"low"
    view = memoryview(att)
    assert att.exports == 1
    with pytest.raises(BufferError):
        ll.shmdt(att)
    view.release()
    ll.shmdt(att)
    assert att.closed and "detached" in repr(att)
    with pytest.raises(ValueError):
        att.read()
    with pytest.raises(TypeError):
        ll.Attachment()
    ro = ll.shmat(a.id, ll.SHM_RDONLY)
    assert ro.readonly and ro.read(3) == b"low"
    with pytest.raises(TypeError):
        ro.write(b"x")
    with pytest.raises(TypeError):
        pickle.dumps(ro)
    ro.detach()
    ro.detach()
