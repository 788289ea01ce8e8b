"""The bench's transports, one module per family; here they are listed in order.

own.py holds sysvkit's, peers.py the others (pipes, sockets, TCP, sysv_ipc,
multiprocessing, faster_fifo); base.py what every transport is.

A new family is one module with the same functions (message_channels,
wake_channels, sem_pairs, segments, idle_waits, idle_missing: each may
return an empty list) and COUNTERPARTS, plus its name in FAMILIES.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, List, Tuple

from ..runner import Loop
from . import own, peers
from .base import Channel, Segment

FAMILIES = (own, peers)

IdleSetup = Callable[[contextlib.ExitStack, float], Callable[[], Any]]


def message_channels() -> List[Tuple[str, Callable[[], Channel]]]:
    """Every message transport available here, as (name, factory)."""
    return [c for family in FAMILIES for c in family.message_channels()]


def wake_channels() -> List[Tuple[str, Callable[[], Channel]]]:
    """Every transport whose receive (acquire) another process can wake."""
    return [c for family in FAMILIES for c in family.wake_channels()]


def sem_pairs(stack: contextlib.ExitStack) -> List[Tuple[str, Loop, bool]]:
    """Every in-process acquire+release loop: (name, loop, is a reference)."""
    return [p for family in FAMILIES for p in family.sem_pairs(stack)]


def segments() -> List[Callable[[int], Segment]]:
    """Every kind of shared memory available here (references last)."""
    return [s for family in FAMILIES for s in family.segments()]


def idle_waits() -> List[Tuple[str, IdleSetup]]:
    """Every wait with a timeout: (transport, setup(stack, timeout) -> wait)."""
    return [w for family in FAMILIES for w in family.idle_waits()]


def idle_missing() -> List[Tuple[str, str]]:
    """(transport, why) of the transports whose waits have no timeout here."""
    return [m for family in FAMILIES for m in family.idle_missing()]


def counterparts() -> Dict[str, str]:
    """{transport: the sysvkit transport it does the same work as}."""
    out: Dict[str, str] = {}
    for family in FAMILIES:
        out.update(family.COUNTERPARTS)
    return out
