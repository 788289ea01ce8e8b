"""Workload "wakeup": from a send here to the return of a blocked receive elsewhere.

Without and with a timeout.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator, List, Optional, Tuple

from ..runner import Child, Result, Settings, armed, clock, latency, not_applicable, \
    served_channels
from ..transports import wake_channels

TITLE = "cross-process wake-up latency"
WAKE_TIMEOUT = 30.0   # a timeout that never expires in the "with timeout" case


def run(st: Settings) -> Iterator[Result]:
    """Time from a send here to the return of a blocked receive in a child,
    without and with a timeout.  The samples take turns, so all see the same
    machine: rounds of a few wake-ups of each transport in turn, each
    alternating between the two kinds of wait, each after the receiver has
    been blocked for ``settle`` seconds."""
    settle = 0.002    # let the child get blocked in the kernel
    block = 10        # wake-ups of one transport before moving to the next
    data = b"x" * 16
    with served_channels(st, wake_channels()) as served:
        plans: List[Tuple[str, Child, Callable[[Any], Any], List[Optional[float]], int,
                          List[float], str]] = []
        for name, ch, child in served:
            timeouts: List[Optional[float]] = [None]
            if ch.has_timeout():
                timeouts.append(WAKE_TIMEOUT)
            k = len(timeouts) * (st.wake_samples + 2)   # two of each to warm up
            child.send(("wake", k, timeouts))
            plans.append((name, child, ch.ends(0, 16)[0], timeouts, k, [], ch.no_timeout))
        with armed():
            for start in range(0, max(p[4] for p in plans), block):
                for name, child, send, timeouts, k, sent, _ in plans:
                    for _ in range(start, min(start + block, k)):
                        child.recv()           # the child is about to block
                        time.sleep(settle)
                        sent.append(clock())
                        send(data)
            woken = [child.recv() for _, child, *_ in plans]
    for workload_index, workload in enumerate(("wakeup", "wakeup-timeout")):
        for (name, _, _, timeouts, _, sent, why), woke in zip(plans, woken):
            if workload_index < len(timeouts):
                lat = [b - a for a, b in zip(sent, woke)]
                mine = lat[workload_index::len(timeouts)][2:]
                yield latency(workload, "wakeup", name, mine, 1)
            else:
                yield not_applicable(workload, "wakeup", name, "us", "lower", why)
