"""RWLock: SPEC.md "RWLock and Event" (the RWLock part) and "Opening and
creating", across threads and processes (fork and spawn), with processes
killed (SIGKILL) in every state."""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable, List, Optional

import pytest

import sysvkit
from sysvkit import IPC_PRIVATE, RemovedError, RWLock, SemaphoreSet
from sysvkit import lowlevel as ll

METHODS = ["fork", "spawn"]


# -- helpers ------------------------------------------------------------------------
def start(method: str, code: str, *args: Any) -> Any:
    """Start a process (fork or spawn) running ``code`` with ARGS = args
    (the target is the builtin exec, so spawned children import nothing
    from this module)."""
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


def kill(proc: Any) -> None:
    proc.kill()         # SIGKILL
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``cond`` (test side only) until it is true."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %s s" % timeout
        time.sleep(0.005)


def waiting(rw: RWLock) -> int:
    """How many processes are blocked in a semop on the set (any member)."""
    return sum(ll.semctl(rw.id, i, ll.GETNCNT) + ll.semctl(rw.id, i, ll.GETZCNT)
               for i in range(3))


class Waiter(threading.Thread):
    """Runs ``fn`` in a thread and keeps its result or exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: Any = None
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: B902 - kept for the test to check
            self.error = exc


def values(rw: RWLock) -> List[int]:
    return list(ll.semctl(rw.id, 0, ll.GETALL))


@pytest.fixture
def rw(ipc: Any) -> RWLock:
    return ipc.new(RWLock, *ipc.path())


# Holds the lock as asked (ARGS: lock, "read"|"write"|"queue"), says so on
# the queue, then sleeps until killed.  "queue" waits to write (for ever).
HOLDER = """
    import time
    rw, what, q = ARGS
    if what == "read":
        assert rw.acquire_read(timeout=30)
    elif what == "write":
        assert rw.acquire_write(timeout=30)
    else:
        rw.acquire_write()
    q.put(what)
    time.sleep(120)
"""


def holder(method: str, rw: RWLock, what: str) -> Any:
    q = multiprocessing.get_context(method).SimpleQueue()
    proc = start(method, HOLDER, rw, what, q)
    proc.queue = q      # alive until the child has it (spawn unpickles it late)
    if what != "queue":
        assert q.get() == what
    return proc


# -- opening and creating -----------------------------------------------------------
def test_opens_or_creates_free(ipc: Any) -> None:
    path, proj = ipc.path()
    a = ipc.new(RWLock, path, proj)
    assert a.key == sysvkit.ftok(path, proj)
    assert (a.readers, a.writing, a.waiting_writers) == (0, False, 0)
    assert a.acquire_write()
    b = RWLock(path, proj)                     # opens the same lock, still held
    assert b.id == a.id and b.writing
    assert RWLock(key=a.key).id == a.id
    info = a.stat()
    assert isinstance(info, sysvkit.SemaphoreSetInfo)
    assert (info.key, info.id, info.count, info.mode) == (a.key, a.id, 3, 0o600)
    assert info.op_time > 0                    # initialised: the handshake's semop
    a.release_write()
    assert values(a) == [0, 0, 0]


def test_mode_and_private(ipc: Any) -> None:
    a = ipc.new(RWLock, key=IPC_PRIVATE, mode=0o640)
    b = ipc.new(RWLock, key=IPC_PRIVATE)
    assert a.id != b.id and a.key == 0
    assert a.stat().mode == 0o640
    with pytest.raises(ValueError, match="mode"):
        RWLock(key=IPC_PRIVATE, mode=0o1000)
    with pytest.raises(TypeError):
        RWLock()
    with pytest.raises(TypeError):
        RWLock(*ipc.path(), key=1)


def test_a_smaller_set_is_not_an_rwlock(ipc: Any) -> None:
    s = ipc.new(SemaphoreSet, key=ipc.key(), create=True, count=2)
    with pytest.raises(ValueError, match="needs 3"):
        RWLock(key=s.key)
    with pytest.raises(ValueError, match="needs 3"):
        RWLock.from_id(s.id)


CREATE_CHILD = """
    import sysvkit
    path, proj, q = ARGS
    rw = sysvkit.RWLock(path, proj)
    q.put((rw.id, rw.readers, rw.writing, rw.waiting_writers))
