"""sysvkit.MessageQueue: the SPEC's MessageQueue section and the opening rules
as they apply to queues, the timed waits (timer, signals, threads, fork),
cross-process delivery and interop with sysv_ipc."""

from __future__ import annotations

import array
import math
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import pytest

import sysvkit
from sysvkit import RemovedError, lowlevel as ll
from sysvkit.msgqueue import MessageQueue

MSGMAX = sysvkit.limits().msgmax


def new_queue(ipc: Any, **kwargs: Any) -> MessageQueue:
    path, proj = ipc.path()
    return ipc.new(MessageQueue, path, proj, create=True, **kwargs)  # type: ignore[no-any-return]


def drain(q: MessageQueue) -> List[Tuple[bytes, int]]:
    out = []
    while True:
        try:
            out.append(q.receive(block=False))
        except BlockingIOError:
            return out


# -- send / receive semantics -------------------------------------------------

def test_send_receive_roundtrip(ipc: Any) -> None:
    q = new_queue(ipc)
    q.send(b"hello")
    q.send(b"", type=9)
    assert q.receive() == (b"hello", 1)
    assert q.receive() == (b"", 9)


def test_bytes_like_data(ipc: Any) -> None:
    q = new_queue(ipc)
    q.send(bytearray(b"ab"))
    q.send(memoryview(b"xcxdx")[1::2])          # not contiguous: sent as a copy
    q.send(array.array("i", [1, 2]))
    q.send(memoryview(b"0123456789")[2:5])
    assert drain(q) == [(b"ab", 1), (b"cd", 1), (array.array("i", [1, 2]).tobytes(), 1),
                        (b"234", 1)]


def test_type_semantics_on_a_mixed_queue(ipc: Any) -> None:
    q = new_queue(ipc)
    for i, t in enumerate([3, 1, 2, 1, 5, 2, 4]):
        q.send(b"m%d" % i, type=t)
    assert q.receive(2) == (b"m2", 2)               # first of type 2
    assert q.receive(1, except_type=True) == (b"m0", 3)  # first not of type 1
    assert q.receive(-3) == (b"m1", 1)              # lowest type <= 3
    assert q.receive(-3) == (b"m3", 1)
    assert q.receive(-3) == (b"m5", 2)
    assert q.receive(0) == (b"m4", 5)               # first, whatever the type
    with pytest.raises(BlockingIOError):
        q.receive(-3, block=False)                  # only type 4 left
    with pytest.raises(BlockingIOError):
        q.receive(4, except_type=True, block=False)
    assert q.receive(4) == (b"m6", 4)
    assert len(q) == 0


def test_order_kept_within_a_type(ipc: Any) -> None:
    q = new_queue(ipc)
    for i in range(50):
        q.send(b"%d" % i, type=1 + i % 3)
    for t in (1, 2, 3):
        got = [int(q.receive(t)[0]) for _ in range(len(range(t - 1, 50, 3)))]
        assert got == list(range(t - 1, 50, 3))


def test_max_size_keeps_the_message(ipc: Any) -> None:
    q = new_queue(ipc)
    q.send(b"x" * 100, type=7)
    with pytest.raises(ValueError, match=r"max_size=10\b.*msgmax=%d" % MSGMAX):
        q.receive(max_size=10)
    assert len(q) == 1                               # nothing lost
    with pytest.raises(ValueError, match="max_size=99"):
        q.receive(7, max_size=99, block=False)
    assert q.receive(max_size=100) == (b"x" * 100, 7)
    q.send(b"abcdefghij")
    assert q.receive(max_size=4, truncate=True) == (b"abcd", 1)
    assert len(q) == 0
    q.send(b"abc")
    assert q.receive(max_size=10 ** 6) == (b"abc", 1)   # larger than any message: fine
    q.send(b"y" * MSGMAX)
    assert q.receive() == (b"y" * MSGMAX, 1)         # default max_size is msgmax


