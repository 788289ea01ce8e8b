"""The bench's runner: settings, rows, measuring, statistics, child processes.

A child process serves the other end of a transport (or reads shared
memory) on commands from a control pipe, and cleans up if this one dies.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from itertools import repeat
from typing import (Any, Callable, Dict, Iterator, List, Optional, Protocol, Sequence, Set,
                    Tuple, TypeVar)

__all__ = ["Settings", "Result", "Loop", "measure", "measure_all", "result", "latency",
           "not_applicable", "pair_loop", "cycle_loop", "Child", "ChildDied", "child",
           "opened", "served_channels", "armed", "on_sigchld", "pinned", "PIN_MODES",
           "KIB", "MIB", "clock", "FORK", "nothing"]

clock = time.perf_counter
FORK = multiprocessing.get_context("fork")
KIB = 1024
MIB = 1024 * 1024

# -- settings and results -------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How long and how often to measure."""

    mode: str              # "quick" or "full"
    budget: float          # seconds per sample
    repeats: int           # samples per figure (after a warm-up)
    bulk_bytes: int        # size of the shared memory copy
    idle_seconds: float    # length of one idle wait
    idle_repeats: int
    wake_samples: int      # wake-ups measured per transport

    @classmethod
    def for_mode(cls, quick: bool, repeats: Optional[int] = None,
                 bulk_mib: Optional[int] = None) -> "Settings":
        if quick:
            s = cls("quick", 0.025, 5, 64 * MIB, 0.3, 1, 40)
        else:
            s = cls("full", 0.1, 7, 256 * MIB, 1.0, 3, 200)
        if repeats is not None:
            s = cls(s.mode, s.budget, repeats, s.bulk_bytes, s.idle_seconds,
                    min(s.idle_repeats, repeats), max(repeats, s.wake_samples))
        if bulk_mib is not None:
            s = cls(s.mode, s.budget, s.repeats, bulk_mib * MIB, s.idle_seconds,
                    s.idle_repeats, s.wake_samples)
        return s


@dataclass
class Result:
    """One row: a workload measured on one transport."""

    workload: str
    group: str
    transport: str
    unit: str
    better: str                          # "lower" or "higher"
    value: Optional[float] = None        # the median; None if not applicable
    spread: Optional[Dict[str, float]] = None
    samples: int = 0
    iterations: int = 0                  # iterations per sample
    reference: bool = False
    extra: Dict[str, float] = field(default_factory=dict)
    note: str = ""
    vs_best: Optional[float] = None
    vs_sysv_ipc: Optional[float] = None

    @property
    def applicable(self) -> bool:
        return self.value is not None

    def as_dict(self) -> Dict[str, Any]:
        return {
            "workload": self.workload, "group": self.group, "transport": self.transport,
            "applicable": self.applicable, "value": self.value, "unit": self.unit,
            "better": self.better, "spread": self.spread, "samples": self.samples,
            "iterations": self.iterations, "reference": self.reference,
            "vs_best": self.vs_best, "vs_sysv_ipc": self.vs_sysv_ipc,
            "extra": self.extra, "note": self.note,
        }


def _summarise(values: Sequence[float]) -> Tuple[float, Dict[str, float]]:
    """The median and the spread (min, quartiles, max) of some samples."""
    vals = sorted(values)
    med = statistics.median(vals)
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1 = q3 = vals[0]
    return med, {"min": vals[0], "q1": q1, "q3": q3, "max": vals[-1]}


def result(workload: str, group: str, transport: str, unit: str, better: str,
           values: Sequence[float], iterations: int, *, reference: bool = False,
           extra: Optional[Dict[str, float]] = None) -> Result:
    """A row from samples: their median and spread."""
    med, spread = _summarise(values)
    return Result(workload, group, transport, unit, better, med, spread, len(values),
                  iterations, reference, dict(extra or {}))


def latency(workload: str, group: str, transport: str, per_op: Sequence[float],
            iterations: int, reference: bool = False) -> Result:
    """A latency row in microseconds from seconds per operation."""
    return result(workload, group, transport, "us", "lower", [s * 1e6 for s in per_op],
                  iterations, reference=reference)


def not_applicable(workload: str, group: str, transport: str, unit: str, better: str,
                   why: str) -> Result:
    """A row for what cannot be measured here, saying why."""
    return Result(workload, group, transport, unit, better, note=why)


# -- measuring -------------------------------------------------------------------

Loop = Callable[[int], float]   # runs n iterations, returns the seconds taken


def _calibrate(loop: Loop, st: Settings) -> int:
    """The iteration count for which one run of ``loop`` takes ``st.budget``."""
    n = 1
    while True:
        t = loop(n)
        if t >= st.budget / 4 or n >= 1 << 28:
            break
        n *= 8 if t < st.budget / 64 else 2
    return max(1, int(n * st.budget / max(t, 1e-9)))


