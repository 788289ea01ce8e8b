"""The asyncio twins (SPEC.md "asyncio"): for every class, the same results
and exceptions as the blocking calls, an event loop that keeps running,
cancellation that ends a wait within 0.1 s and consumes nothing, idle waits
that cost nothing, worker threads that go away, and wake-ups from other
processes (fork and spawn)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import signal
import textwrap
import threading
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import pytest

import sysvkit
from sysvkit import (IPC_PRIVATE, Channel, Event, Lock, MessageQueue, Mutex, RemovedError,
                     RWLock, Semaphore, SemaphoreSet)
from sysvkit import _aio
from sysvkit import lowlevel as ll

METHODS = ["fork", "spawn"]
PROMPT = 0.1            # a cancelled wait ends within this (SPEC)


def run(coro: Awaitable[Any], timeout: float = 30) -> Any:
    """asyncio.run with a safety net: a test that would hang fails instead."""
    async def main() -> Any:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(main())


def outcome(fn: Callable[[], Any]) -> Tuple[Any, ...]:
    """("ok", result) or ("raise", type, message) of a blocking call."""
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: B902 - compared by the test
        return ("raise", type(exc), str(exc))


async def aoutcome(coro: Awaitable[Any]) -> Tuple[Any, ...]:
    try:
        return ("ok", await coro)
    except Exception as exc:  # noqa: B902
        return ("raise", type(exc), str(exc))


def start(method: str, code: str, *args: Any) -> Any:
    """A process (fork or spawn) running ``code`` with ARGS = args."""
    ctx = multiprocessing.get_context(method)
    proc = ctx.Process(target=exec, args=(textwrap.dedent(code), {"ARGS": args}))
    proc.start()
    return proc


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %s s" % timeout
        time.sleep(0.002)


class Holder(threading.Thread):
    """A thread that holds a Mutex until told to let go."""

    def __init__(self, m: Mutex) -> None:
        super().__init__(daemon=True)
        self.m = m
        self.held = threading.Event()
        self.go = threading.Event()

    def run(self) -> None:
        self.m.acquire()
        self.held.set()
        self.go.wait(30)
        self.m.release()


# -- one "case" per blocking call and its twin -------------------------------------------
class Case:
    """A blocking call and its twin on an object set up so that they wait.

    wait(**kw): the coroutine; blocking(**kw): the blocking call;
    feed(): let one wait proceed (safe on the loop's thread);
    check_done(result): what a completed wait returns and leaves;
    check_untouched(): after a cancelled wait and then feed(), nothing was
    consumed; timed_out: what both return on timeout; nonblocking: kwargs
    of the non-blocking form.
    """

    name = ""
    nonblocking: Dict[str, Any] = {}
    timeout_exc: type = TimeoutError        # what both raise on timeout
    nonblock_exc: type = BlockingIOError    # ... and when they would wait

    def __init__(self, ipc: Any) -> None:
        self.ipc = ipc

    def teardown(self) -> None:
        pass

    def settle(self) -> None:
        """After feed(), outside the loop: until what it started is done."""


class Receive(Case):
    name = "MessageQueue.areceive"
    nonblocking = {"block": False}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.q = ipc.new(MessageQueue, key=IPC_PRIVATE)

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.q.areceive(**kw)

    def blocking(self, **kw: Any) -> Any:
        return self.q.receive(**kw)

    def feed(self) -> None:
        self.q.send(b"fed", 7)

    def check_done(self, result: Any) -> None:
        assert result == (b"fed", 7) and len(self.q) == 0

    def check_untouched(self) -> None:
        assert len(self.q) == 1 and self.q.receive(block=False) == (b"fed", 7)


class Send(Case):
    name = "MessageQueue.asend"
    nonblocking = {"block": False}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.q = ipc.new(MessageQueue, key=IPC_PRIVATE, max_bytes=8)
        self.q.send(b"12345678", 1)       # full

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.q.asend(b"abcdefgh", 2, **kw)

    def blocking(self, **kw: Any) -> Any:
        return self.q.send(b"abcdefgh", 2, **kw)

    def feed(self) -> None:
        self.q.receive(1)

    def check_done(self, result: Any) -> None:
        assert result is None and self.q.receive(block=False) == (b"abcdefgh", 2)

    def check_untouched(self) -> None:
        assert len(self.q) == 0


class Op(Case):
    name = "SemaphoreSet.aop"
    nonblocking = {"block": False}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.s = ipc.new(SemaphoreSet, key=IPC_PRIVATE, count=2, initial=[0, 1])

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.s.aop([(0, -1), (1, -1)], **kw)

    def blocking(self, **kw: Any) -> Any:
        return self.s.op([(0, -1), (1, -1)], **kw)

    def feed(self) -> None:
        self.s.op([(0, 1)])

    def check_done(self, result: Any) -> None:
        assert result is None and self.s.values() == [0, 0]

    def check_untouched(self) -> None:
        assert self.s.values() == [1, 1]


class LongOp(Op):
    """More operations than one semop can probe together with their
    inverses (semopm): the worker makes the semop itself."""
    name = "SemaphoreSet.aop (long)"

    def __init__(self, ipc: Any) -> None:
        Case.__init__(self, ipc)
        self.obj = self.s = ipc.new(SemaphoreSet, key=IPC_PRIVATE, count=1, initial=0)
        self.n = self.s._semopm // 2 + 1

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.s.aop([(0, -1)] * self.n, **kw)

    def blocking(self, **kw: Any) -> Any:
        return self.s.op([(0, -1)] * self.n, **kw)

    def feed(self) -> None:
        self.s.set_values([self.n])

    def check_done(self, result: Any) -> None:
        assert result is None and self.s.values() == [0]

    def check_untouched(self) -> None:
        assert self.s.values() == [self.n]


class Acquire(Case):
    name = "Semaphore.aacquire"
    nonblocking = {"blocking": False}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.sem = ipc.new(Semaphore, key=IPC_PRIVATE, initial=0)

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.sem.aacquire(**kw)

    def blocking(self, **kw: Any) -> Any:
        return self.sem.acquire(**kw)

    def feed(self) -> None:
        self.sem.release()

    def check_done(self, result: Any) -> None:
        assert result is True and self.sem.value == 0

    def check_untouched(self) -> None:
        assert self.sem.value == 1


class WaitZero(Case):
    name = "Semaphore.await_zero"
    nonblocking = {"timeout": 0}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.sem = ipc.new(Semaphore, key=IPC_PRIVATE, initial=1)

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.sem.await_zero(**kw)

    def blocking(self, **kw: Any) -> Any:
        return self.sem.wait_zero(**kw)

    def feed(self) -> None:
        self.sem.value = 0

    def check_done(self, result: Any) -> None:
        assert result is True and self.sem.value == 0

    def check_untouched(self) -> None:
        assert self.sem.value == 0 and self.sem.waiting_for_zero == 0


class LockAcquire(Case):
    name = "Lock.aacquire"
    nonblocking = {"blocking": False}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.lock = ipc.new(Lock, *ipc.path())
        assert self.lock.acquire()

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.lock.aacquire(**kw)

    def blocking(self, **kw: Any) -> Any:
        return self.lock.acquire(**kw)

    def feed(self) -> None:
        self.lock.release()

    def check_done(self, result: Any) -> None:
        assert result is True and self.lock.locked()
        self.lock.release()

    def check_untouched(self) -> None:
        assert not self.lock.locked()


class MutexAcquire(Case):
    name = "Mutex.aacquire"
    nonblocking = {"blocking": False}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.m = ipc.new(Mutex, key=IPC_PRIVATE)
        self.holder = Holder(self.m)
        self.holder.start()
        assert self.holder.held.wait(10)

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.m.aacquire(**kw)

    def blocking(self, **kw: Any) -> Any:
        return self.m.acquire(**kw)

    def feed(self) -> None:
        self.holder.go.set()

    def settle(self) -> None:
        self.holder.join(10)

    def check_done(self, result: Any) -> None:
        assert result is True and self.m.locked() and self.m.owner_died is False
        self.holder.join(10)
        self.m.release()

    def check_untouched(self) -> None:
        self.holder.join(10)
        assert not self.m.locked()

    def teardown(self) -> None:
        self.holder.go.set()
        self.holder.join(10)


class ReadAcquire(Case):
    name = "RWLock.aacquire_read"
    nonblocking = {"blocking": False}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.rw = ipc.new(RWLock, *ipc.path())
        assert self.rw.acquire_write()

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.rw.aacquire_read(**kw)

    def blocking(self, **kw: Any) -> Any:
        return self.rw.acquire_read(**kw)

    def feed(self) -> None:
        self.rw.release_write()

    def check_done(self, result: Any) -> None:
        assert result is True and self.rw.readers == 1 and self.rw._held == (1, 0)
        self.rw.release_read()

    def check_untouched(self) -> None:
        assert self.rw.readers == 0 and not self.rw.writing and self.rw._held == (0, 0)


class WriteAcquire(Case):
    name = "RWLock.aacquire_write"
    nonblocking = {"blocking": False}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.rw = ipc.new(RWLock, *ipc.path())
        assert self.rw.acquire_read()

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.rw.aacquire_write(**kw)

    def blocking(self, **kw: Any) -> Any:
        return self.rw.acquire_write(**kw)

    def feed(self) -> None:
        self.rw.release_read()

    def check_done(self, result: Any) -> None:
        assert result is True and self.rw.writing and self.rw.waiting_writers == 0
        self.rw.release_write()

    def check_untouched(self) -> None:
        assert not self.rw.writing and self.rw.waiting_writers == 0
        assert self.rw._held == (0, 0)


class EventWait(Case):
    name = "Event.await_set"
    nonblocking = {"timeout": 0}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.ev = ipc.new(Event, *ipc.path())

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.ev.await_set(**kw)

    def blocking(self, **kw: Any) -> Any:
        return self.ev.wait(**kw)

    def feed(self) -> None:
        self.ev.set()

    def check_done(self, result: Any) -> None:
        assert result is True and self.ev.is_set()

    def check_untouched(self) -> None:
        assert self.ev.is_set() and ll.semctl(self.ev.id, 0, ll.GETZCNT) == 0


class ChanReceive(Case):
    name = "Channel.areceive"
    nonblocking = {"block": False}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.ch = ipc.new(Channel, key=IPC_PRIVATE, capacity=256)

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.ch.areceive(**kw)

    def blocking(self, **kw: Any) -> Any:
        return self.ch.receive(**kw)

    def feed(self) -> None:
        self.ch.send(b"fed")

    def check_done(self, result: Any) -> None:
        assert result == b"fed" and len(self.ch) == 0

    def check_untouched(self) -> None:
        assert len(self.ch) == 1 and self.ch.receive(block=False) == b"fed"


class ChanReceiveInto(ChanReceive):
    name = "Channel.areceive_into"

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.buf = bytearray(8)

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.ch.areceive_into(self.buf, **kw)

    def blocking(self, **kw: Any) -> Any:
        return self.ch.receive_into(self.buf, **kw)

    def check_done(self, result: Any) -> None:
        assert result == 3 and self.buf[:3] == b"fed" and len(self.ch) == 0


class ChanReceiveMany(ChanReceive):
    name = "Channel.areceive_many"

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.ch.areceive_many(5, **kw)

    def blocking(self, **kw: Any) -> Any:
        return self.ch.receive_many(5, **kw)

    def check_done(self, result: Any) -> None:
        assert result == [b"fed"] and len(self.ch) == 0


class ChanSend(Case):
    name = "Channel.asend"
    nonblocking = {"block": False}

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.ch = ipc.new(Channel, key=IPC_PRIVATE, capacity=64)
        while True:
            try:
                self.ch.send(b"f" * 8, block=False)
            except BlockingIOError:
                break
        self.full = len(self.ch)

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.ch.asend(b"new", **kw)

    def blocking(self, **kw: Any) -> Any:
        return self.ch.send(b"new", **kw)

    def feed(self) -> None:
        self.ch.receive()

    def check_done(self, result: Any) -> None:
        assert result is None and len(self.ch) == self.full
        assert self.ch.receive_many(100)[-1] == b"new"

    def check_untouched(self) -> None:
        assert len(self.ch) == self.full - 1
        assert b"new" not in self.ch.receive_many(100)


class ChanSendMany(ChanSend):
    name = "Channel.asend_many"

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.ch.asend_many([b"new"], **kw)

    def blocking(self, **kw: Any) -> Any:
        return self.ch.send_many([b"new"], **kw)

    def check_done(self, result: Any) -> None:
        assert result == 1 and len(self.ch) == self.full
        assert self.ch.receive_many(100)[-1] == b"new"



class QueueGet(Case):
    name = "Queue.aget"
    nonblocking = {"block": False}
    timeout_exc = nonblock_exc = queue.Empty

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.q = ipc.new(sysvkit.Queue, key=IPC_PRIVATE, capacity=4096)

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.q.aget(**kw)

    def blocking(self, **kw: Any) -> Any:
        return self.q.get(**kw)

    def feed(self) -> None:
        self.q.put(("fed", 1))

    def check_done(self, result: Any) -> None:
        assert result == ("fed", 1) and self.q.qsize() == 0

    def check_untouched(self) -> None:
        assert self.q.qsize() == 1 and self.q.get(block=False) == ("fed", 1)


class QueuePut(Case):
    name = "Queue.aput"
    nonblocking = {"block": False}
    timeout_exc = nonblock_exc = queue.Full

    def __init__(self, ipc: Any) -> None:
        super().__init__(ipc)
        self.obj = self.q = ipc.new(sysvkit.Queue, key=IPC_PRIVATE, capacity=256)
        while True:
            try:
                self.q.put("f", block=False)
            except queue.Full:
                break
        self.full = self.q.qsize()

    def wait(self, **kw: Any) -> Awaitable[Any]:
        return self.q.aput("new", **kw)

    def blocking(self, **kw: Any) -> Any:
        return self.q.put("new", **kw)

    def feed(self) -> None:
        self.q.get()

    def check_done(self, result: Any) -> None:
        assert result is None and self.q.qsize() == self.full
        got = [self.q.get(block=False) for _ in range(self.full)]
        assert got[-1] == "new"

    def check_untouched(self) -> None:
        assert self.q.qsize() == self.full - 1
        assert "new" not in [self.q.get(block=False) for _ in range(self.full - 1)]


CASES = [Receive, Send, Op, LongOp, Acquire, WaitZero, LockAcquire, MutexAcquire,
         ReadAcquire, WriteAcquire, EventWait, ChanReceive, ChanReceiveInto, ChanReceiveMany,
         ChanSend, ChanSendMany, QueueGet, QueuePut]
IDS = [c.name for c in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def case(request: Any, ipc: Any) -> Any:
    c = request.param(ipc)
    try:
        yield c
    finally:
        c.teardown()


# -- the loop runs, and the wait ends when fed ------------------------------------------------
async def ticker(gaps: List[float], stop: asyncio.Event) -> None:
    last = time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.monotonic()
        gaps.append(now - last)
        last = now


def test_loop_keeps_running_and_wait_completes(case: Case) -> None:
    async def main() -> Any:
        gaps: List[float] = []
        stop = asyncio.Event()
        tick = asyncio.ensure_future(ticker(gaps, stop))
        waits = asyncio.ensure_future(case.wait())
        await asyncio.sleep(0.3)
        assert not waits.done()
        t0 = time.monotonic()
        case.feed()
        result = await waits
        woke = time.monotonic() - t0
        stop.set()
        await tick
        return result, woke, gaps

    result, woke, gaps = run(main())
    case.check_done(result)
    assert woke < 0.5
    assert len(gaps) > 20 and max(gaps) < 0.1, "the loop stalled for %.3f s" % max(gaps)


@pytest.mark.slow
def test_wait_sleeps_in_the_kernel(case: Case) -> None:
    """Idle costs nothing: a coroutine waiting a second uses almost no CPU."""
    async def main() -> float:
        waits = asyncio.ensure_future(case.wait())
        await asyncio.sleep(0.1)
        cpu0 = time.process_time()
        await asyncio.sleep(1.0)
        cpu = time.process_time() - cpu0
        case.feed()
        case.check_done(await waits)
        return cpu

    assert run(main()) < 0.05


def test_cancel_ends_the_wait_promptly_and_consumes_nothing(case: Case) -> None:
    async def main() -> float:
        waits = asyncio.ensure_future(case.wait())
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        waits.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waits
        took = time.monotonic() - t0
        case.feed()                     # after the cancel: nobody may take it
        await asyncio.sleep(0.2)
        return took

    took = run(main())
    assert took < PROMPT
    case.check_untouched()


def test_wait_for_times_out_promptly_and_consumes_nothing(case: Case) -> None:
    async def main() -> float:
        t0 = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(case.wait(), 0.2)
        took = time.monotonic() - t0
        case.feed()
        await asyncio.sleep(0.2)
        return took

    took = run(main())
    assert 0.2 <= took < 0.2 + PROMPT
    case.check_untouched()


@pytest.mark.slow
@pytest.mark.parametrize("cls", CASES, ids=IDS)
def test_cancel_racing_the_wake_up_loses_nothing(cls: Any, ipc: Any) -> None:
    """Cancel at about the instant the object becomes ready, many times:
    either the wait completed (and took what it reports) or it was
    cancelled and took nothing, never a mix."""
    for i in range(25):
        case = cls(ipc)
        try:
            async def main() -> Any:
                loop = asyncio.get_running_loop()
                waits = asyncio.ensure_future(case.wait())
                await asyncio.sleep(0.01 + (i % 5) * 0.001)
                first, second = (case.feed, waits.cancel) if i % 2 else (waits.cancel, case.feed)
                loop.call_soon(first)
                loop.call_later(0.0005 * (i % 3), second)
                try:
                    return ("done", await waits)
                except asyncio.CancelledError:
                    await asyncio.sleep(0.05)   # a late taker would show now
                    return ("cancelled",)

            got = run(main())
            if got[0] == "done":
                case.settle()
                case.check_done(got[1])
            else:
                case.check_untouched()
        finally:
            case.teardown()
            ipc.cleanup()


def test_timeout_equals_the_blocking_call(case: Case) -> None:
    want = outcome(lambda: case.blocking(timeout=0.05))
    t0 = time.monotonic()
    got = run(aoutcome(case.wait(timeout=0.05)))
    took = time.monotonic() - t0
    assert got == want
    assert want[0] == "raise" and want[1] is case.timeout_exc or want == ("ok", False)
    assert 0.05 <= took < 0.05 + PROMPT
    # and a zero timeout tries once
    assert run(aoutcome(case.wait(timeout=0))) == outcome(lambda: case.blocking(timeout=0))


def test_nonblocking_equals_the_blocking_call(case: Case) -> None:
    want = outcome(lambda: case.blocking(**case.nonblocking))
    assert want[0] == "raise" and want[1] is case.nonblock_exc or want == ("ok", False)
    assert run(aoutcome(case.wait(**case.nonblocking))) == want
    case.feed()
    case.settle()
    got = run(case.wait(**case.nonblocking))
    case.check_done(got)


def test_no_wait_needed_returns_at_once(case: Case) -> None:
    case.feed()
    case.settle()
    t0 = time.monotonic()
    result = run(case.wait())
    assert time.monotonic() - t0 < 0.5
    case.check_done(result)


def test_bad_arguments_equal_the_blocking_call(case: Case) -> None:
    for kw in ({"timeout": -1.5}, {"timeout": float("nan")}, {"timeout": "1"}):
        want = outcome(lambda: case.blocking(**kw))
        assert want[0] == "raise" and want[1] in (TypeError, ValueError), (kw, want)
        assert run(aoutcome(case.wait(**kw))) == want, kw


def test_closed_object_equals_the_blocking_call(case: Case) -> None:
    if isinstance(case, MutexAcquire):
        case.teardown()
        case.m.close()
    else:
        case.obj.close()
    want = outcome(case.blocking)
    assert want[0] == "raise" and want[1] is ValueError
    assert run(aoutcome(case.wait())) == want


REMOVABLE = [c for c in CASES if c is not MutexAcquire]


@pytest.mark.parametrize("cls", REMOVABLE, ids=[c.name for c in REMOVABLE])
def test_removed_while_waiting_raises_removed_error(cls: Any, ipc: Any) -> None:
    case = cls(ipc)

    async def main() -> Tuple[Any, ...]:
        waits = asyncio.ensure_future(aoutcome(case.wait()))
        await asyncio.sleep(0.2)
        case.obj.remove()
        return await asyncio.wait_for(waits, 5)

    got = run(main())
    assert got[0] == "raise" and got[1] is RemovedError, got
    assert outcome(case.blocking) == got


# -- many waits, and the threads go away -----------------------------------------------------
def test_thousand_waits_on_thousand_queues_and_threads_go_away(ipc: Any) -> None:
    n = 1000
    wait_until(lambda: _aio.threads() == 0, 5)     # the idle ones of earlier tests
    baseline = threading.active_count()
    queues = [ipc.new(MessageQueue, key=IPC_PRIVATE) for _ in range(n)]
    peak = [0]

    async def main() -> List[Any]:
        tasks = [asyncio.ensure_future(q.areceive()) for q in queues]
        await asyncio.sleep(0.5)
        peak[0] = threading.active_count()
        assert not any(t.done() for t in tasks)
        for i, q in enumerate(queues):
            q.send(b"%d" % i)
        return await asyncio.wait_for(asyncio.gather(*tasks), 20)

    results = run(main())
    assert results == [(b"%d" % i, 1) for i in range(n)]
    assert all(len(q) == 0 for q in queues)
    assert peak[0] <= baseline + _aio.MAX_THREADS
    wait_until(lambda: threading.active_count() <= baseline and _aio.threads() == 0, 5)


def test_many_waits_cancelled_leave_every_message(ipc: Any) -> None:
    """Waits beyond the pool's threads, in time slices, cancel as promptly."""
    n = 3 * _aio.MAX_THREADS
    queues = [ipc.new(MessageQueue, key=IPC_PRIVATE) for _ in range(n)]

    async def main() -> float:
        tasks = [asyncio.ensure_future(q.areceive()) for q in queues]
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        took = time.monotonic() - t0
        for q in queues:
            q.send(b"later")
        await asyncio.sleep(0.2)
        return took

    assert run(main()) < PROMPT
    assert [len(q) for q in queues] == [1] * n


def test_worker_threads_are_reused(ipc: Any) -> None:
    q = ipc.new(MessageQueue, key=IPC_PRIVATE)
    wait_until(lambda: _aio.threads() == 0, 5)     # the idle ones of earlier tests

    async def main() -> int:
        loop = asyncio.get_running_loop()
        most = 0
        for i in range(50):
            loop.call_later(0.002, q.send, b"x")
            assert await q.areceive() == (b"x", 1)
            most = max(most, _aio.threads())
        return most

    # 50 waits one after another: a few workers at most (one may still be
    # letting go when the next wait starts on a loaded machine), not 50.
    assert run(main()) <= 4


# -- MessageQueue details ------------------------------------------------------------------------
def test_receive_arguments_and_results_equal_the_blocking_call(ipc: Any) -> None:
    q = ipc.new(MessageQueue, key=IPC_PRIVATE)

    async def fed(kw: Dict[str, Any], msgs: List[Tuple[bytes, int]]) -> Tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        for data, t in msgs:
            loop.call_later(0.05, q.send, data, t)
        return await aoutcome(q.areceive(**kw))

    def blocking(kw: Dict[str, Any], msgs: List[Tuple[bytes, int]]) -> Tuple[Any, ...]:
        for data, t in msgs:
            q.send(data, t)
        return outcome(lambda: q.receive(**kw))

    cases = [
        ({"type": 5}, [(b"five", 5)]),
        ({"type": 3, "except_type": True}, [(b"four", 4)]),
        ({"type": -3}, [(b"two", 2)]),
        ({"max_size": 2}, [(b"long one", 1)]),
        ({"max_size": 4, "truncate": True}, [(b"truncated", 1)]),
        ({}, [(b"", 9)]),                           # a 0-byte message is a message
        ({"type": 0, "except_type": True}, []),
        ({"type": "1"}, []),
    ]
    for kw, msgs in cases:
        while len(q):
            q.receive()
        want = blocking(kw, msgs)
        while len(q):
            q.receive()
        got = run(fed(kw, msgs))
        assert got == want, (kw, got, want)
    while len(q):
        q.receive()


def test_receive_waits_for_its_type_only(ipc: Any) -> None:
    q = ipc.new(MessageQueue, key=IPC_PRIVATE)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, q.send, b"other", 1)
        loop.call_later(0.15, q.send, b"mine", 2)
        return await q.areceive(2)

    assert run(main()) == (b"mine", 2)
    assert q.receive(block=False) == (b"other", 1)


