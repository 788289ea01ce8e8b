"""SharedArray: a numpy array in a segment whose header records its dtype and
shape; opened by name alone, checked against hostile headers."""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import struct
import textwrap
import time
from typing import Any, Callable

import numpy
import pytest

import sysvkit
from sysvkit import SharedArray as SA
from sysvkit import _core
from sysvkit import lowlevel as ll
from sysvkit.array import MAX_NDIM

RunPy = Callable[..., Any]
FIXED = struct.Struct("=IIQQQ")      # ndim, descr_len, itemsize, nbytes, data_offset
STRUCTURED = numpy.dtype([("t", "<f8"), ("id", "<u4"), ("tag", "S5"), ("xyz", "<f4", (3,))])


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


def scribble(ident: int, offset: int, data: bytes) -> None:
    a = ll.shmat(ident)
    a.write(data, offset)
    ll.shmdt(a)


def data_address(arr: Any) -> int:
    return int(arr.__array_interface__["data"][0])


# -- creating and opening --------------------------------------------------------------

def test_create_then_open_by_name_alone(ipc: Any) -> None:
    path, proj = ipc.path()
    a = ipc.new(SA, path, proj, create=True, shape=(3, 4), dtype="i4")
    assert a.shape == (3, 4) and a.dtype == numpy.int32
    assert a.array.shape == (3, 4) and a.array.dtype == numpy.int32
    assert not a.array.any()                          # new arrays read as zeros
    a.array[1] = [1, 2, 3, 4]
    b = ipc.new(SA, path, proj)
    assert b.shape == (3, 4) and b.dtype == numpy.int32 and b.id == a.id
    assert b.key == a.key == sysvkit.ftok(path, proj)
    assert list(b.array[1]) == [1, 2, 3, 4]
    b.array[2, 3] = 9
    assert a.array[2, 3] == 9
    assert not numpy.shares_memory(a.array, b.array)  # two mappings of one segment
    c = ipc.new(SA, path, proj, create=True, shape=(3, 4), dtype="i4")   # exists: opened
    assert c.array[1, 0] == 1


def test_defaults_and_shapes(ipc: Any) -> None:
    a = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=5)
    assert a.shape == (5,) and a.dtype == numpy.float64
    s = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=(), dtype="u2")
    assert s.array.shape == () and s.nbytes == 2
    s.array[()] = 7
    assert SA.from_id(s.id).array[()] == 7
    e = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=(0, 5), dtype="f4")
    assert e.array.shape == (0, 5) and e.nbytes == 0
    n = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=numpy.array([2, 3]), dtype=numpy.int8)
    assert n.shape == (2, 3)


@pytest.mark.parametrize("dtype", ["u1", "<f8", ">i4", "c16", "S7", "<U3", "<M8[ns]", "V5",
                                   "?", STRUCTURED,
                                   numpy.dtype([("a", "u1"), ("b", "<f8")], align=True)])
def test_data_is_aligned_and_dtype_round_trips(ipc: Any, dtype: Any) -> None:
    for shape in ((3,), (2, 3), tuple([1] * MAX_NDIM)):
        a = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=shape, dtype=dtype)
        b = ipc.track(SA.from_id(a.id))
        assert b.dtype == numpy.dtype(dtype) and b.shape == shape
        assert data_address(b.array) % 64 == 0
        assert data_address(b.array) % numpy.dtype(dtype).alignment == 0
        assert a.stat().size >= b.nbytes + 64