def measure_all(loops: Sequence[Tuple[str, Loop]],
                st: Settings) -> Dict[str, Tuple[List[float], int]]:
    """Seconds per iteration of each loop: calibrate each to ``st.budget`` per
    sample, run each once as a warm-up, then take ``st.repeats`` rounds of one
    sample per loop, so that every transport sees the same machine (a burst
    of other work hits them all alike).  Returns {name: (samples, n)}."""
    with armed():
        ns = {name: _calibrate(loop, st) for name, loop in loops}
        for name, loop in loops:
            loop(ns[name])
        samples: Dict[str, List[float]] = {name: [] for name, _ in loops}
        for _ in range(st.repeats):
            for name, loop in loops:
                samples[name].append(loop(ns[name]) / ns[name])
    return {name: (samples[name], ns[name]) for name, _ in loops}


def measure(loop: Loop, st: Settings) -> Tuple[List[float], int]:
    """measure_all() of one loop: (per-iteration seconds of each sample, n)."""
    return measure_all([("", loop)], st)[""]


def pair_loop(send: Callable[[Any], Any], recv: Callable[[], Any], data: Any) -> Loop:
    def loop(n: int) -> float:
        t0 = clock()
        for _ in repeat(None, n):
            send(data)
            recv()
        return clock() - t0
    return loop


def cycle_loop(first: Callable[[], Any], second: Callable[[], Any]) -> Loop:
    def loop(n: int) -> float:
        t0 = clock()
        for _ in repeat(None, n):
            first()
            second()
        return clock() - t0
    return loop


# -- child processes -------------------------------------------------------------


class Served(Protocol):
    """What a child serves at its end of a message transport (see
    transports.base.Channel, which every message transport derives from)."""

    def ends(self, side: int, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]: ...

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]: ...

    def in_child(self) -> None: ...

    def close(self) -> None: ...


