"""``python -m sysvkit bench``: how fast is each IPC mechanism on this machine?

Measures sysvkit's MessageQueue, Semaphore, Lock and SharedMemory beside
``os.pipe``, Unix domain sockets (stream and datagram), TCP on 127.0.0.1 and,
where installed, ``sysv_ipc`` and ``multiprocessing`` (Queue, Lock,
shared_memory), plus reference loops that make the same system calls from C.

Workload groups (``--only GROUP``, repeatable):

- ``pair``: in one process, send then receive one message of 16 B, 1 KiB,
  64 KiB (latency per pair).  A size over the system's ``msgmax`` is marked
  not applicable for System V queues.
- ``sem``: in one process, acquire then release (latency per pair).
- ``roundtrip``: ping-pong with another process, 16 B and 4 KiB.
- ``throughput``: another process sends fixed-size messages (16 B, 4 KiB)
  as fast as it can; messages/s and MB/s received.
- ``shm``: fill a large shared memory segment from a numpy array (or a
  bytearray without numpy), beside the same copy into a private bytearray
  (the ceiling), and copy it out in another process (GB/s).
- ``idle``: CPU used while a receive/acquire waits with a timeout.
- ``wakeup``: time from a send (release) in one process to the return of a
  blocked receive (acquire) in another, without and with a timeout.

Every figure is the median of several samples after a warm-up; each sample
runs an iteration count calibrated to a time budget, so fast and slow
transports are measured with the same care.  The spread (min/max, quartiles)
is reported too.  Nothing leaves the machine (loopback only), and every
process and kernel object made is removed, also on Ctrl-C or an error.

JSON (``--json``) is one object::

    {"sysvkit": version, "python": ..., "platform": ..., "cpus": n,
     "mode": "quick" | "full", "repeats": n, "budget_seconds": seconds
     per sample, "pinned": "none" | "same" | "split", "limits": {"msgmax": ...,
     "msgmnb": ...}, "optional": {"numpy": bool, "sysv_ipc": bool},
     "results": [{"workload", "group", "transport", "applicable",
                  "value", "unit", "better", "spread": {"min", "q1",
                  "q3", "max"}, "samples", "iterations", "reference",
                  "vs_best", "vs_sysv_ipc", "extra", "note"}, ...],
     "targets": [{"name", "value", "target", "met"}, ...]}

``value`` is the median (``null`` when not applicable, with ``note``
saying why); ``better`` is ``"lower"`` or ``"higher"``; ``vs_best`` is how
many times worse than the best non-reference transport of the same workload
(1.0 is the best); ``vs_sysv_ipc`` (sysvkit rows only) is sysvkit's cost
over sysv_ipc's for the same thing (below 1: sysvkit is faster);
``reference`` marks C loops and private-memory copies, which show a ceiling
and are not candidates for "best".  Units: ``us`` (microseconds per
operation), ``msg/s`` (with ``extra["MB/s"]``), ``GB/s``, ``% CPU`` (of one
core).  ``targets`` are the ratios issue 7 sets for sysvkit, with ``target``
such as ``"<= 1.2"``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import multiprocessing
import os
import platform
import queue as queue_mod
import select
import signal
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from itertools import repeat
from typing import (
    Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple,
)

from . import _core

try:  # optional comparison targets and helpers
    import numpy as _np
except ImportError:  # pragma: no cover - depends on the environment
    _np = None  # type: ignore[assignment]

_sysv_ipc: Any
try:
    _sysv_ipc = importlib.import_module("sysv_ipc")   # untyped: used as Any
except ImportError:  # pragma: no cover - depends on the environment
    _sysv_ipc = None

__all__ = ["add_arguments", "run", "Result", "Settings", "GROUPS"]

_clock = time.perf_counter
_FORK = multiprocessing.get_context("fork")
KIB = 1024
MIB = 1024 * 1024

# Transport names, used in the table, the JSON and the target ratios.
SK_QUEUE = "sysvkit.MessageQueue"
SK_SEM = "sysvkit.Semaphore"
SK_LOCK = "sysvkit.Lock"
SK_SHM = "sysvkit.SharedMemory"
SI_QUEUE = "sysv_ipc.MessageQueue"
SI_SEM = "sysv_ipc.Semaphore"
SI_SHM = "sysv_ipc.SharedMemory"
PIPE = "os.pipe"
UNIX_STREAM = "unix stream socket"
UNIX_DGRAM = "unix datagram socket"
TCP = "tcp 127.0.0.1"
MP_QUEUE = "multiprocessing.Queue"
MP_LOCK = "multiprocessing.Lock"
MP_SHM = "multiprocessing.shared_memory"
C_MSG = "C msgsnd+msgrcv (reference)"
C_SEM = "C semop pair (reference)"
C_SEM_UNDO = "C semop pair, SEM_UNDO (reference)"
C_LOCK = "C lock pair (reference)"
PRIVATE = "private bytearray (reference)"

# What a sysvkit transport is compared with in sysv_ipc.
_SYSV_IPC_TWIN = {SK_QUEUE: SI_QUEUE, SK_SEM: SI_SEM, SK_SHM: SI_SHM}


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


def _result(workload: str, group: str, transport: str, unit: str, better: str,
            values: Sequence[float], iterations: int, *, reference: bool = False,
            extra: Optional[Dict[str, float]] = None) -> Result:
    med, spread = _summarise(values)
    return Result(workload, group, transport, unit, better, med, spread, len(values),
                  iterations, reference, dict(extra or {}))


def _latency(workload: str, group: str, transport: str, per_op: Sequence[float],
             iterations: int, reference: bool = False) -> Result:
    """A latency row in microseconds from seconds per operation."""
    return _result(workload, group, transport, "us", "lower", [s * 1e6 for s in per_op],
                   iterations, reference=reference)


def _not_applicable(workload: str, group: str, transport: str, unit: str, better: str,
                    why: str) -> Result:
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
    with _armed():
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


def _pair_loop(send: Callable[[Any], Any], recv: Callable[[], Any], data: Any) -> Loop:
    def loop(n: int) -> float:
        t0 = _clock()
        for _ in repeat(None, n):
            send(data)
            recv()
        return _clock() - t0
    return loop


def _cycle_loop(first: Callable[[], Any], second: Callable[[], Any]) -> Loop:
    def loop(n: int) -> float:
        t0 = _clock()
        for _ in repeat(None, n):
            first()
            second()
        return _clock() - t0
    return loop


# -- message channels --------------------------------------------------------------
#
# A channel joins two ends, 0 (this process) and 1 (the same process, or a
# forked child).  ends(side, size) gives (send(data), recv() -> bytes) for
# messages of ``size`` bytes; waiter(side, size, timeout) a blocking receive
# with that timeout (None: none).  Messages from end 0 go to end 1 and back.


def _remove_quietly(obj: Any) -> None:
    """Remove a System V object (sysvkit or sysv_ipc) unless already gone
    (a child removes what it serves if this process dies first)."""
    gone: Tuple["type[BaseException]", ...] = (FileNotFoundError,)
    if _sysv_ipc is not None:
        gone += (_sysv_ipc.ExistentialError,)
    with contextlib.suppress(*gone):
        obj.remove()


class Channel:
    name = "channel"

    def unsupported(self, size: int) -> Optional[str]:
        """Why a message of ``size`` bytes cannot be sent, or None."""
        return None

    def ends(self, side: int, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]:
        raise NotImplementedError

    def pair(self, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]:
        """send and receive for an in-process pair (end 0 to end 1)."""
        return self.ends(0, size)[0], self.ends(1, size)[1]

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        if timeout is not None:
            raise NotImplementedError
        return self.ends(side, size)[1]

    def has_timeout(self) -> bool:
        return True

    def in_child(self) -> None:
        """Called in the child right after fork."""

    def close(self) -> None:
        raise NotImplementedError


def _exact(read: Callable[[int], bytes], size: int) -> Callable[[], bytes]:
    """A receive of exactly ``size`` bytes from a byte stream."""
    def recv() -> bytes:
        b = read(size)
        if len(b) == size:
            return b
        parts = [b]
        got = len(b)
        while got < size:
            if not b:
                raise EOFError("the other end closed the stream")
            b = read(size - got)
            parts.append(b)
            got += len(b)
        return b"".join(parts)
    return recv


class SysvkitQueue(Channel):
    name = SK_QUEUE

    def __init__(self) -> None:
        from . import IPC_PRIVATE, MessageQueue, limits
        self.msgmax = limits().msgmax
        self.q = MessageQueue(key=IPC_PRIVATE, create=True)

    def unsupported(self, size: int) -> Optional[str]:
        if size > self.msgmax:
            return "message larger than msgmax (%d)" % self.msgmax
        return None

    def ends(self, side: int, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]:
        q = self.q
        out_type, in_type = (1, 2) if side == 0 else (2, 1)
        snd, rcv = q.send, q.receive

        def send(data: Any) -> None:
            snd(data, out_type)

        def recv() -> bytes:
            return rcv(in_type)[0]
        return send, recv

    def pair(self, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]:
        return self.q.send, self.q.receive

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        return functools.partial(self.q.receive, 2 - side, timeout=timeout)

    def close(self) -> None:
        _remove_quietly(self.q)


class SysvIpcQueue(Channel):
    name = SI_QUEUE

    def __init__(self) -> None:
        from . import limits
        self.msgmax = limits().msgmax
        # sysv_ipc caps messages at 2048 bytes unless told otherwise.
        self.q = _sysv_ipc.MessageQueue(None, _sysv_ipc.IPC_CREX,
                                        max_message_size=self.msgmax)

    unsupported = SysvkitQueue.unsupported

    def ends(self, side: int, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]:
        q = self.q
        out_type, in_type = (1, 2) if side == 0 else (2, 1)
        snd, rcv = q.send, q.receive

        def send(data: Any) -> None:
            snd(data, True, out_type)

        def recv() -> Any:
            return rcv(True, in_type)[0]
        return send, recv

    def pair(self, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]:
        return self.q.send, self.q.receive

    def has_timeout(self) -> bool:
        return False   # sysv_ipc's receive() has no timeout

    def close(self) -> None:
        _remove_quietly(self.q)


class PipeChannel(Channel):
    name = PIPE

    def __init__(self) -> None:
        self.fds: List[int] = []
        self.a = os.pipe()   # end 0 -> end 1
        self.fds.extend(self.a)
        self.b = os.pipe()   # end 1 -> end 0
        self.fds.extend(self.b)

    def ends(self, side: int, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]:
        w = self.a[1] if side == 0 else self.b[1]
        r = self.b[0] if side == 0 else self.a[0]
        return functools.partial(os.write, w), _exact(functools.partial(os.read, r), size)

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        recv = self.ends(side, size)[1]
        if timeout is None:
            return recv
        r = self.b[0] if side == 0 else self.a[0]

        def wait() -> Any:
            if not select.select([r], [], [], timeout)[0]:
                raise TimeoutError("pipe: timed out")
            return recv()
        return wait

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []


class SocketChannel(Channel):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.socks: List[socket.socket] = []
        if kind == "tcp":
            self.name = TCP
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                lsock.bind(("127.0.0.1", 0))
                lsock.listen(1)
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.socks.append(c)
                c.connect(lsock.getsockname())
                s, _ = lsock.accept()
                self.socks.append(s)
            finally:
                lsock.close()
            for sock in self.socks:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.name = UNIX_STREAM if kind == "stream" else UNIX_DGRAM
            stype = socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM
            self.socks.extend(socket.socketpair(socket.AF_UNIX, stype))

    def ends(self, side: int, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]:
        sock = self.socks[side]
        sock.settimeout(None)
        if self.kind == "dgram":
            return sock.send, functools.partial(sock.recv, size)
        return sock.sendall, _exact(sock.recv, size)

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        recv = self.ends(side, size)[1]
        settimeout = self.socks[side].settimeout

        def wait() -> Any:
            settimeout(timeout)    # before the wait, so outside the measurement
            return recv()
        return wait

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


class MpQueueChannel(Channel):
    name = MP_QUEUE

    def __init__(self) -> None:
        self.queues = [_FORK.Queue(), _FORK.Queue()]   # to end 1, to end 0

    def ends(self, side: int, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]:
        return self.queues[side].put, self.queues[1 - side].get

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        get = self.queues[1 - side].get
        if timeout is None:
            return get
        return functools.partial(get, True, timeout)

    def close(self) -> None:
        for q in self.queues:
            q.cancel_join_thread()
            q.close()


# Semaphores as a wake-up "channel": end 0 releases, end 1 acquires.
class SemChannel(Channel):
    def __init__(self, which: str) -> None:
        self.which = which
        if which == SK_SEM:
            from . import IPC_PRIVATE, Semaphore
            self.sem: Any = Semaphore(key=IPC_PRIVATE, create=True, initial=0)
        else:
            self.sem = _sysv_ipc.Semaphore(None, _sysv_ipc.IPC_CREX, initial_value=0)
        self.name = which

    def ends(self, side: int, size: int) -> Tuple[Callable[[Any], Any], Callable[[], Any]]:
        rel = self.sem.release

        def send(data: Any) -> None:
            rel()
        return send, self.sem.acquire

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        acquire: Callable[..., Any] = self.sem.acquire
        if timeout is None:
            return acquire
        return functools.partial(acquire, timeout=timeout)

    def has_timeout(self) -> bool:
        return self.which == SK_SEM or _sysv_ipc_sem_timeout()

    def close(self) -> None:
        _remove_quietly(self.sem)


def _sysv_ipc_sem_timeout() -> bool:
    """Whether sysv_ipc's Semaphore.acquire() honours a timeout (a build
    without semtimedop ignores it and waits for ever)."""
    return _sysv_ipc is not None and bool(getattr(_sysv_ipc, "SEMAPHORE_TIMEOUT_SUPPORTED",
                                                  False))


def _message_channels() -> List[Tuple[str, Callable[[], Channel]]]:
    """Every message transport available here, as (name, factory)."""
    out: List[Tuple[str, Callable[[], Channel]]] = [(SK_QUEUE, SysvkitQueue)]
    if _sysv_ipc is not None:
        out.append((SI_QUEUE, SysvIpcQueue))
    out += [
        (PIPE, PipeChannel),
        (UNIX_STREAM, functools.partial(SocketChannel, "stream")),
        (UNIX_DGRAM, functools.partial(SocketChannel, "dgram")),
        (TCP, functools.partial(SocketChannel, "tcp")),
        (MP_QUEUE, MpQueueChannel),
    ]
    return out


# -- child processes -------------------------------------------------------------


def _quiet_exit(code: int) -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _child_main(ctrl: Any, parent_end: Any, channel: Optional[Channel],
                shm_open: Optional[Callable[[], Any]], st: Settings, lifeline: int,
                orphan_cleanup: Callable[[], Any]) -> None:
    """The other process: obeys commands from the control pipe until told to
    quit, the pipe closes, or its objects are removed; if the parent dies
    (its lifeline closes), removes what it serves and exits."""
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
    reader: Optional[_ChildReader] = None
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
                    times.append(_clock())
                ctrl.send(times)
            elif op == "shm-read":      # ("shm-read", n): seconds for n copies
                assert shm_open is not None
                if reader is None:
                    reader = _ChildReader(shm_open)
                ctrl.send(reader.loop(cmd[1]))
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
def _armed() -> Iterator[None]:
    """While measuring, the death of a child raises ChildDied here (never
    while cleaning up, where it would cut the cleanup short)."""
    _ARMED[0] += 1
    try:
        _on_sigchld(signal.SIGCHLD, None)    # one that died while disarmed
        yield
    finally:
        _ARMED[0] -= 1


def _on_sigchld(signo: int, frame: Any) -> None:
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
def _pinned(mode: str) -> Iterator[str]:
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

    def __init__(self, st: Settings, channel: Optional[Channel] = None,
                 shm_open: Optional[Callable[[], Any]] = None,
                 orphan_cleanup: Optional[Callable[[], Any]] = None) -> None:
        if orphan_cleanup is None:
            orphan_cleanup = channel.close if channel is not None else _nothing
        self.ctrl, child_end = _FORK.Pipe()
        life_r, self.lifeline = os.pipe()
        _LIFELINES.append(self.lifeline)
        try:
            self.proc = _FORK.Process(
                target=_child_main, daemon=True,
                args=(child_end, self.ctrl, channel, shm_open, st, life_r, orphan_cleanup))
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
def _child(st: Settings, channel: Optional[Channel] = None,
           shm_open: Optional[Callable[[], Any]] = None,
           orphan_cleanup: Optional[Callable[[], Any]] = None) -> Iterator[Child]:
    child = Child(st, channel, shm_open, orphan_cleanup)
    try:
        yield child
    finally:
        child.stop()


@contextlib.contextmanager
def _opened(factory: Callable[[], Channel]) -> Iterator[Channel]:
    ch = factory()
    try:
        yield ch
    finally:
        ch.close()


# -- workload groups -------------------------------------------------------------

PAIR_SIZES = ((16, "16B"), (KIB, "1KiB"), (64 * KIB, "64KiB"))
XPROC_SIZES = ((16, "16B"), (4 * KIB, "4KiB"))


def bench_pair(st: Settings) -> Iterator[Result]:
    """In one process: send one message and receive it."""
    for size, label in PAIR_SIZES:
        workload = "pair-" + label
        data = b"x" * size
        with contextlib.ExitStack() as stack:
            loops: List[Tuple[str, Loop]] = []
            na: List[Result] = []
            for name, factory in _message_channels():
                ch = stack.enter_context(_opened(factory))
                why = ch.unsupported(size)
                if why:
                    na.append(_not_applicable(workload, "pair", name, "us", "lower", why))
                    continue
                send, recv = ch.pair(size)
                loops.append((name, _pair_loop(send, recv, data)))
                if name == SK_QUEUE:
                    msqid = ch.q.id  # type: ignore[attr-defined]
                    loops.append((C_MSG, functools.partial(_core.bench_c_msg_pair, msqid, size)))
            got = measure_all(loops, st)
        for name, _ in loops:
            per, n = got[name]
            yield _latency(workload, "pair", name, per, n, reference=name == C_MSG)
        yield from na
        if size > _msgmax():
            yield _not_applicable(workload, "pair", C_MSG, "us", "lower",
                                  "message larger than msgmax (%d)" % _msgmax())


def _msgmax() -> int:
    from . import limits
    return limits().msgmax


def bench_sem(st: Settings) -> Iterator[Result]:
    """In one process: acquire then release a semaphore (a lock)."""
    from . import IPC_PRIVATE, Lock, Semaphore
    w, g = "sem-pair", "sem"
    refs = {C_SEM, C_LOCK, C_SEM_UNDO}
    with contextlib.ExitStack() as stack:
        sem = Semaphore(key=IPC_PRIVATE, create=True, initial=1)
        stack.callback(sem.remove)
        lock = Lock(key=IPC_PRIVATE)
        stack.callback(lock.remove)
        loops: List[Tuple[str, Loop]] = [
            (SK_SEM, _cycle_loop(sem.acquire, sem.release)),
            (C_SEM, functools.partial(_core.bench_c_sem_pair, sem.id, flags=0)),
            (SK_LOCK, _cycle_loop(lock.acquire, lock.release)),
        ]
        c_lock = getattr(_core, "bench_c_lock_pair", None)
        if c_lock is not None:    # exactly the calls Lock makes
            loops.append((C_LOCK, functools.partial(c_lock, lock.id)))
        else:
            loops.append((C_SEM_UNDO, functools.partial(_core.bench_c_sem_pair, lock.id,
                                                        flags=_core.SEM_UNDO)))
        if _sysv_ipc is not None:
            si = _sysv_ipc.Semaphore(None, _sysv_ipc.IPC_CREX, initial_value=1)
            stack.callback(si.remove)
            loops.append((SI_SEM, _cycle_loop(si.acquire, si.release)))
        mp_lock = _FORK.Lock()
        loops.append((MP_LOCK, _cycle_loop(mp_lock.acquire, mp_lock.release)))
        got = measure_all(loops, st)
    for name, _ in loops:
        per, n = got[name]
        yield _latency(w, g, name, per, n, reference=name in refs)


@contextlib.contextmanager
def _served_channels(st: Settings, factories: List[Tuple[str, Callable[[], Channel]]]
                     ) -> Iterator[List[Tuple[str, Channel, Child]]]:
    """Every channel opened, each with a child process at its other end."""
    with contextlib.ExitStack() as stack:
        out = []
        for name, factory in factories:
            ch = stack.enter_context(_opened(factory))
            out.append((name, ch, stack.enter_context(_child(st, ch))))
        yield out


def bench_roundtrip(st: Settings) -> Iterator[Result]:
    """Ping-pong with another process."""
    with _served_channels(st, _message_channels()) as served:
        for size, label in XPROC_SIZES:
            data = b"x" * size
            loops: List[Tuple[str, Loop]] = []
            for name, ch, child in served:
                send, recv = ch.ends(0, size)

                def loop(n: int, send: Any = send, recv: Any = recv,
                         child: Child = child, size: int = size) -> float:
                    child.send(("echo", n, size))
                    t0 = _clock()
                    for _ in repeat(None, n):
                        send(data)
                        recv()
                    return _clock() - t0
                loops.append((name, loop))
            got = measure_all(loops, st)
            for name, _ in loops:
                per, n = got[name]
                yield _latency("roundtrip-" + label, "roundtrip", name, per, n)


def bench_throughput(st: Settings) -> Iterator[Result]:
    """Another process sends as fast as it can; messages/s received here."""
    with _served_channels(st, _message_channels()) as served:
        for size, label in XPROC_SIZES:
            loops: List[Tuple[str, Loop]] = []
            for name, ch, child in served:
                recv = ch.ends(0, size)[1]

                def loop(n: int, recv: Any = recv, child: Child = child,
                         size: int = size) -> float:
                    child.send(("send", n, size))
                    t0 = _clock()
                    for _ in repeat(None, n):
                        recv()
                    return _clock() - t0
                loops.append((name, loop))
            got = measure_all(loops, st)
            for name, _ in loops:
                per, n = got[name]
                r = _result("throughput-" + label, "throughput", name, "msg/s", "higher",
                            [1.0 / s for s in per], n)
                assert r.value is not None
                r.extra["MB/s"] = r.value * size / 1e6
                yield r


# -- shared memory -----------------------------------------------------------------


class _Segment:
    """A shared memory segment of one kind, its buffer, and how another
    process opens it."""

    def __init__(self, kind: str, size: int) -> None:
        self.kind = kind
        self.obj: Any = None
        # destroy: removes the segment by name, from any process (the child
        # that reads it does so if this process dies first).
        self.destroy: Callable[[], None] = _nothing
        if kind == SK_SHM:
            from . import IPC_PRIVATE, SharedMemory
            self.obj = SharedMemory(key=IPC_PRIVATE, create=True, size=size)
            self.buf = self.obj.buf
            ident = self.obj.id
            self.open: Callable[[], Any] = functools.partial(_open_sysvkit_shm, ident)
            self.destroy = functools.partial(_core.shmctl, ident, _core.IPC_RMID)
        elif kind == SI_SHM:
            self.obj = _sysv_ipc.SharedMemory(None, _sysv_ipc.IPC_CREX, size=size)
            self.buf = memoryview(self.obj)
            self.open = functools.partial(_open_sysv_ipc_shm, self.obj.key)
            self.destroy = functools.partial(_core.shmctl, self.obj.id, _core.IPC_RMID)
        elif kind == MP_SHM:
            from multiprocessing import shared_memory
            self.obj = shared_memory.SharedMemory(create=True, size=size)
            self.buf = self.obj.buf
            self.open = functools.partial(_open_mp_shm, self.obj.name)
            self.destroy = functools.partial(_unlink_posix_shm, self.obj.name)
        else:
            self.buf = memoryview(bytearray(size))
            self.open = functools.partial(_open_private, size)

    def close(self) -> None:
        """Destroy the segment first (which needs no detaching), then let go
        of the mapping; on an interrupted copy a frame may still hold a view
        of it, which then goes when the process does."""
        if self.kind in (SK_SHM, SI_SHM):
            _remove_quietly(self.obj)
        elif self.kind == MP_SHM:
            with contextlib.suppress(FileNotFoundError):
                self.obj.unlink()
        try:
            self.buf.release()
        except BufferError:
            if self.kind == MP_SHM:
                # Its __del__ would try (and fail, noisily) to unmap it again.
                self.obj.close = lambda: None
            return
        with contextlib.suppress(BufferError):
            if self.kind in (SK_SHM, MP_SHM):
                self.obj.close()
            elif self.kind == SI_SHM:
                self.obj.detach()


def _nothing() -> None:
    pass


def _unlink_posix_shm(name: str) -> None:
    from multiprocessing import shared_memory
    shared_memory.SharedMemory(name=name).unlink()


def _open_sysvkit_shm(ident: int) -> Tuple[memoryview, Callable[[], None]]:
    from . import SharedMemory
    shm = SharedMemory.from_id(ident)
    return shm.buf, shm.close


def _open_sysv_ipc_shm(key: int) -> Tuple[memoryview, Callable[[], None]]:
    shm = _sysv_ipc.SharedMemory(key)
    return memoryview(shm), shm.detach


def _open_mp_shm(name: str) -> Tuple[memoryview, Callable[[], None]]:
    from multiprocessing import shared_memory
    # A forked child shares the parent's resource tracker, where the name is
    # already registered; the parent unlinks it (and unregisters it) at the end.
    shm = shared_memory.SharedMemory(name=name)
    assert shm.buf is not None
    return shm.buf, shm.close


def _open_private(size: int) -> Tuple[memoryview, Callable[[], None]]:
    buf = memoryview(bytearray(size))
    return buf, buf.release


def _copy_loop(dst: memoryview, src: Any) -> Loop:
    """Copy ``src`` (a numpy array or a memoryview) into ``dst`` n times."""
    if _np is not None:
        dst_arr = _np.frombuffer(dst, dtype=_np.uint8)
        copyto = _np.copyto

        def loop(n: int) -> float:
            t0 = _clock()
            for _ in repeat(None, n):
                copyto(dst_arr, src)
            return _clock() - t0
        return loop

    def loop_mv(n: int) -> float:
        t0 = _clock()
        for _ in repeat(None, n):
            dst[:] = src
        return _clock() - t0
    return loop_mv


def _source(size: int) -> Any:
    if _np is not None:
        return _np.full(size, 7, dtype=_np.uint8)
    return memoryview(bytearray(b"\x07") * size)


class _ChildReader:
    """In the child: the segment, attached on first use, copied out into
    private memory n times per command."""

    def __init__(self, shm_open: Callable[[], Any]) -> None:
        self.buf, self._close = shm_open()
        self.dst = memoryview(bytearray(len(self.buf)))
        src: Any = _np.frombuffer(self.buf, dtype=_np.uint8) if _np is not None else self.buf
        self.loop = _copy_loop(self.dst, src)


def _mem_available() -> Optional[int]:
    """MemAvailable from /proc/meminfo, in bytes (None if unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def bench_shm(st: Settings) -> Iterator[Result]:
    """Fill a segment from an array; copy it out in another process."""
    kinds = [SK_SHM]
    if _sysv_ipc is not None:
        kinds.append(SI_SHM)
    kinds += [MP_SHM, PRIVATE]
    # The source, one segment per kind and one private copy per reader: keep
    # it within half the available memory (the size shows in the workload).
    size = st.bulk_bytes
    avail = _mem_available()
    while avail is not None and size > 16 * MIB and size * (1 + 2 * len(kinds)) > avail // 2:
        size //= 2
    gb = size / 1e9
    label = "%dMiB" % (size // MIB)
    src = _source(size)
    try:
        with contextlib.ExitStack() as stack:
            segs = []
            for kind in kinds:
                seg = _Segment(kind, size)
                stack.callback(seg.close)
                segs.append(seg)
            fills = [(seg.kind, _copy_loop(seg.buf, src)) for seg in segs]
            try:
                got_fill = measure_all(fills, st)
            finally:
                fills.clear()     # the copy loops hold views of the segments
            reads: List[Tuple[str, Loop]] = []
            for seg in segs:
                child = stack.enter_context(_child(st, shm_open=seg.open,
                                                   orphan_cleanup=seg.destroy))

                def loop(n: int, child: Child = child) -> float:
                    child.send(("shm-read", n))
                    return float(child.recv())
                reads.append((seg.kind, loop))
            got_read = measure_all(reads, st)
    finally:
        del src
    for workload, got in (("shm-fill-" + label, got_fill), ("shm-read-" + label, got_read)):
        for kind in kinds:
            per, n = got[kind]
            yield _result(workload, "shm", kind, "GB/s", "higher", [gb / s for s in per], n,
                          reference=kind == PRIVATE)


# -- idle cost and wake-up ---------------------------------------------------------


def _idle_waits() -> List[Tuple[str, Callable[[contextlib.ExitStack, float], Callable[[], Any]]]]:
    """(transport, setup(stack, timeout) -> a call that waits ``timeout`` s)."""
    from . import IPC_PRIVATE, Lock, MessageQueue, Semaphore

    def expect(call: Callable[[], Any],
               *errors: "type[BaseException]") -> Callable[[], Any]:
        def wait() -> Any:
            try:
                got = call()
            except errors:
                return None
            if got is not False:
                raise RuntimeError("an idle wait returned early")
            return None
        return wait

    def sk_queue(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        q = MessageQueue(key=IPC_PRIVATE, create=True)
        stack.callback(q.remove)
        return expect(functools.partial(q.receive, timeout=t), TimeoutError)

    def sk_sem(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        s = Semaphore(key=IPC_PRIVATE, create=True, initial=0)
        stack.callback(s.remove)
        return expect(functools.partial(s.acquire, timeout=t))

    def sk_lock(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        lock = Lock(key=IPC_PRIVATE)
        stack.callback(lock.remove)
        lock.acquire()
        stack.callback(lock.release)
        return expect(functools.partial(lock.acquire, timeout=t))

    def si_sem(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        s = _sysv_ipc.Semaphore(None, _sysv_ipc.IPC_CREX, initial_value=0)
        stack.callback(s.remove)
        return expect(functools.partial(s.acquire, t), _sysv_ipc.BusyError)

    def pipe(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        ch = stack.enter_context(_opened(PipeChannel))
        return expect(ch.waiter(1, 16, t), TimeoutError)

    def sock(kind: str) -> Callable[[contextlib.ExitStack, float], Callable[[], Any]]:
        def setup(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
            ch = stack.enter_context(_opened(functools.partial(SocketChannel, kind)))
            return expect(ch.waiter(1, 16, t), socket.timeout, TimeoutError)
        return setup

    def mp_queue(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        ch = stack.enter_context(_opened(MpQueueChannel))
        return expect(ch.waiter(1, 16, t), queue_mod.Empty)

    out: List[Tuple[str, Callable[[contextlib.ExitStack, float], Callable[[], Any]]]] = [
        (SK_QUEUE, sk_queue), (SK_SEM, sk_sem), (SK_LOCK, sk_lock)]
    if _sysv_ipc_sem_timeout():
        out.append((SI_SEM, si_sem))
    out += [(PIPE, pipe), (UNIX_STREAM, sock("stream")), (UNIX_DGRAM, sock("dgram")),
            (TCP, sock("tcp")), (MP_QUEUE, mp_queue)]
    return out


def bench_idle(st: Settings) -> Iterator[Result]:
    """CPU time used while a receive/acquire waits for its timeout."""
    w = "idle-cpu"
    for name, setup in _idle_waits():
        with contextlib.ExitStack() as stack:
            wait = setup(stack, st.idle_seconds)
            values = []
            for _ in range(st.idle_repeats):
                c0, t0 = time.process_time(), _clock()
                wait()
                c1, t1 = time.process_time(), _clock()
                values.append(100.0 * (c1 - c0) / (t1 - t0))
            yield _result(w, "idle", name, "% CPU", "lower", values, 1)
    if _sysv_ipc is not None:
        yield _not_applicable(w, "idle", SI_QUEUE, "% CPU", "lower",
                              "sysv_ipc's receive() has no timeout")
        if not _sysv_ipc_sem_timeout():
            yield _not_applicable(w, "idle", SI_SEM, "% CPU", "lower",
                                  "this sysv_ipc build has no acquire() timeout")


WAKE_TIMEOUT = 30.0   # a timeout that never expires in the "with timeout" case


def _wake_channels() -> List[Tuple[str, Callable[[], Channel]]]:
    out = [(name, f) for name, f in _message_channels()]
    out.insert(1, (SK_SEM, functools.partial(SemChannel, SK_SEM)))
    if _sysv_ipc is not None:
        out.insert(3, (SI_SEM, functools.partial(SemChannel, SI_SEM)))
    return out


def bench_wakeup(st: Settings) -> Iterator[Result]:
    """Time from a send here to the return of a blocked receive in a child,
    without and with a timeout.  The samples take turns, so all see the same
    machine: rounds of a few wake-ups of each transport in turn, each
    alternating between the two kinds of wait, each after the receiver has
    been blocked for ``settle`` seconds."""
    settle = 0.002    # let the child get blocked in the kernel
    block = 10        # wake-ups of one transport before moving to the next
    data = b"x" * 16
    with _served_channels(st, _wake_channels()) as served:
        plans: List[Tuple[str, Child, Callable[[Any], Any], List[Optional[float]], int,
                          List[float]]] = []
        for name, ch, child in served:
            timeouts: List[Optional[float]] = [None]
            if ch.has_timeout():
                timeouts.append(WAKE_TIMEOUT)
            k = len(timeouts) * (st.wake_samples + 2)   # two of each to warm up
            child.send(("wake", k, timeouts))
            plans.append((name, child, ch.ends(0, 16)[0], timeouts, k, []))
        with _armed():
            for start in range(0, max(p[4] for p in plans), block):
                for name, child, send, timeouts, k, sent in plans:
                    for _ in range(start, min(start + block, k)):
                        child.recv()           # the child is about to block
                        time.sleep(settle)
                        sent.append(_clock())
                        send(data)
            woken = [child.recv() for _, child, *_ in plans]
    for workload_index, workload in enumerate(("wakeup", "wakeup-timeout")):
        for (name, _, _, timeouts, _, sent), woke in zip(plans, woken):
            if workload_index < len(timeouts):
                lat = [b - a for a, b in zip(sent, woke)]
                mine = lat[workload_index::len(timeouts)][2:]
                yield _latency(workload, "wakeup", name, mine, 1)
            else:
                yield _not_applicable(workload, "wakeup", name, "us", "lower",
                                      "no wait with a timeout in this build"
                                      if name == SI_SEM else "no receive with a timeout")


GROUPS: Dict[str, Tuple[str, Callable[[Settings], Iterator[Result]]]] = {
    "pair": ("in-process send+receive latency", bench_pair),
    "sem": ("in-process acquire+release latency", bench_sem),
    "roundtrip": ("cross-process round trip latency", bench_roundtrip),
    "throughput": ("cross-process one-way throughput", bench_throughput),
    "shm": ("bulk copy through shared memory", bench_shm),
    "idle": ("CPU used while waiting with a timeout", bench_idle),
    "wakeup": ("cross-process wake-up latency", bench_wakeup),
}


# -- ratios and targets ------------------------------------------------------------


def _cost(r: Result) -> float:
    """A figure where lower is better (for ratios)."""
    assert r.value is not None
    return r.value if r.better == "lower" else 1.0 / r.value


def add_ratios(results: List[Result]) -> None:
    """Fill in vs_best and vs_sysv_ipc."""
    by_workload: Dict[str, List[Result]] = {}
    for r in results:
        if r.applicable:
            by_workload.setdefault(r.workload, []).append(r)
    for rows in by_workload.values():
        candidates = [r for r in rows if not r.reference] or rows
        best = min(_cost(r) for r in candidates)
        twins = {r.transport: r for r in rows}
        for r in rows:
            if best > 0:
                r.vs_best = _cost(r) / best
            twin = twins.get(_SYSV_IPC_TWIN.get(r.transport, ""))
            if twin is None and r.transport == SK_LOCK:
                twin = twins.get(SI_SEM)
            if twin is not None and _cost(twin) > 0:
                r.vs_sysv_ipc = _cost(r) / _cost(twin)


@dataclass
class Target:
    name: str
    value: float
    target: str
    met: bool

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "value": self.value, "target": self.target,
                "met": self.met}


def targets(results: List[Result]) -> List[Target]:
    """The ratios issue 7 asks for, from whatever was measured."""
    idx = {(r.workload, r.transport): r for r in results if r.applicable}
    out: List[Target] = []

    def ratio(a: Optional[Result], b: Optional[Result]) -> Optional[float]:
        if a is None or b is None:
            return None
        return _cost(a) / _cost(b) if _cost(b) > 0 else None

    def add(name: str, value: Optional[float], op: str, limit: float) -> None:
        if value is None:
            return
        met = {"<=": value <= limit, "<": value < limit, ">=": value >= limit}[op]
        out.append(Target(name, value, "%s %g" % (op, limit), met))

    for _, label in PAIR_SIZES:
        w = "pair-" + label
        add("sysvkit queue pair / C pair (%s)" % label,
            ratio(idx.get((w, SK_QUEUE)), idx.get((w, C_MSG))), "<=", 1.2)
    c_lock = idx.get(("sem-pair", C_LOCK)) or idx.get(("sem-pair", C_SEM_UNDO))
    add("sysvkit Lock pair / C lock pair", ratio(idx.get(("sem-pair", SK_LOCK)), c_lock),
        "<=", 1.15)
    add("sysvkit Semaphore pair / C semop pair",
        ratio(idx.get(("sem-pair", SK_SEM)), idx.get(("sem-pair", C_SEM))), "<=", 1.15)
    for r in results:
        if r.vs_sysv_ipc is not None and r.group != "idle":
            add("%s vs sysv_ipc (%s)" % (r.transport, r.workload), r.vs_sysv_ipc, "<", 1.0)
    for name in (SK_QUEUE, SK_SEM, SK_LOCK):
        idle = idx.get(("idle-cpu", name))
        if idle is not None:
            add("%s idle CPU while waiting (%% of a core)" % name, idle.value, "<", 1.0)
    for name in (SK_QUEUE, SK_SEM):
        add("%s wake-up with timeout / without" % name,
            ratio(idx.get(("wakeup-timeout", name)), idx.get(("wakeup", name))), "<=", 1.2)
    fills = [r for r in results if r.workload.startswith("shm-fill-") and r.applicable]
    sk = next((r for r in fills if r.transport == SK_SHM), None)
    priv = next((r for r in fills if r.transport == PRIVATE), None)
    if sk is not None and priv is not None:
        assert sk.value is not None and priv.value is not None
        add("sysvkit shm fill / bytearray fill (%s)" % sk.workload[len("shm-fill-"):],
            sk.value / priv.value, ">=", 0.9)
    return out


# -- output --------------------------------------------------------------------------


def _fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e6:
        return "%.3gM" % (v / 1e6)
    if a >= 1e4:
        return "%.0f" % v
    if a >= 100:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3f" % v


def _ratio(v: Optional[float]) -> str:
    return "-" if v is None else "%.2f" % v


def format_table(results: List[Result], tgts: List[Target], meta: Dict[str, Any]) -> str:
    lines = ["sysvkit bench: %s run, %d samples per figure (median, min..max)%s"
             % (meta["mode"], meta["repeats"],
                {"same": ", all processes on one CPU",
                 "split": ", this process on one CPU, its partners on another"}.get(
                     meta.get("pinned", "none"), "")),
             "%s, Python %s, %d CPUs, msgmax %d, msgmnb %d; optional: %s" % (
                 meta["platform"], meta["python"], meta["cpus"],
                 meta["limits"]["msgmax"], meta["limits"]["msgmnb"],
                 ", ".join("%s %s" % (k, "yes" if v else "not installed")
                           for k, v in meta["optional"].items())),
             ""]
    header = ("workload", "transport", "median", "min..max", "unit", "vs best",
              "vs sysv_ipc")
    rows: List[Tuple[str, ...]] = []
    for r in results:
        if r.applicable:
            assert r.spread is not None
            unit = r.unit
            if "MB/s" in r.extra:
                unit += " (%s MB/s)" % _fmt(r.extra["MB/s"])
            rows.append((r.workload, r.transport, _fmt(r.value),
                         "%s..%s" % (_fmt(r.spread["min"]), _fmt(r.spread["max"])),
                         unit, _ratio(r.vs_best), _ratio(r.vs_sysv_ipc)))
        else:
            rows.append((r.workload, r.transport, "n/a", "", r.note, "", ""))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    right = {2, 3, 5, 6}

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            out.append(c.rjust(widths[i]) if i in right else c.ljust(widths[i]))
        return "  ".join(out).rstrip()
    lines.append(line(header))
    prev = None
    for row in rows:
        if prev is not None and row[0] != prev:
            lines.append("")
        prev = row[0]
        lines.append(line(row))
    lines += ["", "vs best: times worse than the best non-reference transport of the "
              "workload; vs sysv_ipc: sysvkit's cost over sysv_ipc's (< 1: faster).", ""]
    if tgts:
        lines.append("Targets (issue 7):")
        w = max(len(t.name) for t in tgts)
        for t in tgts:
            lines.append("  %s  %7.3f  %-7s %s" % (t.name.ljust(w), t.value, t.target,
                                                  "met" if t.met else "MISSED"))
    return "\n".join(lines)


def _meta(st: Settings) -> Dict[str, Any]:
    from . import __version__, limits
    lim = limits()
    return {
        "sysvkit": __version__,
        "python": platform.python_version(),
        "platform": "%s %s %s" % (platform.system(), platform.release(), platform.machine()),
        "cpus": os.cpu_count() or 1,
        "mode": st.mode,
        "repeats": st.repeats,
        "budget_seconds": st.budget,
        "limits": {"msgmax": lim.msgmax, "msgmnb": lim.msgmnb},
        "optional": {"numpy": _np is not None, "sysv_ipc": _sysv_ipc is not None},
    }


# -- entry points -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser``."""
    parser.add_argument("--quick", action="store_true",
                        help="a short run (under 30 s): fewer, shorter samples")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the table")
    parser.add_argument("--repeats", type=int, metavar="N", default=None,
                        help="samples per figure (default: 5 quick, 7 full)")
    parser.add_argument("--only", action="append", metavar="GROUP",
                        choices=sorted(GROUPS),
                        help="run only this group of workloads (repeatable): %s"
                        % ", ".join(GROUPS))
    parser.add_argument("--bulk-mib", type=int, metavar="MIB", default=None,
                        help="size of the shared memory copy (default: 64 quick, 256 full)")
    parser.add_argument("--pin", choices=PIN_MODES, default="same",
                        help="where processes run: same (one CPU for all: steady "
                        "figures; the default), split (this process on one CPU, its "
                        "partners on another), none (the scheduler decides)")
    parser.add_argument("--progress", action="store_true",
                        help="report each workload group on stderr as it starts "
                        "(the default when stderr is a terminal)")


class _Terminated(Exception):
    """SIGTERM during a run: unwind (cleaning up) as for Ctrl-C."""


def _on_sigterm(signo: int, frame: Any) -> None:
    raise _Terminated()


# A workload that cannot finish (a child died, a call failed): one line, exit 1.
_FAILURES: Tuple["type[BaseException]", ...] = (OSError, RuntimeError, EOFError) + (
    (_sysv_ipc.Error,) if _sysv_ipc is not None else ())


def run(args: argparse.Namespace) -> int:
    """Run the benchmarks chosen by ``args`` and print the table (or JSON).

    Returns the exit status: 0; 1 if a workload failed (an OSError or a
    child process that died, printed on stderr); 2 for a bad option value;
    130 on Ctrl-C (or SIGTERM).  Whatever happens, every process and IPC
    object the run made is gone when it returns.
    """
    repeats = getattr(args, "repeats", None)
    if repeats is not None and repeats < 1:
        print("sysvkit bench: --repeats must be >= 1", file=sys.stderr)
        return 2
    bulk = getattr(args, "bulk_mib", None)
    if bulk is not None and bulk < 1:
        print("sysvkit bench: --bulk-mib must be >= 1", file=sys.stderr)
        return 2
    st = Settings.for_mode(bool(getattr(args, "quick", False)), repeats, bulk)
    only = getattr(args, "only", None) or list(GROUPS)
    progress = bool(getattr(args, "progress", False)) or sys.stderr.isatty()
    results: List[Result] = []
    old_term: Any = None
    old_chld: Any = None
    main_thread = _is_main_thread()
    if main_thread:
        old_term = signal.signal(signal.SIGTERM, _on_sigterm)
        old_chld = signal.signal(signal.SIGCHLD, _on_sigchld)
    pinned = "none"
    pin = getattr(args, "pin", "same") or "same"
    if pin not in PIN_MODES:
        print("sysvkit bench: --pin must be one of %s" % ", ".join(PIN_MODES),
              file=sys.stderr)
        return 2
    try:
        with _pinned(pin) as pinned:
            for group in GROUPS:
                if group not in only:
                    continue
                title, func = GROUPS[group]
                if progress:
                    print("bench: %s (%s)" % (group, title), file=sys.stderr, flush=True)
                results.extend(func(st))
    except (KeyboardInterrupt, _Terminated):
        print("sysvkit bench: interrupted; everything it made was removed",
              file=sys.stderr)
        return 130
    except _FAILURES as exc:
        print("sysvkit bench: %s" % exc, file=sys.stderr)
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGCHLD, old_chld)
    order: Dict[str, int] = {}
    for r in results:
        order.setdefault(r.workload, len(order))
    results.sort(key=lambda r: order[r.workload])   # stable: rows keep their order
    add_ratios(results)
    tgts = targets(results)
    meta = _meta(st)
    meta["pinned"] = pinned
    if getattr(args, "json", False):
        doc = dict(meta)
        doc["results"] = [r.as_dict() for r in results]
        doc["targets"] = [t.as_dict() for t in tgts]
        print(json.dumps(doc, indent=1, allow_nan=False))
    else:
        print(format_table(results, tgts, meta))
    return 0


def _is_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m sysvkit.bench``: the same as ``python -m sysvkit bench``."""
    parser = argparse.ArgumentParser(prog="sysvkit bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
