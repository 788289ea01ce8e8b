"""Mutex: a robust, process-shared futex mutex in a segment, across threads
and processes (fork and spawn), under kill -9 and scribbles."""

from __future__ import annotations

import gc
import mmap
import multiprocessing
import os
import pickle
import random
import resource
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, List

import pytest

import sysvkit
from sysvkit import IPC_PRIVATE, Mutex
from sysvkit import lowlevel as ll

METHODS = ["fork", "spawn"]
LOCK_WORD = 64          # the pthread mutex follows the 64-byte header
KIND_WORD = 64 + 16     # glibc's __kind field


def start(method: str, code: str, *args: Any) -> Any:
    """Run ``code`` (with ARGS = args) in a fork or spawn child; exec is the
    target so spawned children need nothing from this module."""
    ctx = multiprocessing.get_context(method)
    proc = ctx.Process(target=exec, args=(textwrap.dedent(code), {"ARGS": args}))
    proc.start()
    return proc


def joined(proc: Any, timeout: float = 30) -> int:
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail("child did not finish")
    return int(proc.exitcode)


def wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %s s" % timeout
        time.sleep(0.002)


@pytest.fixture
def mutex(ipc: Any) -> Mutex:
    return ipc.track(Mutex(key=IPC_PRIVATE))


# -- opening and creating --------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_racing_openers_share_one_mutex(ipc: Any, method: str) -> None:
    path, proj = ipc.path()
    ctx = multiprocessing.get_context(method)
    q = ctx.SimpleQueue()
    code = """
        import sysvkit
        path, proj, q = ARGS
        m = sysvkit.Mutex(path, proj)
        q.put((m.id, m.locked()))
        m.close()
    """
    procs = [start(method, code, path, proj, q) for _ in range(6)]
    results = [q.get() for _ in procs]
    for p in procs:
        assert joined(p) == 0
    ipc.track_id("shm", results[0][0])
    assert len(set(results)) == 1 and results[0][1] is False     # created unlocked, once
    m = ipc.track(Mutex(path, proj))
    assert m.id == results[0][0]


def test_segment_is_one_page_private_by_default(mutex: Mutex) -> None:
    info = mutex.stat()
    assert info.size == mmap.PAGESIZE
    assert info.mode & 0o777 == 0o600
    assert any(s.id == mutex.id for s in sysvkit.list_shared_memory())


def test_mode_is_used(ipc: Any) -> None:
    m = ipc.track(Mutex(key=IPC_PRIVATE, mode=0o640))
    assert m.stat().mode & 0o777 == 0o640


def test_a_plain_segment_is_not_a_mutex(ipc: Any) -> None:
    key = ipc.key()
    ident = ipc.track_id("shm", ll.shmget(key, 4096, ll.IPC_CREAT | 0o600))
    a = ll.shmat(ident)
    a.write(b"not a mutex, just bytes" * 10, 0)
    ll.shmdt(a)
    with pytest.raises(ValueError, match="not a sysvkit"):
        Mutex(key=key)


def test_bad_arguments(mutex: Mutex) -> None:
    with pytest.raises(TypeError, match="timeout"):
        mutex.acquire(timeout="1")
    with pytest.raises(ValueError, match="timeout"):
        mutex.acquire(timeout=-2)
    with pytest.raises(ValueError, match="non-blocking"):
        mutex.acquire(False, 1.0)
    assert not mutex.locked()
    with pytest.raises(TypeError):
        Mutex(key=IPC_PRIVATE, mode="0600")  # type: ignore[arg-type]


# -- threading.Lock's interface ----------------------------------------------------
def test_lock_interface(mutex: Mutex) -> None:
    assert mutex.acquire() is True
    assert mutex.locked() and mutex.owner_died is False
    assert mutex.acquire(blocking=False) is False            # not reentrant
    with pytest.raises(RuntimeError, match="not reentrant"):
        mutex.acquire()
    mutex.release()
    assert not mutex.locked()
    with pytest.raises(RuntimeError, match="does not hold"):
        mutex.release()
    assert mutex.acquire(timeout=-1) and mutex.acquire(False) is False
    mutex.release()
    with mutex as m:
        assert m is mutex and mutex.locked()
    assert not mutex.locked()
    assert "unlocked" in repr(mutex) and "id=%d" % mutex.id in repr(mutex)


def test_another_thread_cannot_release(mutex: Mutex) -> None:
    mutex.acquire()
    errors: List[BaseException] = []

    def other() -> None:
        try:
            mutex.release()
        except BaseException as exc:
            errors.append(exc)
        errors.append(mutex.acquire(timeout=0.05))   # type: ignore[arg-type]

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert isinstance(errors[0], RuntimeError) and errors[1] is False
    mutex.release()


