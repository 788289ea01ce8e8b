"""Workloads "mutex-pair" and "mutex-handoff": a Mutex beside the other locks, in one process and contended by two processes."""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Callable, Dict, Iterator, List, Tuple

from ... import _core
from ..runner import FORK, Loop, Result, Settings, clock, cycle_loop, latency, measure_all

TITLE = "Mutex: acquire+release in one process, and two processes contending"

SK_MUTEX = "sysvkit.Mutex"
SK_LOCK = "sysvkit.Lock"
MP_LOCK = "multiprocessing.Lock"
C_MUTEX = "C robust mutex pair (reference)"
C_LOCK = "C semop pair (reference)"
POSIX_SEM = "posix_ipc.Semaphore"

# In these rows the other programs' locks are compared with the Mutex (the C semop
# pair with the Lock whose calls it repeats).
COUNTERPARTS = {MP_LOCK: SK_MUTEX, POSIX_SEM: SK_MUTEX, C_MUTEX: SK_MUTEX,
                C_LOCK: SK_LOCK}


def _locks(stack: contextlib.ExitStack) -> List[Tuple[str, Any]]:
    """(name, lock object) of every lock compared here; all usable after fork."""
    from ... import IPC_PRIVATE, Lock, Mutex
    mutex = Mutex(key=IPC_PRIVATE)
    stack.callback(mutex.remove)
    lock = Lock(key=IPC_PRIVATE)
    stack.callback(lock.remove)
    out: List[Tuple[str, Any]] = [(SK_MUTEX, mutex), (SK_LOCK, lock), (MP_LOCK, FORK.Lock())]
    try:
        import posix_ipc  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        sem = posix_ipc.Semaphore(None, posix_ipc.O_CREX, initial_value=1)
        stack.callback(sem.unlink)
        out.append((POSIX_SEM, sem))
    return out


def _pair_loops(locks: List[Tuple[str, Any]]) -> List[Tuple[str, Loop, bool]]:
    loops: List[Tuple[str, Loop, bool]] = []
    for name, obj in locks:
        loops.append((name, cycle_loop(obj.acquire, obj.release), False))
        if name == SK_MUTEX:
            loops.append((C_MUTEX, functools.partial(_core.bench_c_mutex_pair, obj), True))
        elif name == SK_LOCK:
            loops.append((C_LOCK, functools.partial(_core.bench_c_lock_pair, obj.id), True))
    return loops


def _contended(acquire: Callable[[], Any], release: Callable[[], Any], n: int) -> float:
    """Seconds per hold while this process and a forked twin each take the
    lock n times as fast as they can (each hold is handed over often)."""
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    child = os.fork()
    if child == 0:                                   # pragma: no cover - child
        code = 1
        try:
            os.close(r)
            os.close(go_w)
            os.write(w, b"r")
            os.read(go_r, 1)
            for _ in range(n):
                acquire()
                release()
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    os.close(go_r)
    try:
        os.read(r, 1)
        t0 = clock()
        os.write(go_w, b"g")
        for _ in range(n):
            acquire()
            release()
        _, status = os.waitpid(child, 0)
        elapsed = clock() - t0
    finally:
        os.close(r)
        os.close(go_w)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("the contending process failed")
    return elapsed / (2 * n)


def run(st: Settings) -> Iterator[Result]:
    """Acquire+release pairs in one process beside C floors; then the same
    locks contended by two processes (time per hold)."""
    with contextlib.ExitStack() as stack:
        locks = _locks(stack)
        loops = _pair_loops(locks)
        got = measure_all([(name, loop) for name, loop, _ in loops], st)
        for name, _, reference in loops:
            per, n = got[name]
            yield latency("mutex-pair", "mutex", name, per, n, reference=reference)
        n = max(2000, int(st.budget * 100_000))
        samples: Dict[str, List[float]] = {name: [] for name, _ in locks}
        for _ in range(max(3, st.repeats // 2)):
            for name, obj in locks:
                samples[name].append(_contended(obj.acquire, obj.release, n))
        for name, _ in locks:
            yield latency("mutex-handoff", "mutex", name, samples[name], 2 * n)
