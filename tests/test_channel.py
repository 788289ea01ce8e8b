"""Channel: SPEC.md "Channel" and "Structures in shared memory (common
rules)", across threads and processes (fork and spawn)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable, List, Optional

import pytest

import sysvkit
from sysvkit import IPC_PRIVATE, Channel, CorruptError, RemovedError
from sysvkit import _core
from sysvkit import lowlevel as ll

METHODS = ["fork", "spawn"]
RING = _core.CHANNEL_RING_OFFSET      # where the ring starts in the segment
TAIL, HEAD = 64 + 128, 64 + 256        # offsets of the positions (csrc/channel.h)
SENT, RECEIVED = TAIL + 8, HEAD + 8


# -- helpers ---------------------------------------------------------------------------
def start(method: str, code: str, *args: Any) -> Any:
    """Start a process (fork or spawn) running ``code`` with ARGS = args."""
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


def new(ipc: Any, **kwargs: Any) -> Channel:
    kwargs.setdefault("key", IPC_PRIVATE)
    return ipc.track(Channel(create=True, **kwargs))  # type: ignore[no-any-return]


def scribble(ident: int, offset: int, data: bytes) -> None:
    a = ll.shmat(ident)
    a.write(data, offset)
    ll.shmdt(a)


def peek(ident: int, offset: int, size: int) -> bytes:
    a = ll.shmat(ident)
    try:
        return a.read(size, offset)
    finally:
        ll.shmdt(a)


class Waiter(threading.Thread):
    """Runs ``fn`` in a thread and keeps its result or exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.done_at = 0.0

    def run(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: B902 - kept for the test to check
            self.error = exc
        self.done_at = time.monotonic()


# -- capacity, sizes, creating and opening ----------------------------------------------
def test_default_capacity_and_sizes(ipc: Any) -> None:
    ch = new(ipc)
    assert ch.capacity == 1 << 20
    assert ch.max_message_size == (1 << 20) - 8
    assert len(ch) == 0
    assert ch.stat().size == RING + (1 << 20)


def test_capacity_is_used_when_creating_and_read_when_opening(ipc: Any) -> None:
    path, proj = ipc.path()
    ch = ipc.track(Channel(path, proj, create=True, capacity=5001))
    assert (ch.capacity, ch.max_message_size) == (5001, 5000)   # a ring of 5008 bytes
    other = Channel(path, proj)
    assert other.capacity == 5001 and other.id == ch.id
    other.close()
    same = Channel(path, proj, capacity=5001, create=True)
    assert same.id == ch.id
    same.close()
    with pytest.raises(ValueError, match="capacity=4096 differs .* 5001"):
        Channel(path, proj, capacity=4096)
    with pytest.raises(ValueError, match="capacity=8192 differs"):
        Channel(path, proj, capacity=8192, create=True)


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (63, ValueError), (-1, ValueError),
                                     (1 << 47, ValueError), (1.5, TypeError), ("1", TypeError),
                                     (True, TypeError)])
def test_bad_capacity_checked_before_any_call(ipc: Any, bad: Any, exc: type) -> None:
    path, proj = ipc.path()
    with pytest.raises(exc, match="capacity"):
        Channel(path, proj, create=True, capacity=bad)
    with pytest.raises(FileNotFoundError):
        Channel(path, proj)          # nothing was made


def test_opening_missing_and_exclusive(ipc: Any) -> None:
    path, proj = ipc.path()
    with pytest.raises(FileNotFoundError, match="create=True creates it"):
        Channel(path, proj)
    ch = ipc.track(Channel(path, proj, create=True, exclusive=True, capacity=4096))
    with pytest.raises(FileExistsError):
        Channel(path, proj, create=True, exclusive=True)
    assert ch.key == ll.ftok(path, proj)
    with pytest.raises(TypeError):
        Channel(path, proj, key=ch.key)
    with pytest.raises(TypeError):
        Channel()


def test_new_channel_mode_is_0o600_by_default(ipc: Any) -> None:
    ch = new(ipc)
    assert ch.stat().mode & 0o777 == 0o600
    ch2 = new(ipc, mode=0o640)
    assert ch2.stat().mode & 0o777 == 0o640


