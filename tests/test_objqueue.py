"""Queue: SPEC.md "Queue" (over "Channel", with "Structures in shared
memory (common rules)"), across threads and processes (fork and spawn)."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue as stdqueue
import random
import signal
import textwrap
import threading
import time
from typing import Any, Dict, List, Set

import pytest

import sysvkit
from sysvkit import IPC_PRIVATE, Channel, CorruptError, Queue, RemovedError
from sysvkit import _core
from sysvkit import lowlevel as ll

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy is in the test extra
    np = None

METHODS = ["fork", "spawn"]
RING = _core.CHANNEL_RING_OFFSET


# -- helpers ---------------------------------------------------------------------------
def start(method: str, code: str, *args: Any) -> Any:
    """Start a process (fork or spawn) running ``code`` with ARGS = args."""
    ctx = multiprocessing.get_context(method)
    proc = ctx.Process(target=exec, args=(textwrap.dedent(code), {"ARGS": args}))
    proc.start()
    return proc


def join_all(procs: List[Any], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert [p.exitcode for p in procs] == [0] * len(procs)


def new(ipc: Any, **kwargs: Any) -> Queue:
    kwargs.setdefault("key", IPC_PRIVATE)
    return ipc.track(Queue(create=True, **kwargs))  # type: ignore[no-any-return]


def private_segments(creators: Set[int], exclude: Set[int]) -> Dict[int, int]:
    """{id: size} of private-key segments made by these processes."""
    out = {}
    with open("/proc/sysvipc/shm") as f:
        for line in f.read().splitlines()[1:]:
            cols = line.split()
            key, ident, size, cpid = int(cols[0]), int(cols[1]), int(cols[3]), int(cols[4])
            if key == 0 and cpid in creators and ident not in exclude:
                out[ident] = size
    return out


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


class Unpicklable:
    """Pickles fine; unpickling it raises ValueError (int("no number"))."""

    def __reduce__(self) -> Any:
        return (int, ("no number",))


# -- the interface of queue.Queue ---------------------------------------------------------
def test_put_get_in_order_and_sizes(ipc: Any) -> None:
    q = new(ipc, capacity=1 << 16)
    assert q.empty() and q.qsize() == 0 and not q.full()
    items = [1, "two", (3, 4.0), [5], {"six": 6}, None, b"", b"seven", bytearray(b"8"),
             2 ** 100, frozenset({9})]
    for i, obj in enumerate(items):
        q.put(obj)
        assert q.qsize() == i + 1
    assert not q.empty()
    got = [q.get() for _ in items]
    assert got == items
    assert [type(x) for x in got] == [type(x) for x in items]
    assert q.empty()


def test_nowait_raises_the_standard_exceptions(ipc: Any) -> None:
    q = new(ipc, capacity=256)
    with pytest.raises(stdqueue.Empty):
        q.get_nowait()
    with pytest.raises(stdqueue.Empty):
        q.get(block=False)
    with pytest.raises(stdqueue.Empty):
        q.get(timeout=0)
    n = 0
    while True:
        assert n < 100
        try:
            q.put_nowait(n)
        except stdqueue.Full:
            break
        n += 1
    assert n > 0 and q.full() and q.qsize() == n
    with pytest.raises(stdqueue.Full):
        q.put(n, block=False)
    t0 = time.monotonic()
    with pytest.raises(stdqueue.Full):
        q.put(n, timeout=0.2)
    assert 0.15 <= time.monotonic() - t0 < 2
    assert [q.get_nowait() for _ in range(n)] == list(range(n))
    t0 = time.monotonic()
    with pytest.raises(stdqueue.Empty):
        q.get(timeout=0.2)
    assert 0.15 <= time.monotonic() - t0 < 2


def test_bad_timeouts(ipc: Any) -> None:
    q = new(ipc)
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            q.get(timeout=bad)
        with pytest.raises(ValueError, match="timeout"):
            q.put(1, timeout=bad)
    with pytest.raises(TypeError, match="timeout"):
        q.get(timeout="1")
    q.put(1, block=False, timeout=-1)       # as queue.Queue: ignored without block
    assert q.get(False, -1) == 1


def test_bad_arguments(ipc: Any) -> None:
    with pytest.raises(TypeError):
        Queue(key=IPC_PRIVATE, create=True, capacity=1.5)
    with pytest.raises(ValueError, match="capacity"):
        Queue(key=IPC_PRIVATE, create=True, capacity=10)
    with pytest.raises(TypeError):
        Queue("/tmp", 1, key=5)
    with pytest.raises(FileNotFoundError):
        Queue(key=ipc.key())


@pytest.mark.parametrize("method", METHODS)
def test_get_blocks_for_ever_by_default(ipc: Any, method: str) -> None:
    q = new(ipc)
    p = start(method, """
        import sysvkit, time
        q = sysvkit.Queue.from_id(ARGS[0])
        time.sleep(1.0)
        q.put(("late", 1))
    """, q.id)
    t0 = time.monotonic()
    assert q.get() == ("late", 1)
    assert time.monotonic() - t0 >= 0.8
    join_all([p])


@pytest.mark.parametrize("method", METHODS)
def test_put_blocks_for_ever_by_default(ipc: Any, method: str) -> None:
    q = new(ipc, capacity=256)
    while True:
        try:
            q.put_nowait(0)
        except stdqueue.Full:
            break
    count = q.qsize()
    p = start(method, """
        import sysvkit, time
        q = sysvkit.Queue.from_id(ARGS[0])
        time.sleep(1.0)
        q.get(); q.get()
    """, q.id)
    t0 = time.monotonic()
    q.put("after")
    assert time.monotonic() - t0 >= 0.8
    join_all([p])
    assert [q.get() for _ in range(count - 1)] == [0] * (count - 2) + ["after"]


@pytest.mark.parametrize("method", METHODS)
def test_many_producers_and_consumers(ipc: Any, method: str) -> None:
    q = new(ipc, capacity=1 << 14)
    done = ipc.track(Queue(key=IPC_PRIVATE, create=True))
    n = 2000
    prods = [start(method, """
        import sysvkit
        q = sysvkit.Queue.from_id(ARGS[0])
        for i in range(ARGS[2]):
            q.put((ARGS[1], i, "x" * (i % 50)))
    """, q.id, k, n) for k in range(2)]
    cons = [start(method, """
        import sysvkit
        q = sysvkit.Queue.from_id(ARGS[0]); out = sysvkit.Queue.from_id(ARGS[1])
        got = []
        while True:
            item = q.get()
            if item is None:
                break
            got.append(item[:2])
            assert item[2] == "x" * (item[1] % 50)
        out.put(got)
    """, q.id, done.id) for _ in range(2)]
    join_all(prods)
    for _ in cons:
        q.put(None)
    results = [done.get(timeout=60) for _ in cons]
    join_all(cons)
    allgot = [x for r in results for x in r]
    assert sorted(allgot) == sorted((k, i) for k in range(2) for i in range(n))
    for r in results:          # each producer's objects come in its order
        for k in range(2):
            seq = [i for kk, i in r if kk == k]
            assert seq == sorted(seq)


def test_threads(ipc: Any) -> None:
    q = new(ipc, capacity=1 << 12)
    got: List[Any] = []

    def consume() -> None:
        while True:
            x = q.get()
            if x is None:
                return
            got.append(x)

    ts = [threading.Thread(target=consume) for _ in range(3)]
    for t in ts:
        t.start()
    for i in range(3000):
        q.put(i)
    for _ in ts:
        q.put(None)
    for t in ts:
        t.join(30)
    assert sorted(got) == list(range(3000))


# -- pickling -----------------------------------------------------------------------------
def test_pickling_error_surfaces_in_put(ipc: Any) -> None:
    q = new(ipc)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        q.put(lambda: 0)
    with pytest.raises(TypeError):
        q.put(threading.Lock())
    assert q.qsize() == 0
    q.put("fine")
    assert q.get_nowait() == "fine"


@pytest.mark.parametrize("method", METHODS)
def test_unpickling_error_in_receiver_and_queue_goes_on(ipc: Any, method: str) -> None:
    q = new(ipc, capacity=1 << 14)
    out = ipc.track(Queue(key=IPC_PRIVATE, create=True))
    q.put(Unpicklable())
    q.put("next")
    big = [Unpicklable(), b"x" * 100_000]          # spilled too
    q.put(big)
    q.put("last")
    p = start(method, """
        import pickle, sysvkit
        q = sysvkit.Queue.from_id(ARGS[0]); out = sysvkit.Queue.from_id(ARGS[1])
        res = []
        for _ in range(4):
            try:
                res.append(q.get(timeout=10))
            except pickle.UnpicklingError as exc:
                res.append(("error", type(exc.__cause__).__name__, "no number" in str(exc)))
        out.put(res)
    """, q.id, out.id)
    res = out.get(timeout=60)
    join_all([p])
    assert res == [("error", "ValueError", True), "next", ("error", "ValueError", True), "last"]
    assert q.empty()


def test_unpickling_error_is_chained_here_too(ipc: Any) -> None:
    q = new(ipc)
    q.put(Unpicklable())
    with pytest.raises(pickle.UnpicklingError) as info:
        q.get()
    assert isinstance(info.value.__cause__, ValueError)
    assert q.empty()


@pytest.mark.skipif(np is None, reason="numpy is not installed")
@pytest.mark.parametrize("method", METHODS)
def test_numpy_arrays_travel_out_of_band(ipc: Any, method: str) -> None:
    q = new(ipc, capacity=1 << 20)
    out = ipc.track(Queue(key=IPC_PRIVATE, create=True, capacity=1 << 20))
    p = start(method, """
        import numpy as np, sysvkit
        q = sysvkit.Queue.from_id(ARGS[0]); out = sysvkit.Queue.from_id(ARGS[1])
        while True:
            x = q.get()
            if x is None:
                break
            flags = [a.flags.writeable and a.flags.aligned for a in x if isinstance(a, np.ndarray)]
            out.put((x, flags))
    """, q.id, out.id)
    objs = [
        (np.arange(1000, dtype=np.float64),),
        (np.arange(12, dtype=np.int32).reshape(3, 4), "with", np.ones(3, dtype=np.uint8)),
        (np.asfortranarray(np.arange(20.0).reshape(4, 5)),),
        (np.arange(100.0)[::3],),                     # not contiguous: in the pickle
        (np.zeros(0), np.arange(200_000, dtype=np.float64)),   # spilled
    ]
    for o in objs:
        q.put(o)
        back, flags = out.get(timeout=60)
        assert len(back) == len(o)
        for a, b in zip(o, back):
            if isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all()
            else:
                assert a == b
        assert all(flags)
    q.put(None)
    join_all([p])


def test_buffers_are_written_straight_into_the_ring(ipc: Any) -> None:
    """The record holds header, pickle and the raw buffer: nothing else."""
    q = new(ipc, capacity=1 << 16)
    payload = bytes(range(256)) * 64                  # 16 KiB
    q.put(pickle.PickleBuffer(bytearray(payload)))
    seg = ll.shmat(q.id)
    try:
        ring = seg.read(1 << 16, RING)
    finally:
        ll.shmdt(seg)
    length = int.from_bytes(ring[0:4], "little")
    body = ring[8:8 + length]
    nbufs = int.from_bytes(body[4:8], "little")
    plen = int.from_bytes(body[8:16], "little")
    assert nbufs == 1 and plen < 64
    assert length < len(payload) + 128
    assert payload in body
    back = q.get()
    assert bytes(back) == payload


def test_big_bytes_in_a_tuple_go_out_of_band(ipc: Any) -> None:
    q = new(ipc, capacity=1 << 20)
    blob = os.urandom(200_000)
    q.put(("name", blob, bytearray(blob)))
    seg = ll.shmat(q.id)
    try:
        head = seg.read(32, RING)
    finally:
        ll.shmdt(seg)
    assert int.from_bytes(head[12:16], "little") == 2          # two buffers
    assert int.from_bytes(head[16:24], "little") < 200          # a small pickle
    name, b1, b2 = q.get()
    assert name == "name" and b1 == blob and b2 == blob
    assert type(b1) is bytes and type(b2) is bytearray


# -- big objects: segments of their own -------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_big_object_goes_through_its_own_segment_removed_once_received(
        ipc: Any, method: str) -> None:
    q = new(ipc, capacity=4096)
    out = ipc.track(Queue(key=IPC_PRIVATE, create=True))
    me = {os.getpid()}
    before = private_segments(me, {q.id, out.id})
    blob = os.urandom(3 << 20)
    q.put(blob)
    q.put(("tuple", blob))
    assert len(private_segments(me, {q.id, out.id})) == len(before) + 2
    assert q.qsize() == 2
    p = start(method, """
        import hashlib, sysvkit
        q = sysvkit.Queue.from_id(ARGS[0]); out = sysvkit.Queue.from_id(ARGS[1])
        a = q.get(); b = q.get()
        out.put((hashlib.sha256(a).hexdigest(), b[0], hashlib.sha256(b[1]).hexdigest()))
    """, q.id, out.id)
    import hashlib
    h = hashlib.sha256(blob).hexdigest()
    assert out.get(timeout=60) == (h, "tuple", h)
    join_all([p])
    assert private_segments(me, {q.id, out.id}) == before
    assert q._q_slots() == []


@pytest.mark.parametrize("method", METHODS)
def test_big_object_from_a_producer_that_exited(ipc: Any, method: str) -> None:
    q = new(ipc, capacity=4096)
    p = start(method, """
        import sysvkit
        q = sysvkit.Queue.from_id(ARGS[0])
        q.put(bytes(range(256)) * 20000)
        q.put(bytearray(b"y" * 100000))
    """, q.id)
    join_all([p])
    assert q.get(timeout=10) == bytes(range(256)) * 20000
    assert q.get(timeout=10) == bytearray(b"y" * 100000)
    assert private_segments({p.pid}, set()) == {}


def test_remove_removes_undelivered_big_objects(ipc: Any) -> None:
    q = Queue(key=IPC_PRIVATE, create=True, capacity=4096)
    me = {os.getpid()}
    try:
        before = private_segments(me, {q.id})
        for i in range(5):
            q.put(os.urandom(50_000 + i))
        assert len(private_segments(me, {q.id})) == len(before) + 5
    finally:
        q.remove()
    assert private_segments(me, {q.id}) == before
    q.close()


def test_remove_after_close_removes_big_objects(ipc: Any) -> None:
    q = Queue(key=IPC_PRIVATE, create=True, capacity=4096)
    me = {os.getpid()}
    before = private_segments(me, {q.id})
    q.put(os.urandom(50_000))
    q.close()
    q.remove()
    assert private_segments(me, {q.id}) == before


def test_slots_exhausted_means_full(ipc: Any) -> None:
    q = new(ipc, capacity=1 << 16)
    blob = b"z" * 70_000
    for _ in range(_core.QUEUE_SLOTS):
        q.put(blob)
    with pytest.raises(stdqueue.Full):
        q.put_nowait(blob)
    with pytest.raises(stdqueue.Full):
        q.put(blob, timeout=0.1)
    q.put("small still fits")
    assert q.get() == blob
    q.put(blob)
    for _ in range(_core.QUEUE_SLOTS):
        assert q.get() == blob or True
    assert q.get() == blob


@pytest.mark.skipif(np is None, reason="numpy is not installed")
def test_300_mib_array_end_to_end_with_one_copy_each_way(ipc: Any) -> None:
    size = 300 << 20
    if mem_available() < 4 * size:
        pytest.skip("needs %d MiB of available memory" % (4 * size >> 20))
    q = new(ipc, capacity=1 << 20)
    res = ipc.track(Queue(key=IPC_PRIVATE, create=True))
    code = """
        import resource, sysvkit, numpy as np
        q = sysvkit.Queue.from_id(ARGS[0]); res = sysvkit.Queue.from_id(ARGS[1])
        n = ARGS[2] // 8
        def peak():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if ARGS[3] == "send":
            a = np.arange(n, dtype=np.float64)
            base = peak()
            q.put(("array", a))
            res.put(("send", base, peak()))
        else:
            base = peak()
            name, a = q.get()
            top = peak()
            ok = (a.shape == (n,) and a.dtype == np.float64 and a.flags.writeable
                  and bool((a[::4096] == np.arange(0, n, 4096)).all()) and a[-1] == n - 1
                  and float(a.sum()) == float(n) * (n - 1) / 2)
            res.put(("recv", base, top, ok))
    """
    s = start("spawn", code, q.id, res.id, size, "send")
    join_all([s], timeout=300)
    r = start("spawn", code, q.id, res.id, size, "recv")
    join_all([r], timeout=300)
    sent = res.get(timeout=10)
    got = res.get(timeout=10)
    assert got[3], "the array arrived damaged"
    # Sender: the array, plus the segment it is copied into; a pickle of it
    # would add another full copy.
    assert sent[2] - sent[1] < 1.5 * size, sent
    # Receiver: the segment it is copied from plus the array it gets.
    assert got[2] - got[1] < 2.5 * size, got
    assert private_segments({s.pid, r.pid}, set()) == {}


# -- no segment left behind: kill -9 at random instants ------------------------------------------
CHAOS_SENDER = """
import os, random, sysvkit
q = sysvkit.Queue.from_id(ARGS[0])
rng = random.Random(os.getpid())
sizes = ARGS[1]
try:
    import numpy as np
