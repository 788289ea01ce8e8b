"""The peers sysvkit is measured beside, and a private bytearray (the copy ceiling).

os.pipe, Unix sockets, TCP on 127.0.0.1, sysv_ipc, multiprocessing (Queue,
Lock, shared_memory) and, where installed, faster_fifo.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue as queue_mod
import select
import socket
from typing import Any, Callable, Dict, List, Optional, Tuple

from ... import _core
from ..optional import faster_fifo, sysv_ipc, sysv_ipc_sem_timeout
from ..runner import FORK, Loop, cycle_loop, opened
from .base import Channel, Ends, Segment, exact, expect_timeout, remove_quietly
from .own import SK_LOCK, SK_QUEUE, SK_SEM, SK_SHM

SI_QUEUE = "sysv_ipc.MessageQueue"
SI_SEM = "sysv_ipc.Semaphore"
SI_SHM = "sysv_ipc.SharedMemory"
PIPE = "os.pipe"
UNIX_STREAM = "unix stream socket"
UNIX_DGRAM = "unix datagram socket"
TCP = "tcp 127.0.0.1"
MP_QUEUE = "multiprocessing.Queue"
MP_LOCK = "multiprocessing.Lock"
MP_SHM = "multiprocessing.shared_memory"
FF_QUEUE = "faster_fifo.Queue"
PRIVATE = "private bytearray (reference)"

# The sysvkit transport each peer does the same work as (for the summary).
COUNTERPARTS: Dict[str, str] = {
    SI_QUEUE: SK_QUEUE, SI_SEM: SK_SEM, SI_SHM: SK_SHM, PIPE: SK_QUEUE, UNIX_STREAM: SK_QUEUE,
    UNIX_DGRAM: SK_QUEUE, TCP: SK_QUEUE, MP_QUEUE: SK_QUEUE, MP_LOCK: SK_LOCK, MP_SHM: SK_SHM,
    FF_QUEUE: SK_QUEUE, PRIVATE: SK_SHM,
}


# -- message channels ------------------------------------------------------------

class SysvIpcQueue(Channel):
    name = SI_QUEUE

    def __init__(self) -> None:
        from ... import limits
        self.msgmax = limits().msgmax
        # sysv_ipc caps messages at 2048 bytes unless told otherwise.
        self.q = sysv_ipc.MessageQueue(None, sysv_ipc.IPC_CREX, max_message_size=self.msgmax)

    def unsupported(self, size: int) -> Optional[str]:
        if size > self.msgmax:
            return "message larger than msgmax (%d)" % self.msgmax
        return None

    def ends(self, side: int, size: int) -> Ends:
        q = self.q
        out_type, in_type = (1, 2) if side == 0 else (2, 1)
        snd, rcv = q.send, q.receive

        def send(data: Any) -> None:
            snd(data, True, out_type)

        def recv() -> Any:
            return rcv(True, in_type)[0]
        return send, recv

    def pair(self, size: int) -> Ends:
        return self.q.send, self.q.receive

    def has_timeout(self) -> bool:
        return False   # sysv_ipc's receive() has no timeout

    def close(self) -> None:
        remove_quietly(self.q)


class PipeChannel(Channel):
    name = PIPE

    def __init__(self) -> None:
        self.fds: List[int] = []
        self.a = os.pipe()   # end 0 -> end 1
        self.fds.extend(self.a)
        self.b = os.pipe()   # end 1 -> end 0
        self.fds.extend(self.b)

    def ends(self, side: int, size: int) -> Ends:
        w = self.a[1] if side == 0 else self.b[1]
        r = self.b[0] if side == 0 else self.a[0]
        return functools.partial(os.write, w), exact(functools.partial(os.read, r), size)

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        recv = self.ends(side, size)[1]
        if timeout is None:
            return recv
        r = self.b[0] if side == 0 else self.a[0]

        def wait() -> Any:
            if not select.select([r], [], [], timeout)[0]:
                raise TimeoutError("pipe: timed out")
            return recv()
        return wait

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []


class SocketChannel(Channel):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.socks: List[socket.socket] = []
        if kind == "tcp":
            self.name = TCP
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                lsock.bind(("127.0.0.1", 0))
                lsock.listen(1)
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self.socks.append(c)
                c.connect(lsock.getsockname())
                s, _ = lsock.accept()
                self.socks.append(s)
            finally:
                lsock.close()
            for sock in self.socks:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.name = UNIX_STREAM if kind == "stream" else UNIX_DGRAM
            stype = socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM
            self.socks.extend(socket.socketpair(socket.AF_UNIX, stype))

    def ends(self, side: int, size: int) -> Ends:
        sock = self.socks[side]
        sock.settimeout(None)
        if self.kind == "dgram":
            return sock.send, functools.partial(sock.recv, size)
        return sock.sendall, exact(sock.recv, size)

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        recv = self.ends(side, size)[1]
        settimeout = self.socks[side].settimeout

        def wait() -> Any:
            settimeout(timeout)    # before the wait, so outside the measurement
            return recv()
        return wait

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


class MpQueueChannel(Channel):
    name = MP_QUEUE

    def __init__(self) -> None:
        self.queues = [FORK.Queue(), FORK.Queue()]   # to end 1, to end 0

    def ends(self, side: int, size: int) -> Ends:
        return self.queues[side].put, self.queues[1 - side].get

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        get = self.queues[1 - side].get
        if timeout is None:
            return get
        return functools.partial(get, True, timeout)

    def close(self) -> None:
        for q in self.queues:
            q.cancel_join_thread()
            q.close()


# faster_fifo waits only with a timeout: "no timeout" is one that never expires.
_FOREVER = 1e7


class FasterFifoChannel(Channel):
    name = FF_QUEUE

    def __init__(self) -> None:
        # Room for several of the largest messages (64 KiB) and their framing.
        self.queues = [faster_fifo.Queue(max_size_bytes=1 << 20),    # to end 1
                       faster_fifo.Queue(max_size_bytes=1 << 20)]    # to end 0

    def ends(self, side: int, size: int) -> Ends:
        return (functools.partial(self.queues[side].put, block=True, timeout=_FOREVER),
                functools.partial(self.queues[1 - side].get, True, _FOREVER))

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        return functools.partial(self.queues[1 - side].get, True,
                                 _FOREVER if timeout is None else timeout)

    def close(self) -> None:
        for q in self.queues:
            q.close()


class SysvIpcSemChannel(Channel):
    """A sysv_ipc semaphore as a wake-up "channel": end 0 releases, end 1 acquires."""

    name = SI_SEM
    no_timeout = "no wait with a timeout in this build"

    def __init__(self) -> None:
        self.sem = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=0)

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

    def has_timeout(self) -> bool:
        return sysv_ipc_sem_timeout()

    def close(self) -> None:
        remove_quietly(self.sem)


def message_channels() -> List[Tuple[str, Callable[[], Channel]]]:
    """The peers' message transports available here, as (name, factory)."""
    out: List[Tuple[str, Callable[[], Channel]]] = []
    if sysv_ipc is not None:
        out.append((SI_QUEUE, SysvIpcQueue))
    out += [
        (PIPE, PipeChannel),
        (UNIX_STREAM, functools.partial(SocketChannel, "stream")),
        (UNIX_DGRAM, functools.partial(SocketChannel, "dgram")),
        (TCP, functools.partial(SocketChannel, "tcp")),
        (MP_QUEUE, MpQueueChannel),
    ]
    if faster_fifo is not None:
        out.append((FF_QUEUE, FasterFifoChannel))
    return out


