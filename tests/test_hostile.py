"""Hostile input: hypothesis throws arbitrary values at every public
function and method.  Only TypeError, ValueError, OverflowError or an
OSError subclass may come out (plus the documented exceptions of a few
methods); never a crash, never a hang.  Each campaign runs in a subprocess
so that a crash shows up as death by a signal.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

FUZZ_PRELUDE = r'''
import math, os, signal, sys, tempfile
from hypothesis import HealthCheck, given, settings, strategies as st
import sysvkit
from sysvkit import lowlevel as ll

EXAMPLES = int(sys.argv[1])
ALLOWED = (TypeError, ValueError, OverflowError, OSError)
MADE = []          # every kernel object this campaign made: removed at exit


class Interrupted(Exception):
    """A valid blocking wait, cut short by the guard's alarm."""


def _alarm(signum, frame):
    raise Interrupted()


signal.signal(signal.SIGALRM, _alarm)


def call(fn, *args, also=(), **kwargs):
    """Call fn under a 0.05 s alarm; allowed exceptions are fine."""
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        return fn(*args, **kwargs)
    except ALLOWED + tuple(also) + (Interrupted,):
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def track(obj):
    if obj is not None:
        MADE.append(obj)
    return obj


def track_private(obj):
    """Track an object opened by an arbitrary key only if that key was
    IPC_PRIVATE (which always creates): never remove what we merely opened."""
    if obj is not None and obj.key == 0:
        MADE.append(obj)
    return obj


def cleanup():
    for obj in MADE:
        for meth in ("close", "remove"):
            try:
                getattr(obj, meth)()
            except Exception:
                pass


anything = st.one_of(
    st.none(), st.booleans(), st.integers(-2**31 - 5, 2**32 + 5),
    st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.binary(max_size=32), st.lists(st.integers(-3, 3), max_size=4),
    st.tuples(st.integers(-70000, 70000), st.integers(-70000, 70000)),
    st.just(b"\0"), st.just(float("nan")), st.just(-1), st.just(0),
)
small = st.one_of(anything, st.integers(-3, 10), st.floats(0, 0.01))
cfg = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
               suppress_health_check=list(HealthCheck))
TMP = tempfile.mkdtemp()
FILE = os.path.join(TMP, "f")
open(FILE, "w").close()
'''

CAMPAIGNS = {
    "keys": r'''
@cfg
@given(st.one_of(anything, st.just(FILE), st.just(FILE.encode())), anything)
def keys(path, proj):
    call(sysvkit.ftok, path, proj)
    call(sysvkit.explain_key, proj)
    call(ll.ftok, path, proj)
keys()
''',
    "shared_memory": r'''
@cfg
@given(small, small, anything, small, small, anything)
def shm(size, mode, readonly, a, b, data):
    m = track(call(sysvkit.SharedMemory, key=sysvkit.IPC_PRIVATE, create=True, size=size,
                   mode=mode))
    track_private(call(sysvkit.SharedMemory, key=a, size=size, readonly=readonly))
    call(sysvkit.SharedMemory.from_id, a)
    if m is None:
        return
    call(m.read, a, b)
    call(m.write, data, a)
    call(m.read, a)
    call(lambda: m.buf[a:b])
    call(m.stat)
    call(m.close, also=(BufferError,))
    call(m.read, a, b)
    call(m.write, data, b)
    call(m.remove)
shm()
''',
    "message_queue": r'''
@cfg
@given(small, anything, small, small, anything, small, anything, anything)
def queue(mode, data, mtype, timeout, block, max_size, except_type, truncate):
    q = track(call(sysvkit.MessageQueue, key=sysvkit.IPC_PRIVATE, create=True, mode=mode))
    track_private(call(sysvkit.MessageQueue, key=mtype, create=False))
    call(sysvkit.MessageQueue.from_id, mtype)
    if q is None:
        return
    call(q.send, data, mtype, block=block, timeout=timeout)
    call(q.send, b"ok", 1)
    call(q.receive, mtype, block=block, timeout=timeout, except_type=except_type,
         max_size=max_size, truncate=truncate)
    call(q.receive, block=False, max_size=max_size, truncate=truncate)
    call(setattr, q, "max_bytes", max_size)
    call(len, q)
    call(q.stat)
    call(q.remove)
    call(q.send, data, mtype)