def test_argument_errors(ipc: Any) -> None:
    q = new_queue(ipc)
    with pytest.raises(TypeError, match="data must be a bytes-like object, not str"):
        q.send("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data"):
        q.send(12)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"type must be in 1\.\."):
        q.send(b"x", 0)
    with pytest.raises(ValueError, match="type"):
        q.send(b"x", -1)
    with pytest.raises(ValueError, match="type"):
        q.send(b"x", 2 ** 70)
    with pytest.raises(TypeError, match="type must be an int, not bool"):
        q.send(b"x", True)
    with pytest.raises(TypeError, match="type must be an int, not float"):
        q.receive(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"msgmax.*%d" % MSGMAX):
        q.send(b"x" * (MSGMAX + 1))
    for bad in (-1, -0.5, math.nan):
        with pytest.raises(ValueError, match="timeout"):
            q.send(b"x", timeout=bad)
        with pytest.raises(ValueError, match="timeout"):
            q.receive(timeout=bad)
    with pytest.raises(TypeError, match="timeout"):
        q.receive(timeout="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_size"):
        q.receive(max_size=-1)
    with pytest.raises(TypeError, match="max_size"):
        q.receive(max_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="except_type"):
        q.receive(0, except_type=True)
    # Checked before any system call: nothing was sent, nothing taken.
    assert q.stat().messages == 0 and q.stat().send_time == 0
    import numpy
    q.send(b"n", numpy.int64(3))  # type: ignore[arg-type]  # int-like types are fine
    assert q.receive(numpy.int32(3)) == (b"n", 3)  # type: ignore[arg-type]


def test_empty_queue(ipc: Any) -> None:
    q = new_queue(ipc)
    with pytest.raises(BlockingIOError):
        q.receive(block=False)
    with pytest.raises(BlockingIOError):
        q.receive(block=False, timeout=5)             # block=False wins
    with pytest.raises(TimeoutError):
        q.receive(timeout=0)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        q.receive(timeout=0.2)
    assert 0.19 <= time.monotonic() - t0 < 2


def test_full_queue(ipc: Any) -> None:
    q = new_queue(ipc, max_bytes=100)
    q.send(b"a" * 60)
    with pytest.raises(BlockingIOError):
        q.send(b"b" * 60, block=False)
    with pytest.raises(TimeoutError):
        q.send(b"b" * 60, timeout=0)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        q.send(b"b" * 60, timeout=0.2)
    assert 0.19 <= time.monotonic() - t0 < 2
    # Blocks until a receiver makes room, then goes in.
    threading.Timer(0.2, q.receive).start()
    q.send(b"c" * 60, timeout=10)
    assert q.receive() == (b"c" * 60, 1)
    # A message bigger than the queue itself would wait for ever.
    with pytest.raises(ValueError, match="max_bytes is 100"):
        q.send(b"d" * 101)
    assert len(q) == 0


def test_errors_name_the_queue(ipc: Any) -> None:
    q = new_queue(ipc)
    name = "0x%08x" % (q.key & 0xFFFFFFFF)
    for call in (lambda: q.receive(block=False), lambda: q.receive(timeout=0)):
        with pytest.raises(OSError) as info:
            call()
        assert name in str(info.value) and "id %d" % q.id in str(info.value)
    q.remove()
    with pytest.raises(RemovedError) as info2:
        q.send(b"x")
    assert name in str(info2.value) and "id %d" % q.id in str(info2.value)


# -- len, max_bytes, stat ----------------------------------------------------------

def test_len_max_bytes_and_stat(ipc: Any) -> None:
    q = new_queue(ipc)
    assert len(q) == 0 and bool(q)
    q.send(b"abc", 2)
    q.send(b"de", 3)
    assert len(q) == 2
    st = q.stat()
    assert isinstance(st, sysvkit.MessageQueueInfo)
    assert (st.key, st.id, st.messages, st.bytes) == (q.key, q.id, 2, 5)
    assert st.mode == 0o600 and st.uid == os.geteuid() and st.cuid == os.geteuid()
    assert st.last_send_pid == os.getpid() and st.last_receive_pid == 0
    assert st.send_time > 0 and st.receive_time == 0 and st.change_time > 0
    assert st.max_bytes == q.max_bytes == sysvkit.limits().msgmnb
    q.receive()
    st = q.stat()
    assert st.last_receive_pid == os.getpid() and st.receive_time >= st.send_time - 1
    q.max_bytes = 1000
    assert q.max_bytes == 1000 == q.stat().max_bytes
    with pytest.raises(ValueError, match="max_bytes"):
        q.max_bytes = 0
    with pytest.raises(TypeError, match="max_bytes"):
        q.max_bytes = "10"  # type: ignore[assignment]
    with pytest.raises(dataclasses_frozen()):
        st.messages = 3  # type: ignore[misc]