"""


@pytest.mark.parametrize("method", METHODS)
def test_racing_creators_share_one_lock(method: str, ipc: Any) -> None:
    path, proj = ipc.path()
    key = sysvkit.ftok(path, proj)
    q = multiprocessing.get_context(method).SimpleQueue()
    procs = [start(method, CREATE_CHILD, path, proj, q) for _ in range(6)]
    try:
        join_all(procs)
    finally:
        for line in open("/proc/sysvipc/sem").readlines()[1:]:
            if int(line.split()[0]) == key:
                ipc.track_id("sem", int(line.split()[1]))
    got = {q.get() for _ in procs}
    assert len(got) == 1
    ident, readers, writing, waiting_writers = got.pop()
    assert (readers, writing, waiting_writers) == (0, False, 0)
    assert RWLock(path, proj).id == ident


def test_pickles_by_id_and_context_manager_closes(rw: RWLock) -> None:
    other = pickle.loads(pickle.dumps(rw))
    assert type(other) is RWLock and other.id == rw.id and other.key == rw.key
    assert RWLock.from_id(rw.id).id == rw.id
    with RWLock(key=rw.key) as handle:
        assert handle.id == rw.id
    assert handle.closed and not rw.closed
    with pytest.raises(ValueError, match="closed"):
        handle.acquire_read()
    assert "RWLock" in repr(rw) and "0x" in repr(rw) and str(rw.id) in repr(rw)
    assert "closed" in repr(handle)
    rw.acquire_read()
    assert "reading" in repr(rw)
    rw.release_read()
    rw.acquire_write()
    assert "writing" in repr(rw)
    rw.release_write()


# -- holds in one process -----------------------------------------------------------
def test_readers_share_writer_excludes(rw: RWLock) -> None:
    assert rw.acquire_read() is True
    assert rw.acquire_read(blocking=False) is True
    assert rw.readers == 2 and not rw.writing
    assert rw.acquire_write(blocking=False) is False
    assert rw.acquire_write(timeout=0) is False
    t0 = time.monotonic()
    assert rw.acquire_write(timeout=0.2) is False
    assert 0.15 <= time.monotonic() - t0 < 3
    assert rw.waiting_writers == 0                  # the timed-out writer left the queue
    rw.release_read()
    rw.release_read()
    assert rw.acquire_write(True, -1) is True
    assert rw.writing and rw.readers == 0
    assert rw.acquire_read(blocking=False) is False
    assert rw.acquire_write(blocking=False) is False
    t0 = time.monotonic()
    assert rw.acquire_read(timeout=0.2) is False
    assert 0.15 <= time.monotonic() - t0 < 3
    rw.release_write()
    assert values(rw) == [0, 0, 0]


def test_releasing_what_is_not_held_raises(rw: RWLock) -> None:
    with pytest.raises(RuntimeError, match="read"):
        rw.release_read()
    with pytest.raises(RuntimeError, match="write"):
        rw.release_write()
    rw.acquire_read()
    with pytest.raises(RuntimeError):
        rw.release_write()          # held for reading, not writing
    rw.release_read()
    with pytest.raises(RuntimeError):
        rw.release_read()
    rw.acquire_write()
    with pytest.raises(RuntimeError):
        rw.release_read()
    rw.release_write()
    with pytest.raises(RuntimeError):
        rw.release_write()
    assert values(rw) == [0, 0, 0]


def test_holds_belong_to_the_process_not_the_handle(rw: RWLock) -> None:
    other = RWLock(key=rw.key) if rw.key else RWLock.from_id(rw.id)
    rw.acquire_read()
    other.release_read()            # the same set, the same process
    other.acquire_write()
    rw.release_write()
    w = Waiter(rw.acquire_write)    # any thread of the process may release
    w.start()
    w.join(5)
    assert w.result is True
    rw.release_write()
    assert values(rw) == [0, 0, 0]


def test_a_hold_outlives_the_thread_that_took_it(rw: RWLock, run_py: Any) -> None:
    # Threads share the process's undo record: a thread's end gives nothing
    # back; the process's end does.
    for take in (rw.acquire_read, rw.acquire_write):
        t = threading.Thread(target=take)
        t.start()
        t.join()
        assert values(rw) in ([1, 0, 0], [0, 1, 0])
        (rw.release_read if take == rw.acquire_read else rw.release_write)()
    run_py("""
        import sys, threading, sysvkit
        rw = sysvkit.RWLock.from_id(int(sys.argv[1]))
        t = threading.Thread(target=rw.acquire_write)
        t.start()
        t.join()
        assert rw.writing
    """, str(rw.id))
    assert values(rw) == [0, 0, 0]


@pytest.mark.parametrize("kwargs, exc", [
    ({"blocking": False, "timeout": 1}, ValueError),
    ({"timeout": -2}, ValueError),
    ({"timeout": math.nan}, ValueError),
    ({"timeout": "x"}, TypeError),
    ({"timeout": True}, TypeError),
])
def test_bad_arguments(rw: RWLock, kwargs: Any, exc: Any) -> None:
    for call in (rw.acquire_read, rw.acquire_write):
        with pytest.raises(exc, match="timeout"):
            call(**kwargs)
    for cm in (rw.read, rw.write):
        if "blocking" not in kwargs:
            with pytest.raises(exc, match="timeout"):
                with cm(kwargs["timeout"]):
                    pass
    assert values(rw) == [0, 0, 0]


def test_read_and_write_blocks(rw: RWLock) -> None:
    with rw.read() as entered:
        assert entered is rw and rw.readers == 1
        with rw.read(timeout=1):
            assert rw.readers == 2
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            with rw.write(timeout=0.2):
                pass
        assert 0.15 <= time.monotonic() - t0 < 3
    assert rw.readers == 0 and rw.waiting_writers == 0
    with rw.write(timeout=1):
        assert rw.writing
        with pytest.raises(TimeoutError):
            with rw.read(timeout=0):
                pass
    with pytest.raises(KeyError):
        with rw.write():
            raise KeyError("x")
    assert values(rw) == [0, 0, 0] and not rw.closed


def test_writer_waiting_in_a_thread(rw: RWLock) -> None:
    rw.acquire_read()
    w = Waiter(lambda: rw.acquire_write(timeout=10))
    w.start()
    wait_for(lambda: rw.waiting_writers == 1)
    assert rw.acquire_read(blocking=False) is False     # held back by the writer
    rw.release_read()
    w.join(5)
    assert w.result is True and rw.writing and rw.waiting_writers == 0
    rw.release_write()


# -- across processes ---------------------------------------------------------------
READER_CHILD = """
    rw, q, go = ARGS
    assert rw.acquire_read(timeout=30)
    q.put(rw.readers)
    assert go.acquire(timeout=30)
    rw.release_read()