def test_opening_with_another_shape_or_dtype_is_valueerror(ipc: Any) -> None:
    key = ipc.key()
    a = ipc.new(SA, key=key, create=True, shape=(4, 4), dtype="f4")
    before = a.stat().attached
    with pytest.raises(ValueError,
                       match=r"holds shape \(4, 4\), dtype float32; asked for shape \(16,\)"):
        SA(key=key, shape=16)
    with pytest.raises(ValueError, match="asked for dtype float64"):
        SA(key=key, dtype="f8")
    with pytest.raises(ValueError, match="asked for dtype >f4"):
        SA(key=key, dtype=">f4")
    with pytest.raises(ValueError, match="shape"):
        SA(key=key, create=True, shape=(4, 5), dtype="f4")
    assert a.stat().attached == before                  # the refused ones detached
    assert ipc.new(SA, key=key, shape=[4, 4], dtype=numpy.float32).shape == (4, 4)


def test_errors_when_opening_and_creating(ipc: Any, ipc_ids: Any) -> None:
    path, proj = ipc.path()
    with pytest.raises(FileNotFoundError, match="create=True creates it"):
        SA(path, proj)
    with pytest.raises(FileNotFoundError):
        SA(path, proj, readonly=True)
    a = ipc.new(SA, path, proj, create=True, shape=3)
    with pytest.raises(FileExistsError):
        SA(path, proj, create=True, exclusive=True, shape=3)
    before = ipc_ids()["shm"]
    for kwargs, exc, match in [
        (dict(create=True), ValueError, "shape is required"),
        (dict(key=sysvkit.IPC_PRIVATE), ValueError, "shape is required"),
        (dict(create=True, shape=-1), ValueError, "shape must be >= 0"),
        (dict(create=True, shape=(2, -3)), ValueError, r"shape\[1\]"),
        (dict(create=True, shape="12"), TypeError, "shape"),
        (dict(create=True, shape=2.0), TypeError, "shape"),
        (dict(create=True, shape=(1,) * (MAX_NDIM + 1)), ValueError, "at most %d" % MAX_NDIM),
        (dict(create=True, shape=3, dtype=object), TypeError, "Python objects"),
        (dict(create=True, shape=3, dtype="S0"), ValueError, "0 bytes"),
        (dict(create=True, shape=3, dtype=("f8", (2,))), ValueError, "subarray"),
        (dict(create=True, shape=(1 << 40, 1 << 40)), ValueError, "too large"),
        (dict(create=True, shape=3, mode=0o1000), ValueError, "mode"),
        (dict(exclusive=True, shape=3), ValueError, "exclusive=True needs create=True"),
    ]:
        k: Any = kwargs.pop("key", None)
        args = () if k is not None else (path + "x", proj)
        with pytest.raises(exc, match=match):
            SA(*args, key=k, **kwargs)
    with pytest.raises(TypeError):
        SA(path, proj, key=5)
    with pytest.raises(TypeError):
        SA(shape=3, create=True)
    assert ipc_ids()["shm"] == before                   # all refused before shmget
    assert a.shape == (3,)


def test_opening_a_segment_of_another_kind(ipc: Any) -> None:
    shm = ipc.new(sysvkit.SharedMemory, key=ipc.key(), size=4096, create=True)
    shm.write(b"x" * 4096)
    for readonly in (False, True):
        with pytest.raises(sysvkit.CorruptError, match="not a sysvkit shared array"):
            SA(key=shm.key, readonly=readonly)
    assert shm.read() == b"x" * 4096


# -- the array -------------------------------------------------------------------------

def test_array_is_an_export_close_refuses_while_it_lives(ipc: Any) -> None:
    a = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=(10,), dtype="u8")
    arr = a.array
    assert a.array is arr
    view = arr[2:5]
    del arr
    with pytest.raises(BufferError):
        a.close()
    assert not a.closed
    view[0] = 5
    assert a.array[2] == 5
    del view
    a.close()
    a.close()                                           # idempotent
    assert a.closed
    with pytest.raises(ValueError, match="closed"):
        a.array
    assert a.shape == (10,)                             # what it held is still known


def test_close_without_taking_the_array(ipc: Any) -> None:
    a = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=4)
    with a as same:
        assert same is a
    assert a.closed
    b = SA.from_id(a.id)
    b.array[0] = 1.5
    with SA.from_id(a.id) as c:
        assert c.array[0] == 1.5        # the object's own reference does not stop close()
    assert c.closed
    b.close()