def dataclasses_frozen() -> type:
    import dataclasses
    return dataclasses.FrozenInstanceError


def test_max_bytes_at_open(ipc: Any) -> None:
    path, proj = ipc.path()
    q = ipc.new(MessageQueue, path, proj, create=True, max_bytes=2000)
    assert q.max_bytes == 2000
    assert ipc.new(MessageQueue, path, proj, max_bytes=1500).id == q.id   # fits: fine
    with pytest.raises(ValueError, match="max_bytes=3000"):
        MessageQueue(path, proj, max_bytes=3000)
    with pytest.raises(ValueError, match="max_bytes"):
        MessageQueue(path, proj, create=True, max_bytes=0)


# -- opening and creating ------------------------------------------------------

def test_opening_rules(ipc: Any) -> None:
    path, proj = ipc.path()
    with pytest.raises(FileNotFoundError):
        MessageQueue(path, proj)
    q = ipc.new(MessageQueue, path, proj, create=True, exclusive=True)
    assert q.key == sysvkit.ftok(path, proj)
    with pytest.raises(FileExistsError):
        MessageQueue(path, proj, create=True, exclusive=True)
    assert ipc.new(MessageQueue, path, proj).id == q.id
    assert ipc.new(MessageQueue, path, proj, create=True).id == q.id
    assert ipc.new(MessageQueue, key=q.key).id == q.id
    assert ipc.new(MessageQueue, key=q.key & 0xFFFFFFFF).id == q.id    # unsigned spelling
    with pytest.raises(TypeError):
        MessageQueue(path, proj, key=q.key)
    with pytest.raises(TypeError):
        MessageQueue()
    with pytest.raises(TypeError):
        MessageQueue(path)
    with pytest.raises(ValueError):
        MessageQueue(key=2 ** 32)
    with pytest.raises(ValueError):
        MessageQueue(path, proj, create=True, mode=0o1000)
    with pytest.raises(FileNotFoundError):
        MessageQueue(path + "-missing", proj, create=True)
    a = ipc.new(MessageQueue, key=sysvkit.IPC_PRIVATE)
    b = ipc.new(MessageQueue, key=sysvkit.IPC_PRIVATE, create=True)
    assert a.id != b.id and a.key == 0


def test_mode(ipc: Any) -> None:
    q = new_queue(ipc, mode=0o640)
    assert q.stat().mode == 0o640


def test_permission_denied(ipc: Any, run_py: Any) -> None:
    if os.geteuid() != 0:
        path, proj = ipc.path()
        ident = ll.msgget(sysvkit.ftok(path, proj), ll.IPC_CREAT | 0o000)
        ipc.track_id("msg", ident)
        with pytest.raises(PermissionError):
            MessageQueue(path, proj)
        return
    # root passes every permission check: ask as another user, in a child.
    q = new_queue(ipc, mode=0o600)
    run_py("""
        import os, sys
        from sysvkit.msgqueue import MessageQueue   # before losing access to /root
        os.setgid(65534); os.setuid(65534)
        try:
            MessageQueue(key=%d)
        except PermissionError as exc:
            assert "0x%08x" in str(exc), exc
        else:
            sys.exit("opened a 0o600 queue of another user")
        """ % (q.key, q.key & 0xFFFFFFFF))


