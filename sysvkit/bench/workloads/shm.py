"""Workload "shm": fill a large shared memory segment, and copy it out elsewhere.

Filled from a numpy array (a bytearray without numpy) beside the same copy
into private memory, and copied out in another process; GB/s.
"""

from __future__ import annotations

import contextlib
import functools
from itertools import repeat
from typing import Any, Callable, Iterator, List, Optional, Tuple

from ..optional import np
from ..runner import MIB, Child, Loop, Result, Settings, child, clock, measure_all, result
from ..transports import segments
from ..transports.base import Segment

TITLE = "bulk copy through shared memory"


def copy_loop(dst: memoryview, src: Any) -> Loop:
    """Copy ``src`` (a numpy array or a memoryview) into ``dst`` n times."""
    if np is not None:
        dst_arr = np.frombuffer(dst, dtype=np.uint8)
        copyto = np.copyto

        def loop(n: int) -> float:
            t0 = clock()
            for _ in repeat(None, n):
                copyto(dst_arr, src)
            return clock() - t0
        return loop

    def loop_mv(n: int) -> float:
        t0 = clock()
        for _ in repeat(None, n):
            dst[:] = src
        return clock() - t0
    return loop_mv


def _source(size: int) -> Any:
    if np is not None:
        return np.full(size, 7, dtype=np.uint8)
    return memoryview(bytearray(b"\x07") * size)


class _Reader:
    """In the child: the segment, attached on first use, copied out into
    private memory n times per call."""

    def __init__(self, shm_open: Callable[[], Tuple[memoryview, Callable[[], None]]]) -> None:
        self.buf, self.close = shm_open()
        self.dst = memoryview(bytearray(len(self.buf)))
        src: Any = np.frombuffer(self.buf, dtype=np.uint8) if np is not None else self.buf
        self.copy = copy_loop(self.dst, src)

    def __call__(self, n: int) -> float:
        return self.copy(n)


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


def run(st: Settings) -> Iterator[Result]:
    """Fill a segment from an array; copy it out in another process."""
    kinds = segments()
    # The source, one segment per kind and one private copy per reader: keep
    # it within half the available memory (the size shows in the workload).
    size = st.bulk_bytes
    avail = _mem_available()
    while avail is not None and size > 16 * MIB and size * (1 + 2 * len(kinds)) > avail // 2:
        size //= 2
    gb = size / 1e9
    label = "%dMiB" % (size // MIB)
    src = _source(size)
    segs: List[Segment] = []
    try:
        with contextlib.ExitStack() as stack:
            for kind in kinds:
                seg = kind(size)
                stack.callback(seg.close)
                segs.append(seg)
            fills = [(seg.name, copy_loop(seg.buf, src)) for seg in segs]
            try:
                got_fill = measure_all(fills, st)
            finally:
                fills.clear()     # the copy loops hold views of the segments
            reads: List[Tuple[str, Loop]] = []
            for seg in segs:
                reader = stack.enter_context(child(st, serve=functools.partial(_Reader, seg.open),
                                                   orphan_cleanup=seg.destroy))

                def loop(n: int, reader: Child = reader) -> float:
                    reader.send(("loop", n))
                    return float(reader.recv())
                reads.append((seg.name, loop))
            got_read = measure_all(reads, st)
    finally:
        del src
    for workload, got in (("shm-fill-" + label, got_fill), ("shm-read-" + label, got_read)):
        for seg in segs:
            per, n = got[seg.name]
            yield result(workload, "shm", seg.name, "GB/s", "higher", [gb / s for s in per], n,
                         reference=seg.reference)
