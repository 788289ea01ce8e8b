"""``python -m sysvkit demo``: worker processes sharing a segment, a queue and a lock.

The parent names its SharedMemory segment, MessageQueue and Lock by a
temporary file and a proj_id each (as cooperating programs name theirs),
shows the keys ftok makes of them, and writes a list of pseudo-random
numbers into the segment.  Worker processes (started with ``spawn``: they get the three
objects by pickling, which reopens them by id) each test a slice of the
numbers for primality, mark the primes in a flags area of the same
segment, add how many numbers they checked to a counter in the segment
under the Lock, and send their result over the MessageQueue.  The parent
checks everything against its own sieve, prints the live listing of its
objects (with the file and proj_id behind each key) and removes everything
it made, the file too: also on errors, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple

import sysvkit
from sysvkit.cli.tables import KINDS, key_hex, listing_lines

__all__ = ["DemoError", "run"]

_COUNTER = struct.Struct("=Q")     # numbers checked, at offset 0, guarded by the lock
_NUMBERS_AT = 8                    # then the numbers (uint32), then one flag byte each
_ITEM = 4
_MAX_NUMBER = 1_000_000
_BATCH = 500                       # numbers per locked counter update
_RESULT_TYPE = 1                   # worker -> parent
_DONE_TYPE = 2                     # parent -> workers: you may exit


def _small_primes(limit: int) -> List[int]:
    sieve = _sieve(limit)
    return [i for i in range(limit + 1) if sieve[i]]


def _sieve(limit: int) -> bytearray:
    """flags[i] == 1 iff i is prime, for 0..limit."""
    flags = bytearray([1]) * (limit + 1)
    flags[0:2] = b"\0\0"
    for i in range(2, int(limit ** 0.5) + 1):
        if flags[i]:
            flags[i * i::i] = bytes(len(range(i * i, limit + 1, i)))
    return flags


def _is_prime(n: int, primes: List[int]) -> bool:
    for p in primes:
        if p * p > n:
            return True
        if n % p == 0:
            return n == p
    return True


def _worker(shm: Any, queue: Any, lock: Any, index: int, lo: int, hi: int,
            count: int) -> None:
    """Test numbers[lo:hi] (in the segment) for primality; report over the queue."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # the parent handles Ctrl-C
    started = time.monotonic()
    result: Dict[str, Any] = {"worker": index, "pid": os.getpid(), "lo": lo, "hi": hi}
    try:
        primes = _small_primes(int(_MAX_NUMBER ** 0.5) + 1)
        found = largest = 0
        lock_waits = 0
        with shm.buf as buf, \
                buf[_NUMBERS_AT:_NUMBERS_AT + count * _ITEM].cast("I") as numbers, \
                buf[_NUMBERS_AT + count * _ITEM:_NUMBERS_AT + count * (_ITEM + 1)] as flags:
            for start in range(lo, hi, _BATCH):
                end = min(start + _BATCH, hi)
                for i in range(start, end):
                    n = numbers[i]
                    if _is_prime(n, primes):
                        flags[i] = 1
                        found += 1
                        largest = max(largest, n)
                # Read-modify-write of the shared counter: only correct under the lock.
                if not lock.acquire(blocking=False):
                    lock_waits += 1
                    lock.acquire()
                try:
                    (done,) = _COUNTER.unpack_from(buf, 0)
                    _COUNTER.pack_into(buf, 0, done + (end - start))
                finally:
                    lock.release()
        result.update(primes=found, largest=largest, lock_waits=lock_waits,
                      seconds=time.monotonic() - started)
    except Exception as exc:   # reported to the parent, which fails the demo
        result["error"] = "%s: %s" % (type(exc).__name__, exc)
    try:
        queue.send(json.dumps(result).encode(), _RESULT_TYPE)
        queue.receive(_DONE_TYPE + index)      # stay attached for the live listing
    except (OSError, ValueError):
        pass                                   # removed: the parent is cleaning up
    finally:
        shm.close()


class DemoError(RuntimeError):
    """A worker failed or died, or the results do not add up."""


class _Stop(Exception):
    """SIGTERM or SIGHUP while the demo runs."""


def _on_signal(signum: int, frame: Any) -> None:
    raise _Stop("stopped by signal %d" % signum)