def wake_channels() -> List[Tuple[str, Callable[[], Channel]]]:
    """The peers' transports for the wake-up workload: the message ones and
    sysv_ipc's semaphore."""
    out = message_channels()
    if sysv_ipc is not None:
        out.insert(1, (SI_SEM, SysvIpcSemChannel))
    return out


# -- semaphores and locks --------------------------------------------------------

def sem_pairs(stack: contextlib.ExitStack) -> List[Tuple[str, Loop, bool]]:
    """In-process acquire+release loops: (name, loop, is a reference)."""
    out: List[Tuple[str, Loop, bool]] = []
    if sysv_ipc is not None:
        si = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=1)
        stack.callback(si.remove)
        out.append((SI_SEM, cycle_loop(si.acquire, si.release), False))
    mp_lock = FORK.Lock()
    out.append((MP_LOCK, cycle_loop(mp_lock.acquire, mp_lock.release), False))
    return out


# -- shared memory ---------------------------------------------------------------

class SysvIpcSegment(Segment):
    name = SI_SHM

    def __init__(self, size: int) -> None:
        self.obj = sysv_ipc.SharedMemory(None, sysv_ipc.IPC_CREX, size=size)
        self.buf = memoryview(self.obj)
        self.destroy = functools.partial(_core.shmctl, self.obj.id, _core.IPC_RMID)

    def open(self) -> Tuple[memoryview, Callable[[], None]]:
        shm = sysv_ipc.SharedMemory(self.obj.key)
        return memoryview(shm), shm.detach

    def close(self) -> None:
        remove_quietly(self.obj)
        try:
            self.buf.release()
        except BufferError:
            return
        with contextlib.suppress(BufferError):
            self.obj.detach()