queue()
''',
    "semaphores": r'''
@cfg
@given(small, anything, small, small, small, anything, anything, small)
def sems(count, initial, i, delta, timeout, block, undo, n):
    s = track(call(sysvkit.SemaphoreSet, key=sysvkit.IPC_PRIVATE, create=True, count=count,
                   initial=initial, undo=undo))
    call(sysvkit.SemaphoreSet.from_id, i)
    sem = track(call(sysvkit.Semaphore, key=sysvkit.IPC_PRIVATE, create=True,
                     initial=initial, undo=undo))
    lock = track(call(sysvkit.Lock, key=sysvkit.IPC_PRIVATE))
    if s is not None:
        call(s.op, [(i, delta)], block=block, timeout=timeout, undo=undo)
        call(s.op, initial, block=False)
        call(s.set_values, initial)
        call(lambda: s[i], also=(IndexError,))
        call(s.values)
        call(s.stat)
    if sem is not None:
        call(sem.acquire, block, timeout)
        call(sem.release, n)
        call(setattr, sem, "value", n)
        call(sem.wait_zero, timeout)
        for attr in ("value", "waiting", "waiting_for_zero", "last_pid"):
            call(getattr, sem, attr)
    if lock is not None:
        call(lock.acquire, block, timeout)
        call(lock.release, also=(RuntimeError,))
        call(lock.release, also=(RuntimeError,))
        call(lock.locked)
    for obj in (s, sem, lock):
        if obj is not None:
            call(obj.remove)
    if s is not None:
        call(s.op, [(0, 1)], block=False)
sems()
''',
    "lowlevel": r'''
q = track(sysvkit.MessageQueue(key=sysvkit.IPC_PRIVATE))
s = track(sysvkit.SemaphoreSet(key=sysvkit.IPC_PRIVATE, count=2))
m = track(sysvkit.SharedMemory(key=sysvkit.IPC_PRIVATE, size=4096))
SAFE_CMDS = st.sampled_from([ll.IPC_STAT, ll.IPC_INFO, ll.IPC_SET, 12345, -1])

@cfg
@given(anything, anything, small, SAFE_CMDS, anything)
def low(a, b, c, cmd, arg):
    call(ll.msgsnd, q.id, a, b, ll.IPC_NOWAIT)
    call(ll.msgrcv, q.id, c, b, ll.IPC_NOWAIT)
    call(ll.msgrcv, q.id, 64, 0, timeout=c)
    call(ll.semop, s.id, [(a, b, ll.IPC_NOWAIT)])
    call(ll.semop, s.id, a, timeout=c)
    call(ll.semctl, s.id, 0, ll.SETALL, arg)
    call(ll.semctl, s.id, 0, cmd, arg)
    call(ll.msgctl, q.id, cmd, arg)
    call(ll.shmctl, m.id, cmd, arg)
    att = call(ll.shmat, m.id, b)
    if att is not None:
        call(att.read, a, b)
        call(att.write, a, b)
        call(ll.shmdt, att)
    # IPC_PRIVATE creates whatever the flags say: remove what was made.
    for get, args, mine, rm in (
            (ll.msgget, (a, ll.IPC_NOWAIT), q.id, lambda i: ll.msgctl(i, ll.IPC_RMID)),
            (ll.semget, (a, 1, 0), s.id, lambda i: ll.semctl(i, 0, ll.IPC_RMID)),
            (ll.shmget, (a, 4096, 0), m.id, lambda i: ll.shmctl(i, ll.IPC_RMID))):
        ident = call(get, *args)
        if ident is not None and ident != mine and a in (0, False):
            rm(ident)
low()
''',
}


@pytest.mark.parametrize("campaign", sorted(CAMPAIGNS))
def test_hostile_input_never_crashes(run_py: Callable[..., Any], campaign: str) -> None:
    code = FUZZ_PRELUDE + "\ntry:\n" + "\n".join(
        "    " + line for line in CAMPAIGNS[campaign].strip().splitlines()
    ) + "\nfinally:\n    cleanup()\nprint('done')\n"
    proc = run_py(code, "120", timeout=240)
    assert proc.stdout.strip().endswith("done")