def test_threads_exclude_each_other(mutex: Mutex) -> None:
    count = [0]

    def work() -> None:
        for _ in range(20000):
            with mutex:
                v = count[0]
                count[0] = v + 1

    ts = [threading.Thread(target=work) for _ in range(4)]
    sys.setswitchinterval(1e-6)
    try:
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        sys.setswitchinterval(0.005)
    assert count[0] == 80000


def test_forked_child_does_not_hold_parents_hold(mutex: Mutex) -> None:
    mutex.acquire()
    pid = os.fork()
    if pid == 0:                                    # pragma: no cover - child
        code = 1
        try:
            try:
                mutex.release()
            except RuntimeError:
                if mutex.acquire(False) is False and mutex.locked():
                    mutex.close()                   # not held here: closes
                    code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert mutex.locked() and mutex.owner_died is False
    mutex.release()


@pytest.mark.parametrize("method", METHODS)
def test_pickled_to_another_process(mutex: Mutex, method: str) -> None:
    ctx = multiprocessing.get_context(method)
    q = ctx.SimpleQueue()
    mutex.acquire()
    p = start(method, """
        import pickle
        blob, q = ARGS
        m = pickle.loads(blob)
        q.put("started")
        got = m.acquire(timeout=30)
        q.put((m.id, got, m.owner_died))
        m.release()
        m.close()
    """, pickle.dumps(mutex), q)
    assert q.get() == "started"
    time.sleep(0.1)
    mutex.release()
    assert q.get() == (mutex.id, True, False)
    assert joined(p) == 0


# -- owner death -------------------------------------------------------------------
DIE = {
    "kill": "os.kill(os.getpid(), signal.SIGKILL)",
    "os._exit": "os._exit(3)",
    "exception": "raise SystemError('uncaught, holding the mutex')",
    "end of script": "pass",
}


@pytest.mark.parametrize("how", sorted(DIE))
def test_death_of_holder_releases_with_owner_died(mutex: Mutex, how: str) -> None:
    code = textwrap.dedent("""
        import os, signal, sys, sysvkit
        m = sysvkit.Mutex.from_id(int(sys.argv[1]))
        m.acquire()
        print("held", flush=True)
        %s
    """) % DIE[how]
    proc = subprocess.run([sys.executable, "-c", code, str(mutex.id)], capture_output=True,
                          text=True, timeout=60)
    assert "held" in proc.stdout
    assert proc.returncode != 0 or how == "end of script"
    if how == "kill":
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode >= 0, proc.stderr
    t0 = time.monotonic()
    assert mutex.acquire(timeout=5) is True
    assert time.monotonic() - t0 < 0.5
    assert mutex.owner_died is True
    mutex.release()
    assert mutex.acquire(timeout=5) is True and mutex.owner_died is False
    mutex.release()


def test_thread_that_ends_holding_releases(mutex: Mutex) -> None:
    t = threading.Thread(target=mutex.acquire)
    t.start()
    t.join()
    assert mutex.acquire(timeout=5) is True
    assert mutex.owner_died is True
    mutex.release()


def test_garbage_collection_never_detaches_a_held_mutex(mutex: Mutex, run_py: Any) -> None:
    run_py("""
        import gc, os, sys, sysvkit
        m = sysvkit.Mutex.from_id(int(sys.argv[1]))
        m.acquire()
        try:
            m.close()
        except RuntimeError:
            pass
        else:
            raise SystemExit("close() of a held mutex succeeded")
        del m
        gc.collect()
        # the mapping is still there: the kernel releases it at exit
    """, str(mutex.id))
    assert mutex.acquire(timeout=5) is True and mutex.owner_died is True
    mutex.release()


def test_a_dead_holder_the_kernel_missed_is_taken_over(mutex: Mutex) -> None:
    """A lock word naming a thread that no longer exists (its mapping was gone
    when it died, say): a waiter takes the mutex over within a second."""
    pid = os.fork()
    if pid == 0:                                  # pragma: no cover - child
        os._exit(0)
    os.waitpid(pid, 0)                            # pid is now a dead thread id
    a = ll.shmat(mutex.id)
    a.write(struct.pack("=I", pid), LOCK_WORD)
    ll.shmdt(a)
    assert mutex.locked()
    t0 = time.monotonic()
    assert mutex.acquire(timeout=5) is True
    assert time.monotonic() - t0 < 1.0
    assert mutex.owner_died is True
    mutex.release()


# -- blocking ----------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_blocked_acquire_wakes_on_release_in_another_process(mutex: Mutex, method: str) -> None:
    ctx = multiprocessing.get_context(method)
    q = ctx.SimpleQueue()
    p = start(method, """
        import time, sysvkit
        ident, q = ARGS
        m = sysvkit.Mutex.from_id(ident)
        m.acquire()
        q.put("held")
        time.sleep(0.3)
        q.put(time.monotonic())
        m.release()
        m.close()
    """, mutex.id, q)
    assert q.get() == "held"
    assert mutex.acquire(False) is False
    assert mutex.acquire(timeout=30) is True
    woke = time.monotonic()
    released = q.get()
    assert woke - released < 0.1
    assert mutex.owner_died is False
    mutex.release()
    assert joined(p) == 0