def test_array_outlives_the_object_safely(ipc: Any) -> None:
    a = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=4, dtype="i8")
    arr = SA.from_id(a.id).array
    gc.collect()
    arr[:] = [1, 2, 3, 4]
    assert list(a.array) == [1, 2, 3, 4]
    del arr


def test_readonly(ipc: Any) -> None:
    key = ipc.key()
    a = ipc.new(SA, key=key, create=True, shape=3, dtype="i2")
    a.array[:] = [7, 8, 9]
    for r in (ipc.new(SA, key=key, readonly=True),
              ipc.track(SA.from_id(a.id, readonly=True)),
              ipc.track(pickle.loads(pickle.dumps(SA.from_id(a.id, readonly=True))))):
        assert r.readonly and not r.array.flags.writeable
        assert list(r.array) == [7, 8, 9]
        with pytest.raises(ValueError):
            r.array[0] = 1
        with pytest.raises(ValueError):
            r.array.flags.writeable = True
        assert "readonly" in repr(r)
    with pytest.raises(ValueError, match="asked for dtype"):
        SA(key=key, readonly=True, dtype="u2")


def test_readonly_create(ipc: Any) -> None:
    key = ipc.key()
    r = ipc.new(SA, key=key, create=True, readonly=True, shape=(2, 2), dtype="u1")
    assert r.readonly and not r.array.flags.writeable and not r.array.any()
    w = ipc.new(SA, key=key)
    w.array[1, 1] = 3
    assert r.array[1, 1] == 3
    assert r.stat().attached == 2                       # the settling attach is gone


def test_readonly_needs_only_read_permission(ipc: Any, run_py: RunPy) -> None:
    if os.geteuid() != 0:  # pragma: no cover
        pytest.skip("needs root to become another user")
    key = ipc.key()
    a = ipc.new(SA, key=key, create=True, shape=4, dtype="u4", mode=0o644)
    a.array[:] = [4, 3, 2, 1]
    run_py("""
        import sys, numpy, sysvkit
        import os
        os.setgid(65534); os.setuid(65534)
        key = int(sys.argv[1])
        try:
            sysvkit.SharedArray(key=key)
        except PermissionError:
            pass
        else:
            raise AssertionError("opened read-write without write permission")
        r = sysvkit.SharedArray(key=key, readonly=True, populate=True)
        assert list(r.array) == [4, 3, 2, 1] and not r.array.flags.writeable
    """, str(key))


def test_stat_remove_repr_pickle(ipc: Any) -> None:
    a = ipc.new(SA, key=ipc.key(), create=True, shape=(2, 3), dtype="f4")
    st = a.stat()
    assert st.key == a.key and st.id == a.id and st.size == a.stat().size >= 64 + 24
    assert st.mode & 0o777 == 0o600
    assert ipc.new(SA, key=ipc.key(), create=True, shape=1, mode=0o640).stat().mode & 0o777 == 0o640
    assert repr(a).startswith("<sysvkit.SharedArray key=0x%08x id=%d shape=(2, 3) dtype=float32"
                              % (a.key & 0xFFFFFFFF, a.id))
    b = pickle.loads(pickle.dumps(a))
    assert b.id == a.id and b.shape == (2, 3) and not b.readonly
    b.array[0, 0] = 2.5
    assert a.array[0, 0] == 2.5
    b.close()
    a.remove()
    a.array[1, 1] = 1.0                          # attached: works until closed
    with pytest.raises(sysvkit.RemovedError):
        a.remove()
    with pytest.raises(FileNotFoundError):
        SA.from_id(a.id)
    a.close()
    with pytest.raises(FileNotFoundError):
        a.stat()