"""


@pytest.mark.parametrize("method", METHODS)
def test_readers_share_across_processes(method: str, rw: RWLock, ipc: Any) -> None:
    n = 4
    go = ipc.new(sysvkit.Semaphore, key=IPC_PRIVATE)
    q = multiprocessing.get_context(method).SimpleQueue()
    procs = [start(method, READER_CHILD, rw, q, go) for _ in range(n)]
    try:
        seen = [q.get() for _ in range(n)]
        assert rw.readers == n and max(seen) == n    # all hold it at once
        assert not rw.writing
        assert rw.acquire_write(blocking=False) is False
        assert rw.acquire_read(blocking=False) is True      # one more reader
        rw.release_read()
        go.release(n)
        join_all(procs)
    finally:
        for p in procs:
            p.kill()
    assert rw.acquire_write(timeout=5)
    rw.release_write()


STRESS_CHILD = """
    import sysvkit
    rw, shm_id, n, writer = ARGS
    shm = sysvkit.SharedMemory.from_id(shm_id)
    bad = 0
    for i in range(n):
        if writer:
            with rw.write():
                a = int.from_bytes(shm.read(8, 0), "little")
                shm.write((a + 1).to_bytes(8, "little"), 0)
                shm.write((a + 1).to_bytes(8, "little"), 8)
        else:
            with rw.read():
                if shm.read(8, 0) != shm.read(8, 8):
                    bad += 1
    shm.close()
    assert bad == 0, bad