def test_send_arguments_equal_the_blocking_call(ipc: Any) -> None:
    q = ipc.new(MessageQueue, key=IPC_PRIVATE, max_bytes=8)
    for args, kw in [(("text",), {}), ((b"x", 0), {}), ((b"x" * 9,), {}),
                     ((b"x", "1"), {}), ((b"x",), {"timeout": -1})]:
        want = outcome(lambda: q.send(*args, **kw))
        assert want[0] == "raise"
        assert run(aoutcome(q.asend(*args, **kw))) == want, (args, kw)
    assert len(q) == 0


def test_send_memoryview_and_bytearray(ipc: Any) -> None:
    q = ipc.new(MessageQueue, key=IPC_PRIVATE, max_bytes=4)
    q.send(b"full")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, q.receive)
        await q.asend(memoryview(bytearray(b"abcdefgh"))[::2])
        loop.call_later(0.05, q.receive)
        await q.asend(bytearray(b"wxyz"), 3)

    run(main())
    assert q.receive() == (b"wxyz", 3)


def test_cancelled_receive_leaves_an_empty_message(ipc: Any) -> None:
    """A probe takes a 0-byte message; cancelled as it did, it puts it back."""
    q = ipc.new(MessageQueue, key=IPC_PRIVATE)
    for _ in range(20):
        async def main() -> Any:
            loop = asyncio.get_running_loop()
            waits = asyncio.ensure_future(q.areceive())
            await asyncio.sleep(0.01)
            loop.call_soon(q.send, b"", 4)
            loop.call_soon(waits.cancel)
            try:
                return await waits
            except asyncio.CancelledError:
                return None

        got = run(main())
        if got is None:
            assert q.receive(block=False) == (b"", 4)
        else:
            assert got == (b"", 4)
        assert len(q) == 0