POSIX_SHM_PREFIX = "psm_sysvkit_bench_"


def posix_shm_name() -> str:
    """A name for a POSIX segment of the bench: the prefix, the creating
    process's pid (so a leftover can be told from a live run's), a random tail."""
    return "%s%d_%s" % (POSIX_SHM_PREFIX, os.getpid(), os.urandom(4).hex())


def _unlink_posix_shm(name: str) -> None:
    from multiprocessing import shared_memory
    shared_memory.SharedMemory(name=name).unlink()


class MpSegment(Segment):
    name = MP_SHM

    def __init__(self, size: int) -> None:
        from multiprocessing import shared_memory
        self.obj = shared_memory.SharedMemory(name=posix_shm_name(), create=True, size=size)
        assert self.obj.buf is not None
        self.buf = self.obj.buf
        self.destroy = functools.partial(_unlink_posix_shm, self.obj.name)

    def open(self) -> Tuple[memoryview, Callable[[], None]]:
        from multiprocessing import shared_memory
        # A forked child shares the parent's resource tracker, where the name is
        # already registered; the parent unlinks it (and unregisters it) at the end.
        shm = shared_memory.SharedMemory(name=self.obj.name)
        assert shm.buf is not None
        return shm.buf, shm.close

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.obj.unlink()
        try:
            self.buf.release()
        except BufferError:
            # Its __del__ would try (and fail, noisily) to unmap it again.
            self.obj.close = lambda: None   # type: ignore[method-assign]
            return
        with contextlib.suppress(BufferError):
            self.obj.close()


class PrivateBuffer(Segment):
    """Private memory: the same copies without sharing, as a ceiling."""

    name = PRIVATE
    reference = True

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size
        self.buf = memoryview(bytearray(size))

    def open(self) -> Tuple[memoryview, Callable[[], None]]:
        buf = memoryview(bytearray(self.size))
        return buf, buf.release

    def close(self) -> None:
        with contextlib.suppress(BufferError):
            self.buf.release()


def segments() -> List[Callable[[int], Segment]]:
    """The peers' kinds of shared memory available here (PRIVATE last)."""
    out: List[Callable[[int], Segment]] = []
    if sysv_ipc is not None:
        out.append(SysvIpcSegment)
    return out + [MpSegment, PrivateBuffer]


# -- idle waits ------------------------------------------------------------------

def idle_waits() -> List[Tuple[str, Callable[[contextlib.ExitStack, float], Callable[[], Any]]]]:
    """(transport, setup(stack, timeout) -> a call that waits ``timeout`` s)."""

    def si_sem(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        s = sysv_ipc.Semaphore(None, sysv_ipc.IPC_CREX, initial_value=0)
        stack.callback(s.remove)
        return expect_timeout(functools.partial(s.acquire, t), sysv_ipc.BusyError)

    def pipe(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        ch = stack.enter_context(opened(PipeChannel))
        return expect_timeout(ch.waiter(1, 16, t), TimeoutError)

    def sock(kind: str) -> Callable[[contextlib.ExitStack, float], Callable[[], Any]]:
        def setup(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
            ch = stack.enter_context(opened(functools.partial(SocketChannel, kind)))
            return expect_timeout(ch.waiter(1, 16, t), socket.timeout, TimeoutError)
        return setup

    def mp_queue(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        ch = stack.enter_context(opened(MpQueueChannel))
        return expect_timeout(ch.waiter(1, 16, t), queue_mod.Empty)

    def ff_queue(stack: contextlib.ExitStack, t: float) -> Callable[[], Any]:
        ch = stack.enter_context(opened(FasterFifoChannel))
        return expect_timeout(ch.waiter(1, 16, t), queue_mod.Empty)

    out: List[Tuple[str, Callable[[contextlib.ExitStack, float], Callable[[], Any]]]] = []
    if sysv_ipc_sem_timeout():
        out.append((SI_SEM, si_sem))
    out += [(PIPE, pipe), (UNIX_STREAM, sock("stream")), (UNIX_DGRAM, sock("dgram")),
            (TCP, sock("tcp")), (MP_QUEUE, mp_queue)]
    if faster_fifo is not None:
        out.append((FF_QUEUE, ff_queue))
    return out


def idle_missing() -> List[Tuple[str, str]]:
    """(transport, why) of the peers whose waits have no timeout here."""
    out: List[Tuple[str, str]] = []
    if sysv_ipc is not None:
        out.append((SI_QUEUE, "sysv_ipc's receive() has no timeout"))
        if not sysv_ipc_sem_timeout():
            out.append((SI_SEM, "this sysv_ipc build has no acquire() timeout"))
    return out
