"""Event: SPEC.md "RWLock and Event" (the Event part) and "Opening and
creating", across threads and processes (fork and spawn)."""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable, List, Optional

import pytest

import sysvkit
from sysvkit import IPC_PRIVATE, Event, RemovedError
from sysvkit import lowlevel as ll

METHODS = ["fork", "spawn"]


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


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %s s" % timeout
        time.sleep(0.005)


def waiters(ev: Event) -> int:
    """How many processes wait for the event to be set (GETZCNT)."""
    return ll.semctl(ev.id, 0, ll.GETZCNT)  # type: ignore[no-any-return]


class Waiter(threading.Thread):
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


@pytest.fixture
def ev(ipc: Any) -> Event:
    return ipc.new(Event, *ipc.path())


# -- opening and creating -----------------------------------------------------------
def test_clear_when_created_and_opens_the_same(ipc: Any) -> None:
    path, proj = ipc.path()
    a = ipc.new(Event, path, proj)
    assert a.key == sysvkit.ftok(path, proj)
    assert a.is_set() is False
    a.set()
    b = Event(path, proj)                      # opens it; does not clear it
    assert b.id == a.id and b.is_set()
    assert Event(key=a.key).id == a.id
    info = a.stat()
    assert (info.key, info.id, info.count, info.mode) == (a.key, a.id, 1, 0o600)
    c = ipc.new(Event, key=IPC_PRIVATE, mode=0o640)
    assert c.id != a.id and c.stat().mode == 0o640 and not c.is_set()
    with pytest.raises(TypeError):
        Event()
    with pytest.raises(ValueError, match="mode"):
        Event(key=IPC_PRIVATE, mode=-1)


CREATE_CHILD = """
    import sysvkit
    path, proj, q = ARGS
    ev = sysvkit.Event(path, proj)
    q.put((ev.id, ev.is_set(), ev.wait(0)))
"""


@pytest.mark.parametrize("method", METHODS)
def test_racing_creators_see_it_clear(method: str, ipc: Any) -> None:
    # Six processes open-or-create the same event at once: one event, and
    # none of them ever sees it set before it was cleared at creation.
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
    got = [q.get() for _ in procs]
    assert len({g[0] for g in got}) == 1
    assert all(g[1:] == (False, False) for g in got)


def test_like_threading_event(ev: Event) -> None:
    assert not ev.is_set()
    assert ev.wait(0) is False
    t0 = time.monotonic()
    assert ev.wait(0.2) is False
    assert 0.15 <= time.monotonic() - t0 < 3
    ev.set()
    assert ev.is_set() and ev.wait() is True and ev.wait(0) is True
    ev.set()                                   # idempotent
    assert ev.is_set()
    ev.clear()
    ev.clear()
    assert not ev.is_set() and ev.wait(timeout=0.01) is False


@pytest.mark.parametrize("timeout, exc", [
    (-1, ValueError), (-0.5, ValueError), (math.nan, ValueError), ("1", TypeError),
    (True, TypeError),
])
def test_bad_timeouts(ev: Event, timeout: Any, exc: Any) -> None:
    with pytest.raises(exc, match="timeout"):
        ev.wait(timeout)


def test_pickles_by_id_and_context_manager_closes(ev: Event) -> None:
    other = pickle.loads(pickle.dumps(ev))
    assert type(other) is Event and other.id == ev.id
    assert Event.from_id(ev.id).id == ev.id
    with Event.from_id(ev.id) as handle:
        handle.set()
    assert handle.closed and ev.is_set()
    for call in (handle.set, handle.clear, handle.is_set, handle.wait):
        with pytest.raises(ValueError, match="closed"):
            call()
    assert "Event" in repr(ev) and str(ev.id) in repr(ev)
    assert Event.__doc__ and "Error" in Event.__doc__
    for meth in (Event.set, Event.clear, Event.is_set, Event.wait):
        assert meth.__doc__
    assert not hasattr(ev, "acquire") and not hasattr(ev, "release")


# -- across processes ---------------------------------------------------------------
WAIT_CHILD = """
    ev, q = ARGS
    q.put(ev.wait(30))
"""


@pytest.mark.parametrize("method", METHODS)
def test_every_waiting_process_wakes_on_set(method: str, ev: Event) -> None:
    n = 5
    q = multiprocessing.get_context(method).SimpleQueue()
    procs = [start(method, WAIT_CHILD, ev, q) for _ in range(n)]
    try:
        wait_for(lambda: waiters(ev) == n, 30)
        t0 = time.monotonic()
        ev.set()
        ev.clear()              # at once: every waiter was woken by the set()
        got = [q.get() for _ in range(n)]
        assert time.monotonic() - t0 < 5
        join_all(procs)
    finally:
        for p in procs:
            p.kill()
    assert got == [True] * n
    assert not ev.is_set()