# -- Mutex details ---------------------------------------------------------------------------------
def test_mutex_tasks_take_turns(ipc: Any) -> None:
    m = ipc.new(Mutex, key=IPC_PRIVATE)
    order: List[str] = []

    async def task(name: str) -> None:
        async with m:
            order.append(name + "+")
            await asyncio.sleep(0.02)
            order.append(name + "-")

    async def main() -> None:
        await asyncio.gather(*(task(str(i)) for i in range(5)))

    run(main())
    assert len(order) == 10
    assert all(order[i][:-1] == order[i + 1][:-1] for i in range(0, 10, 2))
    assert not m.locked()


def test_mutex_same_task_again_raises(ipc: Any) -> None:
    m = ipc.new(Mutex, key=IPC_PRIVATE)

    async def main() -> None:
        async with m:
            with pytest.raises(RuntimeError):
                await m.aacquire()
            assert await m.aacquire(False) is False

    run(main())
    assert not m.locked()


@pytest.mark.parametrize("method", METHODS)
def test_mutex_holder_killed_wakes_with_owner_died(ipc: Any, method: str) -> None:
    m = ipc.new(Mutex, key=IPC_PRIVATE)
    child = start(method, """
        import os, signal, sysvkit, time
        m = sysvkit.Mutex.from_id(ARGS[0])
        m.acquire()
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGKILL)
    """, m.id)
    try:
        wait_until(m.locked, 20)

        async def main() -> Tuple[bool, bool]:
            got = await m.aacquire(timeout=20)
            return got, m.owner_died

        assert run(main()) == (True, True)
        m.release()
    finally:
        child.join(20)
        if child.is_alive():
            child.kill()
    assert child.exitcode == -signal.SIGKILL


