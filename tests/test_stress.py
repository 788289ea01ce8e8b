"""Stress and faults: many processes on one object, and processes killed
with SIGKILL at random points.  Nothing lost, nothing duplicated, locks
released, invariants kept.  Bounded in time.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import struct
import time
from typing import Any, Callable, List

import pytest

import sysvkit

pytestmark = pytest.mark.slow

FORK = multiprocessing.get_context("fork")
N_OPS = 10_000


def _run_all(targets: List[Callable[[], None]], timeout: float = 120) -> None:
    """Run each target in a forked process; all must exit 0."""
    procs = [FORK.Process(target=t) for t in targets]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.join(max(0.1, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    codes = [p.exitcode for p in procs]
    assert codes == [0] * len(procs), "worker exit codes: %r" % codes


def _child(body: Callable[[], None]) -> Callable[[], None]:
    """A forked child's entry: run body, exit 0, or exit 1 on any error."""
    def run() -> None:
        code = 0
        try:
            body()
        except BaseException:  # noqa: BLE001 - report any failure as exit 1
            import traceback
            traceback.print_exc()
            code = 1
        os._exit(code)
    return run


def test_queue_8_processes_nothing_lost_or_duplicated(ipc: Any) -> None:
    """4 producers x 10,000 sends and 4 consumers x 10,000 receives on one
    queue, mixed types: every message arrives exactly once, in order within
    its type as each consumer sees it."""
    q = ipc.new(sysvkit.MessageQueue, key=sysvkit.IPC_PRIVATE)
    producers = 4
    seen = ipc.new(sysvkit.SharedMemory, key=sysvkit.IPC_PRIVATE, size=producers * N_OPS)

    def producer(p: int) -> Callable[[], None]:
        def body() -> None:
            for seq in range(N_OPS):
                q.send(struct.pack("=II", p, seq), type=p + 1)
        return _child(body)

    def consumer() -> None:
        last = [-1] * producers
        view = seen.buf
        try:
            for _ in range(N_OPS):
                data, mtype = q.receive(timeout=30)
                p, seq = struct.unpack("=II", data)
                assert mtype == p + 1
                assert seq > last[p], "reordered within type %d" % mtype
                last[p] = seq
                view[p * N_OPS + seq] += 1
        finally:
            view.release()

    _run_all([producer(p) for p in range(producers)] + [_child(consumer)] * 4)
    counts = bytes(seen.buf)
    assert counts == b"\x01" * (producers * N_OPS)
    assert len(q) == 0


def test_lock_8_processes_exact_counter(ipc: Any) -> None:
    """8 processes x 10,000 read-modify-write increments under one Lock."""
    path, proj = ipc.path()
    lock = ipc.new(sysvkit.Lock, path, proj)
    counter = ipc.new(sysvkit.SharedMemory, key=sysvkit.IPC_PRIVATE, size=8)

    def body() -> None:
        mine = sysvkit.Lock(path, proj)
        view = counter.buf.cast("Q")
        try:
            for _ in range(N_OPS):
                with mine:
                    value = view[0]
                    view[0] = value + 1
        finally:
            view.release()

    _run_all([_child(body)] * 8)
    assert counter.buf.cast("Q")[0] == 8 * N_OPS
    assert not lock.locked()


def test_semaphore_set_invariant_under_atomic_multi_ops(ipc: Any) -> None:
    """8 processes x 10,000 atomic multi-ops moving tokens between members:
    the total never changes, in any snapshot, and at the end."""
    # Tokens do a random walk between members; 5,000 each keeps every member
    # far from 0 (a drained member could block all eight workers at once).
    members, each = 4, 5000
    s = ipc.new(sysvkit.SemaphoreSet, key=sysvkit.IPC_PRIVATE, count=members,
                initial=[each] * members)
    total = members * each

    def body() -> None:
        rnd = random.Random(os.getpid())
        for n in range(N_OPS):
            i, j = rnd.sample(range(members), 2)
            if n % 10 == 0:
                k, m = [x for x in range(members) if x not in (i, j)]
                s.op([(i, -1), (j, -1), (k, +1), (m, +1)], timeout=30)
            else:
                s.op([(i, -1), (j, +1)], timeout=30)
            if n % 100 == 0:
                assert sum(s.values()) == total   # GETALL is one snapshot

    _run_all([_child(body)] * 8)
    assert sum(s.values()) == total


