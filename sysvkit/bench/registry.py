"""The bench's workload groups, in the order they run.

A new workload is one module in workloads/ (TITLE and run(settings))
plus one line here.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, Tuple

from .runner import Result, Settings
from .workloads import (aio, attach, channel, idle, mutex, objqueue, pair, roundtrip, rwlock,
                        sem, shm, throughput, wakeup)

Workload = Callable[[Settings], Iterator[Result]]

GROUPS: Dict[str, Tuple[str, Workload]] = {
    "pair": (pair.TITLE, pair.run),
    "sem": (sem.TITLE, sem.run),
    "roundtrip": (roundtrip.TITLE, roundtrip.run),
    "throughput": (throughput.TITLE, throughput.run),
    "shm": (shm.TITLE, shm.run),
    "idle": (idle.TITLE, idle.run),
    "wakeup": (wakeup.TITLE, wakeup.run),
    "mutex": (mutex.TITLE, mutex.run),
    "rwlock": (rwlock.TITLE, rwlock.run),
    "attach": (attach.TITLE, attach.run),
    "channel": (channel.TITLE, channel.run),
    "queue": (objqueue.TITLE, objqueue.run),
    "aio": (aio.TITLE, aio.run),
}

# Workload groups whose rows compare with another sysvkit transport than the
# transport's usual counterpart: {group: {transport: sysvkit transport}}.
GROUP_COUNTERPARTS: Dict[str, Dict[str, str]] = {
    "mutex": mutex.COUNTERPARTS,
    "attach": attach.COUNTERPARTS,
    "channel": channel.COUNTERPARTS,
    "queue": objqueue.COUNTERPARTS,
}