"""


@pytest.mark.parametrize("method", METHODS)
def test_writer_excludes_readers_and_writers(method: str, rw: RWLock, ipc: Any) -> None:
    # 3 writers x 1,000 read-modify-writes of two words; 3 readers check
    # that they never see the words differ (a write in progress).
    n = 1000
    shm = ipc.new(sysvkit.SharedMemory, key=IPC_PRIVATE, size=16)
    procs = [start(method, STRESS_CHILD, rw, shm.id, n, k < 3) for k in range(6)]
    join_all(procs, timeout=120)
    assert int.from_bytes(shm.read(8, 0), "little") == 3 * n
    assert values(rw) == [0, 0, 0]


STREAM_CHILD = """
    import time
    rw, stop = ARGS
    while stop.value:
        if rw.acquire_read(timeout=0.05):
            time.sleep(0.02)
            rw.release_read()
"""


@pytest.mark.parametrize("method", METHODS)
def test_writer_not_starved_by_a_stream_of_readers(method: str, rw: RWLock,
                                                   ipc: Any) -> None:
    # A reader holds it; a writer queues; a reader arriving later waits
    # behind the writer, and the writer gets it when the first reader leaves.
    rw.acquire_read()
    w = Waiter(lambda: rw.acquire_write(timeout=20))
    w.start()
    wait_for(lambda: rw.waiting_writers == 1)
    q = multiprocessing.get_context(method).SimpleQueue()
    late = start(method, """
        rw, q = ARGS
        q.put(rw.acquire_read(timeout=0.5))
        q.put(rw.acquire_read(timeout=30))
        rw.release_read()
    """, rw, q)
    assert q.get() is False                 # held back by the waiting writer
    rw.release_read()
    w.join(10)
    assert w.result is True and rw.writing
    time.sleep(0.1)
    assert rw.readers == 0                  # the late reader still waits
    rw.release_write()
    assert q.get() is True
    join_all([late])

    # Overlapping readers in four processes, each holding 20 ms at a time:
    # the readers' count rarely reaches 0 by itself.  Writers still get in.
    stop = ipc.new(sysvkit.Semaphore, key=IPC_PRIVATE, initial=1)
    procs = [start(method, STREAM_CHILD, rw, stop) for _ in range(4)]
    try:
        wait_for(lambda: rw.readers >= 2)
        for _ in range(5):
            t0 = time.monotonic()
            assert rw.acquire_write(timeout=10)
            assert time.monotonic() - t0 < 5
            assert rw.readers == 0
            rw.release_write()
            time.sleep(0.05)
        stop.value = 0
        join_all(procs)
    finally:
        for p in procs:
            p.kill()
    assert values(rw) == [0, 0, 0]


FORK_CHILD_RELEASE = """
    rw, q = ARGS
    out = []
    for call in (rw.release_read, rw.release_write):
        try:
            call()
            out.append("released")
        except RuntimeError:
            out.append("RuntimeError")
    out.append((rw.readers, rw.writing))
    if not rw.writing:
        assert rw.acquire_read(timeout=5)    # a hold of its own, given back
        rw.release_read()
    q.put(out)
"""


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("what", ["read", "write"])
def test_a_child_holds_nothing_of_its_parents(method: str, what: str, rw: RWLock) -> None:
    rw.acquire_read() if what == "read" else rw.acquire_write()
    q = multiprocessing.get_context(method).SimpleQueue()
    proc = start(method, FORK_CHILD_RELEASE, rw, q)
    join_all([proc])
    assert q.get() == ["RuntimeError", "RuntimeError",
                       (1, False) if what == "read" else (0, True)]
    assert values(rw) == ([1, 0, 0] if what == "read" else [0, 1, 0])
    rw.release_read() if what == "read" else rw.release_write()
    assert values(rw) == [0, 0, 0]


PROPS_CHILD = """
    rw, q = ARGS
    q.put((rw.readers, rw.writing, rw.waiting_writers))
