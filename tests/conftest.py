"""Fixtures that own every kernel object a test makes.

- ``ipc``: keys from files under tmp_path, and a registry of every object a
  test makes (``ipc.track(obj)`` / ``ipc.track_id(kind, id)``), removed at
  teardown even when the test fails, ignoring "already gone".
- ``run_py``: run Python code in a fresh interpreter (the installed
  sysvkit), asserting that it was not killed by a signal.
- ``rss_flat(fn)``: a psutil-style leak loop (RSS flat after a warm-up);
  skipped under sanitizers (SYSVKIT_SANITIZER set), which inflate RSS.
- A session guard that fails the run if the suite left any IPC object behind.
- The session runs from an empty directory, so that children started with
  ``python -c`` or ``python -m`` (which put their working directory first on
  sys.path) import the installed sysvkit, never the unbuilt source tree at
  the top of a clone.
"""

from __future__ import annotations

import gc
import itertools
import os
import subprocess
import sys
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Set, Tuple

import pytest

from sysvkit import lowlevel as ll

KINDS = ("shm", "msg", "sem")


def ipc_ids() -> Dict[str, Set[int]]:
    """The ids of every IPC object in this namespace, by kind."""
    ids: Dict[str, Set[int]] = {}
    for kind in KINDS:
        with open("/proc/sysvipc/%s" % kind) as f:
            next(f)
            ids[kind] = {int(line.split()[1]) for line in f if line.strip()}
    return ids


@pytest.fixture(name="ipc_ids")
def ipc_ids_fixture() -> Callable[[], Dict[str, Set[int]]]:
    """The function that lists every IPC object's id, by kind."""
    return ipc_ids


def remove_id(kind: str, ident: int) -> None:
    """Remove an object by kind and id; nothing if it is already gone."""
    try:
        if kind == "shm":
            ll.shmctl(ident, ll.IPC_RMID)
        elif kind == "msg":
            ll.msgctl(ident, ll.IPC_RMID)
        else:
            ll.semctl(ident, 0, ll.IPC_RMID)
    except OSError:
        pass


class IPCRegistry:
    """Keys for a test, and every object it made, removed at teardown."""

    _proj = itertools.count(1)

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._objects: List[Any] = []
        self._ids: List[Tuple[str, int]] = []
        self._n = itertools.count()

    def path(self) -> Tuple[str, int]:
        """A fresh (path, proj_id) pair naming a key nobody else uses."""
        p = self.tmp_path / ("ipc-key-%d" % next(self._n))
        p.touch()
        return str(p), 1 + next(self._proj) % 255

    def key(self) -> int:
        """A fresh key (from a new file under tmp_path)."""
        path, proj = self.path()
        return ll.ftok(path, proj)

    def track(self, obj: Any) -> Any:
        """Remove this sysvkit object at teardown; returns it."""
        self._objects.append(obj)
        return obj

    def track_id(self, kind: str, ident: int) -> int:
        """Remove the object of this kind ("shm", "msg", "sem") and id at teardown."""
        assert kind in KINDS
        self._ids.append((kind, ident))
        return ident

    def new(self, cls: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Construct a sysvkit object and track it."""
        return self.track(cls(*args, **kwargs))

    def cleanup(self) -> None:
        for obj in reversed(self._objects):
            for meth in ("close", "remove"):
                try:
                    getattr(obj, meth)()
                except (OSError, ValueError, BufferError, RuntimeError):
                    pass
        for kind, ident in self._ids:
            remove_id(kind, ident)


@pytest.fixture
def ipc(tmp_path: Path) -> Iterator[IPCRegistry]:
    reg = IPCRegistry(tmp_path)
    try:
        yield reg
    finally:
        reg.cleanup()


def _run_py(code: str, *args: str, timeout: float = 60, check: bool = True,
            **kwargs: Any) -> "subprocess.CompletedProcess[str]":
    """Run ``code`` in a fresh interpreter; fail if a signal killed it."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode >= 0, "child killed by signal %d\nstdout: %s\nstderr: %s" % (
        -proc.returncode, proc.stdout, proc.stderr)
    if check:
        assert proc.returncode == 0, "child failed (%d)\nstdout: %s\nstderr: %s" % (
            proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture
def run_py() -> Callable[..., "subprocess.CompletedProcess[str]"]:
    return _run_py


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _assert_rss_flat(fn: Callable[[], Any], times: int = 100_000, slack: int = 1 << 20) -> int:
    """Call fn ``times`` after a warm-up of a tenth of that; RSS may grow by
    less than ``slack`` bytes.  Returns the growth."""
    for _ in range(max(1, times // 10)):
        fn()
    gc.collect()
    before = _rss()
    for _ in range(times):
        fn()
    gc.collect()
    grown = _rss() - before
    assert grown < slack, "RSS grew by %d bytes over %d calls" % (grown, times)
    return grown


@pytest.fixture
def rss_flat() -> Callable[..., int]:
    if os.environ.get("SYSVKIT_SANITIZER"):
        pytest.skip("RSS is meaningless under a sanitizer's allocator")
    return _assert_rss_flat


@pytest.fixture(scope="session", autouse=True)
def outside_the_source_tree() -> Iterator[None]:
    """Run the session from an empty directory that any user may enter
    (some children switch to user nobody)."""
    old = os.getcwd()
    here = tempfile.mkdtemp(prefix="sysvkit-tests-")
    os.chmod(here, 0o755)
    os.chdir(here)
    try:
        yield
    finally:
        os.chdir(old)
        shutil.rmtree(here, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def no_ipc_left_behind() -> Iterator[None]:
    """Report IPC objects that appeared during the run.  Other programs on
    the machine create objects too, so nothing is removed here and the run
    does not fail: each test removes exactly what it made."""
    before = ipc_ids()
    yield
    after = ipc_ids()
    new = {kind: sorted(after[kind] - before[kind]) for kind in KINDS}
    new = {kind: ids for kind, ids in new.items() if ids}
    if new:
        import warnings
        warnings.warn("IPC objects appeared during the run (left alone): %r" % new)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a test that takes seconds")
