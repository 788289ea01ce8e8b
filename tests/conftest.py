"""Fixtures that own every kernel object a test makes.

- ``ipc``: keys from files under tmp_path, and a registry of every object a
  test makes (``ipc.track(obj)`` / ``ipc.track_id(kind, id)``), removed at
  teardown even when the test fails, ignoring "already gone".
- ``run_py``: run Python code in a fresh interpreter (the installed
  sysvkit), asserting that it was not killed by a signal.
- ``rss_flat(fn)``: a psutil-style leak loop (RSS flat after a warm-up);
  skipped under sanitizers (SYSVKIT_SANITIZER set), which inflate RSS.
- A session guard (``Ownership``) that removes exactly what the suite made
  and left behind, and never touches anything else (see below).
- The session runs from an empty directory, so that children started with
  ``python -c`` or ``python -m`` (which put their working directory first on
  sys.path) import the installed sysvkit, never the unbuilt source tree at
  the top of a clone.

Ownership: which objects are the suite's
----------------------------------------
Other programs on the machine (a database, ``ipcmk``, another test run)
create and remove IPC objects while the suite runs, so "new since the
start" proves nothing.  An object that appeared during the session is the
suite's when one of these holds, and only then:

1. Its id was registered through the ``ipc`` fixture (``track``/``track_id``).
2. Its key is one the suite made: a key handed out by ``ipc.key()`` or
   ``ipc.path()``, or the ftok key of a file under this session's temporary
   directories (the low 24 bits of a key are the file's device and inode
   bits; the proj_id byte is whatever the test chose).
3. Shared memory: its creator pid (``cpid`` in /proc/sysvipc/shm) is a
   process the suite started.  Message queues record no creator, but a
   queue whose last sender (``lspid``), or else last receiver, is a process
   the suite started is the suite's.  Semaphore sets record no pid in
   /proc/sysvipc, so for them only 1 and 2 count.  A segment whose creator is
   alive and not the suite's is not ours even if its key matches (ftok keeps
   only 16 bits of the inode, so another program's file may share a key
   with one of ours); only a registered id outweighs that.

"A process the suite started" is decided by a session-unique marker, the
environment variable ``SYSVKIT_TEST_SESSION=<random token>``, set in the
pytest process at start-up and so inherited by everything it executes:

- a live creator is ours if /proc/PID/environ carries the marker (that is
  the environment the process was executed with, so it covers children,
  grandchildren and double-forked daemons of everything the suite runs);
- the pytest process itself, and processes it forks without executing
  anything (whose /proc environment is pytest's own, from before the marker
  was set), record their pid and start time from an ``os.register_at_fork``
  hook before they can create anything; processes started through
  ``subprocess`` or multiprocessing's spawn with the marker in their
  environment are recorded (pid, start time) by the parent as they start.
  A recorded pid counts while that process lives (same start time) and
  after it is gone, so a child killed with ``kill -9`` is still known.

A process started with the marker removed from its environment is, by
declaration, not the suite's: that is how a test plays "another program".
Limits, on purpose erring towards leaving things alone: a grandchild of an
executed child that created a segment and has already exited is not
recorded (its segment, if leaked, is reported, not removed); a recorded pid
that exited, was reused by another program whose process also exited, and
created a segment in between would be taken for ours (pids are recorded
with their start time, so a reused pid that is still alive is not).

At each test's end the guard classifies the objects that appeared (while
their creators can still be looked at); at the session's end, objects the
suite owns that are still there are removed and fail the run (a leak);
objects that are not the suite's are reported in a warning, never removed,
and never fail the run.  Objects that existed before the session are never
looked at again.
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
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

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


def owned_ipc_ids() -> Dict[str, Set[int]]:
    """The ids of the IPC objects the suite made that exist now, by kind
    (see Ownership): other programs' objects, coming and going meanwhile,
    are not in it."""
    if OWNERSHIP is None:
        return ipc_ids()
    OWNERSHIP.scan()
    ids: Dict[str, Set[int]] = {kind: set() for kind in KINDS}
    for kind, ident, _ in set(ipc_objects()) & OWNERSHIP.ours:
        ids[kind].add(ident)
    return ids


@pytest.fixture(name="ipc_ids")
def ipc_ids_fixture() -> Callable[[], Dict[str, Set[int]]]:
    """The function that lists the ids of the objects the suite made that
    exist now, by kind: ``before == ipc_ids()`` checks a command left none
    of its own behind, whatever other programs do meanwhile."""
    return owned_ipc_ids


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
        proj = 1 + next(self._proj) % 255
        if OWNERSHIP is not None:
            OWNERSHIP.add_key(ll.ftok(str(p), proj))
        return str(p), proj

    def key(self) -> int:
        """A fresh key (from a new file under tmp_path)."""
        path, proj = self.path()
        return ll.ftok(path, proj)

    def track(self, obj: Any) -> Any:
        """Remove this sysvkit object at teardown; returns it."""
        self._objects.append(obj)
        if OWNERSHIP is not None:
            OWNERSHIP.add_object(obj)
        return obj

    def track_id(self, kind: str, ident: int) -> int:
        """Remove the object of this kind ("shm", "msg", "sem") and id at teardown."""
        assert kind in KINDS
        self._ids.append((kind, ident))
        if OWNERSHIP is not None:
            OWNERSHIP.add_id(kind, ident)
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
def outside_the_source_tree() -> Iterator[str]:
    """Run the session from an empty directory that any user may enter
    (some children switch to user nobody)."""
    old = os.getcwd()
    here = tempfile.mkdtemp(prefix="sysvkit-tests-")
    os.chmod(here, 0o755)
    os.chdir(here)
    try:
        yield here
    finally:
        os.chdir(old)
        shutil.rmtree(here, ignore_errors=True)


MARKER = "SYSVKIT_TEST_SESSION"

# An object's identity: (kind, id, key).  Ids are reused only after many
# removals (a sequence number is part of each id); the key pins it further.
Obj = Tuple[str, int, int]


def ipc_objects() -> Dict[Obj, int]:
    """Every IPC object in this namespace, mapped to its creator pid
    (shared memory; 0 for queues and semaphore sets, which record none)."""
    objs: Dict[Obj, int] = {}
    for kind in KINDS:
        with open("/proc/sysvipc/%s" % kind) as f:
            next(f)
            for line in f:
                fields = line.split()
                if not fields:
                    continue
                if kind == "shm":
                    cpid = int(fields[4])
                elif kind == "msg":         # no creator: the last sender, else receiver
                    cpid = int(fields[5]) or int(fields[6])
                else:
                    cpid = 0
                objs[(kind, int(fields[1]), int(fields[0]))] = cpid
    return objs


def _start_time(pid: int) -> Optional[int]:
    """The start time (clock ticks since boot) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def _env_has(env: Any, token: str) -> bool:
    """True if an environment mapping (str or bytes keys) carries the marker."""
    if env is None:
        return os.environ.get(MARKER) == token
    for k, v in env.items():
        if os.fsencode(k) == MARKER.encode() and os.fsencode(v) == token.encode():
            return True
    return False


