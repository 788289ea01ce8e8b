"""Workload "idle": CPU used while a receive or acquire waits for its timeout."""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from ..runner import Result, Settings, clock, not_applicable, result
from ..transports import idle_missing, idle_waits

TITLE = "CPU used while waiting with a timeout"


def run(st: Settings) -> Iterator[Result]:
    """CPU time used while a receive/acquire waits for its timeout."""
    w = "idle-cpu"
    for name, setup in idle_waits():
        with contextlib.ExitStack() as stack:
            wait = setup(stack, st.idle_seconds)
            values = []
            for _ in range(st.idle_repeats):
                c0, t0 = time.process_time(), clock()
                wait()
                c1, t1 = time.process_time(), clock()
                values.append(100.0 * (c1 - c0) / (t1 - t0))
            yield result(w, "idle", name, "% CPU", "lower", values, 1)
    for name, why in idle_missing():
        yield not_applicable(w, "idle", name, "% CPU", "lower", why)
