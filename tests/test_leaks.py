"""Memory: RSS stays flat over many iterations of every class's calls,
including the error paths (psutil-style leak loops)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import sysvkit


@pytest.mark.slow
def test_queue_calls_do_not_leak(ipc: Any, rss_flat: Callable[..., int]) -> None:
    q = ipc.new(sysvkit.MessageQueue, key=sysvkit.IPC_PRIVATE)
    payload = b"x" * 100

    def cycle() -> None:
        q.send(payload, type=3)
        q.receive()
        try:
            q.receive(block=False)
        except BlockingIOError:
            pass
        len(q)

    rss_flat(cycle)


@pytest.mark.slow
def test_lock_and_semaphore_calls_do_not_leak(ipc: Any, rss_flat: Callable[..., int]) -> None:
    lock = ipc.new(sysvkit.Lock, key=sysvkit.IPC_PRIVATE)
    s = ipc.new(sysvkit.SemaphoreSet, key=sysvkit.IPC_PRIVATE, count=3, initial=1)

    def cycle() -> None:
        with lock:
            pass
        try:
            lock.release()
        except RuntimeError:
            pass
        s.op([(0, -1), (1, +1)])
        s.op([(0, +1), (1, -1)])
        s.values()
        try:
            s.op([(2, -5)], block=False)
        except BlockingIOError:
            pass

    rss_flat(cycle)


def test_shared_memory_calls_do_not_leak(ipc: Any, rss_flat: Callable[..., int]) -> None:
    shm = ipc.new(sysvkit.SharedMemory, key=sysvkit.IPC_PRIVATE, size=4096)

    def cycle() -> None:
        shm.write(b"abc", 10)
        shm.read(16)
        view = shm.buf
        view[0] = 1
        view.release()
        try:
            shm.read(1, 5000)
        except ValueError:
            pass

    rss_flat(cycle)


@pytest.mark.slow
def test_open_stat_close_do_not_leak(ipc: Any, rss_flat: Callable[..., int]) -> None:
    path, proj = ipc.path()
    ipc.new(sysvkit.SharedMemory, path, proj, size=4096, create=True)
    ipc.new(sysvkit.MessageQueue, path, proj, create=True)
    ipc.new(sysvkit.SemaphoreSet, path, proj, count=2, create=True)

    def cycle() -> None:
        with sysvkit.SharedMemory(path, proj) as shm:
            shm.stat()
        with sysvkit.MessageQueue(path, proj) as q:
            q.stat()
        with sysvkit.SemaphoreSet(path, proj) as s:
            s.stat()

    rss_flat(cycle, times=20_000)
