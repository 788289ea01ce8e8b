"""The suite's session guard removes exactly what the suite made.

A whole pytest session runs under the suite's own conftest (pytester, in a
child process).  In it, "other programs" (``ipcmk`` and a double-forked
daemon, started with the session marker removed from their environment)
create objects, and tests leak objects of their own in every way the guard
knows about.  Afterwards the other programs' objects must still be there,
the session's own must be gone, and the run must have failed for the leak.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Set

import pytest

from sysvkit import lowlevel as ll

CONFTEST = Path(__file__).with_name("conftest.py")

INNER = r'''
import json
import os
import subprocess
import sys
import time

from sysvkit import lowlevel as ll

OUT = os.environ["SVK_OWNERSHIP_OUT"]
MARKER = "SYSVKIT_TEST_SESSION"


def save(what, kind, ident):
    with open(OUT, "a") as f:
        f.write(json.dumps([what, kind, ident]) + "\n")


def foreign_env():
    return {k: v for k, v in os.environ.items() if k != MARKER}


DAEMON = """
import os, sys, time
from sysvkit import lowlevel as ll
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
shm = ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600)
msg = ll.msgget(ll.IPC_PRIVATE, ll.IPC_CREAT | 0o600)
sem = ll.semget(ll.IPC_PRIVATE, 1, ll.IPC_CREAT | 0o600)
with open(sys.argv[1], "a") as f:
    f.write("%d %d %d %d\\n" % (os.getpid(), shm, msg, sem))
time.sleep(120)
"""


def test_other_programs_make_objects():
    env = foreign_env()
    for kind, opts in (("shm", ["-M", "4096"]), ("msg", ["-Q"]), ("sem", ["-S", "1"])):
        out = subprocess.run(["ipcmk", *opts], env=env, capture_output=True, text=True,
                             check=True).stdout
        save("foreign", kind, int(out.split()[-1]))
    ready = OUT + ".daemon"
    subprocess.run([sys.executable, "-c", DAEMON, ready], env=env, check=True)
    deadline = time.monotonic() + 30
    while not (os.path.exists(ready) and open(ready).read().endswith("\n")):
        assert time.monotonic() < deadline, "the daemon never said it was ready"
        time.sleep(0.01)
    pid, shm, msg, sem = map(int, open(ready).read().split())
    save("daemon", "pid", pid)
    for kind, ident in (("shm", shm), ("msg", msg), ("sem", sem)):
        save("foreign", kind, ident)


def test_leaks_named_by_the_fixtures_keys(ipc):
    save("leak", "shm", ll.shmget(ipc.key(), 4096, ll.IPC_CREAT | 0o600))
    save("leak", "msg", ll.msgget(ipc.key(), ll.IPC_CREAT | 0o600))
    save("leak", "sem", ll.semget(ipc.key(), 1, ll.IPC_CREAT | 0o600))


def test_leaks_named_by_a_temporary_file(tmp_path):
    path = tmp_path / "own-file"
    path.touch()
    save("leak", "msg", ll.msgget(ll.ftok(str(path), 77), ll.IPC_CREAT | 0o600))
    save("leak", "sem", ll.semget(ll.ftok(str(path), 78), 1, ll.IPC_CREAT | 0o600))


def test_leaks_made_by_the_suites_children():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"%d" % ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600))
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    save("leak", "shm", int(os.read(r, 64)))
    os.close(r)
    code = ("from sysvkit import lowlevel as ll; "
            "print(ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    save("leak", "shm", int(out))


def test_registered_objects_are_removed_by_the_fixture(ipc):
    save("tracked", "msg", ipc.track_id("msg", ll.msgget(ll.IPC_PRIVATE, ll.IPC_CREAT | 0o600)))
    save("tracked", "sem", ipc.track_id("sem", ll.semget(ll.IPC_PRIVATE, 1,
                                                         ll.IPC_CREAT | 0o600)))
'''


def exists(kind: str, ident: int) -> bool:
    try:
        if kind == "shm":
            ll.shmctl(ident, ll.IPC_STAT)
        elif kind == "msg":
            ll.msgctl(ident, ll.IPC_STAT)
        else:
            ll.semctl(ident, 0, ll.IPC_STAT)
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_guard_removes_the_suites_objects_and_leaves_others_alone(
        pytester: pytest.Pytester, ipc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    out = pytester.path / "made.jsonl"
    monkeypatch.setenv("SVK_OWNERSHIP_OUT", str(out))
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_inner=INNER)
    daemon = 0
    made: Dict[str, List[Any]] = {}
    try:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W",
                                               "always::UserWarning", timeout=120)
        made = {}
        for line in out.read_text().splitlines():
            what, kind, ident = json.loads(line)
            made.setdefault(what, []).append((kind, ident))
        daemon = made["daemon"][0][1]
        for kind, ident in made["foreign"]:       # the test made these: it removes them
            ipc.track_id(kind, ident)
        text = result.stdout.str()
        result.assert_outcomes(passed=5, errors=1)
        assert "left IPC objects behind (now removed)" in text, text
        assert "made by other programs during the run (left alone)" in text, text
        assert len(made["foreign"]) == 6 and len(made["leak"]) == 7
        for kind, ident in made["foreign"]:
            assert exists(kind, ident), "the guard removed another program's %s %d" % (
                kind, ident)
        for kind, ident in made["leak"] + made["tracked"]:
            assert not exists(kind, ident), "the session left its %s %d behind" % (kind, ident)
    finally:
        if daemon:
            try:
                os.kill(daemon, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if made.get("foreign") is None and out.exists():
            # Parsing failed part-way: still remove whatever the inner run made.
            for line in out.read_text().splitlines():
                what, kind, ident = json.loads(line)
                if what == "foreign":
                    ipc.track_id(kind, ident)


def test_ipc_ids_lists_the_suites_segments_not_other_programs(
        ipc: Any, ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    before = ipc_ids()
    env = {k: v for k, v in os.environ.items() if k != "SYSVKIT_TEST_SESSION"}
    out = subprocess.run(["ipcmk", "-M", "4096"], env=env, capture_output=True, text=True,
                         check=True).stdout
    foreign = int(out.split()[-1])
    # Another program that makes a semaphore set and a queue, uses them and stays.
    code = ("import sys; from sysvkit import lowlevel as ll; "
            "s = ll.semget(ll.IPC_PRIVATE, 2, ll.IPC_CREAT | 0o600); "
            "ll.semop(s, [(0, 1, 0), (1, 1, 0)]); "
            "q = ll.msgget(ll.IPC_PRIVATE, ll.IPC_CREAT | 0o600); ll.msgsnd(q, b'x', 1); "
            "print(s, q, flush=True); sys.stdin.read()")
    other = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    sem = msg = -1
    try:
        assert other.stdout is not None
        sem, msg = map(int, other.stdout.readline().split())
        own = ipc.track_id("shm", ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600))
        own_sem = ipc.track_id("sem", ll.semget(ll.IPC_PRIVATE, 1, ll.IPC_CREAT | 0o600))
        after = ipc_ids()
        assert own in after["shm"] and own not in before["shm"]
        assert own_sem in after["sem"]                  # registered: the suite's
        assert foreign not in after["shm"]
        assert sem not in after["sem"] and msg not in after["msg"]
    finally:
        other.communicate("", timeout=30)
        # Made by this test, for the purpose: removed by id.
        ll.shmctl(foreign, ll.IPC_RMID)
        if sem >= 0:
            ll.semctl(sem, 0, ll.IPC_RMID)
        if msg >= 0:
            ll.msgctl(msg, ll.IPC_RMID)