def test_mutex_closed_while_waiting(ipc: Any) -> None:
    m = ipc.new(Mutex, key=IPC_PRIVATE)
    holder = Holder(m)
    holder.start()
    assert holder.held.wait(10)
    other = Mutex.from_id(m.id)

    async def main() -> Tuple[Any, ...]:
        waits = asyncio.ensure_future(aoutcome(other.aacquire()))
        await asyncio.sleep(0.1)
        other.close()
        holder.go.set()
        return await asyncio.wait_for(waits, 5)

    got = run(main())
    holder.join(10)
    assert got[0] == "raise" and got[1] is ValueError


# -- async with ------------------------------------------------------------------------------------
def test_async_with(ipc: Any) -> None:
    sem = ipc.new(Semaphore, key=IPC_PRIVATE, initial=1)
    lock = ipc.new(Lock, *ipc.path())
    m = ipc.new(Mutex, key=IPC_PRIVATE)

    async def main() -> None:
        async with sem as s:
            assert s is sem and sem.value == 0
        assert sem.value == 1
        async with lock as lk:
            assert lk is lock and lock.locked()
        assert not lock.locked()
        async with m as mm:
            assert mm is m and m.locked()
        assert not m.locked()
        with pytest.raises(KeyError):
            async with m:
                raise KeyError("inside")
        assert not m.locked()

    run(main())