def run(workers: int = 4, numbers: int = 200_000, out: Optional[IO[str]] = None,
        seed: int = 2024) -> int:
    """Run the demonstration; returns 0 on success.

    ``workers``: 1..64 processes; ``numbers``: how many numbers to test
    (1..10_000_000).  ValueError for arguments out of range; DemoError (a
    RuntimeError) if a worker fails or dies or the results do not add up.
    Everything it made is removed before it returns or raises, also on
    KeyboardInterrupt (Ctrl-C) and SIGTERM.
    """
    if not 1 <= workers <= 64:
        raise ValueError("workers must be in 1..64, got %d" % workers)
    if not 1 <= numbers <= 10_000_000:
        raise ValueError("numbers must be in 1..10000000, got %d" % numbers)
    out = out if out is not None else sys.stdout
    handlers: Dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            handlers[sig] = signal.signal(sig, _on_signal)
    made: List[Any] = []
    procs: List[Any] = []
    try:
        return _demo(workers, numbers, out, seed, made, procs)
    except _Stop as exc:
        raise KeyboardInterrupt(str(exc)) from None
    finally:
        # Clean up with Ctrl-C and SIGTERM held back, so that a second one
        # cannot leave objects behind half way.
        with _signals_held():
            _cleanup(made, procs)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back (they arrive afterwards)."""
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK,
                                      {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Handle Ctrl-C, SIGTERM and SIGHUP only after the block (starting a
    worker: a signal in the middle leaves a child that reads half of its
    start-up data and prints a traceback).  Not by blocking them: a started
    child would inherit the mask and could not be terminated.  In a thread
    other than the main one (no handlers there) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: List[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {sig: signal.signal(sig, lambda signum, frame: came.append(signum)) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if came:
            signal.raise_signal(came[0])     # now, to the handler that was in place


def _workdir(made: List[Any]) -> str:
    """A new private directory holding the file that names the objects;
    recorded for removal (after the objects), with no signal in between."""
    with _signals_held():
        top = tempfile.mkdtemp(prefix="sysvkit-demo-")
        made.append(top)
    path = os.path.join(top, "objects")
    with open(path, "x"):
        pass
    return path


def _in_use(key: int) -> bool:
    """Whether some object of any kind already has this key."""
    for kind in KINDS.values():
        try:
            kind.get(key)
        except FileNotFoundError:
            continue
        except OSError:
            return True         # there, but not ours to open
        return True
    return False


def _make(made: List[Any], cls: Any, path: str, first_proj: int,
          **kwargs: Any) -> Tuple[Any, int]:
    """Create an object named by ``path`` and the first proj_id from
    ``first_proj`` whose key no object has yet (another program's object
    must never be opened, let alone removed), and record it for removal with
    no signal in between."""
    started = time.time()
    for proj in range(first_proj, 256):
        key = sysvkit.ftok(path, proj)
        if _in_use(key):
            continue
        with _signals_held():
            try:
                if cls is sysvkit.Lock:     # always opens or creates
                    obj = cls(path, proj, **kwargs)
                    if obj.stat().change_time < int(started) - 1:   # made by someone else
                        obj.close()
                        continue
                else:
                    obj = cls(path, proj, create=True, exclusive=True, **kwargs)
            except FileExistsError:         # made meanwhile by someone else
                continue
            made.append(obj)
        return obj, proj
    raise DemoError("every key of %s is taken by other objects" % path)


def _cleanup(made: List[Any], procs: List[Any]) -> None:
    procs = [p for p in procs if p.pid is not None]     # started
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()
    for obj in reversed(made):
        if isinstance(obj, str):            # the directory of the naming file
            shutil.rmtree(obj, ignore_errors=True)
            continue
        for step in (obj.close, obj.remove):
            try:
                step()
            except (OSError, ValueError, BufferError):
                pass


def _demo(workers: int, count: int, out: IO[str], seed: int, made: List[Any],
          procs: List[Any]) -> int:
    size = _NUMBERS_AT + count * (_ITEM + 1)
    path = _workdir(made)
    shm, shm_proj = _make(made, sysvkit.SharedMemory, path, 1, size=size)
    queue, queue_proj = _make(made, sysvkit.MessageQueue, path, shm_proj + 1)
    lock, lock_proj = _make(made, sysvkit.Lock, path, queue_proj + 1)
    projs = {"shm": shm_proj, "msg": queue_proj, "sem": lock_proj}

    print("sysvkit demo: %d worker processes test %d numbers for primality, sharing"
          % (workers, count), file=out)
    print("  a shared memory segment (id %d, %d bytes: a counter, the numbers, a flag "
          "byte each)," % (shm.id, size), file=out)
    print("  a message queue (id %d) for their results and a lock (id %d) guarding the "
          "counter." % (queue.id, lock.id), file=out)
    print("  Each is named by a file and a project id, as programs that share objects name "
          "them:", file=out)
    print("  ftok(%r, proj_id) gives the key:" % path, file=out)
    for what, obj, kind in (("segment", shm, "shm"), ("queue", queue, "msg"),
                            ("lock", lock, "sem")):
        print("    proj_id %-3d -> key %s  (the %s)" % (projs[kind], key_hex(obj.key), what),
              file=out)
    print(file=out)
    out.flush()

    rng = random.Random(seed)
    values = [rng.randrange(2, _MAX_NUMBER) for _ in range(count)]
    shm.write(struct.pack("=%dI" % count, *values), _NUMBERS_AT)

    ctx = multiprocessing.get_context("spawn")
    bounds = [count * i // workers for i in range(workers + 1)]
    started = time.monotonic()
    for i in range(workers):
        p = ctx.Process(target=_worker, name="sysvkit-demo-%d" % (i + 1),
                        args=(shm, queue, lock, i + 1, bounds[i], bounds[i + 1], count))
        procs.append(p)     # first, so that cleanup knows it even if start() is interrupted
        with _signals_deferred():
            p.start()

    results: List[Dict[str, Any]] = []
    while len(results) < workers:
        try:
            data, _ = queue.receive(_RESULT_TYPE, timeout=0.5)
        except TimeoutError:
            dead = [p for p in procs if p.exitcode is not None]
            if dead:
                raise DemoError("worker %s died (exit code %s) before reporting"
                                   % (dead[0].name, dead[0].exitcode)) from None
            continue
        result = json.loads(data)
        if "error" in result:
            raise DemoError("worker %d failed: %s" % (result["worker"], result["error"]))
        results.append(result)
    elapsed = time.monotonic() - started

    results.sort(key=lambda r: r["worker"])
    for r in results:
        print("  worker %d (pid %d): numbers[%d:%d], %d primes (largest %d), "
              "%d lock waits, %.2f s" % (r["worker"], r["pid"], r["lo"], r["hi"],
                                         r["primes"], r["largest"], r["lock_waits"],
                                         r["seconds"]), file=out)

    # Check the workers' work against the parent's own sieve.
    truth = _sieve(_MAX_NUMBER)
    expected = [truth[v] for v in values]
    flags = shm.read(count, _NUMBERS_AT + count * _ITEM)
    (counter,) = _COUNTER.unpack(shm.read(_COUNTER.size, 0))
    reported = sum(r["primes"] for r in results)
    problems = []
    if reported != sum(expected):
        problems.append("the workers found %d primes, the sieve %d" % (reported, sum(expected)))
    if list(flags) != expected:
        problems.append("the prime flags in the segment differ from the sieve")
    if counter != count:
        problems.append("the locked counter says %d numbers, not %d" % (counter, count))
    print(file=out)
    print("  together: %d primes among %d numbers in %.2f s; the parent's sieve agrees: %s"
          % (reported, count, elapsed, "no" if problems else "yes"), file=out)
    print("  shared counter (read-modify-write under the lock): %d numbers checked, in %d "
          "locked updates" % (counter, sum(-(-(r["hi"] - r["lo"]) // _BATCH) for r in results)),
          file=out)

    # The live listing, while the workers are still attached.
    print(file=out)
    print("Live listing of the demo's objects (python -m sysvkit ipcs --resolve %s):"
          % os.path.dirname(path), file=out)
    mine = {"shm": shm, "msg": queue, "sem": lock}
    sections = []
    for kind in ("msg", "shm", "sem"):
        records = [r for r in KINDS[kind].listing() if r.id == mine[kind].id]
        resolved = {mine[kind].key: [(path, projs[kind])]}
        sections.append(listing_lines(kind, records, resolved=resolved))
    out.write("".join("".join(line + "\n" for line in lines) + "\n" for lines in sections))

    for i in range(workers):
        queue.send(b"done", _DONE_TYPE + i + 1)
    for p in procs:
        p.join(10)
    failed = [p for p in procs if p.exitcode != 0]
    if failed:
        raise DemoError("worker %s exited with code %s" % (failed[0].name, failed[0].exitcode))
    _cleanup(made, procs)
    made.clear()
    procs.clear()
    print("The workers exited; the segment, the queue, the lock and the file that named "
          "them are removed.", file=out)
    if problems:
        raise DemoError("; ".join(problems))
    return 0
