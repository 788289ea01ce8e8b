"""Bulk data in SharedMemory: populate at attach, huge pages, and numpy
arrays that count as exports (numpy optional)."""

from __future__ import annotations

import errno
import multiprocessing
import os
import sys
import textwrap
import threading
import time
from typing import Any, Callable, Set

import numpy
import pytest

import sysvkit
from sysvkit import SharedMemory as SHM
from sysvkit import lowlevel as ll

PAGE = os.sysconf("SC_PAGE_SIZE")
RunPy = Callable[..., Any]


def shm_ids() -> Set[int]:
    with open("/proc/sysvipc/shm") as f:
        next(f)
        return {int(line.split()[1]) for line in f if line.strip()}


def address(shm: Any) -> int:
    arr = numpy.frombuffer(shm.buf, numpy.uint8)
    addr = int(arr.__array_interface__["data"][0])
    del arr
    return addr


def mapped_bytes(addr: int, pid: str = "self") -> int:
    """Bytes of the mapping that starts at ``addr`` that this process has
    page-table entries for (smaps Rss)."""
    with open("/proc/%s/smaps" % pid) as f:
        inside = False
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                inside = int(head.split("-")[0], 16) == addr
            elif inside and head == "Rss:":
                return int(line.split()[1]) * 1024
    raise AssertionError("no mapping at 0x%x" % addr)


def start(method: str, code: str, *args: Any) -> Any:
    ctx = multiprocessing.get_context(method)
    proc = ctx.Process(target=exec, args=(textwrap.dedent(code), {"ARGS": args}))
    proc.start()
    return proc


def join_ok(proc: Any, timeout: float = 60) -> None:
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
    assert proc.exitcode == 0


# -- populate --------------------------------------------------------------------------

@pytest.mark.parametrize("readonly", [False, True])
def test_populate_maps_every_page_at_attach(ipc: Any, readonly: bool) -> None:
    size = 8 << 20
    a = ipc.new(SHM, key=ipc.key(), size=size, create=True)
    a.ndarray("u1")[:] = 3                      # pages exist in the segment
    plain = ipc.new(SHM, key=a.key, readonly=readonly)
    assert mapped_bytes(address(plain)) < size // 4   # faulted one page at a time, later
    b = ipc.new(SHM, key=a.key, readonly=readonly, populate=True)
    assert mapped_bytes(address(b)) == size
    c = ipc.track(SHM.from_id(a.id, readonly=readonly, populate=True))
    assert mapped_bytes(address(c)) == size
    assert b.read(4, size - 4) == b"\3" * 4 and c.readonly == readonly
    if not readonly:
        b.write(b"xy", 10)                      # the data is the segment's, not a copy
        assert a.read(2, 10) == b"xy"


def test_populate_when_creating_reads_as_zeros(ipc: Any) -> None:
    size = 4 << 20
    a = ipc.new(SHM, key=ipc.key(), size=size, create=True, populate=True)
    assert mapped_bytes(address(a)) == size
    assert not a.ndarray("u8").any()


def test_populate_in_a_fresh_process(ipc: Any, run_py: RunPy) -> None:
    size = 4 << 20
    a = ipc.new(SHM, key=ipc.key(), size=size, create=True)
    a.write(b"\x55" * size)
    run_py("""
        import sys, numpy, sysvkit
        shm = sysvkit.SharedMemory(key=int(sys.argv[1]), readonly=True, populate=True)
        arr = shm.ndarray("u1")
        addr = arr.__array_interface__["data"][0]
        with open("/proc/self/smaps") as f:
            lines = f.read().splitlines()
        i = [n for n, l in enumerate(lines) if l.startswith(format(addr, "x") + "-")][0]
        rss = [l for l in lines[i:] if l.startswith("Rss:")][0]
        assert int(rss.split()[1]) * 1024 == int(sys.argv[2]), rss
        assert (arr == 0x55).all() and not arr.flags.writeable
        del arr
        shm.close()
    """, str(a.key), str(size))