class Ownership:
    """Decides which IPC objects the suite made (see the module docstring),
    removes those it left behind and reports the others."""

    def __init__(self) -> None:
        self.token = "%d-%s" % (os.getpid(), os.urandom(8).hex())
        self.pid = os.getpid()
        self.private = tempfile.mkdtemp(prefix="sysvkit-owner-")
        self.pidfile = os.path.join(self.private, "pids")
        self.keys: Set[int] = set()
        self.ids: Set[Tuple[str, int]] = set()
        self.roots: List[str] = []
        self.ours: Set[Obj] = set()
        self.foreign: Set[Obj] = set()
        self.baseline: Set[Obj] = set()
        self.active = False
        self._restore: List[Callable[[], None]] = []

    # -- what the suite makes ------------------------------------------------
    def start(self) -> None:
        self.baseline = set(ipc_objects())
        os.environ[MARKER] = self.token
        self.active = True
        os.register_at_fork(after_in_child=self._forked)
        self._wrap_starters()

    def stop(self) -> None:
        self.active = False
        for undo in reversed(self._restore):
            undo()
        self._restore.clear()
        if os.environ.get(MARKER) == self.token:
            del os.environ[MARKER]
        shutil.rmtree(self.private, ignore_errors=True)

    def _forked(self) -> None:
        """In a child forked without exec: record its pid before it runs on."""
        if not self.active or not os.path.isdir(self.private):
            return
        try:
            self.record(os.getpid())
        except OSError:
            pass

    def record(self, pid: int) -> None:
        """Remember a process the suite started (pid and start time)."""
        start = _start_time(pid)
        if start is None:
            return
        fd = os.open(self.pidfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"%d %d\n" % (pid, start))
        finally:
            os.close(fd)

    def _wrap_starters(self) -> None:
        """Record children started by subprocess and by multiprocessing's
        spawn (both execute a new image: no fork hook runs in them)."""
        import multiprocessing.util as mp_util

        owner = self
        execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]

        def _execute_child(popen: Any, *args: Any, **kwargs: Any) -> Any:
            result = execute_child(popen, *args, **kwargs)
            env = args[6] if len(args) > 6 else kwargs.get("env")
            if owner.active and _env_has(env, owner.token):
                owner.record(popen.pid)
            return result

        spawnv_passfds = mp_util.spawnv_passfds

        def _spawnv_passfds(*args: Any, **kwargs: Any) -> int:
            pid = spawnv_passfds(*args, **kwargs)
            if owner.active:
                owner.record(pid)
            return pid

        subprocess.Popen._execute_child = _execute_child  # type: ignore[attr-defined]
        mp_util.spawnv_passfds = _spawnv_passfds
        self._restore.append(lambda: setattr(subprocess.Popen, "_execute_child", execute_child))
        self._restore.append(lambda: setattr(mp_util, "spawnv_passfds", spawnv_passfds))

    def add_key(self, key: int) -> None:
        self.keys.add(key)

    def add_id(self, kind: str, ident: int) -> None:
        self.ids.add((kind, ident))

    def add_object(self, obj: Any) -> None:
        """Register a sysvkit object's id under its kind."""
        import sysvkit
        from sysvkit import _core

        if isinstance(obj, _core._Segment):
            kind = "shm"
        elif isinstance(obj, sysvkit.MessageQueue):
            kind = "msg"
        elif isinstance(obj, (sysvkit.SemaphoreSet, sysvkit.Semaphore, sysvkit.Lock)):
            kind = "sem"
        else:
            return
        try:
            self.add_id(kind, obj.id)
        except (AttributeError, ValueError):
            pass

    # -- deciding ------------------------------------------------------------------
    def _recorded(self) -> Dict[int, int]:
        pids: Dict[int, int] = {self.pid: _start_time(self.pid) or 0}
        try:
            with open(self.pidfile) as f:
                for line in f:
                    pid, start = line.split()
                    pids[int(pid)] = int(start)
        except (OSError, ValueError):
            pass
        return pids

    def _marked(self, pid: int) -> bool:
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
        except OSError:
            return False
        return ("%s=%s" % (MARKER, self.token)).encode() in env.split(b"\0")

    def _creator_is_ours(self, pid: int, recorded: Dict[int, int]) -> bool:
        if pid <= 0:
            return False
        start = _start_time(pid)
        if start is None:                   # gone: ours only if we recorded it
            return pid in recorded
        if recorded.get(pid) == start:      # alive, and the very process we recorded
            return True
        return self._marked(pid)

    def _file_keys(self) -> Set[int]:
        """The low 24 bits of the ftok keys of every file under the roots."""
        bits: Set[int] = set()
        for root in self.roots:
            for dirpath, dirnames, filenames in os.walk(root):
                for name in dirnames + filenames:
                    try:
                        st = os.lstat(os.path.join(dirpath, name))
                    except OSError:
                        continue
                    bits.add(((st.st_dev & 0xFF) << 16) | (st.st_ino & 0xFFFF))
        return bits

    def _is_ours(self, obj: Obj, cpid: int, recorded: Dict[int, int],
                 file_bits: Set[int]) -> bool:
        kind, ident, key = obj
        if (kind, ident) in self.ids:
            return True
        if kind in ("shm", "msg"):
            if self._creator_is_ours(cpid, recorded):
                return True
            if kind == "shm" and _start_time(cpid) is not None:
                return False        # a live creator that is not ours outweighs the key
        if key != 0 and key in self.keys:
            return True
        return bool(key & 0xFF000000) and (key & 0xFFFFFF) in file_bits

    def scan(self, with_files: bool = False) -> Dict[Obj, int]:
        """Classify the objects that appeared since the start; returns the
        present objects with their creator pids."""
        present = ipc_objects()
        recorded = self._recorded()
        file_bits = self._file_keys() if with_files else set()
        for obj, cpid in present.items():
            if obj in self.baseline or obj in self.ours:
                continue
            if self._is_ours(obj, cpid, recorded, file_bits):
                self.ours.add(obj)
                self.foreign.discard(obj)
            else:
                self.foreign.add(obj)
        return present

    def finish(self) -> Tuple[List[Obj], List[Obj]]:
        """Remove the suite's objects that are still there; returns
        (removed leaks, foreign objects seen during the session)."""
        present = self.scan(with_files=True)
        leaked = sorted(obj for obj in self.ours if obj in present)
        for kind, ident, _ in leaked:
            remove_id(kind, ident)
        return leaked, sorted(self.foreign)


