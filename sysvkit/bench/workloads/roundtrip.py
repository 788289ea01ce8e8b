"""Workload "roundtrip": ping-pong of 16 B and 4 KiB messages with another process."""

from __future__ import annotations

from itertools import repeat
from typing import Any, Iterator, List, Tuple

from ..runner import KIB, Child, Loop, Result, Settings, clock, latency, measure_all, \
    served_channels
from ..transports import message_channels

TITLE = "cross-process round trip latency"
XPROC_SIZES = ((16, "16B"), (4 * KIB, "4KiB"))


def run(st: Settings) -> Iterator[Result]:
    """Ping-pong with another process."""
    with served_channels(st, message_channels()) as served:
        for size, label in XPROC_SIZES:
            data = b"x" * size
            loops: List[Tuple[str, Loop]] = []
            for name, ch, child in served:
                send, recv = ch.ends(0, size)

                def loop(n: int, send: Any = send, recv: Any = recv,
                         child: Child = child, size: int = size) -> float:
                    child.send(("echo", n, size))
                    t0 = clock()
                    for _ in repeat(None, n):
                        send(data)
                        recv()
                    return clock() - t0
                loops.append((name, loop))
            got = measure_all(loops, st)
            for name, _ in loops:
                per, n = got[name]
                yield latency("roundtrip-" + label, "roundtrip", name, per, n)