def test_populate_releases_the_gil(ipc: Any) -> None:
    size = 128 << 20
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=size)
    a.ndarray("u1")[::PAGE] = 1
    ticks = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=count)
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.5)        # a thread that held the GIL would keep it throughout
    t.start()
    try:
        time.sleep(0.05)
        before = ticks[0]
        b = ipc.track(SHM.from_id(a.id, readonly=True, populate=True))
        during = ticks[0] - before
    finally:
        stop.set()
        sys.setswitchinterval(old)
        t.join()
    assert mapped_bytes(address(b)) == size
    assert during > 0


def test_populate_is_not_the_default(ipc: Any) -> None:
    # Populating costs time and memory in proportion to the segment (it
    # allocates pages never written): reading a little must not pay it.
    size = 16 << 20
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=size)
    before = int(ll.shmctl(0, ll.SHM_INFO)[3])
    b = ipc.track(SHM.from_id(a.id, readonly=True))
    assert b.read(8) == bytes(8)
    assert int(ll.shmctl(0, ll.SHM_INFO)[3]) - before < size // PAGE // 2
    assert mapped_bytes(address(b)) <= 16 * PAGE


def test_prefault_with_threads_argument(ipc: Any) -> None:
    size = 8 << 20
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=size + 123)
    for threads in (1, 2, 3):
        b = SHM.from_id(a.id)
        b._seg_populate(threads)
        assert mapped_bytes(address(b)) == size + PAGE     # whole pages, the last one too
        b.close()
    with pytest.raises(ValueError, match="threads"):
        a._seg_populate(-1)


# -- huge pages --------------------------------------------------------------------------

def huge_pages_configured() -> bool:
    with open("/proc/sys/vm/nr_hugepages") as f:
        return int(f.read()) > 0


@pytest.mark.parametrize("name", ["huge_pages", "hugetlb"])
def test_huge_pages_without_any_configured(ipc: Any, name: str) -> None:
    if huge_pages_configured():  # pragma: no cover - depends on the machine
        pytest.skip("this machine has huge pages configured")
    before = shm_ids()
    with pytest.raises(OSError, match=r"vm\.nr_hugepages") as info:
        SHM(key=ipc.key(), size=2 << 20, create=True, **{name: True})
    assert info.value.errno in (errno.ENOMEM, errno.EINVAL)
    assert shm_ids() == before                       # nothing left behind
    with pytest.raises(OSError, match=r"vm\.nr_hugepages"):
        SHM(key=sysvkit.IPC_PRIVATE, size=4096, huge_pages=True)
    assert shm_ids() == before


def test_huge_pages_error_for_a_user_other_than_root(run_py: RunPy) -> None:
    if os.geteuid() != 0:  # pragma: no cover - the suite runs as root in CI
        pytest.skip("needs root to become another user")
    if huge_pages_configured():  # pragma: no cover
        pytest.skip("this machine has huge pages configured")
    run_py("""
        import os, sysvkit
        os.setgid(65534); os.setuid(65534)
        before = open("/proc/sysvipc/shm").read()
        try:
            sysvkit.SharedMemory(key=sysvkit.IPC_PRIVATE, size=2 << 20, huge_pages=True)
        except OSError as exc:
            assert "hugetlb_shm_group" in str(exc) and "vm.nr_hugepages" in str(exc), exc
        else:
            raise AssertionError("created a huge-page segment without huge pages")
        assert open("/proc/sysvipc/shm").read().count("\\n") == before.count("\\n")
    """)


def test_huge_pages_when_available(ipc: Any) -> None:
    if not huge_pages_configured():
        pytest.skip("no huge pages configured (vm.nr_hugepages is 0)")
    try:  # pragma: no cover - depends on the machine
        a = ipc.new(SHM, key=ipc.key(), size=2 << 20, create=True, huge_pages=True,
                    populate=True)
    except OSError as exc:  # pragma: no cover - configured but all in use
        pytest.skip("no huge page free: %s" % exc)
    a.buf[-1] = 7  # pragma: no cover
    assert a.read(1, (2 << 20) - 1) == b"\x07"  # pragma: no cover


# -- ndarray ---------------------------------------------------------------------------