def test_from_id_pickle_repr_close(ipc: Any) -> None:
    q = new_queue(ipc)
    r = MessageQueue.from_id(q.id)
    assert (r.id, r.key) == (q.id, q.key)
    r.send(b"via from_id")
    q2 = pickle.loads(pickle.dumps(q))
    assert q2.id == q.id and q2.receive() == (b"via from_id", 1)
    assert repr(q) == "<sysvkit.MessageQueue key=0x%08x id=%d>" % (q.key & 0xFFFFFFFF, q.id)
    with q2:
        pass
    assert q2.closed and "closed" in repr(q2)
    for use in (lambda: q2.send(b"x"), lambda: q2.receive(block=False), lambda: len(q2),
                lambda: q2.max_bytes):
        with pytest.raises(ValueError, match="closed"):
            use()
    q2.close()                                       # idempotent
    assert q.exists()                                # close never removes
    q.send(b"still here")
    assert q.receive() == (b"still here", 1)
    with pytest.raises(FileNotFoundError):
        MessageQueue.from_id(2 ** 31 - 1)


def test_removed_queue(ipc: Any) -> None:
    q = new_queue(ipc)
    other = MessageQueue.from_id(q.id)
    other.remove()
    for use in (lambda: q.send(b"x"), lambda: q.receive(block=False), lambda: q.receive(),
                lambda: q.receive(timeout=1), lambda: len(q), lambda: q.stat(),
                lambda: q.max_bytes, q.remove):
        with pytest.raises(RemovedError):
            use()
    with pytest.raises(FileNotFoundError):
        MessageQueue.from_id(q.id)
    q.close()
    with pytest.raises(ValueError, match="closed"):
        q.send(b"x")


def test_pickled_queue_in_another_process(ipc: Any) -> None:
    q = new_queue(ipc)
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_echo_pickled, args=(pickle.dumps(q),))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert q.receive(timeout=5) == (b"from child", 5)


def _echo_pickled(blob: bytes) -> None:
    pickle.loads(blob).send(b"from child", 5)


# -- waiting: threads, timer, signals, other processes -------------------------

def test_threads_with_different_timeouts(ipc: Any) -> None:
    q = new_queue(ipc)
    timeouts = [0.2, 0.4, 0.6, 0.8]
    results: Dict[float, Tuple[str, float]] = {}

    def wait(t: float) -> None:
        t0 = time.monotonic()
        try:
            q.receive(timeout=t)
            results[t] = ("got", time.monotonic() - t0)
        except TimeoutError:
            results[t] = ("timeout", time.monotonic() - t0)

    threads = [threading.Thread(target=wait, args=(t,)) for t in timeouts]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    for t in timeouts:
        kind, took = results[t]
        assert kind == "timeout" and t - 0.01 <= took < t + 0.5, (t, results[t])


def test_one_message_wakes_exactly_one(ipc: Any) -> None:
    q = new_queue(ipc)
    got: List[Tuple[bytes, int]] = []
    timed_out: List[float] = []

    def wait(t: float) -> None:
        try:
            got.append(q.receive(timeout=t))
        except TimeoutError:
            timed_out.append(t)

    threads = [threading.Thread(target=wait, args=(t,)) for t in (2.0, 2.1, 2.2, None)]
    for th in threads[:3]:
        th.start()
    time.sleep(0.2)
    q.send(b"one")
    deadline = time.monotonic() + 1.5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [(b"one", 1)]
    for th in threads[:3]:
        th.join(10)
    assert got == [(b"one", 1)] and len(timed_out) == 2


def test_timed_receive_uses_no_cpu_and_wakes_promptly(ipc: Any) -> None:
    q = new_queue(ipc)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        q.receive(timeout=1.0)
    assert time.monotonic() - t0 >= 0.99
    assert time.process_time() - cpu0 < 0.2          # blocked, not spinning
    # Wakes as soon as a message arrives, well before the timeout.
    threading.Timer(0.1, q.send, args=(b"wake",)).start()
    t0 = time.monotonic()
    assert q.receive(timeout=30) == (b"wake", 1)
    assert time.monotonic() - t0 < 2


