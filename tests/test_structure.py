"""The common layer of structures in segments: header checks and race-free
creation (one initialiser, openers wait, a half-made segment is repaired)."""

from __future__ import annotations

import multiprocessing
import os
import struct
import textwrap
import time
from pathlib import Path
from typing import Any, Dict

import pytest

import sysvkit
from sysvkit import _core
from sysvkit import lowlevel as ll
from sysvkit._structure import Structure

SIZE = 4096
HEADER = struct.Struct("=IHHQQ")       # magic, kind, version, state, size


# The Probe kind is defined from source so that spawned children (which cannot
# import this test module) define the same class: see _CHILD.
PROBE_SRC = textwrap.dedent('''
    import os, struct
    import sysvkit
    from sysvkit import _core
    from sysvkit._structure import Structure

    SIZE = 4096

    class Probe(Structure):
        """A structure kind for tests: its body records who initialised it."""

        _kind = "probe"
        _kind_code = _core.STRUCT_KIND_TEST
        _version = 3
        log = ""

        def __init__(self, path=None, proj_id=None, *, key=None, create=False,
                     exclusive=False, mode=0o600):
            self._open_structure(path, proj_id, key, create=create, exclusive=exclusive,
                                 mode=mode, size=SIZE)

        def _init_body(self):
            self._seg_write(struct.pack("=i", os.getpid()), 64)
            if self.log:
                with open(self.log, "a") as f:
                    f.write("%d\\n" % os.getpid())

        def _check_body(self):
            if struct.unpack("=i", self._seg_read(4, 64))[0] <= 0:
                raise sysvkit.CorruptError("probe body is empty")

        def initialiser(self):
            return int(struct.unpack("=i", self._seg_read(4, 64))[0])
''')
_probe_ns: Dict[str, Any] = {}
exec(PROBE_SRC, _probe_ns)
Probe = _probe_ns["Probe"]
Probe.__module__ = __name__     # pickled by reference to this module