def _quiet_exit(code: int) -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _child_main(ctrl: Any, parent_end: Any, channel: Optional[Served],
                serve: Optional[Callable[[], Loop]], st: Settings, lifeline: int,
                orphan_cleanup: Callable[[], Any]) -> None:
    """The other process: obeys commands from the control pipe until told to
    quit, the pipe closes, or its objects are removed; if the parent dies
    (its lifeline closes), removes what it serves and exits.  ``serve``
    makes (on first use, in the child) the loop that ("loop", n) runs."""
    parent_end.close()   # so that the parent's death closes the control pipe
    for fd in _LIFELINES:  # only the parent may hold the write ends
        with contextlib.suppress(OSError):
            os.close(fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if _CHILD_CPUS:
        os.sched_setaffinity(0, _CHILD_CPUS)
    _watch_lifeline(lifeline, orphan_cleanup)
    code = 0
    orphaned = False     # the control pipe closed: the parent is gone
    own_loop: Optional[Loop] = None
    try:
        if channel is not None:
            channel.in_child()
        while True:
            try:
                cmd = ctrl.recv()
            except EOFError:
                orphaned = True
                break
            op = cmd[0]
            if op == "quit":
                break
            if op == "echo":            # ("echo", n, size)
                assert channel is not None
                send, recv = channel.ends(1, cmd[2])
                for _ in repeat(None, cmd[1]):
                    send(recv())
            elif op == "send":          # ("send", n, size)
                assert channel is not None
                send, _ = channel.ends(1, cmd[2])
                data = b"x" * cmd[2]
                for _ in repeat(None, cmd[1]):
                    send(data)
            elif op == "wake":          # ("wake", k, [timeout, ...]): take turns
                assert channel is not None
                waits = [channel.waiter(1, 16, t) for t in cmd[2]]
                times = []
                for i in range(cmd[1]):
                    wait = waits[i % len(waits)]
                    ctrl.send(None)     # about to block
                    wait()
                    times.append(clock())
                ctrl.send(times)
            elif op == "loop":          # ("loop", n): seconds for n iterations
                assert serve is not None
                if own_loop is None:
                    own_loop = serve()
                ctrl.send(own_loop(cmd[1]))
    except (EOFError, BrokenPipeError, ConnectionError):
        orphaned = True
        code = 1
    except (KeyboardInterrupt, FileNotFoundError):
        code = 1   # told to stop, or the objects were removed: quietly
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 2
    if orphaned:
        with contextlib.suppress(BaseException):
            orphan_cleanup()
    _quiet_exit(code)


class ChildDied(RuntimeError):
    """A benchmark child process exited while it was still needed."""


_WATCHED: List["Child"] = []
_ARMED = [0]    # > 0 while measuring: only then does a child's death raise


@contextlib.contextmanager
def armed() -> Iterator[None]:
    """While measuring, the death of a child raises ChildDied here (never
    while cleaning up, where it would cut the cleanup short)."""
    _ARMED[0] += 1
    try:
        on_sigchld(signal.SIGCHLD, None)    # one that died while disarmed
        yield
    finally:
        _ARMED[0] -= 1


def on_sigchld(signo: int, frame: Any) -> None:
    """Turn the unexpected death of a child into an exception here, so a
    receive that waits for it cannot wait for ever."""
    if not _ARMED[0]:
        return
    for child in list(_WATCHED):
        if not child.proc.is_alive():
            _WATCHED.remove(child)
            raise ChildDied("a benchmark child process exited unexpectedly (status %s)"
                            % child.proc.exitcode)


# --pin: where the processes run.  Left to the scheduler ("none"), a
# ping-pong pair sometimes shares a CPU and sometimes not, and on a virtual
# machine, where waking another CPU is slow, its figure jumps between the two
# from one transport to the next.  "same" (the default: every process on one
# CPU) and "split" (this process on one CPU, its partners on another) give
# steady figures for each case, the same for every transport.
PIN_MODES = ("none", "same", "split")
_CHILD_CPUS: Set[int] = set()


@contextlib.contextmanager
def pinned(mode: str) -> Iterator[str]:
    """Pin this process and (through _CHILD_CPUS) its children; yields the
    mode in force ("none" if it cannot be done here)."""
    getaff = getattr(os, "sched_getaffinity", None)
    setaff = getattr(os, "sched_setaffinity", None)
    if mode == "none" or getaff is None or setaff is None:
        yield "none"
        return
    allowed = sorted(getaff(0))
    if mode == "split" and len(allowed) < 2:
        yield "none"
        return
    setaff(0, {allowed[0]})
    _CHILD_CPUS.clear()
    _CHILD_CPUS.add(allowed[1] if mode == "split" else allowed[0])
    try:
        yield mode
    finally:
        _CHILD_CPUS.clear()
        setaff(0, set(allowed))


# The write ends of the children's lifelines, held by this process only: a
# child that reads EOF on its lifeline knows this process died (even by
# SIGKILL, where no cleanup here could run), removes the objects it serves and
# exits, so that nothing waits for ever on a queue or semaphore.
_LIFELINES: List[int] = []


def _watch_lifeline(fd: int, cleanup: Callable[[], Any]) -> None:
    """In a child: wait (in a thread) for the parent's end to close."""
    import threading

    def watch() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        try:
            cleanup()
        except BaseException:
            pass
        os._exit(3)
    threading.Thread(target=watch, name="sysvkit-bench-lifeline", daemon=True).start()


class Child:
    """A forked process driven through a control pipe; always reaped."""

    def __init__(self, st: Settings, channel: Optional[Served] = None,
                 serve: Optional[Callable[[], Loop]] = None,
                 orphan_cleanup: Optional[Callable[[], Any]] = None) -> None:
        if orphan_cleanup is None:
            orphan_cleanup = channel.close if channel is not None else nothing
        self.ctrl, child_end = FORK.Pipe()
        life_r, self.lifeline = os.pipe()
        _LIFELINES.append(self.lifeline)
        try:
            self.proc = FORK.Process(
                target=_child_main, daemon=True,
                args=(child_end, self.ctrl, channel, serve, st, life_r, orphan_cleanup))
            self.proc.start()
        except BaseException:
            _LIFELINES.remove(self.lifeline)
            os.close(self.lifeline)
            self.ctrl.close()
            raise
        finally:
            child_end.close()
            os.close(life_r)
        _WATCHED.append(self)

    def send(self, cmd: Tuple[Any, ...]) -> None:
        self.ctrl.send(cmd)

    def recv(self, timeout: float = 120.0) -> Any:
        if not self.ctrl.poll(timeout):
            raise RuntimeError("benchmark child process did not answer")
        return self.ctrl.recv()

    def stop(self) -> None:
        if self in _WATCHED:
            _WATCHED.remove(self)
        with contextlib.suppress(OSError, ValueError):
            self.ctrl.send(("quit",))
        self.proc.join(0.5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.ctrl.close()
        self.proc.close()
        if self.lifeline in _LIFELINES:
            _LIFELINES.remove(self.lifeline)
            os.close(self.lifeline)   # the child is gone: nothing reads it


@contextlib.contextmanager
def child(st: Settings, channel: Optional[Served] = None,
          serve: Optional[Callable[[], Loop]] = None,
          orphan_cleanup: Optional[Callable[[], Any]] = None) -> Iterator[Child]:
    """A Child for the length of a with block: stopped and reaped at its end."""
    child = Child(st, channel, serve, orphan_cleanup)
    try:
        yield child
    finally:
        child.stop()


S = TypeVar("S", bound=Served)


@contextlib.contextmanager
def opened(factory: Callable[[], S]) -> Iterator[S]:
    """A transport made by ``factory``, closed on the way out."""
    ch = factory()
    try:
        yield ch
    finally:
        ch.close()


def nothing() -> None:
    """A cleanup with nothing to do."""


@contextlib.contextmanager
def served_channels(st: Settings, factories: Sequence[Tuple[str, Callable[[], S]]]
                    ) -> Iterator[List[Tuple[str, S, Child]]]:
    """Every channel opened, each with a child process at its other end."""
    with contextlib.ExitStack() as stack:
        out = []
        for name, factory in factories:
            ch = stack.enter_context(opened(factory))
            out.append((name, ch, stack.enter_context(child(st, ch))))
        yield out