def test_wakes_on_a_send_from_another_process(ipc: Any) -> None:
    q = new_queue(ipc)
    proc = subprocess.Popen([sys.executable, "-c", (
        "import time; from sysvkit.msgqueue import MessageQueue as Q; "
        "q = Q.from_id(%d); time.sleep(0.2); q.send(b'hi', 3)") % q.id])
    try:
        t0 = time.monotonic()
        assert q.receive(timeout=30) == (b"hi", 3)
        assert time.monotonic() - t0 < 5
    finally:
        assert proc.wait(30) == 0


@pytest.mark.parametrize("timeout", [None, 10.0])
def test_itimer_handler_runs_and_receive_resumes(ipc: Any, timeout: Optional[float]) -> None:
    q = new_queue(ipc)
    ticks: List[float] = []
    old = signal.signal(signal.SIGALRM, lambda s, f: ticks.append(time.monotonic()))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
        threading.Timer(0.4, q.send, args=(b"after ticks", 2)).start()
        assert q.receive(timeout=timeout) == (b"after ticks", 2)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(ticks) >= 3


def test_itimer_does_not_stretch_a_timeout(ipc: Any) -> None:
    q = new_queue(ipc)
    old = signal.signal(signal.SIGALRM, lambda s, f: None)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.03, 0.03)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            q.receive(timeout=0.3)
        assert 0.29 <= time.monotonic() - t0 < 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("timeout", ["None", "30"])
def test_sigint_interrupts_a_blocked_receive(ipc: Any, run_py: Any, timeout: str) -> None:
    q = new_queue(ipc)
    proc = run_py("""
        import os, signal, threading, time
        from sysvkit.msgqueue import MessageQueue
        q = MessageQueue.from_id(%d)
        threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            q.receive(timeout=%s)
        except KeyboardInterrupt:
            print("interrupted after %%.2f" %% (time.monotonic() - t0))
        """ % (q.id, timeout))
    took = float(proc.stdout.split()[-1])
    assert 0.25 <= took < 3
    assert len(q) == 0


def test_removal_wakes_blocked_waiters(ipc: Any) -> None:
    q = new_queue(ipc, max_bytes=10)
    q.send(b"x" * 10)
    errors: List[BaseException] = []

    def run(call: Any) -> None:
        try:
            call()
        except BaseException as exc:  # noqa: B902 - recorded for the assert
            errors.append(exc)

    calls = [lambda: q.receive(5), lambda: q.receive(6, timeout=30),
             lambda: q.send(b"y", timeout=30), lambda: q.send(b"z")]
    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for th in threads:
        th.start()
    time.sleep(0.2)
    subprocess.run([sys.executable, "-c", "from sysvkit.msgqueue import MessageQueue as Q; "
                    "Q.from_id(%d).remove()" % q.id], check=True, timeout=30)
    for th in threads:
        th.join(10)
        assert not th.is_alive()
    assert len(errors) == 4 and all(isinstance(e, RemovedError) for e in errors), errors


def test_signal_handler_forks_during_a_timed_wait(ipc: Any, run_py: Any) -> None:
    """The child of a fork made by a signal handler during a timed receive
    has no timer (fork does not copy them): it must still time out."""
    q = new_queue(ipc)
    run_py("""
        import os, signal, sys, time
        from sysvkit.msgqueue import MessageQueue
        q = MessageQueue.from_id(%d)
        child = []
        def handler(signo, frame):
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                signal.alarm(10)           # a hang kills the child: seen below
            child.append(pid)
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        t0 = time.monotonic()
        try:
            q.receive(timeout=0.5)
        except TimeoutError:
            pass
        took = time.monotonic() - t0
        if child[0] == 0:
            os._exit(0 if took < 5 else 3)
        _, status = os.waitpid(child[0], 0)
        assert status == 0, "child: status %%#x" %% status
        """ % q.id)