# -- faults ----------------------------------------------------------------------

def test_lock_holders_killed_at_random_points(ipc: Any) -> None:
    """Kill lock users with SIGKILL at random points, many times: the lock
    is always released (SEM_UNDO) and never over-released."""
    path, proj = ipc.path()
    lock = ipc.new(sysvkit.Lock, path, proj)
    rnd = random.Random(1234)

    def body() -> None:
        mine = sysvkit.Lock(path, proj)
        while True:
            with mine:
                pass

    for _ in range(25):
        p = FORK.Process(target=_child(body))
        p.start()
        time.sleep(rnd.uniform(0, 0.02))
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        assert lock.acquire(timeout=5), "lock not released after its holder was killed"
        assert lock.locked()
        lock.release()
        assert not lock.locked()
        with pytest.raises(RuntimeError):
            lock.release()     # value stayed 1: the undo did not over-release


def test_senders_and_receivers_killed_nothing_lost(ipc: Any) -> None:
    """Senders killed mid-stream and while blocked on a full queue, and
    receivers killed while blocked: the queue keeps every message that was
    sent and not received, with no gap in any sender's sequence."""
    q = ipc.new(sysvkit.MessageQueue, key=sysvkit.IPC_PRIVATE)
    rnd = random.Random(99)
    senders = 6

    def sender(n: int) -> Callable[[], None]:
        def body() -> None:
            seq = 0
            while True:               # blocks when the queue is full
                q.send(struct.pack("=II", n, seq) + b"x" * 100, type=n + 1)
                seq += 1
        return _child(body)

    def receiver() -> None:
        q.receive(type=senders + 100)     # a type nobody sends: blocks for ever

    procs = []
    for n in range(senders):
        procs.append(FORK.Process(target=sender(n)))
        procs.append(FORK.Process(target=_child(receiver)))
    for p in procs:
        p.start()
        time.sleep(rnd.uniform(0, 0.01))
    time.sleep(0.2)
    for p in rnd.sample(procs, len(procs)):
        os.kill(p.pid, signal.SIGKILL)
        p.join()
    got: dict = {}
    while True:
        try:
            data, mtype = q.receive(block=False)
        except BlockingIOError:
            break
        n, seq = struct.unpack("=II", data[:8])
        assert mtype == n + 1 and data[8:] == b"x" * 100
        got.setdefault(n, []).append(seq)
    assert got, "nothing was queued"
    for n, seqs in got.items():
        assert seqs == list(range(len(seqs))), "sender %d lost or reordered messages" % n


def test_removal_wakes_every_waiter_with_removed_error(ipc: Any) -> None:
    """Processes blocked in receive, acquire and op wake with RemovedError
    when another process removes the object."""
    q = ipc.new(sysvkit.MessageQueue, key=sysvkit.IPC_PRIVATE)
    s = ipc.new(sysvkit.SemaphoreSet, key=sysvkit.IPC_PRIVATE, count=2)

    def waiter(fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            code = 3
            try:
                fn()
                code = 2
            except sysvkit.RemovedError:
                code = 0
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        return run

    waiters = [waiter(lambda: q.receive(timeout=60)) for _ in range(3)]
    waiters += [waiter(lambda: s[0].acquire(timeout=60)) for _ in range(3)]
    waiters += [waiter(lambda: s.op([(0, -1), (1, -1)], timeout=60)) for _ in range(2)]
    procs = [FORK.Process(target=t) for t in waiters]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 10
    while s[0].waiting < 5 and time.monotonic() < deadline:
        time.sleep(0.01)      # all five semaphore waiters are blocked
    time.sleep(0.2)           # the queue's waiters have no counter to watch
    q.remove()
    s.remove()
    for p in procs:
        p.join(10)
    assert [p.exitcode for p in procs] == [0] * len(procs)
