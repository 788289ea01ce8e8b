"""Workloads "queue-small" and "queue-array-64MiB": Python objects from a producer process to this one, through sysvkit.Queue beside multiprocessing.Queue, faster-fifo and py-sharedmemory (when installed) and a two-memcpy C floor."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import pickle
import signal
import time
import struct
from itertools import repeat
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ... import _core
from ..optional import np
from ..runner import FORK, MIB, Loop, Result, Settings, clock, measure_all, not_applicable, \
    result

TITLE = "Queue: Python objects from a producer process (short tuples, a 64 MiB array)"

SK_QUEUE = "sysvkit.Queue"
SK_QUEUE_OWN = "sysvkit.Queue (default capacity: own segments)"
MP_QUEUE = "multiprocessing.Queue"
FASTER_FIFO = "faster_fifo.Queue"
PY_SHM = "py-sharedmemory"
C_FLOOR = "C two memcpy (reference)"

# The sysvkit transport each row compares with in the summary.
COUNTERPARTS: Dict[str, str] = {
    MP_QUEUE: SK_QUEUE, FASTER_FIFO: SK_QUEUE, PY_SHM: SK_QUEUE, C_FLOOR: SK_QUEUE,
}

SMALL = (12345, "label", 2.5)
ARRAY_BYTES = 64 * MIB


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class _Producer:
    """A forked process that puts ``obj`` n times each time it is told n."""

    def __init__(self, put: Callable[[Any], Any], obj: Any,
                 finish: Optional[Callable[[], Any]] = None,
                 orphaned: Optional[Callable[[], Any]] = None) -> None:
        self._r, self._w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:                                # pragma: no cover - child
            code = 1
            try:
                os.close(self._w)
                while True:
                    got = os.read(self._r, 8)
                    if len(got) < 8:             # the bench died: remove its queue
                        if orphaned is not None:
                            orphaned()
                        break
                    n = struct.unpack("q", got)[0]
                    if n < 0:
                        break
                    for _ in repeat(None, n):
                        put(obj)
                if finish is not None:
                    finish()
                code = 0
            finally:
                os._exit(code)
        os.close(self._r)

    def go(self, n: int) -> None:
        os.write(self._w, struct.pack("q", n))

    def stop(self) -> None:
        try:
            self.go(-1)
        except OSError:
            pass
        os.close(self._w)
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    pid, _ = os.waitpid(self.pid, os.WNOHANG)
                    if pid:
                        break
                    time.sleep(0.01)
                else:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def _loop(producer: _Producer, get: Callable[[], Any]) -> Loop:
    def loop(n: int) -> float:
        t0 = clock()
        producer.go(n)
        for _ in repeat(None, n):
            get()
        return clock() - t0
    return loop


def _transports(stack: contextlib.ExitStack, obj: Any, nbytes: int
                ) -> Tuple[List[Tuple[str, Loop]], List[Result]]:
    """(name, loop) of every queue carrying obj here (the peers that are
    installed), and rows for what cannot be measured."""
    from ... import IPC_PRIVATE, Queue
    loops: List[Tuple[str, Loop]] = []
    missing: List[Result] = []

    def add(name: str, put: Callable[[Any], Any], get: Callable[[], Any],
            finish: Optional[Callable[[], Any]] = None,
            orphaned: Optional[Callable[[], Any]] = None) -> None:
        p = _Producer(put, obj, finish, orphaned)
        stack.callback(p.stop)
        loops.append((name, _loop(p, get)))

    big = nbytes >= MIB
    q = Queue(key=IPC_PRIVATE, create=True, capacity=(3 * nbytes if big else 1 * MIB))
    stack.callback(q.remove)
    add(SK_QUEUE, q.put, q.get, orphaned=q.remove)
    if big:
        q2 = Queue(key=IPC_PRIVATE, create=True)
        stack.callback(q2.remove)
        add(SK_QUEUE_OWN, q2.put, q2.get, orphaned=q2.remove)
    mq = FORK.Queue()

    def flush() -> None:             # the feeder thread must finish before _exit
        mq.close()
        mq.join_thread()
    add(MP_QUEUE, mq.put, mq.get, flush)
    ff = _optional("faster_fifo")
    if ff is not None:
        fq = ff.Queue(max_size_bytes=(3 * nbytes if big else 1 * MIB))
        add(FASTER_FIFO, fq.put, functools.partial(fq.get, timeout=1e6))
    psm = _optional("py_sharedmemory")
    if psm is not None:
        snd, rcv = psm.create_shared_memory_pair(ctx=FORK)
        stack.callback(rcv.close)
        stack.callback(snd.close)

        def release() -> None:        # the producer frees the blocks it made before _exit
            snd.wait_for_all_ack()
            snd.close()
        add(PY_SHM, snd.put, rcv.get, release)
    msg = 16 + len(pickle.dumps(obj, 5)) if not big else nbytes

    def floor(n: int) -> float:
        return float(_core.bench_c_two_memcpy(msg, n) * n)
    loops.append((C_FLOOR, floor))
    return loops, missing


def run(st: Settings) -> Iterator[Result]:
    """Short tuples (objects/s) and a 64 MiB float64 array (GB/s), each put
    by a producer process and got here."""
    with contextlib.ExitStack() as stack:
        loops, missing = _transports(stack, SMALL, 0)
        got = measure_all(loops, st)
        for name, _ in loops:
            per, n = got[name]
            yield result("queue-small", "queue", name, "obj/s", "higher",
                         [1.0 / s for s in per], n, reference=(name == C_FLOOR))
        yield from missing
    if np is None:
        yield not_applicable("queue-array-64MiB", "queue", SK_QUEUE, "GB/s", "higher",
                             "numpy is not installed")
        return
    array = np.arange(ARRAY_BYTES // 8, dtype=np.float64)
    with contextlib.ExitStack() as stack:
        loops, missing = _transports(stack, array, ARRAY_BYTES)
        got = measure_all(loops, st)
        for name, _ in loops:
            per, n = got[name]
            yield result("queue-array-64MiB", "queue", name, "GB/s", "higher",
                         [ARRAY_BYTES / s / 1e9 for s in per], n,
                         reference=(name == C_FLOOR))
        yield from missing