_CHILD = PROBE_SRC + textwrap.dedent('''
    path, proj, log, q = ARGS
    Probe.log = log
    p = Probe(path, proj, create=True)
    q.put((p.id, p.initialiser()))
    p.close()
''')


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_racing_creators_make_one_initialised_once(ipc: Any, tmp_path: Path, method: str) -> None:
    path, proj = ipc.path()
    log = str(tmp_path / "inits")
    ctx = multiprocessing.get_context(method)
    q = ctx.Queue()
    procs = [ctx.Process(target=exec, args=(_CHILD, {"ARGS": (path, proj, log, q)})) for _ in range(8)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    ipc.track_id("shm", results[0][0])
    assert len(set(results)) == 1
    assert len(Path(log).read_text().split()) == 1


def test_open_missing_names_path_and_create(ipc: Any) -> None:
    path, proj = ipc.path()
    with pytest.raises(FileNotFoundError, match="create=True creates it") as err:
        Probe(path, proj)
    assert path in str(err.value)


def test_header_written_and_checked(ipc: Any) -> None:
    p = ipc.track(Probe(key=sysvkit.IPC_PRIVATE))
    magic, kind, version, state, size = HEADER.unpack(p._seg_read(HEADER.size, 0))
    assert (magic, kind, version, size) == (_core.STRUCT_MAGIC, _core.STRUCT_KIND_TEST, 3, SIZE)
    assert state & 0xFF == _core.STRUCT_STATE_READY and state >> 8 == os.getpid()
    again = Probe.from_id(p.id)
    assert again.initialiser() == os.getpid()
    again.close()
    assert repr(p).startswith("<sysvkit.Probe key=0x00000000 id=%d" % p.id)
    assert p.stat().size == SIZE


def _scribble(ident: int, offset: int, data: bytes) -> None:
    a = ll.shmat(ident)
    a.write(data, offset)
    ll.shmdt(a)


@pytest.mark.parametrize("offset,data,error", [
    (0, b"XXXX", "not a sysvkit structure"),
    (4, struct.pack("=H", 1), "of kind 1, not a probe"),
    (6, struct.pack("=H", 9), "format version 9"),
    (16, struct.pack("=Q", SIZE * 100), "claims"),
    (64, b"\0\0\0\0", "probe body is empty"),
])
def test_foreign_or_scribbled_header_is_valueerror(ipc: Any, offset: int, data: bytes,
                                                   error: str) -> None:
    p = ipc.track(Probe(key=sysvkit.IPC_PRIVATE))
    _scribble(p.id, offset, data)
    with pytest.raises(ValueError, match=error):
        Probe.from_id(p.id)


def test_garbage_state_is_corrupt(ipc: Any) -> None:
    p = ipc.track(Probe(key=sysvkit.IPC_PRIVATE))
    _scribble(p.id, 8, struct.pack("=Q", 0xDEADBEEF))
    with pytest.raises(sysvkit.CorruptError, match="state word"):
        Probe.from_id(p.id)


def test_too_small_segment_is_valueerror(ipc: Any) -> None:
    ident = ipc.track_id("shm", ll.shmget(ipc.key(), 16, ll.IPC_CREAT | 0o600))
    with pytest.raises(ValueError, match="too small"):
        Probe.from_id(ident)


def _half_made(key: int, state_phase: int, q: Any) -> None:
    ident = ll.shmget(key, SIZE, ll.IPC_CREAT | ll.IPC_EXCL | 0o600)
    a = ll.shmat(ident)
    a.write(b"\xff" * 32, 64)        # garbage the repair must wipe
    if state_phase:
        a.write(struct.pack("=Q", (os.getpid() << 8) | state_phase), 8)
    q.put(ident)
    os._exit(0)                      # killed mid-creation, in effect


@pytest.mark.parametrize("phase", [_core.STRUCT_STATE_FRESH, _core.STRUCT_STATE_INIT])
def test_half_made_by_a_dead_creator_is_repaired(ipc: Any, phase: int) -> None:
    key = ipc.key()
    ctx = multiprocessing.get_context("fork")
    q = ctx.SimpleQueue()            # written at once: the child _exits
    child = ctx.Process(target=_half_made, args=(key, phase, q))
    child.start()
    ident = ipc.track_id("shm", q.get())
    child.join(30)
    t0 = time.monotonic()
    p = Probe(key=key)
    assert time.monotonic() - t0 < 1.5
    assert p.id == ident and p.initialiser() == os.getpid()
    assert p._seg_read(28, 68) == b"\0" * 28
    p.close()


def test_stuck_initialiser_is_taken_over_after_a_second(ipc: Any) -> None:
    key = ipc.key()
    ident = ipc.track_id("shm", ll.shmget(key, SIZE, ll.IPC_CREAT | ll.IPC_EXCL | 0o600))
    a = ll.shmat(ident)
    a.write(struct.pack("=Q", (os.getpid() << 8) | _core.STRUCT_STATE_INIT), 8)  # alive: us
    ll.shmdt(a)
    t0 = time.monotonic()
    p = Probe(key=key)
    took = time.monotonic() - t0
    assert 0.9 <= took < 3
    assert p.initialiser() == os.getpid()
    p.close()


def test_close_is_idempotent_and_quiet(ipc: Any, recwarn: Any) -> None:
    p = ipc.track(Probe(key=sysvkit.IPC_PRIVATE))
    q = Probe.from_id(p.id)
    del q                                # collected without close(): no warning
    import gc
    gc.collect()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]
    p.close()
    p.close()
    assert p.closed
    with pytest.raises(ValueError):
        p.initialiser()


def test_pickles_by_id(ipc: Any) -> None:
    import pickle
    p = ipc.track(Probe(key=sysvkit.IPC_PRIVATE))
    q = pickle.loads(pickle.dumps(p))
    assert q.id == p.id and q.initialiser() == os.getpid()
    q.close()


def test_removed_then_opened_by_id(ipc: Any) -> None:
    p = Probe(key=sysvkit.IPC_PRIVATE)
    p.remove()
    with pytest.raises(sysvkit.RemovedError):
        p.remove()
    with pytest.raises(sysvkit.RemovedError):
        Probe.from_id(p.id)
    p.close()