def mapped_bytes(addr: int) -> int:
    """Bytes of the mapping at ``addr`` this process has page-table entries for."""
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                inside = int(head.split("-")[0], 16) == addr
            elif inside and head == "Rss:":
                return int(line.split()[1]) * 1024
    raise AssertionError("no mapping at 0x%x" % addr)


def test_populate(ipc: Any) -> None:
    size = 4 << 20
    a = ipc.new(SA, key=ipc.key(), create=True, shape=size // 8, dtype="f8", populate=True)
    for b in (a, ipc.new(SA, key=a.key, populate=True, readonly=True),
              ipc.track(SA.from_id(a.id, populate=True))):
        start_addr = data_address(b.array) - (data_address(b.array) % 4096)
        assert mapped_bytes(start_addr) >= size


CHILD = """
import numpy, sysvkit
path, proj, q = ARGS
a = sysvkit.SharedArray(path, proj)
assert a.shape == (8, 2) and a.dtype == numpy.dtype(
    [("t", "<f8"), ("id", "<u4"), ("tag", "S5"), ("xyz", "<f4", (3,))]), a.dtype
arr = a.array
assert list(arr["id"][:, 0]) == list(range(8)), arr["id"]
arr["tag"][:, 1] = b"child"
arr["xyz"][3, 1] = [1, 2, 3]
del arr
a.close()
q.put(a.id)
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_across_processes(ipc: Any, method: str) -> None:
    path, proj = ipc.path()
    a = ipc.new(SA, path, proj, create=True, shape=(8, 2), dtype=STRUCTURED)
    a.array["id"][:, 0] = numpy.arange(8)
    q = multiprocessing.get_context(method).SimpleQueue()
    proc = start(method, CHILD, path, proj, q)
    assert q.get() == a.id
    join_ok(proc)
    assert (a.array["tag"][:, 1] == b"child").all()
    assert list(a.array["xyz"][3, 1]) == [1, 2, 3]


PICKLED_CHILD = """
import pickle
blob, q = ARGS
a = pickle.loads(blob)
a.array[:] = a.array * 10
q.put((a.shape, a.readonly, int(a.array.sum())))
a.close()
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pickled_to_another_process(ipc: Any, method: str) -> None:
    a = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=3, dtype="i8")
    a.array[:] = [1, 2, 3]
    q = multiprocessing.get_context(method).SimpleQueue()
    proc = start(method, PICKLED_CHILD, pickle.dumps(a), q)
    assert q.get() == ((3,), False, 60)
    join_ok(proc)
    assert list(a.array) == [10, 20, 30]