"""


@pytest.mark.parametrize("method", METHODS)
def test_properties_seen_from_another_process(method: str, rw: RWLock) -> None:
    q = multiprocessing.get_context(method).SimpleQueue()

    def seen() -> Any:
        p = start(method, PROPS_CHILD, rw, q)
        join_all([p])
        return q.get()

    rw.acquire_read()
    rw.acquire_read()
    assert seen() == (2, False, 0)
    w = Waiter(lambda: rw.acquire_write(timeout=30))
    w.start()
    wait_for(lambda: rw.waiting_writers == 1)
    assert seen() == (2, False, 1)
    rw.release_read()
    rw.release_read()
    w.join(10)
    assert w.result is True
    assert seen() == (0, True, 0)
    rw.release_write()
    assert seen() == (0, False, 0)


# -- killed processes give back what they held -------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_killed_reader_gives_back(method: str, rw: RWLock) -> None:
    proc = holder(method, rw, "read")
    assert rw.readers == 1
    w = Waiter(lambda: rw.acquire_write(timeout=10))
    w.start()
    wait_for(lambda: rw.waiting_writers == 1)
    t0 = time.monotonic()
    kill(proc)
    w.join(10)
    assert w.result is True and time.monotonic() - t0 < 2
    assert values(rw) == [0, 1, 0]
    rw.release_write()


@pytest.mark.parametrize("method", METHODS)
def test_killed_writer_gives_back(method: str, rw: RWLock) -> None:
    proc = holder(method, rw, "write")
    assert rw.writing
    w = Waiter(lambda: rw.acquire_read(timeout=10))
    w.start()
    wait_for(lambda: waiting(rw) == 1)
    t0 = time.monotonic()
    kill(proc)
    w.join(10)
    assert w.result is True and time.monotonic() - t0 < 2
    assert values(rw) == [1, 0, 0]
    rw.release_read()


@pytest.mark.parametrize("method", METHODS)
def test_killed_waiting_writer_gives_back(method: str, rw: RWLock) -> None:
    rw.acquire_read()
    proc = holder(method, rw, "queue")
    wait_for(lambda: rw.waiting_writers == 1)
    assert rw.acquire_read(blocking=False) is False      # held back by it
    w = Waiter(lambda: rw.acquire_read(timeout=10))      # a reader behind it
    w.start()
    wait_for(lambda: waiting(rw) == 2)
    t0 = time.monotonic()
    kill(proc)
    w.join(10)
    assert w.result is True and time.monotonic() - t0 < 2
    assert values(rw) == [2, 0, 0]
    rw.release_read()
    rw.release_read()


@pytest.mark.parametrize("method", METHODS)
def test_killed_waiting_reader_changes_nothing(method: str, rw: RWLock) -> None:
    rw.acquire_write()
    q = multiprocessing.get_context(method).SimpleQueue()
    proc = start(method, "rw, q = ARGS\nrw.acquire_read()\n", rw, q)
    wait_for(lambda: waiting(rw) == 1)
    kill(proc)
    assert values(rw) == [0, 1, 0]
    rw.release_write()
    assert values(rw) == [0, 0, 0]


CHAOS_CHILD = """
    import random, sysvkit
    rw, seed, shm_id, slot = ARGS
    shm = sysvkit.SharedMemory.from_id(shm_id)
    rnd = random.Random(seed)
    n = 0
    while True:
        r = rnd.random()
        if r < 0.3:
            if rw.acquire_write(timeout=rnd.random() * 0.01):
                rw.release_write()
        elif r < 0.6:
            with rw.read():
                pass
        elif r < 0.8:
            # A second read hold waits behind a queued writer like any other
            # (and the writer waits for the first): so only with a timeout.
            rw.acquire_read()
            if rw.acquire_read(timeout=0.005):
                rw.release_read()
            rw.release_read()
        else:
            with rw.write():
                pass
        n += 1
        shm.write(n.to_bytes(8, "little"), 8 * slot)
