"""Workload "pair": in one process, send then receive a message (16 B to 64 KiB)."""

from __future__ import annotations

import contextlib
from typing import Iterator, List, Set, Tuple

from ..runner import KIB, Loop, Result, Settings, latency, measure_all, not_applicable, \
    opened, pair_loop
from ..transports import message_channels

TITLE = "in-process send+receive latency"
PAIR_SIZES = ((16, "16B"), (KIB, "1KiB"), (64 * KIB, "64KiB"))


def msgmax() -> int:
    """The system's largest System V message."""
    from ... import limits
    return limits().msgmax


def run(st: Settings) -> Iterator[Result]:
    """In one process: send one message and receive it."""
    for size, label in PAIR_SIZES:
        workload = "pair-" + label
        data = b"x" * size
        refs: Set[str] = set()
        with contextlib.ExitStack() as stack:
            loops: List[Tuple[str, Loop]] = []
            na: List[Result] = []
            na_refs: List[Result] = []
            for name, factory in message_channels():
                ch = stack.enter_context(opened(factory))
                why = ch.unsupported(size)
                if why:
                    na.append(not_applicable(workload, "pair", name, "us", "lower", why))
                    na_refs += [not_applicable(workload, "pair", ref, "us", "lower", why)
                                for ref in ch.reference_names()]
                    continue
                send, recv = ch.pair(size)
                loops.append((name, pair_loop(send, recv, data)))
                for ref, loop in ch.references(size):
                    refs.add(ref)
                    loops.append((ref, loop))
            got = measure_all(loops, st)
        for name, _ in loops:
            per, n = got[name]
            yield latency(workload, "pair", name, per, n, reference=name in refs)
        yield from na
        yield from na_refs
