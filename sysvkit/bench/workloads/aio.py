"""Workload "aio": the time from a send (release) in another process to the return of a waiting coroutine (``await q.areceive()``, ``await sem.aacquire()``), beside the blocking call's wake-up, a blocking call in run_in_executor, and asyncio's own wake-up on a pipe, measured in turns."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
from typing import Any, Callable, Dict, Iterator, List, Tuple

from ..runner import Loop, Result, Settings, armed, child, clock, latency

TITLE = "cross-process wake-up latency of the asyncio twins"

_STAMP = struct.Struct("d")

# The rows, in the order they run.
SK_RECEIVE = "MessageQueue.receive"
SK_ARECEIVE = "MessageQueue.areceive"
EXECUTOR = "run_in_executor(receive)"
SK_ACQUIRE = "Semaphore.acquire"
SK_AACQUIRE = "Semaphore.aacquire"
CH_RECEIVE = "Channel.receive"
CH_ARECEIVE = "Channel.areceive"
PIPE_READER = "pipe read in loop.add_reader"
TRANSPORTS = [SK_RECEIVE, SK_ARECEIVE, EXECUTOR, SK_ACQUIRE, SK_AACQUIRE, CH_RECEIVE,
              CH_ARECEIVE, PIPE_READER]


def _serve(qid: int, semid: int, readyid: int, stampid: int, chid: int,
           pipe_w: int) -> Callable[[], Loop]:
    """The child's side: for each round, once the parent says it is about to
    wait, pause, note the time and wake it (a message that carries the time,
    or a release followed by the time on another queue, or the time written
    to a pipe)."""
    def make() -> Loop:
        from ... import Channel, MessageQueue, Semaphore
        q, ready, stamps = (MessageQueue.from_id(i) for i in (qid, readyid, stampid))
        sem = Semaphore.from_id(semid)
        ch = Channel.from_id(chid)

        def loop(n: int) -> float:
            for _ in range(n):
                _, kind = ready.receive()
                time.sleep(0.002)       # let the waiter get blocked in the kernel
                t = clock()
                if kind == 1:
                    q.send(_STAMP.pack(t))
                elif kind == 3:
                    ch.send(_STAMP.pack(t))
                elif kind == 4:
                    os.write(pipe_w, _STAMP.pack(t))
                else:
                    sem.release()
                    stamps.send(_STAMP.pack(t))
            return 0.0
        return loop
    return make


def run(st: Settings) -> Iterator[Result]:
    """Rounds alternate between the blocking call and its twin on the same
    objects, so both see the same machine."""
    from ... import IPC_PRIVATE, Channel, MessageQueue, Semaphore
    w, g = "aio-wakeup", "aio"
    n = st.wake_samples + 4         # the first of each kind warm up
    with contextlib.ExitStack() as stack:
        q, ready, stamps = (MessageQueue(key=IPC_PRIVATE) for _ in range(3))
        sem = Semaphore(key=IPC_PRIVATE, initial=0)
        ch = Channel(key=IPC_PRIVATE, capacity=4096)
        for obj in (q, ready, stamps, sem, ch):
            stack.callback(obj.remove)
        stack.callback(ch.close)
        pipe_r, pipe_w = os.pipe()
        stack.callback(os.close, pipe_r)
        stack.callback(os.close, pipe_w)

        def blocking_receive() -> float:
            ready.send(b"", 1)
            data, _ = q.receive()
            return clock() - float(_STAMP.unpack(data)[0])

        def blocking_acquire() -> float:
            ready.send(b"", 2)
            sem.acquire()
            woke = clock()
            return woke - float(_STAMP.unpack(stamps.receive()[0])[0])

        async def async_receive() -> float:
            ready.send(b"", 1)
            data, _ = await q.areceive()
            return clock() - float(_STAMP.unpack(data)[0])

        async def executor_receive() -> float:
            # What users write without the twins (not safe under cancellation):
            # the floor of any design that waits in a thread.
            ready.send(b"", 1)
            data, _ = await asyncio.get_running_loop().run_in_executor(None, q.receive)
            return clock() - float(_STAMP.unpack(data)[0])

        async def async_acquire() -> float:
            ready.send(b"", 2)
            await sem.aacquire()
            woke = clock()
            return woke - float(_STAMP.unpack(stamps.receive()[0])[0])

        def blocking_channel() -> float:
            ready.send(b"", 3)
            data = ch.receive()
            return clock() - float(_STAMP.unpack(data)[0])

        async def async_channel() -> float:
            ready.send(b"", 3)
            data = await ch.areceive()
            return clock() - float(_STAMP.unpack(data)[0])

        async def pipe_reader() -> float:
            # asyncio's own wake-up on a file descriptor, with no thread:
            # the floor of any design that wakes the loop through one.
            loop = asyncio.get_running_loop()
            fut = loop.create_future()

            def readable() -> None:
                if not fut.done():
                    fut.set_result(os.read(pipe_r, 8))
            loop.add_reader(pipe_r, readable)
            try:
                ready.send(b"", 4)
                data = await fut
            finally:
                loop.remove_reader(pipe_r)
            return clock() - float(_STAMP.unpack(data)[0])

        kinds: List[Tuple[str, Callable[[], Any], bool]] = [
            (SK_RECEIVE, blocking_receive, False),
            (SK_ARECEIVE, async_receive, True),
            (EXECUTOR, executor_receive, True),
            (SK_ACQUIRE, blocking_acquire, False),
            (SK_AACQUIRE, async_acquire, True),
            (CH_RECEIVE, blocking_channel, False),
            (CH_ARECEIVE, async_channel, True),
            (PIPE_READER, pipe_reader, True),
        ]
        got: Dict[str, List[float]] = {name: [] for name, _, _ in kinds}

        async def rounds() -> None:
            for _ in range(n):
                for name, fn, is_async in kinds:
                    got[name].append(await fn() if is_async else fn())

        with child(st, serve=_serve(q.id, sem.id, ready.id, stamps.id, ch.id, pipe_w)) as other:
            other.send(("loop", n * len(kinds)))
            with armed():
                asyncio.run(rounds())
            other.recv()
    for name, _, _ in kinds:
        yield latency(w, g, name, got[name][4:], 1, reference=name in (EXECUTOR, PIPE_READER))
