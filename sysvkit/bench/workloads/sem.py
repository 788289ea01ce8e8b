"""Workload "sem": in one process, acquire then release a semaphore or a lock."""

from __future__ import annotations

import contextlib
from typing import Iterator

from ..runner import Result, Settings, latency, measure_all
from ..transports import sem_pairs

TITLE = "in-process acquire+release latency"


def run(st: Settings) -> Iterator[Result]:
    """In one process: acquire then release a semaphore (a lock)."""
    w, g = "sem-pair", "sem"
    with contextlib.ExitStack() as stack:
        pairs = sem_pairs(stack)
        got = measure_all([(name, loop) for name, loop, _ in pairs], st)
    for name, _, reference in pairs:
        per, n = got[name]
        yield latency(w, g, name, per, n, reference=reference)