except ImportError:
    np = None
i = 0
while True:
    n = rng.choice(sizes)
    if np is not None and i % 3 == 0:
        q.put(("array", np.full(n // 8, i, dtype=np.float64)))
    elif i % 3 == 1:
        q.put(bytes([i % 256]) * n)
    else:
        q.put(("small", i))
    i += 1
"""

CHAOS_RECEIVER = """
import sysvkit
q = sysvkit.Queue.from_id(ARGS[0])
while True:
    x = q.get()
    if isinstance(x, bytes):
        assert x == x[:1] * len(x)
    elif x[0] == "array":
        assert (x[1] == x[1][0]).all()
"""


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_chaos_kill_senders_and_receivers_leaves_no_segment(ipc: Any, method: str) -> None:
    rounds = int(os.environ.get("SYSVKIT_CHAOS_ROUNDS", "25" if method == "fork" else "8"))
    q = new(ipc, capacity=1 << 16)
    sizes = [70_000, 300_000, 2 << 20, 8 << 20]
    pids: Set[int] = {os.getpid()}
    rng = random.Random(1234)
    before = private_segments(pids, {q.id})
    senders = [start(method, CHAOS_SENDER, q.id, sizes) for _ in range(2)]
    receivers = [start(method, CHAOS_RECEIVER, q.id) for _ in range(2)]
    kills = 0
    try:
        time.sleep(1.0 if method == "spawn" else 0.2)
        for _ in range(rounds):
            time.sleep(rng.uniform(0.0, 0.15))
            group = senders if rng.random() < 0.5 else receivers
            k = rng.randrange(len(group))
            victim = group[k]
            pids.add(victim.pid)
            if victim.is_alive():
                os.kill(victim.pid, signal.SIGKILL)
                kills += 1
            victim.join()
            assert victim.exitcode in (-signal.SIGKILL, None) or victim.exitcode == 0, \
                victim.exitcode
            group[k] = start(method, CHAOS_SENDER if group is senders else CHAOS_RECEIVER,
                             q.id, *((sizes,) if group is senders else ()))
        # The survivors still make progress.
        assert any(p.is_alive() for p in receivers)
    finally:
        for p in senders + receivers:
            pids.add(p.pid)
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
            p.join()
    assert kills > 0
    # What is still queued is the queue's; draining it frees those segments,
    # and the dead processes' own are reaped by the next big put or get.
    while True:
        try:
            q.get(timeout=0.5)
        except stdqueue.Empty:
            break
        except (pickle.UnpicklingError, CorruptError):
            pass
    q.put(b"w" * 100_000)
    assert q.get(timeout=5) == b"w" * 100_000
    assert q._q_slots() == []
    assert private_segments(pids, {q.id}) == before


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_chaos_then_remove_leaves_no_segment(ipc: Any, method: str) -> None:
    q = Queue(key=IPC_PRIVATE, create=True, capacity=1 << 16)
    pids: Set[int] = {os.getpid()}
    try:
        before = private_segments(pids, {q.id})
        senders = [start(method, CHAOS_SENDER, q.id, [100_000, 1 << 20]) for _ in range(2)]
        time.sleep(1.5 if method == "spawn" else 0.5)
        for p in senders:
            pids.add(p.pid)
            os.kill(p.pid, signal.SIGKILL)
            p.join()
        assert q.qsize() > 0
    finally:
        q.remove()
    assert private_segments(pids, {q.id}) == before
    q.close()


def test_receiver_killed_while_copying_a_big_object(ipc: Any, run_py: Any) -> None:
    """A receiver killed mid-copy loses the object it was getting, and its
    segment goes with it (removed before the copy starts)."""
    q = new(ipc, capacity=4096)
    for _ in range(3):
        q.put(b"q" * (64 << 20))
    me = {os.getpid()}
    assert len(private_segments(me, {q.id})) == 3
    p = start("fork", """
        import sysvkit
        q = sysvkit.Queue.from_id(ARGS[0])
        while True:
            q.get()
    """, q.id)
    time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    q._q_reap()
    left = q.qsize()
    assert len(private_segments(me, {q.id})) == left
    for _ in range(left):
        assert q.get(timeout=5) == b"q" * (64 << 20)
    assert private_segments(me, {q.id}) == {}


def test_sender_killed_before_recording_the_segment_is_reaped(ipc: Any) -> None:
    """A spill whose sender died right after shmget (id never stored) is
    found by creator and exact size, and removed."""
    q = new(ipc, capacity=4096)
    p = start("fork", """
        import os, signal, sysvkit
        from sysvkit import _core
        q = sysvkit.Queue.from_id(ARGS[0])
        q.put(b"a" * 100000)          # a spill with the slot handing over as usual
        os.kill(os.getpid(), signal.SIGSTOP)
    """, q.id)
    deadline = time.monotonic() + 20
    while q.qsize() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    slots = q._q_slots()
    assert len(slots) == 1
    i, state, pid, shmid, creator, size = slots[0]
    assert creator == p.pid and shmid >= 0
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    assert q.get(timeout=5) == b"a" * 100000
    assert private_segments({p.pid}, set()) == {}


# -- objects like every other ---------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_pickles_by_id_and_opens_by_path(ipc: Any, method: str) -> None:
    path, proj = ipc.path()
    q = ipc.track(Queue(path, proj, create=True, capacity=1 << 15))
    assert q.key == sysvkit.ftok(path, proj)
    assert q.capacity == 1 << 15
    p = start(method, """
        import sysvkit
        q = ARGS[0]
        q2 = sysvkit.Queue(ARGS[1], ARGS[2])
        assert q.id == q2.id and q2.capacity == 1 << 15
        q2.put(("from child", q.key))
    """, q, path, proj)
    join_all([p])
    assert q.get(timeout=10) == ("from child", q.key)
    with pytest.raises(ValueError, match="capacity"):
        Queue(path, proj, capacity=1 << 16)
    with pytest.raises(FileExistsError):
        Queue(path, proj, create=True, exclusive=True)
    with Queue(path, proj) as q3:
        assert q3.id == q.id
    assert q3.closed
    with pytest.raises(ValueError, match="closed"):
        q3.put(1)
    with pytest.raises(ValueError, match="closed"):
        q3.get()
    r = repr(q)
    assert "Queue" in r and ("0x%08x" % (q.key & 0xFFFFFFFF)) in r and str(q.id) in r
    assert q.stat().key == q.key
    assert pickle.loads(pickle.dumps(q)).id == q.id


def test_not_a_queue(ipc: Any) -> None:
    ch = ipc.track(Channel(key=IPC_PRIVATE, create=True))
    with pytest.raises(ValueError, match="not a queue"):
        Queue.from_id(ch.id)
    q = new(ipc)
    with pytest.raises(ValueError, match="not a channel"):
        Channel.from_id(q.id)


@pytest.mark.parametrize("method", METHODS)
def test_remove_wakes_a_blocked_get(ipc: Any, method: str) -> None:
    q = Queue(key=IPC_PRIVATE, create=True)
    out = ipc.track(Queue(key=IPC_PRIVATE, create=True))
    p = start(method, """
        import sysvkit
        q = sysvkit.Queue.from_id(ARGS[0]); out = sysvkit.Queue.from_id(ARGS[1])
        out.put("waiting")
        try:
            q.get()
        except sysvkit.RemovedError:
            out.put("removed")
    """, q.id, out.id)
    assert out.get(timeout=60) == "waiting"
    time.sleep(0.3)
    q.remove()
    assert out.get(timeout=10) == "removed"
    join_all([p])
    q.close()
    with pytest.raises(RemovedError):
        Queue.from_id(q.id)


def test_ctrl_c_interrupts_a_blocked_get(run_py: Any) -> None:
    run_py("""
        import os, signal, threading, time, sysvkit
        q = sysvkit.Queue(key=sysvkit.IPC_PRIVATE, create=True)
        try:
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
            t0 = time.monotonic()
            try:
                q.get()
            except KeyboardInterrupt:
                assert time.monotonic() - t0 < 1.0
            else:
                raise AssertionError("no KeyboardInterrupt")
        finally:
            q.remove()
    """)


# -- hostile memory ------------------------------------------------------------------------------
@pytest.mark.slow
def test_fuzz_records_and_slots(ipc: Any, run_py: Any) -> None:
    """Scribbled records and slot tables raise CorruptError (or deliver
    something), never crash; the queue goes on after a damaged record."""
    run_py("""
        import os, random, sysvkit, pickle, queue
        from sysvkit import _core, lowlevel as ll
        RING = _core.CHANNEL_RING_OFFSET
        rng = random.Random(7)
        for trial in range(300):
            q = sysvkit.Queue(key=sysvkit.IPC_PRIVATE, create=True, capacity=4096)
            try:
                q.put(("a", trial))
                q.put(b"b" * 10000 if trial % 2 else pickle.PickleBuffer(bytearray(100)))
                q.put("c")
                spills = [t[3] for t in q._q_slots()]
                seg = ll.shmat(q.id)
                side = RING + q.capacity
                for _ in range(rng.randint(1, 4)):
                    if rng.random() < 0.6:
                        off = RING + rng.randrange(0, 200)
                    else:
                        off = side + rng.randrange(0, 64 + 32 * 2)
                    seg.write(os.urandom(rng.randint(1, 8)), off)
                ll.shmdt(seg)
                for _ in range(4):
                    try:
                        q.get(timeout=0.05)
                    except (ValueError, queue.Empty, pickle.UnpicklingError, OSError):
                        pass
                try:
                    q._q_reap()
                except ValueError:
                    pass
            finally:
                try:
                    q.remove()
                except ValueError:
                    ll.shmctl(q.id, ll.IPC_RMID)
                # A scribbled slot table loses track of its segments: ours to remove.
                for ident in spills:
                    try:
                        ll.shmctl(ident, ll.IPC_RMID)
                    except OSError:
                        pass
        print("ok")
    """, timeout=300)