def test_async_with_rwlock_holds(ipc: Any) -> None:
    rw = ipc.new(RWLock, *ipc.path())

    async def main() -> None:
        async with rw.read() as r:
            assert r is rw and rw.readers == 1
            async with rw.read():
                assert rw.readers == 2
            with pytest.raises(TimeoutError) as exc:
                async with rw.write(timeout=0.05):
                    pass
            with pytest.raises(TimeoutError) as sync_exc:
                with rw.write(timeout=0.05):
                    pass
            assert str(exc.value) == str(sync_exc.value)
        assert rw.readers == 0 and rw.waiting_writers == 0
        async with rw.write() as w:
            assert w is rw and rw.writing
            with pytest.raises(TimeoutError):
                async with rw.read(timeout=0.05):
                    pass
        assert not rw.writing and rw._held == (0, 0)
        with pytest.raises(ValueError):
            rw.read(timeout=-3)

    run(main())


def test_waiting_async_writer_holds_back_new_readers(ipc: Any) -> None:
    rw = ipc.new(RWLock, *ipc.path())
    assert rw.acquire_read()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        writer = asyncio.ensure_future(rw.aacquire_write())
        await asyncio.sleep(0.1)
        assert rw.waiting_writers == 1
        assert rw.acquire_read(False) is False          # a later reader waits
        reader = asyncio.ensure_future(rw.aacquire_read())
        await asyncio.sleep(0.1)
        assert not reader.done()
        loop.call_soon(rw.release_read)
        assert await writer is True
        assert rw.writing and not reader.done()
        rw.release_write()
        assert await reader is True
        rw.release_read()

    run(main())
    assert rw.readers == 0 and not rw.writing and rw.waiting_writers == 0