def test_not_a_channel_is_valueerror(ipc: Any) -> None:
    shm = ipc.track(sysvkit.SharedMemory(key=IPC_PRIVATE, size=8192, create=True))
    shm.write(b"someone else's data, not a channel")
    with pytest.raises(ValueError, match="not a sysvkit"):
        Channel.from_id(shm.id)
    ch = new(ipc, capacity=4096)
    scribble(ch.id, 4, struct.pack("=H", _core.STRUCT_KIND_MUTEX))
    with pytest.raises(ValueError, match="not a channel"):
        Channel.from_id(ch.id)


def test_other_format_version_is_valueerror(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    scribble(ch.id, 6, struct.pack("=H", 99))
    with pytest.raises(ValueError, match="format version 99"):
        Channel.from_id(ch.id)


@pytest.mark.parametrize("offset,value", [
    (64, 1 << 40),        # capacity
    (72, 12345),          # ring size
    (80, 7),              # ring offset
    (64 + 64 + 16, 77),   # the send lock's kind word
])
def test_damaged_channel_header_is_corrupt(ipc: Any, offset: int, value: int) -> None:
    ch = new(ipc, capacity=4096)
    scribble(ch.id, offset, struct.pack("=Q", value) if offset < 128 else struct.pack("=I", value))
    with pytest.raises(CorruptError):
        Channel.from_id(ch.id)


def test_too_small_for_its_header_is_valueerror(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    scribble(ch.id, 16, struct.pack("=Q", RING + 8192))   # claims more than the segment
    with pytest.raises(ValueError, match="claims"):
        Channel.from_id(ch.id)


# -- messages --------------------------------------------------------------------------
def test_messages_whole_unchanged_in_order_and_empty_ones(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    msgs = [b"", b"a", b"hello world", bytes(range(256)), b"", b"\0" * 7, b"x" * 8, b"y" * 9]
    for m in msgs:
        ch.send(m)
    assert len(ch) == len(msgs)
    assert [ch.receive() for _ in msgs] == msgs
    assert len(ch) == 0


def test_any_bytes_like_object(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    import array
    ch.send(bytearray(b"ba"))
    ch.send(memoryview(b"mv"))
    ch.send(array.array("i", [1, 2]))
    ch.send(memoryview(b"abcdef")[::2])          # not contiguous: sent as its bytes
    assert [ch.receive() for _ in range(4)] == [b"ba", b"mv", array.array("i", [1, 2]).tobytes(),
                                                b"ace"]


@pytest.mark.parametrize("bad", ["text", 5, None, [b"x"]])
def test_send_of_non_bytes_is_typeerror(ipc: Any, bad: Any) -> None:
    ch = new(ipc, capacity=4096)
    with pytest.raises(TypeError, match="bytes-like"):
        ch.send(bad)
    assert len(ch) == 0


def test_too_large_names_the_limit(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    ch.send(b"x" * ch.max_message_size)       # the largest fits
    assert len(ch.receive()) == 4088
    with pytest.raises(ValueError, match="max_message_size, 4088 bytes"):
        ch.send(b"x" * 4089)
    assert len(ch) == 0


def test_wraps_around_many_times(ipc: Any) -> None:
    ch = new(ipc, capacity=1000)
    expect = []
    for i in range(3000):
        m = bytes([i % 251]) * (i * 37 % 300)
        ch.send(m)
        expect.append(m)
        if len(expect) > 2:
            assert ch.receive() == expect.pop(0)
    while expect:
        assert ch.receive() == expect.pop(0)


def test_full_blocks_times_out_or_would_block(ipc: Any) -> None:
    ch = new(ipc, capacity=64)
    ch.send(b"x" * 40)                          # 48 of 64 bytes
    with pytest.raises(BlockingIOError):
        ch.send(b"y" * 20, block=False)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        ch.send(b"y" * 20, timeout=0.2)
    assert 0.19 <= time.monotonic() - t0 < 2
    with pytest.raises(TimeoutError):
        ch.send(b"y" * 20, timeout=0)
    ch.send(b"z", block=False)                  # 16 bytes still fit
    assert [ch.receive(), ch.receive()] == [b"x" * 40, b"z"]


def test_empty_blocks_times_out_or_would_block(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    with pytest.raises(BlockingIOError):
        ch.receive(block=False)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        ch.receive(timeout=0.2)
    assert 0.19 <= time.monotonic() - t0 < 2
    with pytest.raises(TimeoutError):
        ch.receive_into(bytearray(10), timeout=0.05)
    with pytest.raises(BlockingIOError):
        ch.receive_many(3, block=False)


@pytest.mark.parametrize("bad", [-1, float("nan"), -0.5])
def test_bad_timeouts(ipc: Any, bad: float) -> None:
    ch = new(ipc, capacity=4096)
    for call in (lambda: ch.send(b"x", timeout=bad), lambda: ch.receive(timeout=bad),
                 lambda: ch.send_many([b"x"], timeout=bad),
                 lambda: ch.receive_many(1, timeout=bad)):
        with pytest.raises(ValueError, match="timeout"):
            call()
    assert len(ch) == 0
    with pytest.raises(TypeError, match="timeout"):
        ch.receive(timeout="1")


def test_blocked_receive_wakes_when_a_message_comes(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    w = Waiter(lambda: ch.receive(timeout=10))
    w.start()
    time.sleep(0.2)
    sent = time.monotonic()
    ch.send(b"wake")
    w.join(10)
    assert w.result == b"wake" and w.done_at - sent < 0.1


def test_blocked_send_wakes_when_there_is_room(ipc: Any) -> None:
    ch = new(ipc, capacity=64)
    ch.send(b"x" * 50)
    w = Waiter(lambda: ch.send(b"y" * 50, timeout=10))
    w.start()
    time.sleep(0.2)
    taken = time.monotonic()
    assert ch.receive() == b"x" * 50
    w.join(10)
    assert w.error is None and w.done_at - taken < 0.1
    assert ch.receive() == b"y" * 50


def test_receive_into(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    ch.send(b"0123456789")
    buf = bytearray(10)
    assert ch.receive_into(buf) == 10 and buf == b"0123456789"
    ch.send(b"abc")
    mv = memoryview(bytearray(64))
    assert ch.receive_into(mv[8:]) == 3 and mv[8:11] == b"abc"
    ch.send(b"")
    assert ch.receive_into(bytearray(0)) == 0


def test_receive_into_too_small_leaves_the_message(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    ch.send(b"x" * 100)
    with pytest.raises(ValueError, match="100 bytes, longer than the buffer .10 bytes.; it stays"):
        ch.receive_into(bytearray(10))
    assert len(ch) == 1
    assert ch.receive() == b"x" * 100


def test_receive_into_needs_a_writable_buffer(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    ch.send(b"x")
    for bad in (b"xx", "xx", memoryview(b"xx"), 3):
        with pytest.raises(TypeError):
            ch.receive_into(bad)
    assert ch.receive() == b"x"


def test_send_many_and_receive_many(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    msgs = [bytes([i]) * i for i in range(50)]
    assert ch.send_many(msgs) == 50
    assert ch.send_many(iter([b"gen", bytearray(b"ba")])) == 2
    assert ch.send_many([]) == 0
    assert len(ch) == 52
    got = ch.receive_many(10)
    assert got == msgs[:10]
    got += ch.receive_many(1000)                 # takes what is there
    assert got == msgs + [b"gen", b"ba"]
    assert len(ch) == 0


def test_send_many_checks_every_message_first(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    with pytest.raises(TypeError, match=r"messages\[2\]"):
        ch.send_many([b"a", b"b", "c"])
    with pytest.raises(ValueError, match=r"messages\[1\] is 5000 bytes.*4088"):
        ch.send_many([b"a", b"x" * 5000])
    assert len(ch) == 0
    with pytest.raises(TypeError):
        ch.send_many(5)


def test_send_many_when_full_returns_the_count(ipc: Any) -> None:
    ch = new(ipc, capacity=256)
    msgs = [b"m" * 24] * 20                     # 32 bytes each: 8 fit
    assert ch.send_many(msgs, block=False) == 8
    with pytest.raises(BlockingIOError):
        ch.send_many(msgs, block=False)
    with pytest.raises(TimeoutError):
        ch.send_many(msgs, timeout=0.05)
    assert ch.receive_many(3) == msgs[:3]
    assert ch.send_many(msgs, timeout=0.05) == 3
    # Blocking: completes as a receiver drains.
    w = Waiter(lambda: ch.send_many(msgs, timeout=10))
    w.start()
    got: List[bytes] = []
    while len(got) < 8 + 20:
        got += ch.receive_many(100, timeout=10)
    w.join(10)
    assert w.result == 20 and got == [b"m" * 24] * 28


def test_receive_many_waits_for_one(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    threading.Timer(0.2, ch.send_many, args=([b"1", b"2"],)).start()
    t0 = time.monotonic()
    got = ch.receive_many(5, timeout=10)
    assert 0.15 < time.monotonic() - t0 < 5
    got += ch.receive_many(5, timeout=1) if len(got) < 2 else []
    assert got == [b"1", b"2"]
    with pytest.raises(ValueError, match="max_messages"):
        ch.receive_many(0)
    with pytest.raises(TypeError, match="max_messages"):
        ch.receive_many(1.0)


def test_threads_many_senders_many_receivers(ipc: Any) -> None:
    ch = new(ipc, capacity=2048)
    per, nsend, nrecv = 2000, 4, 4
    got: List[List[bytes]] = [[] for _ in range(nrecv)]

    def sender(s: int) -> None:
        for i in range(per):
            ch.send(struct.pack("=II", s, i) * (1 + i % 5), timeout=30)

    def receiver(r: int) -> None:
        while True:
            m = ch.receive(timeout=30)
            if m == b"stop":
                return
            got[r].append(m)

    rs = [threading.Thread(target=receiver, args=(r,)) for r in range(nrecv)]
    ss = [threading.Thread(target=sender, args=(s,)) for s in range(nsend)]
    for t in rs + ss:
        t.start()
    for t in ss:
        t.join(60)
    for _ in rs:
        ch.send(b"stop")
    for t in rs:
        t.join(60)
    seen = set()
    for r in range(nrecv):
        last = [-1] * nsend
        for m in got[r]:
            s, i = struct.unpack("=II", m[:8])
            assert m == struct.pack("=II", s, i) * (1 + i % 5)
            assert i > last[s]            # each sender's order is kept
            last[s] = i
            assert (s, i) not in seen
            seen.add((s, i))
    assert len(seen) == per * nsend


# -- across processes --------------------------------------------------------------------
_ECHO = """
ch, out, n = ARGS
for _ in range(n):
    m = ch.receive(timeout=60)
    ch.send(m[::-1], timeout=60)
out.put("done")
ch.close()
"""


@pytest.mark.parametrize("method", METHODS)
def test_across_processes_pickled_by_id(ipc: Any, method: str) -> None:
    ch = new(ipc, capacity=1 << 16)
    back = new(ipc, capacity=1 << 16)
    # The child receives on ch and answers on back: pass it a pair.
    code = """
ch, back, out, n = ARGS
for _ in range(n):
    m = ch.receive(timeout=60)
    back.send(m[::-1], timeout=60)
out.put("done")
"""
    out = multiprocessing.get_context(method).SimpleQueue()
    p = start(method, code, ch, back, out, 200)
    for i in range(200):
        m = os.urandom(i * 13)
        ch.send(m)
        assert back.receive(timeout=60) == m[::-1]
    assert out.get() == "done"
    join_all([p])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("size", [1 << 20, 8 << 20])
def test_big_messages_across_processes(ipc: Any, method: str, size: int) -> None:
    ch = new(ipc, capacity=size + 4096)
    assert size > sysvkit.limits().msgmax
    code = """
import hashlib
ch, out, size, n = ARGS
for i in range(n):
    m = ch.receive(timeout=60)
    out.put((len(m), hashlib.sha256(m).hexdigest()))
buf = bytearray(size)
k = ch.receive_into(buf, timeout=60)
out.put((k, hashlib.sha256(buf[:k]).hexdigest()))
"""
    out = multiprocessing.get_context(method).SimpleQueue()
    p = start(method, code, ch, out, size, 3)
    sent = []
    for i in range(4):
        m = os.urandom(size - i)
        ch.send(m, timeout=60)
        sent.append((len(m), hashlib.sha256(m).hexdigest()))
    assert [out.get() for _ in range(4)] == sent
    join_all([p])


_SENDER = """
import struct
ch, s, n = ARGS
for i in range(n):
    ch.send(struct.pack("=II", s, i) + bytes([s]) * (i % 50), timeout=60)
"""

_RECEIVER = """
import struct
ch, out = ARGS
got = []
while True:
    m = ch.receive(timeout=60)
    if m == b"stop":
        break
    got.append(m)
out.put(got)
"""


@pytest.mark.parametrize("method", METHODS)
def test_processes_many_senders_many_receivers(ipc: Any, method: str) -> None:
    ch = new(ipc, capacity=4096)
    out = multiprocessing.get_context(method).SimpleQueue()
    n = 1500
    recv = [start(method, _RECEIVER, ch, out) for _ in range(3)]
    send = [start(method, _SENDER, ch, s, n) for s in range(3)]
    join_all(send)
    for _ in recv:
        ch.send(b"stop")
    results = [out.get() for _ in recv]
    join_all(recv)
    seen = set()
    for got in results:
        last = [-1] * 3
        for m in got:
            s, i = struct.unpack("=II", m[:8])
            assert m[8:] == bytes([s]) * (i % 50)
            assert i > last[s]
            last[s] = i
            seen.add((s, i))
    assert len(seen) == sum(len(g) for g in results) == 3 * n


@pytest.mark.parametrize("method", METHODS)
def test_order_is_the_order_sends_completed(ipc: Any, method: str) -> None:
    # Sends that completed one after another (across processes) arrive in that order.
    ch = new(ipc, capacity=4096)
    out = multiprocessing.get_context(method).SimpleQueue()
    code = """
ch, out, tag = ARGS
ch.send(tag)
out.put(tag)
"""
    order = []
    for tag in (b"first", b"second", b"third"):
        p = start(method, code, ch, out, tag)
        order.append(out.get())
        join_all([p])
    assert [ch.receive() for _ in order] == order


# -- waiting, signals ------------------------------------------------------------------
def test_blocked_receive_uses_no_cpu(ipc: Any, run_py: Any) -> None:
    ch = new(ipc, capacity=4096)
    proc = run_py("""
        import os, resource
        from sysvkit import Channel
        ch = Channel.from_id(%d)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = os.times()
        try:
            ch.receive(timeout=2.0)
        except TimeoutError:
            pass
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        t1 = os.times()
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        print(cpu / (t1.elapsed - t0.elapsed))
        """ % ch.id)
    assert float(proc.stdout) < 0.01


def test_blocked_send_uses_no_cpu(ipc: Any, run_py: Any) -> None:
    ch = new(ipc, capacity=64)
    ch.send(b"x" * 50)
    proc = run_py("""
        import os, resource
        from sysvkit import Channel
        ch = Channel.from_id(%d)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = os.times()
        try:
            ch.send(b"y" * 50, timeout=2.0)
        except TimeoutError:
            pass
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        t1 = os.times()
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        print(cpu / (t1.elapsed - t0.elapsed))
        """ % ch.id)
    assert float(proc.stdout) < 0.01


@pytest.mark.parametrize("call", ["receive", "receive_many", "send"])
@pytest.mark.parametrize("timeout", ["None", "30"])
def test_sigint_interrupts_a_blocked_call(ipc: Any, call: str, timeout: str) -> None:
    ch = new(ipc, capacity=64)
    if call == "send":
        ch.send(b"x" * 50)
    code = """
        import os, signal, sys, time
        from sysvkit import Channel
        ch = Channel.from_id(int(sys.argv[1]))
        calls = {"receive": lambda: ch.receive(timeout=%s),
                 "receive_many": lambda: ch.receive_many(4, timeout=%s),
                 "send": lambda: ch.send(b"y" * 50, timeout=%s)}
        print("ready", flush=True)
        try:
            calls[sys.argv[2]]()
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
            sys.exit(0)
        sys.exit(3)
    """ % (timeout, timeout, timeout)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(ch.id), call],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0 and "KeyboardInterrupt" in out
    assert elapsed < 0.5


def test_signal_handler_runs_and_receive_resumes(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    ticks: List[float] = []
    old = signal.signal(signal.SIGALRM, lambda s, f: ticks.append(time.monotonic()))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
        threading.Timer(0.4, ch.send, args=(b"after ticks",)).start()
        assert ch.receive(timeout=10) == b"after ticks"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(ticks) >= 3


def test_signals_do_not_stretch_a_timeout(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    old = signal.signal(signal.SIGALRM, lambda s, f: None)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.03, 0.03)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            ch.receive(timeout=0.3)
        assert 0.29 <= time.monotonic() - t0 < 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_handler_exception_propagates(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)

    def boom(s: int, f: Any) -> None:
        raise RuntimeError("from the handler")

    old = signal.signal(signal.SIGALRM, boom)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(RuntimeError, match="from the handler"):
            ch.receive()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    ch.send(b"still fine")
    assert ch.receive() == b"still fine"


# -- kill -9 -----------------------------------------------------------------------------
SEND_LOCK, RECV_LOCK = 64 + 64, 64 + 192     # the locks' words (csrc/channel.h)
OWNER_DIED, TID_MASK = 0x40000000, 0x3FFFFFFF   # futex lock word bits


def stopped(pid: int) -> bool:
    with open("/proc/%d/stat" % pid, "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[0] in (b"T", b"t")


def kill_mid_copy(proc: Any, ident: int, offset: int, busy: Callable[[int, int], bool],
                  feed: Callable[[], None]) -> None:
    """SIGKILL proc while it holds the lock at offset with busy(head, tail)
    true, that is, in the middle of its copy.

    The child is stopped first (SIGSTOP) and the state checked again while
    it cannot move, so the kill lands exactly in the state seen.  When the
    child is not caught within a moment (it finished before we looked and
    now sleeps), feed() gives it more work."""
    deadline = time.monotonic() + 60
    a = ll.shmat(ident)

    def caught() -> bool:
        word, = struct.unpack("=I", a.read(4, offset))
        head, = struct.unpack("=Q", a.read(8, HEAD))
        tail, = struct.unpack("=Q", a.read(8, TAIL))
        return bool(word & TID_MASK) and busy(head, tail)

    try:
        fed = time.monotonic()
        while True:
            assert time.monotonic() < deadline, "the child was never caught mid-copy"
            if caught():
                os.kill(proc.pid, signal.SIGSTOP)
                while not stopped(proc.pid):
                    time.sleep(0.0001)
                if caught():
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.join()
                    word, = struct.unpack("=I", a.read(4, offset))
                    assert word & OWNER_DIED
                    return
                os.kill(proc.pid, signal.SIGCONT)
            elif time.monotonic() - fed > 0.3:
                feed()
                fed = time.monotonic()
    finally:
        ll.shmdt(a)


@pytest.mark.parametrize("method", METHODS)
def test_sender_killed_mid_copy_loses_only_its_message(ipc: Any, method: str) -> None:
    size = 8 << 20
    ch = new(ipc, capacity=size + 4096)      # room for one message
    code = """
import os
ch, size, out = ARGS
big = os.urandom(size)
ch.send(big)
out.put("sent")
while True:
    ch.send(big)
"""
    out = multiprocessing.get_context(method).SimpleQueue()
    p = start(method, code, ch, size, out)
    assert out.get() == "sent"
    first = ch.receive(timeout=60)             # now it copies the next one
    assert len(first) == size

    def feed() -> None:                        # it finished: take that one too
        assert ch.receive(timeout=5) == first

    # Caught holding the send lock with nothing published: mid-copy.
    kill_mid_copy(p, ch.id, SEND_LOCK, lambda head, tail: head == tail, feed)
    t0 = time.monotonic()
    ch.send(b"after", timeout=5)               # the lock is taken over at once
    assert time.monotonic() - t0 < 1
    assert ch.receive(timeout=5) == b"after"   # its message is lost, nothing torn
    assert len(ch) == 0


@pytest.mark.parametrize("method", METHODS)
def test_receiver_killed_mid_copy_loses_nothing(ipc: Any, method: str) -> None:
    size = 8 << 20
    ch = new(ipc, capacity=2 * size + 4096)
    code = """
ch, out = ARGS
out.put("ready")
while True:
    ch.receive()
"""
    out = multiprocessing.get_context(method).SimpleQueue()
    p = start(method, code, ch, out)
    assert out.get() == "ready"
    sent: List[bytes] = []

    def feed() -> None:
        sent.append(os.urandom(size))
        ch.send(sent[-1], timeout=5)

    feed()
    # Caught holding the receive lock with a record still at head: mid-copy.
    kill_mid_copy(p, ch.id, RECV_LOCK, lambda head, tail: head != tail, feed)
    ch.send(b"last", timeout=5)
    t0 = time.monotonic()
    got = [ch.receive(timeout=5)]
    while got[-1] != b"last":
        got.append(ch.receive(timeout=5))
    assert time.monotonic() - t0 < 1
    # The one it was copying (and any fed after it) stayed for us, in order.
    assert len(got) >= 2 and got[:-1] == sent[len(sent) - len(got) + 1:]
    assert len(ch) == 0


# -- lifetime ----------------------------------------------------------------------------
def test_close_remove_stat_repr_context(ipc: Any) -> None:
    path, proj = ipc.path()
    with Channel(path, proj, create=True, capacity=4096) as ch:
        ipc.track(ch)
        assert repr(ch) == "<sysvkit.Channel key=0x%08x id=%d capacity=4096>" % (
            ch.key & 0xFFFFFFFF, ch.id)
        info = ch.stat()
        assert info.key == ch.key and info.id == ch.id and info.size == RING + 4096
        ch.send(b"kept")
    assert ch.closed and "closed" in repr(ch)
    for call in (lambda: ch.send(b"x"), ch.receive, lambda: len(ch),
                 lambda: ch.receive_into(bytearray(4)), lambda: ch.send_many([b"x"]),
                 lambda: ch.receive_many(1)):
        with pytest.raises(ValueError, match="closed"):
            call()
    ch.close()                               # idempotent
    again = Channel(path, proj)               # close() did not remove it
    assert again.receive() == b"kept"
    again.remove()
    with pytest.raises(RemovedError):
        again.remove()
    again.send(b"still attached")             # works until closed, as SharedMemory
    assert again.receive() == b"still attached"
    again.close()
    with pytest.raises(FileNotFoundError):
        Channel(path, proj)
    with pytest.raises(FileNotFoundError):
        Channel.from_id(again.id)


@pytest.mark.parametrize("call", ["receive", "send"])
def test_removed_by_another_process_wakes_a_blocked_call(ipc: Any, run_py: Any, call: str) -> None:
    ch = new(ipc, capacity=64)
    if call == "send":
        ch.send(b"x" * 50)
    fn = ch.receive if call == "receive" else (lambda: ch.send(b"y" * 50))
    w = Waiter(fn)
    w.start()
    time.sleep(0.2)
    run_py("from sysvkit import Channel; Channel.from_id(%d).remove()" % ch.id)
    removed = time.monotonic()
    w.join(10)
    assert isinstance(w.error, RemovedError)
    assert w.done_at - removed < 0.5


def test_close_while_another_thread_waits_is_refused(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    w = Waiter(lambda: ch.receive(timeout=10))
    w.start()
    time.sleep(0.2)
    with pytest.raises(RuntimeError, match="held"):
        ch.close()
    ch.send(b"x")
    w.join(10)
    assert w.result == b"x"
    ch.close()


def test_pickle_opens_never_creates(ipc: Any) -> None:
    ch = new(ipc, capacity=4096)
    data = pickle.dumps(ch)
    ch.send(b"via pickle")
    other = pickle.loads(data)
    assert other.id == ch.id and other.capacity == 4096
    assert other.receive() == b"via pickle"
    other.close()
    ch.remove()
    with pytest.raises(FileNotFoundError):
        pickle.loads(data)


def test_racing_creators_make_one_channel(ipc: Any) -> None:
    path, proj = ipc.path()
    code = """
from sysvkit import Channel
path, proj, out = ARGS
ch = Channel(path, proj, create=True, capacity=8192)
ch.send(b"%d" % ch.id)
out.put(ch.id)
ch.close()
"""
    out = multiprocessing.get_context("fork").SimpleQueue()
    procs = [start("fork", code, path, proj, out) for _ in range(6)]
    ids = [out.get() for _ in procs]
    join_all(procs)
    ch = ipc.track(Channel(path, proj))
    assert len(set(ids)) == 1 and ch.id == ids[0]
    assert len(ch) == 6                      # initialised once: no message was wiped


def test_half_made_segment_is_repaired(ipc: Any) -> None:
    key = ipc.key()
    ident = ipc.track_id("shm", ll.shmget(key, RING + 4096, ll.IPC_CREAT | ll.IPC_EXCL | 0o600))
    # A creator that died after claiming the segment (INIT by a dead pid).
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    scribble(ident, 8, struct.pack("=Q", (dead.pid << 8) | _core.STRUCT_STATE_INIT))
    scribble(ident, RING, b"\xff" * 64)
    t0 = time.monotonic()
    ch = Channel(key=key)
    assert time.monotonic() - t0 < 2
    assert ch.capacity == 4096
    ch.send(b"works")
    assert ch.receive() == b"works"
    ch.close()