def test_timer_signal_left_to_the_program(ipc: Any, run_py: Any) -> None:
    """A program that takes over the timer's signal (its own handler, or the
    default action back) keeps it, and timed waits still work."""
    q = new_queue(ipc)
    run_py("""
        import signal
        from sysvkit.msgqueue import MessageQueue
        q = MessageQueue.from_id(%d)
        for _ in range(2):
            try:
                q.receive(timeout=0.02)
            except TimeoutError:
                pass
        calls = []
        for s in range(signal.SIGRTMAX, signal.SIGRTMAX - 3, -1):
            signal.signal(s, lambda *a: calls.append(a))
        for _ in range(3):
            try:
                q.receive(timeout=0.02)
            except TimeoutError:
                pass
        assert calls == [], calls
        for s in range(signal.SIGRTMAX, signal.SIGRTMAX - 3, -1):
            signal.signal(s, signal.SIG_DFL)
        for _ in range(3):
            try:
                q.receive(timeout=0.02)
            except TimeoutError:
                pass
        """ % q.id)


# -- across processes ------------------------------------------------------------

PRODUCER = """
import sys
from sysvkit.msgqueue import MessageQueue
q = MessageQueue.from_id(int(sys.argv[1]))
who, n = int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    q.send(b"%d:%d" % (who, i), type=1 + i % 3, timeout=60)
"""


def _produce(ident: int, who: int, n: int) -> None:
    q = MessageQueue.from_id(ident)
    for i in range(n):
        q.send(b"%d:%d" % (who, i), type=1 + i % 3, timeout=60)


def _check_delivery(q: MessageQueue, producers: int, n: int) -> None:
    last: Dict[Tuple[int, int], int] = {}
    seen = set()
    for _ in range(producers * n):
        data, t = q.receive(timeout=20)
        who, i = map(int, data.split(b":"))
        assert t == 1 + i % 3
        assert (who, i) not in seen
        seen.add((who, i))
        assert last.get((who, t), -1) < i        # in order within a type
        last[(who, t)] = i
    assert len(seen) == producers * n
    with pytest.raises(BlockingIOError):
        q.receive(block=False)


def test_10000_messages_across_processes_spawn(ipc: Any) -> None:
    q = new_queue(ipc)
    procs = [subprocess.Popen([sys.executable, "-c", PRODUCER, str(q.id), str(w), "5000"])
             for w in range(2)]
    try:
        _check_delivery(q, 2, 5000)
    finally:
        for p in procs:
            assert p.wait(60) == 0


def test_10000_messages_across_processes_fork(ipc: Any) -> None:
    q = new_queue(ipc)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_produce, args=(q.id, w, 5000)) for w in range(2)]
    for p in procs:
        p.start()
    try:
        _check_delivery(q, 2, 5000)
    finally:
        for p in procs:
            p.join(60)
            assert p.exitcode == 0


# -- interop with sysv_ipc --------------------------------------------------------

def test_interop_with_sysv_ipc(ipc: Any) -> None:
    sysv_ipc = pytest.importorskip("sysv_ipc")
    q = new_queue(ipc)
    theirs = sysv_ipc.MessageQueue(q.key)
    payload = bytes(range(256))
    theirs.send(payload, type=7)
    assert q.receive() == (payload, 7)
    q.send(payload, type=12)
    q.send(b"", type=3)
    assert theirs.receive() == (payload, 12)
    assert theirs.receive(type=3) == (b"", 3)
    ours = MessageQueue(key=theirs.key)
    assert ours.id == theirs.id


# -- msgmax changes (needs a private IPC namespace of our own) -------------------