RACE_CHILD = """
import sysvkit
path, proj, q = ARGS
a = sysvkit.SharedArray(path, proj, create=True, shape=(100,), dtype="i8")
q.put((a.id, a.shape, int(a.array.sum())))
a.close()
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_racing_creators_make_one_array(ipc: Any, method: str) -> None:
    path, proj = ipc.path()
    q = multiprocessing.get_context(method).SimpleQueue()
    procs = [start(method, RACE_CHILD, path, proj, q) for _ in range(4)]
    got = [q.get() for _ in procs]
    for p in procs:
        join_ok(p)
    ipc.track_id("shm", got[0][0])
    assert len(set(got)) == 1 and got[0][1:] == ((100,), 0)


# -- half-made and hostile headers -------------------------------------------------------

def _half_made(key: int, q: Any) -> None:
    ident = ll.shmget(key, 4096, ll.IPC_CREAT | ll.IPC_EXCL | 0o600)
    a = ll.shmat(ident)
    a.write(struct.pack("=Q", (os.getpid() << 8) | _core.STRUCT_STATE_INIT), 8)
    q.put(ident)
    os._exit(0)


def test_half_made_by_a_dead_creator(ipc: Any) -> None:
    key = ipc.key()
    ctx = multiprocessing.get_context("fork")
    q = ctx.SimpleQueue()
    child = ctx.Process(target=_half_made, args=(key, q))
    child.start()
    ident = ipc.track_id("shm", q.get())
    child.join(30)
    t0 = time.monotonic()
    with pytest.raises(sysvkit.CorruptError, match="half-made"):
        SA(key=key, readonly=True)                  # cannot repair it: says so at once
    with pytest.raises(sysvkit.CorruptError, match="half-made"):
        SA(key=key)                                 # nor can an opener without a shape
    assert time.monotonic() - t0 < 3
    a = SA(key=key, create=True, shape=(10,), dtype="u2")    # this one can (after a second)
    assert a.id == ident and a.shape == (10,) and not a.array.any()
    assert time.monotonic() - t0 < 6
    b = ipc.track(SA(key=key, readonly=True))
    assert b.shape == (10,)
    a.close()


@pytest.mark.parametrize("offset,data,error", [
    (64, struct.pack("=I", MAX_NDIM + 1), "dimensions"),
    (68, struct.pack("=I", 0), "description"),
    (68, struct.pack("=I", 5000), "description"),
    (68, struct.pack("=I", 3000), "needs"),
    (72, struct.pack("=Q", 4), "items of 4 bytes"),
    (80, struct.pack("=Q", 10 ** 12), "does not make"),
    (88, struct.pack("=Q", 64), "does not fit"),
    (96, struct.pack("=Q", 1 << 40), "does not make"),
    (104, b"<f4", "items of 8 bytes"),
    (104, b"|O8", "not a valid stored dtype"),
    (104, b"\xff\xfe\xfd", "not a valid stored dtype"),
    (16, struct.pack("=Q", 64), "too few"),
    (4, struct.pack("=H", 1), "not a shared array"),
    (8, struct.pack("=Q", (1 << 48 << 8) | _core.STRUCT_STATE_INIT), "half-made"),  # no such pid
])
def test_scribbled_header_is_valueerror(ipc: Any, offset: int, data: bytes, error: str) -> None:
    a = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=(4,), dtype="<f8")
    scribble(a.id, offset, data)
    with pytest.raises(ValueError, match=error):
        SA.from_id(a.id)
    with pytest.raises(ValueError, match=error):
        SA.from_id(a.id, readonly=True)


def test_scribbling_a_live_header_leaves_open_arrays_alone(ipc: Any) -> None:
    a = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=(1000,), dtype="u1")
    arr = a.array
    scribble(a.id, 64, os.urandom(64))
    arr[:] = 1                           # laid out when opened: unchanged
    assert arr.shape == (1000,) and a.shape == (1000,)
    with pytest.raises(ValueError):
        SA.from_id(a.id)
    del arr


FUZZ = r"""
import os, random, struct, sys
import numpy, sysvkit
from sysvkit import lowlevel as ll

seed = int(sys.argv[1])
rnd = random.Random(seed)
dtypes = ["u1", "<f8", "<i4", "S3", "<c8",
          numpy.dtype([("a", "<f8"), ("b", "S2"), ("c", "<u2", (2,))])]
