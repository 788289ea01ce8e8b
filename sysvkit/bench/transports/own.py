"""sysvkit's own transports in the bench, and C reference loops over the same objects.

MessageQueue, Semaphore, Lock and SharedMemory.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Dict, List, Optional, Tuple

from ... import _core
from ..runner import Loop, cycle_loop
from .base import Channel, Ends, Segment, expect_timeout, remove_quietly

SK_QUEUE = "sysvkit.MessageQueue"
SK_SEM = "sysvkit.Semaphore"
SK_LOCK = "sysvkit.Lock"
SK_SHM = "sysvkit.SharedMemory"
C_MSG = "C msgsnd+msgrcv (reference)"
C_SEM = "C semop pair (reference)"
C_SEM_UNDO = "C semop pair, SEM_UNDO (reference)"
C_LOCK = "C lock pair (reference)"

# The summary compares each of these with the sysvkit transport beside it.
COUNTERPARTS: Dict[str, str] = {C_MSG: SK_QUEUE, C_SEM: SK_SEM, C_SEM_UNDO: SK_LOCK,
                                C_LOCK: SK_LOCK}


class SysvkitQueue(Channel):
    name = SK_QUEUE

    def __init__(self) -> None:
        from ... import IPC_PRIVATE, MessageQueue, limits
        self.msgmax = limits().msgmax
        self.q = MessageQueue(key=IPC_PRIVATE, create=True)

    def unsupported(self, size: int) -> Optional[str]:
        if size > self.msgmax:
            return "message larger than msgmax (%d)" % self.msgmax
        return None

    def ends(self, side: int, size: int) -> Ends:
        q = self.q
        out_type, in_type = (1, 2) if side == 0 else (2, 1)
        snd, rcv = q.send, q.receive

        def send(data: Any) -> None:
            snd(data, out_type)

        def recv() -> bytes:
            return rcv(in_type)[0]
        return send, recv

    def pair(self, size: int) -> Ends:
        return self.q.send, self.q.receive

    def references(self, size: int) -> List[Tuple[str, Loop]]:
        return [(C_MSG, functools.partial(_core.bench_c_msg_pair, self.q.id, size))]

    def reference_names(self) -> List[str]:
        return [C_MSG]

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        return functools.partial(self.q.receive, 2 - side, timeout=timeout)

    def close(self) -> None:
        remove_quietly(self.q)


class SysvkitSemChannel(Channel):
    """A semaphore as a wake-up "channel": end 0 releases, end 1 acquires."""

    name = SK_SEM

    def __init__(self) -> None:
        from ... import IPC_PRIVATE, Semaphore
        self.sem = Semaphore(key=IPC_PRIVATE, create=True, initial=0)

    def ends(self, side: int, size: int) -> Ends:
        rel = self.sem.release

        def send(data: Any) -> None:
            rel()
        return send, self.sem.acquire

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        acquire: Callable[..., Any] = self.sem.acquire
        if timeout is None:
            return acquire
        return functools.partial(acquire, timeout=timeout)

    def close(self) -> None:
        remove_quietly(self.sem)


def sem_pairs(stack: contextlib.ExitStack) -> List[Tuple[str, Loop, bool]]:
    """In-process acquire+release loops: (name, loop, is a reference)."""
    from ... import IPC_PRIVATE, Lock, Semaphore
    sem = Semaphore(key=IPC_PRIVATE, create=True, initial=1)
    stack.callback(sem.remove)
    lock = Lock(key=IPC_PRIVATE)
    stack.callback(lock.remove)
    out: List[Tuple[str, Loop, bool]] = [
        (SK_SEM, cycle_loop(sem.acquire, sem.release), False),
        (C_SEM, functools.partial(_core.bench_c_sem_pair, sem.id, flags=0), True),
        (SK_LOCK, cycle_loop(lock.acquire, lock.release), False),
    ]
    c_lock = getattr(_core, "bench_c_lock_pair", None)
    if c_lock is not None:    # exactly the calls Lock makes
        out.append((C_LOCK, functools.partial(c_lock, lock.id), True))
    else:
        out.append((C_SEM_UNDO, functools.partial(_core.bench_c_sem_pair, lock.id,
                                                  flags=_core.SEM_UNDO), True))
    return out


class SysvkitSegment(Segment):
    name = SK_SHM

    def __init__(self, size: int) -> None:
        from ... import IPC_PRIVATE, SharedMemory
        self.obj = SharedMemory(key=IPC_PRIVATE, create=True, size=size)
        self.buf = self.obj.buf
        self.ident = self.obj.id
        self.destroy = functools.partial(_core.shmctl, self.ident, _core.IPC_RMID)

    def open(self) -> Tuple[memoryview, Callable[[], None]]:
        from ... import SharedMemory
        shm = SharedMemory.from_id(self.ident)
        return shm.buf, shm.close

    def close(self) -> None:
        """Remove the segment first (which needs no detaching), then let go
        of the mapping; on an interrupted copy a frame may still hold a view
        of it, which then goes when the process does."""
        remove_quietly(self.obj)
        try:
            self.buf.release()
        except BufferError:
            return
        with contextlib.suppress(BufferError):
            self.obj.close()


IdleSetup = Callable[[contextlib.ExitStack, float], Callable[[], Any]]


def idle_waits() -> List[Tuple[str, IdleSetup]]:
    """(transport, setup(stack, timeout) -> a call that waits ``timeout`` s)."""
    from ... import IPC_PRIVATE, Lock, MessageQueue, Semaphore

    def sk_queue(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        q = MessageQueue(key=IPC_PRIVATE, create=True)
        stack.callback(q.remove)
        return expect_timeout(functools.partial(q.receive, timeout=t), TimeoutError)

    def sk_sem(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        s = Semaphore(key=IPC_PRIVATE, create=True, initial=0)
        stack.callback(s.remove)
        return expect_timeout(functools.partial(s.acquire, timeout=t))

    def sk_lock(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        lock = Lock(key=IPC_PRIVATE)
        stack.callback(lock.remove)
        lock.acquire()
        stack.callback(lock.release)
        return expect_timeout(functools.partial(lock.acquire, timeout=t))

    return [(SK_QUEUE, sk_queue), (SK_SEM, sk_sem), (SK_LOCK, sk_lock)]


def message_channels() -> List[Tuple[str, Callable[[], Channel]]]:
    """sysvkit's message transports, as (name, factory)."""
    return [(SK_QUEUE, SysvkitQueue)]


def wake_channels() -> List[Tuple[str, Callable[[], Channel]]]:
    """sysvkit's transports for the wake-up workload."""
    return [(SK_QUEUE, SysvkitQueue), (SK_SEM, SysvkitSemChannel)]


def segments() -> List[Callable[[int], Segment]]:
    """sysvkit's kinds of shared memory."""
    return [SysvkitSegment]


def idle_missing() -> List[Tuple[str, str]]:
    """Every sysvkit wait has a timeout."""
    return []