@pytest.mark.parametrize("method", METHODS)
def test_set_in_another_process(method: str, ev: Event) -> None:
    w = Waiter(lambda: ev.wait(30))
    w.start()
    wait_for(lambda: waiters(ev) == 1)
    join_all([start(method, "ev, = ARGS\nev.set()\n", ev)])
    w.join(5)
    assert w.result is True and ev.is_set()        # stays set after the setter exits
    join_all([start(method, "ev, = ARGS\nev.clear()\n", ev)])
    assert not ev.is_set()


@pytest.mark.parametrize("method", METHODS)
def test_a_killed_waiter_changes_nothing(method: str, ev: Event) -> None:
    proc = start(method, "ev, = ARGS\nev.wait()\n", ev)
    wait_for(lambda: waiters(ev) == 1, 30)
    proc.kill()
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    assert waiters(ev) == 0 and not ev.is_set()
    ev.set()
    assert ev.wait(0)


def test_many_threads_wake(ev: Event) -> None:
    ws = [Waiter(lambda: ev.wait(30)) for _ in range(8)]
    for w in ws:
        w.start()
    wait_for(lambda: waiters(ev) == 8)
    ev.set()
    for w in ws:
        w.join(5)
    assert [w.result for w in ws] == [True] * 8


# -- signals and removal -------------------------------------------------------------
def test_ctrl_c_interrupts_wait(ev: Event) -> None:
    code = """
        import sys, sysvkit
        ev = sysvkit.Event.from_id(int(sys.argv[1]))
        print("ready", flush=True)
        try:
            ev.wait()
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
            sys.exit(0)
        sys.exit(3)
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(ev.id)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        wait_for(lambda: waiters(ev) == 1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "KeyboardInterrupt"
        assert time.monotonic() - t0 < 0.5
        proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0 and not ev.is_set()


def test_signals_run_and_do_not_extend_the_timeout(ev: Event) -> None:
    calls: List[int] = []
    old = signal.signal(signal.SIGALRM, lambda *a: calls.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.03, 0.03)
        t0 = time.monotonic()
        assert ev.wait(0.4) is False
        elapsed = time.monotonic() - t0
        def later() -> None:
            time.sleep(0.3)
            ev.set()

        w = Waiter(later)
        w.start()
        assert ev.wait(10) is True
        w.join(5)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(calls) >= 3 and 0.35 <= elapsed < 3


def test_removed_by_another_process_wakes_waiters(ev: Event, run_py: Any) -> None:
    ws = [Waiter(ev.wait), Waiter(lambda: ev.wait(30))]
    for w in ws:
        w.start()
    wait_for(lambda: waiters(ev) == 2)
    run_py("""
        import sys, sysvkit
        sysvkit.Event.from_id(int(sys.argv[1])).remove()
    """, str(ev.id))
    for w in ws:
        w.join(5)
        assert not w.is_alive() and isinstance(w.error, RemovedError)
    for call in (ev.set, ev.clear, ev.is_set, ev.wait, ev.stat, ev.remove):
        with pytest.raises(RemovedError):
            call()
    with pytest.raises(RemovedError):
        Event.from_id(ev.id)


def test_no_leaks(ev: Event, rss_flat: Callable[..., int]) -> None:
    def cycle() -> None:
        ev.set()
        ev.wait(0)
        ev.clear()
        ev.wait(0)
        ev.is_set()

    rss_flat(cycle, times=30_000)


def test_other_user_gets_permission_error(ev: Event, run_py: Any) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a child as another user")
    proc = run_py("""
        import os, sys, sysvkit
        os.setgid(65534); os.setuid(65534)
        for attempt in (lambda: sysvkit.Event(key=int(sys.argv[1])),
                        lambda: sysvkit.Event.from_id(int(sys.argv[2]))):
            try:
                attempt()
            except PermissionError:
                print("PermissionError")
            else:
                print("ACCESS GRANTED")
    """, str(ev.key), str(ev.id))
    assert proc.stdout.split() == ["PermissionError", "PermissionError"]
    assert not ev.is_set()


def test_waiting_sleeps_in_the_kernel(ev: Event) -> None:
    cpu0, t0 = time.process_time(), time.monotonic()
    assert ev.wait(1) is False
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    assert wall >= 0.9 and cpu < 0.1 * wall