opened = refused = 0
made = []
for i in range(int(sys.argv[2])):
    ndim = rnd.randint(0, 4)
    shape = tuple(rnd.randint(0, 5) for _ in range(ndim))
    a = sysvkit.SharedArray(key=sysvkit.IPC_PRIVATE, shape=shape, dtype=rnd.choice(dtypes))
    try:
        size = a.stat().size
        raw = ll.shmat(a.id)
        for _ in range(rnd.randint(1, 4)):
            how = rnd.random()
            if how < 0.4:          # random bytes anywhere in the headers
                off = rnd.randrange(0, min(size, 200))
                n = rnd.randint(1, 16)
                raw.write(os.urandom(min(n, size - off)), off)
            elif how < 0.8:        # a plausible field set to an edge value
                off = rnd.choice([16, 64, 68, 72, 80, 88, 96, 104])
                if off >= size - 8:
                    continue
                val = rnd.choice([0, 1, 2, 7, 8, 63, 64, 65, size, size - 1, size + 1,
                                  1 << 31, (1 << 32) - 1, 1 << 62, (1 << 64) - 1])
                fmt = "=I" if off in (64, 68) else "=Q"
                raw.write(struct.pack(fmt, val & ((1 << (8 * struct.calcsize(fmt))) - 1)), off)
            else:                  # a dtype description of another kind
                text = rnd.choice([b"<f4", b"|O8", b"[(", b"(3,)f8", b"f8,i4", b"<U99999999999",
                                   b"|V999999999999", b"[('a', '|O')]"])
                raw.write(text[:size - 96 - 8 * ndim], 96 + 8 * ndim)
        ll.shmdt(raw)
        for readonly in (False, True):
            try:
                b = sysvkit.SharedArray.from_id(a.id, readonly=readonly)
            except ValueError:
                refused += 1
                continue
            opened += 1
            arr = b.array
            seg = numpy.frombuffer(b, numpy.uint8)
            lo = seg.__array_interface__["data"][0]
            start = arr.__array_interface__["data"][0]
            assert lo + 64 <= start and start + arr.nbytes <= lo + len(seg), (seed, i)
            arr.tobytes()          # read every byte of it
            del arr, seg
            b.close()
    finally:
        made.append(a.id)
        a.remove()
        a.close()
print(opened, refused, *made)
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzz_the_header(run_py: RunPy, ipc_ids: Any, seed: int) -> None:
    proc = run_py(FUZZ, str(seed), "150", timeout=240)
    opened, refused, *made = map(int, proc.stdout.split())
    assert opened > 0 and refused > 0 and opened + refused == 300
    assert len(made) == 150 and not set(made) & ipc_ids()["shm"]


def _create_forever(key: int) -> None:
    import sysvkit as sk
    while True:                      # killed at a random instant, creating or opening
        a = sk.SharedArray(key=key, create=True, shape=(64, 64), dtype="<u2")
        a.close()


@pytest.mark.slow
def test_creators_killed_at_random_instants(ipc: Any) -> None:
    import random
    import signal
    rnd = random.Random(7)
    ctx = multiprocessing.get_context("fork")
    for _ in range(15):
        key = ipc.key()
        proc = ctx.Process(target=_create_forever, args=(key,))
        proc.start()
        time.sleep(rnd.uniform(0, 0.02))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        t0 = time.monotonic()
        a = SA(key=key, create=True, shape=(64, 64), dtype="<u2")
        ipc.track(a)
        assert time.monotonic() - t0 < 3
        assert a.shape == (64, 64) and a.dtype == numpy.dtype("<u2")
        assert not a.array.any()
        b = SA(key=key, readonly=True)
        assert b.shape == (64, 64)
        b.close()


def test_a_dropped_object_is_detached_even_after_array_was_used(ipc: Any) -> None:
    a = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=16, dtype="u1")
    for _ in range(3):
        b = SA.from_id(a.id)
        b.array[:] = 1
        arr = b.array
        assert b.array is arr                 # the same array while one is alive
        del arr, b
    gc.collect()
    assert a.stat().attached == 1             # only a: nothing kept the others attached
    assert a.array.sum() == 16


def test_open_use_close_does_not_leak(ipc: Any, rss_flat: Any) -> None:
    a = ipc.new(SA, key=sysvkit.IPC_PRIVATE, shape=(8, 8), dtype=STRUCTURED)

    def cycle() -> None:
        b = SA.from_id(a.id)
        b.array["id"][0, 0] += 1
        b.close()
        shm = sysvkit.SharedMemory.from_id(a.id)
        arr = shm.ndarray("u1", 16, offset=64)
        del arr
        shm.close()

    rss_flat(cycle, times=3000)
    assert a.stat().attached == 1
