"""``python -m sysvkit bench``: how fast is each IPC mechanism on this machine?

The package: runner.py (settings, rows, measuring, child processes),
transports/ (own.py: sysvkit's; peers.py: the others), workloads/ (one
module per group), registry.py (the groups in order), report.py (ratios,
table, JSON) and command.py (options, run, main).  This module re-exports
what callers and tests use.

Measures sysvkit's MessageQueue, Semaphore, Lock and SharedMemory beside
``os.pipe``, Unix domain sockets (stream and datagram), TCP on 127.0.0.1,
``multiprocessing`` (Queue, Lock, shared_memory) and, where installed,
``sysv_ipc`` and ``faster_fifo`` (its Queue), plus reference loops that
make the same system calls from C.

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
     "summary": [{"sysvkit", "other", "reference", "speed_ratio", "min",
                  "max", "workloads"}, ...]}

``value`` is the median (``null`` when not applicable, with ``note``
saying why); ``better`` is ``"lower"`` or ``"higher"``; ``vs_best`` is how
many times worse than the best non-reference transport of the same workload
(1.0 is the best); ``vs_sysv_ipc`` (sysvkit rows only) is sysvkit's cost
over sysv_ipc's for the same thing (below 1: sysvkit is faster);
``reference`` marks C loops and private-memory copies, which show a ceiling
and are not candidates for "best".  Units: ``us`` (microseconds per
operation), ``msg/s`` (with ``extra["MB/s"]``), ``GB/s``, ``% CPU`` (of one
core).  ``summary`` says how each sysvkit transport compares with each
other transport doing the same work (``other``; ``reference`` for C loops
and private memory): ``speed_ratio`` is the other's cost over sysvkit's,
the geometric mean over the ``workloads`` both ran (above 1: sysvkit is
faster), ``min``/``max`` the extremes of the single ratios.  CPU while idle
is left out of the summary (its figures sit near 0).
"""

from __future__ import annotations

from .command import add_arguments, main, run
from .optional import faster_fifo as _faster_fifo
from .optional import np as _np
from .optional import sysv_ipc as _sysv_ipc
from .registry import GROUPS
from .report import Comparison, add_ratios, format_table, summary
from .runner import KIB, MIB, PIN_MODES, Child, ChildDied, Result, Settings, measure, \
    measure_all
from .transports.own import (C_LOCK, C_MSG, C_SEM, C_SEM_UNDO, SK_LOCK, SK_QUEUE, SK_SEM,
                             SK_SHM)
from .transports.peers import (FF_QUEUE, MP_LOCK, MP_QUEUE, MP_SHM, PIPE, PRIVATE, SI_QUEUE,
                               SI_SEM, SI_SHM, TCP, UNIX_DGRAM, UNIX_STREAM)
from .workloads.idle import run as bench_idle
from .workloads.pair import PAIR_SIZES
from .workloads.pair import msgmax as _msgmax
from .workloads.pair import run as bench_pair
from .workloads.roundtrip import XPROC_SIZES
from .workloads.roundtrip import run as bench_roundtrip
from .workloads.sem import run as bench_sem
from .workloads.shm import run as bench_shm
from .workloads.throughput import run as bench_throughput
from .workloads.wakeup import WAKE_TIMEOUT
from .workloads.wakeup import run as bench_wakeup

__all__ = ["add_arguments", "run", "main", "Result", "Settings", "GROUPS", "measure",
           "measure_all", "add_ratios", "summary", "format_table", "Comparison", "Child",
           "ChildDied", "KIB", "MIB", "PIN_MODES", "PAIR_SIZES", "XPROC_SIZES", "WAKE_TIMEOUT",
           "SK_QUEUE", "SK_SEM", "SK_LOCK", "SK_SHM", "SI_QUEUE", "SI_SEM", "SI_SHM", "PIPE",
           "UNIX_STREAM", "UNIX_DGRAM", "TCP", "MP_QUEUE", "FF_QUEUE", "MP_LOCK", "MP_SHM", "C_MSG",
           "C_SEM", "C_SEM_UNDO", "C_LOCK", "PRIVATE", "bench_pair", "bench_sem",
           "bench_roundtrip", "bench_throughput", "bench_shm", "bench_idle", "bench_wakeup"]
