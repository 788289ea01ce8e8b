"""Workload "rwlock": in one process, take then give back a read hold of an RWLock (latency per pair), beside a Lock pair and the C loop of the same semop calls."""

from __future__ import annotations

import contextlib
import functools
from itertools import repeat
from typing import Any, Iterator, List, Tuple

from ... import _core
from ..runner import Loop, Result, Settings, clock, cycle_loop, latency, measure_all

TITLE = "in-process RWLock read hold latency"

SK_READ = "sysvkit.RWLock read"
SK_READ_WITH = "sysvkit.RWLock with read()"
SK_LOCK = "sysvkit.Lock"
C_READ = "C RWLock read pair (reference)"


def _with_loop(rw: Any) -> Loop:
    read = rw.read

    def loop(n: int) -> float:
        t0 = clock()
        for _ in repeat(None, n):
            with read():
                pass
        return clock() - t0
    return loop


def run(st: Settings) -> Iterator[Result]:
    """In one process: acquire_read then release_read (no writer about)."""
    from ... import IPC_PRIVATE, Lock, RWLock
    w, g = "rwlock-read-pair", "rwlock"
    with contextlib.ExitStack() as stack:
        rw = RWLock(key=IPC_PRIVATE)
        stack.callback(rw.remove)
        lock = Lock(key=IPC_PRIVATE)
        stack.callback(lock.remove)
        loops: List[Tuple[str, Loop, bool]] = [
            (SK_READ, cycle_loop(rw.acquire_read, rw.release_read), False),
            (SK_READ_WITH, _with_loop(rw), False),
            (SK_LOCK, cycle_loop(lock.acquire, lock.release), False),
            (C_READ, functools.partial(_core.bench_c_rwlock_read_pair, rw.id), True),
        ]
        got = measure_all([(name, loop) for name, loop, _ in loops], st)
    for name, _, reference in loops:
        per, n = got[name]
        yield latency(w, g, name, per, n, reference=reference)
