"""Thread safety: 8 threads share one SharedMemory, MessageQueue and Lock;
close() racing with use raises cleanly, never a crash (run in subprocesses,
asserting no death by a signal)."""

from __future__ import annotations

import threading

import pytest
from typing import Any, Callable, List

import sysvkit


def test_eight_threads_share_queue_lock_and_segment(ipc: Any) -> None:
    q = ipc.new(sysvkit.MessageQueue, key=sysvkit.IPC_PRIVATE)
    lock = ipc.new(sysvkit.Lock, key=sysvkit.IPC_PRIVATE)
    shm = ipc.new(sysvkit.SharedMemory, key=sysvkit.IPC_PRIVATE, size=8)
    per_thread = 2000
    errors: List[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(per_thread):
                with lock:
                    count = int.from_bytes(shm.read(8), "little")
                    shm.write((count + 1).to_bytes(8, "little"))
                q.send(n.to_bytes(2, "little") + i.to_bytes(4, "little"), type=n + 1)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    got = []

    def drain() -> None:
        for _ in range(8 * per_thread):
            got.append(q.receive(timeout=30))

    reader = threading.Thread(target=drain)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    reader.join(60)
    assert not errors
    assert int.from_bytes(shm.read(8), "little") == 8 * per_thread
    assert len(got) == 8 * per_thread
    seen = {(int.from_bytes(d[:2], "little"), int.from_bytes(d[2:], "little")) for d, _ in got}
    assert len(seen) == 8 * per_thread


RACE = r'''
import sys, threading, sysvkit
kind = sys.argv[1]
OK = (ValueError, BufferError, OSError, RuntimeError)
for round in range(int(sys.argv[2])):
    if kind == "shm":
        obj = sysvkit.SharedMemory(key=sysvkit.IPC_PRIVATE, size=1 << 20)
        ops = [lambda: obj.write(b"x" * (1 << 20)), lambda: obj.read(),
               lambda: obj.buf[0], lambda: bytes(obj.buf[:16]), lambda: len(obj)]
    elif kind == "queue":
        obj = sysvkit.MessageQueue(key=sysvkit.IPC_PRIVATE)
        ops = [lambda: obj.send(b"x" * 100, block=False),
               lambda: obj.receive(block=False), lambda: len(obj)]
    else:
        obj = sysvkit.Lock(key=sysvkit.IPC_PRIVATE)
        def cycle():
            if obj.acquire(timeout=0.01):
                obj.release()
        ops = [cycle, obj.locked]
    stop = threading.Event()
    def hammer(op):
        while not stop.is_set():
            try:
                op()
            except OK:
                pass
    threads = [threading.Thread(target=hammer, args=(ops[i % len(ops)],)) for i in range(8)]
    for t in threads:
        t.start()
    for _ in range(20):
        try:
            obj.close()
        except BufferError:
            pass
    stop.set()
    for t in threads:
        t.join()
    try:
        obj.close()
    except BufferError:
        pass
    obj.remove()
print("survived")
'''


@pytest.mark.slow
def test_close_racing_with_use_never_crashes(run_py: Callable[..., Any]) -> None:
    for kind in ("shm", "queue", "lock"):
        proc = run_py(RACE, kind, "12", timeout=120)
        assert "survived" in proc.stdout