def test_timeout_expires(mutex: Mutex) -> None:
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time, sysvkit
        m = sysvkit.Mutex.from_id(int(sys.argv[1]))
        m.acquire(); print("held", flush=True); time.sleep(30)
    """), str(mutex.id)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        assert mutex.acquire(timeout=0.3) is False
        assert 0.29 <= time.monotonic() - t0 < 1.0
        assert mutex.acquire(blocking=False) is False
    finally:
        proc.kill()
        proc.wait()
    assert mutex.acquire(timeout=5) and mutex.owner_died
    mutex.release()


def test_blocked_acquire_sleeps_and_ctrl_c_interrupts_it(mutex: Mutex, run_py: Any) -> None:
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time, sysvkit
        m = sysvkit.Mutex.from_id(int(sys.argv[1]))
        m.acquire(); print("held", flush=True); time.sleep(60)
    """), str(mutex.id)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        out = run_py("""
            import os, resource, signal, sys, threading, time, sysvkit
            m = sysvkit.Mutex.from_id(int(sys.argv[1]))
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.monotonic()
            assert m.acquire(timeout=2) is False
            waited = time.monotonic() - t0
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
            print("cpu", cpu / waited)
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
            t0 = time.monotonic()
            try:
                m.acquire()
            except KeyboardInterrupt:
                print("interrupted", time.monotonic() - t0 - 0.3)
        """, str(mutex.id)).stdout.split()
    finally:
        holder.kill()
        holder.wait()
    assert float(out[1]) < 0.01
    assert out[2] == "interrupted" and float(out[3]) < 0.1


# -- proof under load --------------------------------------------------------------
def _counter(ipc: Any) -> sysvkit.SharedMemory:
    return ipc.track(sysvkit.SharedMemory(key=IPC_PRIVATE, size=8, create=True))


@pytest.mark.parametrize("method", METHODS)
def test_mutual_exclusion_8_processes_10k_increments(ipc: Any, mutex: Mutex, method: str) -> None:
    shm = _counter(ipc)
    code = """
        import struct, sysvkit
        mid, sid = ARGS
        m = sysvkit.Mutex.from_id(mid)
        s = sysvkit.SharedMemory.from_id(sid)
        buf = s.buf
        for _ in range(10000):
            with m:
                (v,) = struct.unpack_from("=Q", buf, 0)
                struct.pack_into("=Q", buf, 0, v + 1)
        buf.release(); s.close(); m.close()
    """
    procs = [start(method, code, mutex.id, shm.id) for _ in range(8)]
    for p in procs:
        assert joined(p, 120) == 0
    assert struct.unpack("=Q", shm.read(8, 0))[0] == 80000


_CHAOS_WORKER = """
import os, struct, sys, time, sysvkit
mid, sid, role = ARGV
m = sysvkit.Mutex.from_id(mid)
s = sysvkit.SharedMemory.from_id(sid)
buf = s.buf
# slots: 0 count, 8 holder pid inside the critical section, 16 owner_died seen,
# 24 deaths-inside seen, then per survivor its last progress time (monotonic ns)
me = os.getpid()
slot = 32 + 8 * int(role) if role != "victim" else None
print("ready", flush=True)
if role == "victim":
    os.write(READY, b"r")
while True:
    t0 = time.monotonic()
    if not m.acquire(timeout=5):
        print("WEDGED", flush=True)
        os._exit(5)
    if time.monotonic() - t0 > 1.0 and role != "victim":
        print("SLOW %.3f" % (time.monotonic() - t0), flush=True)
        os._exit(6)
    holder = struct.unpack_from("=Q", buf, 8)[0]
    if holder:                            # its holder died inside the section
        if not m.owner_died:
            print("MISSED owner_died (holder %d)" % holder, flush=True)
            os._exit(7)
        struct.pack_into("=Q", buf, 24, struct.unpack_from("=Q", buf, 24)[0] + 1)
    if m.owner_died:
        struct.pack_into("=Q", buf, 16, struct.unpack_from("=Q", buf, 16)[0] + 1)
    struct.pack_into("=Q", buf, 8, me)
    (v,) = struct.unpack_from("=Q", buf, 0)
    if slot is None:
        time.sleep(0.001)                 # victims hold a while: killed inside often
    struct.pack_into("=Q", buf, 0, v + 1)
    struct.pack_into("=Q", buf, 8, 0)
    if slot is not None:
        struct.pack_into("=Q", buf, slot, time.monotonic_ns())
    m.release()
    time.sleep(0.0005)                    # work outside the lock
"""


