"""Workload "throughput": another process sends as fast as it can; msg/s and MB/s."""

from __future__ import annotations

from itertools import repeat
from typing import Any, Iterator, List, Tuple

from ..runner import Child, Loop, Result, Settings, clock, measure_all, result, \
    served_channels
from ..transports import message_channels
from .roundtrip import XPROC_SIZES

TITLE = "cross-process one-way throughput"


def run(st: Settings) -> Iterator[Result]:
    """Another process sends as fast as it can; messages/s received here."""
    with served_channels(st, message_channels()) as served:
        for size, label in XPROC_SIZES:
            loops: List[Tuple[str, Loop]] = []
            for name, ch, child in served:
                recv = ch.ends(0, size)[1]

                def loop(n: int, recv: Any = recv, child: Child = child,
                         size: int = size) -> float:
                    child.send(("send", n, size))
                    t0 = clock()
                    for _ in repeat(None, n):
                        recv()
                    return clock() - t0
                loops.append((name, loop))
            got = measure_all(loops, st)
            for name, _ in loops:
                per, n = got[name]
                r = result("throughput-" + label, "throughput", name, "msg/s", "higher",
                           [1.0 / s for s in per], n)
                assert r.value is not None
                r.extra["MB/s"] = r.value * size / 1e6
                yield r