def test_msgmax_raised_and_lowered(run_py: Any) -> None:
    """Messages longer than the stack buffer, a stale cached msgmax, and a
    kernel refusal after msgmax was lowered: in a new IPC namespace, where
    changing msgmax touches nobody else."""
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--ipc", "true"],
                                         capture_output=True).returncode != 0:
        pytest.skip("cannot make a private IPC namespace here")
    code = """
        import sys
        import pytest
        import sysvkit
        from sysvkit.msgqueue import MessageQueue
        def setmax(n, name="msgmax"):
            with open("/proc/sys/kernel/" + name, "w") as f:
                f.write(str(n))
        setmax(400000, "msgmnb")
        setmax(100000)
        q = MessageQueue(key=0, create=True, max_bytes=300000)
        try:
            assert q._msgmax == 100000
            big = bytes(range(256)) * 200            # 51200 bytes
            q.send(big, 4)
            assert q.receive() == (big, 4)           # E2BIG on the stack buffer, then heap
            q.send(big, 5)
            with pytest.raises(ValueError, match="max_size=20000"):
                q.receive(max_size=20000)
            assert q.receive(max_size=20000, truncate=True) == (big[:20000], 5)
            q.send(big)
            assert q.receive(max_size=60000, block=False) == (big, 1)
            q.send(b"s" * 9000, 2)
            q.send(big, 3)
            assert q.receive(3, max_size=2 ** 31 - 1) == (big, 3)   # buffer sized by the queue
            assert q.receive(max_size=2 ** 31 - 1, truncate=True) == (b"s" * 9000, 2)
            q.send(big)
            setmax(9000)                             # cached msgmax is now stale
            with pytest.raises(ValueError, match="msgmax.*9000"):
                q.send(b"x" * 10000)
            with pytest.raises(ValueError, match="msgmax=9000"):
                q.receive()                          # longer than msgmax now
            assert len(q) == 1
            setmax(100000)
            q._msgmax = 9000                         # stale the other way
            q.send(b"y" * 20000)                     # re-read, then accepted
            assert q._msgmax == 100000
            assert q.receive()[0] == big and q.receive()[0] == b"y" * 20000
            q._msgmax = 100000
            setmax(9000)
            with pytest.raises(ValueError, match="msgmax.*9000"):
                q.send(b"z" * 10000)                 # the kernel says EINVAL
            assert len(q) == 0
        finally:
            q.remove()
        """
    import textwrap
    proc = subprocess.run([unshare, "--ipc", sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_timed_wait_leaves_the_signal_mask_alone(ipc: Any, run_py: Any) -> None:
    """A thread that blocks the real-time signals still times out, and gets
    its mask back; one that does not keeps it as it was."""
    q = new_queue(ipc)
    run_py("""
        import signal, threading
        from sysvkit.msgqueue import MessageQueue
        q = MessageQueue.from_id(%d)
        def timed():
            try:
                q.receive(timeout=0.05)
            except TimeoutError:
                return
            raise AssertionError("no timeout")
        rt = set(range(signal.SIGRTMIN, signal.SIGRTMAX + 1))
        before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        timed()
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
        signal.pthread_sigmask(signal.SIG_BLOCK, rt)
        for _ in range(20):
            timed()
            assert rt <= set(signal.pthread_sigmask(signal.SIG_BLOCK, []))
            assert not rt & signal.sigpending()     # no expiry left behind
        t = threading.Thread(target=timed)
        t.start(); t.join(10)
        assert not t.is_alive()
        """ % q.id)


def test_signatures() -> None:
    import inspect
    assert str(inspect.signature(MessageQueue.send)) == (
        "(self, /, data, type=1, *, block=True, timeout=None)")
    assert str(inspect.signature(MessageQueue.receive)) == (
        "(self, /, type=0, *, block=True, timeout=None, except_type=False, max_size=None, "
        "truncate=False)")
    params = inspect.signature(MessageQueue.__init__).parameters
    assert list(params) == ["self", "path", "proj_id", "key", "create", "exclusive", "mode",
                            "max_bytes"]
    assert params["mode"].default == 0o600 and params["key"].kind is params["key"].KEYWORD_ONLY
    assert inspect.getdoc(MessageQueue.send).startswith("Send ``data``")


def test_max_bytes_above_msgmnb(ipc: Any) -> None:
    """Above msgmnb needs CAP_SYS_RESOURCE: without it, PermissionError naming
    the limit, and the queue this call created is not left behind."""
    path, proj = ipc.path()
    mnb = sysvkit.limits().msgmnb
    try:
        q = ipc.new(MessageQueue, path, proj, create=True, max_bytes=mnb + 1)
    except PermissionError as exc:
        assert "msgmnb" in str(exc) and str(mnb) in str(exc)
        with pytest.raises(FileNotFoundError):
            MessageQueue(path, proj)
    else:                                            # privileged: it worked
        assert q.max_bytes == mnb + 1