def test_event_wakes_every_waiting_coroutine(ipc: Any) -> None:
    ev = ipc.new(Event, *ipc.path())

    async def main() -> List[bool]:
        loop = asyncio.get_running_loop()
        waits = [asyncio.ensure_future(ev.await_set()) for _ in range(10)]
        await asyncio.sleep(0.1)
        loop.call_soon(ev.set)
        loop.call_soon(ev.clear)          # set then clear at once: all still wake
        return await asyncio.gather(*waits)

    assert run(main()) == [True] * 10


# -- other processes wake the coroutine --------------------------------------------------------------
FEEDERS = {
    "MessageQueue.areceive": ("q = sysvkit.MessageQueue.from_id(ARGS[0]); time.sleep(0.3); "
                              "q.send(b'from child', 3)"),
    "Semaphore.aacquire": "s = sysvkit.Semaphore.from_id(ARGS[0]); time.sleep(0.3); s.release()",
    "Mutex.aacquire": ("m = sysvkit.Mutex.from_id(ARGS[0]); m.acquire(); time.sleep(0.5); "
                       "m.release()"),
    "MessageQueue.asend": ("q = sysvkit.MessageQueue.from_id(ARGS[0]); time.sleep(0.3); "
                           "q.receive()"),
    "Event.await_set": "e = sysvkit.Event.from_id(ARGS[0]); time.sleep(0.3); e.set()",
    "Channel.areceive": ("c = sysvkit.Channel.from_id(ARGS[0]); time.sleep(0.3); "
                         "c.send(b'from child'); c.close()"),
    "RWLock.aacquire_write": ("rw = sysvkit.RWLock.from_id(ARGS[0]); rw.acquire_read(); "
                              "time.sleep(0.5); rw.release_read()"),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("what", sorted(FEEDERS))
def test_other_process_wakes_the_coroutine(ipc: Any, method: str, what: str) -> None:
    if what == "MessageQueue.areceive":
        obj = ipc.new(MessageQueue, key=IPC_PRIVATE)
        wait = obj.areceive
    elif what == "MessageQueue.asend":
        obj = ipc.new(MessageQueue, key=IPC_PRIVATE, max_bytes=4)
        obj.send(b"full")
        wait = lambda: obj.asend(b"next")     # noqa: E731
    elif what == "Semaphore.aacquire":
        obj = ipc.new(Semaphore, key=IPC_PRIVATE, initial=0)
        wait = obj.aacquire
    elif what == "Event.await_set":
        obj = ipc.new(Event, *ipc.path())
        wait = obj.await_set
    elif what == "Channel.areceive":
        obj = ipc.new(Channel, key=IPC_PRIVATE)
        wait = obj.areceive
    elif what == "RWLock.aacquire_write":
        obj = ipc.new(RWLock, *ipc.path())
        wait = obj.aacquire_write
    else:
        obj = ipc.new(Mutex, key=IPC_PRIVATE)
        wait = obj.aacquire
    child = start(method, "import sysvkit, time\n" + FEEDERS[what], obj.id)
    try:
        if what == "Mutex.aacquire":
            wait_until(obj.locked, 20)
        if what == "RWLock.aacquire_write":
            wait_until(lambda: obj.readers == 1, 20)

        async def main() -> Any:
            gaps: List[float] = []
            stop = asyncio.Event()
            tick = asyncio.ensure_future(ticker(gaps, stop))
            result = await asyncio.wait_for(wait(), 20)
            stop.set()
            await tick
            return result, max(gaps)

        result, gap = run(main())
        assert gap < 0.1
        if what == "MessageQueue.areceive":
            assert result == (b"from child", 3)
        elif what == "Channel.areceive":
            assert result == b"from child"
        elif what == "MessageQueue.asend":
            assert result is None
            child.join(20)
            assert obj.receive(block=False) == (b"next", 1)
        else:
            assert result is True
        if what == "Mutex.aacquire":
            obj.release()
        if what == "RWLock.aacquire_write":
            assert obj.writing
            obj.release_write()
    finally:
        child.join(20)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0


# -- the pool after fork ---------------------------------------------------------------------------------
def test_forked_child_has_its_own_pool(ipc: Any) -> None:
    q = ipc.new(MessageQueue, key=IPC_PRIVATE)

    async def use() -> Any:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, q.send, b"x")
        return await q.areceive()

    assert run(use()) == (b"x", 1)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if asyncio.run(use()) == (b"x", 1) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_ctrl_c_ends_a_waiting_program_and_takes_nothing(ipc: Any, run_py: Any) -> None:
    q = ipc.new(MessageQueue, key=IPC_PRIVATE)
    proc = run_py("""
        import asyncio, os, signal, sys, threading, time
        import sysvkit
        q = sysvkit.MessageQueue.from_id(int(sys.argv[1]))
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            asyncio.run(q.areceive())
        except KeyboardInterrupt:
            print("interrupted %.3f" % (time.monotonic() - t0))
    """, str(q.id), timeout=30)
    took = float(proc.stdout.split()[-1])
    assert proc.stdout.startswith("interrupted") and took < 0.3 + 1.0
    q.send(b"after")
    time.sleep(0.1)
    assert q.receive(block=False) == (b"after", 1)
