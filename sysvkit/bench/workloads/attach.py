"""Workload "attach": a fresh attach of a large segment, copied out (GB/s).

Another process attaches the segment afresh and copies it all out into
memory it touched beforehand: the default attach, ``populate=True`` and
``readinto()``, beside multiprocessing.shared_memory, sysv_ipc and C floors
with and without MADV_POPULATE_READ (and with two threads).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Dict, Iterator, List, Tuple

from ... import _core
from ..optional import np
from ..optional import sysv_ipc
from ..runner import MIB, Child, Loop, Result, Settings, child, clock, measure_all, result
from ..transports.own import SK_SHM, SysvkitSegment
from ..transports.peers import MP_SHM, SI_SHM, MpSegment, SysvIpcSegment
from .shm import _mem_available

TITLE = "a fresh attach of a large segment, copied out"

SK_POPULATE = "sysvkit.SharedMemory populate=True"
SK_READINTO = "sysvkit.SharedMemory.readinto"
C_PLAIN = "C shmat+memcpy (reference)"
C_POPULATE = "C shmat+MADV_POPULATE_READ+memcpy (reference)"
C_THREADS = "C 2 threads, populate+memcpy each (reference)"

# Each other way beside the sysvkit way that does the same work.
COUNTERPARTS = {MP_SHM: SK_POPULATE, SI_SHM: SK_POPULATE, C_POPULATE: SK_POPULATE,
                C_PLAIN: SK_SHM, C_THREADS: SK_READINTO}


class _Attacher:
    """In the child: n rounds of attach + copy out into ``dst`` (touched
    once, before any round), timed; detaching after each round untimed."""

    def __init__(self, how: str, size: int, ident: int, peer_open: Any) -> None:
        self.how, self.ident, self.peer_open = how, ident, peer_open
        self.dst = bytearray(size)
        if np is not None:
            self.dst_arr = np.frombuffer(self.dst, dtype=np.uint8)
            self.dst_arr.fill(1)
        else:
            self.dst[:] = b"\x01" * size

    def _copy(self, src: Any) -> None:
        if np is not None:
            np.copyto(self.dst_arr, np.frombuffer(src, dtype=np.uint8))
        else:
            memoryview(self.dst)[:] = src

    def __call__(self, n: int) -> float:
        from ... import SharedMemory
        total = 0.0
        for _ in range(n):
            if self.how in (C_PLAIN, C_POPULATE, C_THREADS):
                total += _core.bench_c_attach_read(self.ident, self.dst, self.how != C_PLAIN,
                                                   2 if self.how == C_THREADS else 1, 1)
                continue
            t0 = clock()
            if self.how in (SK_SHM, SK_POPULATE, SK_READINTO):
                shm = SharedMemory.from_id(self.ident, readonly=True,
                                           populate=self.how == SK_POPULATE)
                if self.how == SK_READINTO:
                    shm.readinto(self.dst)
                    total += clock() - t0
                else:
                    view = shm.buf
                    self._copy(view)
                    total += clock() - t0
                    view.release()
                shm.close()
            else:
                view, close = self.peer_open()
                self._copy(view)
                total += clock() - t0
                view.release()
                close()
        return total


def _fill(buf: memoryview, size: int) -> None:
    if np is not None:
        np.frombuffer(buf, dtype=np.uint8).fill(7)
    else:
        buf[:] = b"\x07" * size


def run(st: Settings) -> Iterator[Result]:
    """A fresh attach copied out, in another process, each way."""
    ways: List[str] = [SK_SHM, SK_POPULATE, SK_READINTO, MP_SHM]
    if sysv_ipc is not None:
        ways.append(SI_SHM)
    ways += [C_PLAIN, C_POPULATE, C_THREADS]
    # Segments (ours, multiprocessing's, sysv_ipc's) and one destination per
    # reader: within half the available memory.
    size = st.bulk_bytes
    avail = _mem_available()
    while avail is not None and size > 16 * MIB and size * (3 + len(ways)) > avail // 2:
        size //= 2
    gb = size / 1e9
    workload = "attach-read-%dMiB" % (size // MIB)
    with contextlib.ExitStack() as stack:
        sk = SysvkitSegment(size)
        stack.callback(sk.close)
        mp = MpSegment(size)
        stack.callback(mp.close)
        peers: Dict[str, Tuple[Callable[[], Any], Callable[[], Any]]] = {
            MP_SHM: (mp.open, mp.destroy)}
        if sysv_ipc is not None:
            si = SysvIpcSegment(size)
            stack.callback(si.close)
            peers[SI_SHM] = (si.open, si.destroy)
            _fill(si.buf, size)
        _fill(sk.buf, size)
        _fill(mp.buf, size)
        loops: List[Tuple[str, Loop]] = []
        for how in ways:
            peer_open, cleanup = peers.get(how, (None, sk.destroy))
            reader = stack.enter_context(child(
                st, serve=functools.partial(_Attacher, how, size, sk.ident, peer_open),
                orphan_cleanup=cleanup))

            def loop(n: int, reader: Child = reader) -> float:
                reader.send(("loop", n))
                return float(reader.recv())
            loops.append((how, loop))
        got = measure_all(loops, st)
    for how in ways:
        per, n = got[how]
        yield result(workload, "attach", how, "GB/s", "higher", [gb / s for s in per], n,
                     reference=how in (C_PLAIN, C_POPULATE, C_THREADS))