def test_ndarray_is_zero_copy_and_counted_as_an_export(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=8192)
    arr = a.ndarray("f8")
    assert arr.shape == (1024,) and arr.dtype == numpy.float64 and arr.flags.writeable
    arr[:] = numpy.arange(1024)
    assert a.read(8, 8) == numpy.float64(1).tobytes()
    part = arr[10:20]
    del arr
    with pytest.raises(BufferError):
        a.close()
    assert not a.closed
    del part
    a.close()
    with pytest.raises(ValueError, match="closed"):
        a.ndarray("u1")


def test_ndarray_shape_offset_and_bounds(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=4096)
    m = a.ndarray("i4", (4, 8), offset=64)
    assert m.shape == (4, 8) and m.dtype == numpy.int32
    m[1, 2] = -5
    assert a.read(4, 64 + 4 * (8 + 2)) == numpy.int32(-5).tobytes()
    assert a.ndarray("u2", offset=6).shape == ((4096 - 6) // 2,)
    assert a.ndarray("u1", 5).shape == (5,)
    assert a.ndarray("f8", (0,), offset=4096).shape == (0,)
    assert a.ndarray("f8", offset=4096).shape == (0,)
    assert a.ndarray("V3").shape == (4096 // 3,)        # as many as fit, the rest left over
    assert a.ndarray("u1", ()).shape == ()
    del m
    with pytest.raises(ValueError, match="multiple of 8"):
        a.ndarray("f8", offset=4)
    with pytest.raises(ValueError, match="needs 4104 bytes"):
        a.ndarray("f8", 513)
    with pytest.raises(ValueError, match="needs 8 bytes at offset 4092"):
        a.ndarray("f4", 2, offset=4092)
    with pytest.raises(ValueError, match="offset"):
        a.ndarray("u1", offset=4097)
    with pytest.raises(ValueError, match="offset"):
        a.ndarray("u1", offset=-1)
    with pytest.raises(ValueError, match=r"shape\[1\]"):
        a.ndarray("u1", (2, -1))
    with pytest.raises(TypeError, match="shape"):
        a.ndarray("u1", "12")
    with pytest.raises(TypeError, match="offset"):
        a.ndarray("u1", offset=1.0)
    with pytest.raises(TypeError, match="Python objects"):
        a.ndarray(object)
    with pytest.raises(TypeError, match="Python objects"):
        a.ndarray([("x", "f8"), ("o", "O")])
    with pytest.raises(ValueError, match="0 bytes"):
        a.ndarray("S0")
    with pytest.raises(TypeError):
        a.ndarray("not a dtype")
    assert a._seg_exports == 0                # a refused array holds nothing
    a.close()


def test_ndarray_read_only_on_a_read_only_attach(ipc: Any) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=4096, create=True)
    a.write(b"\1\2")
    b = ipc.new(SHM, key=a.key, readonly=True)
    arr = b.ndarray("u1", 2)
    assert not arr.flags.writeable and list(arr) == [1, 2]
    with pytest.raises(ValueError):
        arr[0] = 9
    with pytest.raises(ValueError):
        arr.flags.writeable = True
    assert a.read(1) == b"\1"
    del arr


def test_ndarray_keeps_the_segment_alive_without_the_object(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=4096)
    b = SHM.from_id(a.id)
    arr = b.ndarray("u8")
    del b
    import gc
    gc.collect()
    arr[3] = 42                              # the mapping stays while the array lives
    assert a.read(8, 24) == numpy.uint64(42).tobytes()
    del arr


NDARRAY_CHILD = """
import sysvkit
key, q = ARGS
shm = sysvkit.SharedMemory(key=key)
arr = shm.ndarray("f8", (16, 4))
assert (arr[:, 0] == range(16)).all(), arr[:, 0]
arr[:, 1] = -arr[:, 0]
del arr
shm.close()
q.put("done")
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_ndarray_across_processes(ipc: Any, method: str) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=16 * 4 * 8, create=True)
    arr = a.ndarray("f8", (16, 4))
    arr[:, 0] = numpy.arange(16)
    q = multiprocessing.get_context(method).SimpleQueue()
    proc = start(method, NDARRAY_CHILD, a.key, q)
    assert q.get() == "done"
    join_ok(proc)
    assert (arr[:, 1] == -numpy.arange(16)).all()
    del arr


def test_numpy_absent(ipc: Any, run_py: RunPy) -> None:
    a = ipc.new(SHM, key=ipc.key(), size=4096, create=True)
    run_py("""
        import sys
        sys.modules["numpy"] = None          # numpy cannot be imported
        import sysvkit
        shm = sysvkit.SharedMemory(key=int(sys.argv[1]), populate=True)
        shm.write(b"still works")
        for make in (lambda: shm.ndarray("u1"),
                     lambda: sysvkit.SharedArray(key=sysvkit.IPC_PRIVATE, shape=3),
                     lambda: sysvkit.SharedArray.from_id(shm.id)):
            try:
                make()
            except ImportError as exc:
                assert "pip install numpy" in str(exc), exc
            else:
                raise AssertionError("no ImportError without numpy")
        assert shm._seg_exports == 0
        shm.close()
        assert "numpy" not in [m for m in sys.modules if sys.modules[m] is not None]
    """, str(a.key))
    assert a.read(11) == b"still works"


# -- readinto --------------------------------------------------------------------------

def test_readinto_copies_exactly_and_checks_bounds(ipc: Any) -> None:
    size = 8 << 20
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=size)
    pattern = numpy.arange(size, dtype=numpy.uint32).view(numpy.uint8)[:size]
    a.ndarray("u1")[:] = pattern
    b = ipc.track(SHM.from_id(a.id, readonly=True))
    dst = numpy.zeros(size, numpy.uint8)
    assert b.readinto(dst) == size
    assert (dst == pattern).all()
    for threads in (1, 2, 3, 8):
        part = bytearray(size - 4096 - 3)
        assert b._seg_readinto(part, 4099, threads) == len(part)
        assert part == pattern[4099:].tobytes()
    small = bytearray(10)
    assert b.readinto(small, size - 10) == 10 and small == pattern[-10:].tobytes()
    assert b.readinto(bytearray(0), size) == 0
    before = bytes(small)
    with pytest.raises(ValueError, match="cannot read 10 bytes at offset"):
        b.readinto(small, size - 9)
    with pytest.raises(ValueError):
        b.readinto(small, -1)
    assert bytes(small) == before                        # nothing copied
    with pytest.raises(TypeError, match="offset"):
        b.readinto(small, 1.5)
    with pytest.raises(TypeError):
        b.readinto(b"read-only bytes")
    with pytest.raises(TypeError, match="writable"):
        b.readinto(memoryview(bytearray(3)).toreadonly())
    with pytest.raises((TypeError, BufferError, ValueError)):
        b.readinto(numpy.zeros((4, 4), numpy.uint8)[:, ::2])   # not contiguous
    with pytest.raises(ValueError, match="threads"):
        b._seg_readinto(small, 0, -1)
    assert b._seg_exports == 0
    b.close()
    with pytest.raises(ValueError, match="closed"):
        b.readinto(small)


def test_readinto_the_segment_itself(ipc: Any) -> None:
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=1 << 20)
    a.write(bytes(range(256)) * 4096)
    view = a.buf[100:]
    assert a.readinto(view, 0) == (1 << 20) - 100        # overlapping: a memmove
    assert a.read(256, 100) == bytes(range(256))
    view.release()


def test_readinto_releases_the_gil(ipc: Any) -> None:
    size = 128 << 20
    a = ipc.new(SHM, key=sysvkit.IPC_PRIVATE, size=size)
    a.ndarray("u1")[::PAGE] = 1
    dst = numpy.ones(size, numpy.uint8)
    ticks = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=count)
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.5)
    t.start()
    try:
        time.sleep(0.05)
        before = ticks[0]
        a.readinto(dst)
        during = ticks[0] - before
    finally:
        stop.set()
        sys.setswitchinterval(old)
        t.join()
    assert during > 0
    assert dst[::PAGE].all() and dst[1] == 0