"""


@pytest.mark.slow
def test_killed_at_random_instants(rw: RWLock, ipc: Any) -> None:
    # Four processes take and give back read and write holds in a loop,
    # counting their rounds; one of them is SIGKILLed at a random instant,
    # 200 times over.  After each kill a writer gets in within a second and
    # every process keeps making rounds; at the end the set is back to 0, 0, 0.
    nproc = 4
    shm = ipc.new(sysvkit.SharedMemory, key=IPC_PRIVATE, size=8 * nproc)
    rnd = random.Random(1234)

    def rounds() -> List[int]:
        return [int.from_bytes(shm.read(8, 8 * k), "little") for k in range(nproc)]

    procs = [start("fork", CHAOS_CHILD, rw, k, shm.id, k) for k in range(nproc)]
    seed = nproc
    try:
        for _ in range(200):
            time.sleep(rnd.random() * 0.02)
            victim = rnd.randrange(nproc)
            kill(procs[victim])
            shm.write(bytes(8), 8 * victim)
            procs[victim] = start("fork", CHAOS_CHILD, rw, seed, shm.id, victim)
            seed += 1
            t0 = time.monotonic()
            assert rw.acquire_write(timeout=5)
            assert time.monotonic() - t0 < 1
            assert rw.readers == 0
            before = rounds()
            rw.release_write()
            wait_for(lambda: all(a > b for a, b in zip(rounds(), before)), 5)
    finally:
        for p in procs:
            if p.is_alive():
                kill(p)
    assert values(rw) == [0, 0, 0]


# -- signals ------------------------------------------------------------------------
@pytest.mark.parametrize("what", ["write", "read"])
def test_ctrl_c_interrupts_a_blocked_acquire(what: str, rw: RWLock) -> None:
    rw.acquire_read() if what == "write" else rw.acquire_write()
    code = """
        import sys, sysvkit
        what, ident = sys.argv[1], int(sys.argv[2])
        rw = sysvkit.RWLock.from_id(ident)
        print("ready", flush=True)
        try:
            (rw.acquire_write if what == "write" else rw.acquire_read)()
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
            sys.exit(0)
        sys.exit(3)
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), what, str(rw.id)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        wait_for(lambda: waiting(rw) == 1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "KeyboardInterrupt"
        assert time.monotonic() - t0 < 0.5
        proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0
    expected = [1, 0, 0] if what == "write" else [0, 1, 0]
    assert values(rw) == expected           # the interrupted writer left the queue
    rw.release_read() if what == "write" else rw.release_write()


def test_signal_handler_runs_and_acquire_resumes(rw: RWLock) -> None:
    rw.acquire_read()
    calls: List[int] = []

    def later() -> None:
        time.sleep(0.4)
        rw.release_read()

    w = Waiter(later)
    old = signal.signal(signal.SIGALRM, lambda *a: calls.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
        w.start()
        assert rw.acquire_write(timeout=10) is True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        w.join(5)
    assert len(calls) >= 3
    assert values(rw) == [0, 1, 0]
    rw.release_write()


def test_signals_do_not_extend_the_timeout(rw: RWLock) -> None:
    rw.acquire_write()
    calls: List[int] = []
    old = signal.signal(signal.SIGALRM, lambda *a: calls.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.03, 0.03)
        t0 = time.monotonic()
        assert rw.acquire_read(timeout=0.4) is False
        elapsed = time.monotonic() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(calls) >= 3
    assert 0.35 <= elapsed < 3
    rw.release_write()


def test_handler_exception_ends_the_wait_and_leaves_the_queue(rw: RWLock) -> None:
    def boom(*a: Any) -> None:
        raise ZeroDivisionError("from the handler")

    rw.acquire_read()
    old = signal.signal(signal.SIGALRM, boom)
    try:
        for call in (rw.acquire_write, lambda: rw.acquire_write(timeout=30)):
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            with pytest.raises(ZeroDivisionError):
                call()
            assert values(rw) == [1, 0, 0]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    rw.release_read()
    assert rw.acquire_write(blocking=False)
    rw.release_write()


def test_a_writer_giving_up_lets_readers_behind_it_in(rw: RWLock) -> None:
    rw.acquire_read()
    writer = Waiter(lambda: rw.acquire_write(timeout=0.5))
    writer.start()
    wait_for(lambda: rw.waiting_writers == 1)
    reader = Waiter(lambda: rw.acquire_read(timeout=10))
    reader.start()
    wait_for(lambda: waiting(rw) == 2)
    writer.join(5)
    reader.join(5)
    assert writer.result is False and reader.result is True
    assert values(rw) == [2, 0, 0]
    rw.release_read()
    rw.release_read()


# -- removal ------------------------------------------------------------------------
@pytest.mark.parametrize("what", ["read", "write"])
def test_removed_by_another_process_wakes_waiters(what: str, rw: RWLock,
                                                  run_py: Any) -> None:
    rw.acquire_write() if what == "read" else rw.acquire_read()
    w = Waiter(rw.acquire_read if what == "read" else rw.acquire_write)
    w.start()
    wait_for(lambda: waiting(rw) == 1)
    run_py("""
        import sys, sysvkit
        sysvkit.RWLock.from_id(int(sys.argv[1])).remove()
    """, str(rw.id))
    w.join(5)
    assert not w.is_alive() and isinstance(w.error, RemovedError)
    with pytest.raises(RemovedError):
        rw.release_write() if what == "read" else rw.release_read()
    with pytest.raises(RuntimeError):                     # nothing is held any more
        rw.release_write() if what == "read" else rw.release_read()


def test_use_after_remove(rw: RWLock) -> None:
    rw.remove()
    for call in (rw.acquire_read, rw.acquire_write, lambda: rw.acquire_read(blocking=False),
                 lambda: rw.acquire_write(timeout=1), lambda: rw.readers,
                 lambda: rw.writing, lambda: rw.waiting_writers, rw.stat, rw.remove,
                 lambda: rw.read().__enter__()):
        with pytest.raises(RemovedError):
            call()
    with pytest.raises(RemovedError):
        RWLock.from_id(rw.id)
    assert not rw.exists()


def test_bench_c_rwlock_read_pair_makes_the_read_calls(rw: RWLock) -> None:
    from sysvkit import _core
    assert _core.bench_c_rwlock_read_pair(rw.id, 1000) > 0
    assert values(rw) == [0, 0, 0]
    rw.acquire_write()
    with pytest.raises(BlockingIOError):
        _core.bench_c_rwlock_read_pair(rw.id, 1)
    rw.release_write()


def test_no_leaks_on_hot_and_error_paths(rw: RWLock, rss_flat: Callable[..., int]) -> None:
    def cycle() -> None:
        rw.acquire_read()
        rw.acquire_write(blocking=False)
        rw.release_read()
        rw.acquire_write()
        rw.acquire_read(timeout=0)
        rw.release_write()
        try:
            rw.release_write()
        except RuntimeError:
            pass
        try:
            rw.acquire_read(timeout=-5)
        except ValueError:
            pass

    rss_flat(cycle, times=30_000)


def test_docstrings() -> None:
    assert RWLock.__doc__ and "Error" in RWLock.__doc__
    for meth in (RWLock.acquire_read, RWLock.release_read, RWLock.acquire_write,
                 RWLock.release_write, RWLock.read, RWLock.write):
        assert meth.__doc__ and len(meth.__doc__.splitlines()) > 1
    assert not hasattr(RWLock, "acquire") and not hasattr(RWLock, "release")


PERMISSION_CHILD = """
    import os, sys, sysvkit
    os.setgid(65534); os.setuid(65534)
    cls = getattr(sysvkit, sys.argv[1])
    for attempt in (lambda: cls(key=int(sys.argv[2])), lambda: cls.from_id(int(sys.argv[3]))):
        try:
            attempt()
        except PermissionError:
            print("PermissionError")
        else:
            print("ACCESS GRANTED")
"""


def test_other_user_gets_permission_error(rw: RWLock, run_py: Any) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a child as another user")
    proc = run_py(PERMISSION_CHILD, "RWLock", str(rw.key), str(rw.id))
    assert proc.stdout.split() == ["PermissionError", "PermissionError"]
    assert values(rw) == [0, 0, 0]


NET_ZERO_CHILD = """
    import signal, time
    rw, q = ARGS
    def boom(*a):
        raise ZeroDivisionError
    signal.signal(signal.SIGALRM, boom)
    out = [rw.acquire_write(timeout=0.05),          # queues, times out, leaves
           rw.acquire_write(blocking=False),
           rw.acquire_read(timeout=0.05),           # held back by the waiting writer
           rw.acquire_read(blocking=False)]
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        rw.acquire_write()                          # interrupted by the handler
    except ZeroDivisionError:
        out.append("interrupted")
    out.append(list(rw._held))
    q.put(out)
"""


@pytest.mark.parametrize("method", METHODS)
def test_undo_records_net_to_zero_after_giving_up(method: str, rw: RWLock) -> None:
    # With a reader inside and a writer waiting (values 1, 0, 1), a process
    # that gives up every way there is and then exits leaves them as they
    # were: what it did with SEM_UNDO added up to nothing.  (A record left
    # over would move a value when it exits.)
    rw.acquire_read()
    w = Waiter(lambda: rw.acquire_write(timeout=60))
    w.start()
    wait_for(lambda: rw.waiting_writers == 1)
    q = multiprocessing.get_context(method).SimpleQueue()
    join_all([start(method, NET_ZERO_CHILD, rw, q)])
    assert q.get() == [False, False, False, False, "interrupted", [0, 0]]
    assert values(rw) == [1, 0, 1]
    rw.release_read()
    w.join(10)
    assert w.result is True and values(rw) == [0, 1, 0]
    rw.release_write()


QUEUED_WRITER_CHILD = """
    rw, q, go = ARGS
    assert rw.acquire_write(timeout=30)      # queues behind the parent's reader
    rw.release_write()
    with rw.read():
        pass
    q.put("done")
    assert go.acquire(timeout=30)
"""


@pytest.mark.parametrize("method", METHODS)
def test_undo_records_net_to_zero_after_a_queued_write(method: str, rw: RWLock,
                                                       ipc: Any) -> None:
    # A writer that queued, took and released, then exits while another
    # writer waits, leaves the waiting count alone.
    go = ipc.new(sysvkit.Semaphore, key=IPC_PRIVATE)
    q = multiprocessing.get_context(method).SimpleQueue()
    rw.acquire_read()
    proc = start(method, QUEUED_WRITER_CHILD, rw, q, go)
    wait_for(lambda: rw.waiting_writers == 1, 30)
    rw.release_read()
    assert q.get() == "done"
    rw.acquire_read()
    w = Waiter(lambda: rw.acquire_write(timeout=60))
    w.start()
    wait_for(lambda: rw.waiting_writers == 1)
    go.release()
    join_all([proc])
    assert values(rw) == [1, 0, 1]
    rw.release_read()
    w.join(10)
    assert w.result is True and values(rw) == [0, 1, 0]
    rw.release_write()


def test_values_set_from_outside(rw: RWLock) -> None:
    # Another program may set the semaphores to anything: the calls answer
    # with results or Python exceptions, and this process's records follow.
    s = SemaphoreSet.from_id(rw.id)
    rw.acquire_read()
    s.set_values([0, 0, 0])                      # its read hold vanished
    with pytest.raises(RuntimeError, match="no readers"):
        rw.release_read()
    with pytest.raises(RuntimeError, match="holds no read"):
        rw.release_read()
    rw.acquire_write()
    s.set_values([3, 0, 0])
    with pytest.raises(RuntimeError, match="no writer"):
        rw.release_write()
    s.set_values([0, 0, 7])                      # phantom waiting writers
    assert rw.waiting_writers == 7
    assert rw.acquire_read(timeout=0.05) is False
    assert rw.acquire_write(timeout=0) is True    # a free lock: taken at once
    rw.release_write()
    s.set_values([32767, 0, 0])
    assert rw.readers == 32767
    with pytest.raises(ValueError, match="SEMVMX"):
        rw.acquire_read()
    assert rw._held == (0, 0)
    s.set_values([1, 0, 32767])
    with pytest.raises(ValueError, match="SEMVMX"):
        rw.acquire_write(timeout=1)
    assert values(rw) == [1, 0, 32767] and rw._held == (0, 0)
    s.set_values([0, 0, 0])


def test_bench_rows() -> None:
    from sysvkit.bench.registry import GROUPS
    from sysvkit.bench.runner import Settings
    title, run = GROUPS["rwlock"]
    rows = list(run(Settings.for_mode(True, 1, None)))
    assert [r.transport for r in rows] == [
        "sysvkit.RWLock read", "sysvkit.RWLock with read()", "sysvkit.Lock",
        "C RWLock read pair (reference)"]
    assert all(r.workload == "rwlock-read-pair" and r.unit == "us" and r.value > 0
               for r in rows)
    assert [r.reference for r in rows] == [False, False, False, True]


def test_waiting_sleeps_in_the_kernel(rw: RWLock) -> None:
    rw.acquire_read()
    cpu0, t0 = time.process_time(), time.monotonic()
    assert rw.acquire_write(timeout=1) is False
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    assert wall >= 0.9 and cpu < 0.1 * wall
    rw.release_read()