@pytest.mark.slow
def test_chaos_holders_killed_at_random_instants(ipc: Any, mutex: Mutex) -> None:
    kills = int(os.environ.get("SYSVKIT_CHAOS_KILLS", "200"))
    shm = ipc.track(sysvkit.SharedMemory(key=IPC_PRIVATE, size=64, create=True))

    def worker(role: str) -> subprocess.Popen:  # type: ignore[type-arg]
        code = "ARGV = (%d, %d, %r)\n" % (mutex.id, shm.id, role) + _CHAOS_WORKER
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p

    def victim() -> int:
        """A victim forked from this process (fast to start), running the
        same loop; returns its pid once it runs."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                                  # pragma: no cover - child
            try:
                os.close(r)
                sys.stdout = open(os.devnull, "w")
                exec(_CHAOS_WORKER, {"ARGV": (mutex.id, shm.id, "victim"), "READY": w})
            finally:
                os._exit(9)
        os.close(w)
        assert os.read(r, 1) == b"r"
        os.close(r)
        return pid

    survivors = [worker("0"), worker("1")]
    wait_for(lambda: all(struct.unpack("=Q", shm.read(8, 32 + 8 * r))[0] for r in (0, 1)))
    rng = random.Random(1234)
    victims: List[int] = []
    try:
        victims = [victim() for _ in range(3)]
        for n in range(kills):
            i = n % len(victims)
            time.sleep(rng.uniform(0.0, 0.004))
            os.kill(victims[i], signal.SIGKILL)
            _, status = os.waitpid(victims[i], 0)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            victims[i] = victim()
            now = time.monotonic_ns()
            for r in (0, 1):
                last = struct.unpack("=Q", shm.read(8, 32 + 8 * r))[0]
                assert survivors[r].poll() is None, survivors[r].stdout.read()  # type: ignore[union-attr]
                assert now - last < 2_000_000_000, "survivor %d made no progress for 2 s (kill %d: %r)" % (r, n, shm.read(64, 0))
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        victims = []
    finally:
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for p in survivors:
            p.kill()
            p.wait()
    count, holder, died, inside = struct.unpack("=QQQQ", shm.read(32, 0))
    assert count > kills
    assert 0 < inside <= died <= kills + 3    # every death inside was reported; none invented


# -- hostile segment ---------------------------------------------------------------
def test_fuzz_scribbles_give_exceptions_never_a_crash(mutex: Mutex, run_py: Any) -> None:
    proc = run_py("""
        import os, random, sys, sysvkit
        from sysvkit import lowlevel as ll
        mid = int(sys.argv[1])
        rng = random.Random(99)
        errors = 0
        a = ll.shmat(mid)
        pristine = a.read(4096, 0)
        for i in range(3000):
            a.write(pristine, 0)
            for _ in range(rng.randint(1, 4)):
                off = rng.choice([rng.randrange(0, 128), rng.randrange(64, 104)])
                n = rng.randint(1, 8)
                a.write(bytes(rng.randrange(256) for _ in range(n)), off)
            try:
                m = sysvkit.Mutex.from_id(mid)
            except ValueError:
                errors += 1
                continue
            try:
                if m.acquire(timeout=0.001):
                    m.owner_died
                    m.release()
                m.locked()
            except (ValueError, RuntimeError, OSError):
                errors += 1
            try:
                m.close()
            except RuntimeError:
                pass
        a.write(pristine, 0)
        ll.shmdt(a)
        print(errors)
    """, str(mutex.id), timeout=240)
    assert int(proc.stdout) > 0
    assert mutex.acquire(timeout=5)
    mutex.release()


def test_scribbled_kind_is_corrupt_error(mutex: Mutex) -> None:
    a = ll.shmat(mutex.id)
    good = a.read(4, KIND_WORD)
    a.write(struct.pack("=i", 0), KIND_WORD)
    try:
        with pytest.raises(sysvkit.CorruptError):
            mutex.acquire()
        with pytest.raises(sysvkit.CorruptError):
            Mutex.from_id(mutex.id)
    finally:
        a.write(good, KIND_WORD)
        ll.shmdt(a)
    assert mutex.acquire() and not mutex.owner_died
    mutex.release()


def test_close_and_remove(ipc: Any) -> None:
    m = Mutex(key=IPC_PRIVATE)
    m.acquire()
    with pytest.raises(RuntimeError, match="holds"):
        m.close()
    m.release()
    m.close()
    m.close()
    assert m.closed and "closed" in repr(m)
    with pytest.raises(ValueError):
        m.acquire()
    m.remove()
    with pytest.raises(sysvkit.RemovedError):
        m.stat()
    gc.collect()