def _describe(objs: List[Obj]) -> str:
    return ", ".join("%s id %d key 0x%08x" % (kind, ident, key & 0xFFFFFFFF)
                     for kind, ident, key in objs)


OWNERSHIP: Optional[Ownership] = None


@pytest.fixture(scope="session", autouse=True)
def no_ipc_left_behind(outside_the_source_tree: str,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ownership]:
    """Remove, and fail the run for, the objects the suite made and left
    behind; report (never remove) objects other programs made meanwhile."""
    global OWNERSHIP
    owner = Ownership()
    owner.roots = [str(tmp_path_factory.getbasetemp()), outside_the_source_tree]
    owner.start()
    OWNERSHIP = owner
    try:
        yield owner
        leaked, foreign = owner.finish()
        if foreign:
            present = ipc_objects()
            still = [obj for obj in foreign if obj in present]
            warnings.warn("IPC objects made by other programs during the run (left alone): "
                          "%d, of which %d still exist%s" % (
                              len(foreign), len(still),
                              (": " + _describe(still)) if still else ""))
        if leaked:
            pytest.fail("the tests left IPC objects behind (now removed): " + _describe(leaked),
                        pytrace=False)
    finally:
        OWNERSHIP = None
        owner.stop()


@pytest.fixture(autouse=True)
def _classify_ipc_objects(no_ipc_left_behind: Ownership) -> Iterator[None]:
    """Look at the objects that appeared while the test's processes may
    still be there to say whose they are."""
    yield
    no_ipc_left_behind.scan()


pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a test that takes seconds")
