"""Secure by default: new objects are 0o600, and a process running as
another user gets PermissionError, not access, for every class."""

from __future__ import annotations

from typing import Any, Callable

import pytest

import sysvkit

NOBODY = 65534


def _make(ipc: Any, kind: str, **kw: Any) -> Any:
    path, proj = ipc.path()
    if kind == "SharedMemory":
        kw.setdefault("size", 4096)
    if kind == "SemaphoreSet":
        kw.setdefault("count", 2)
    if kind == "Lock":
        obj = ipc.new(sysvkit.Lock, path, proj, **kw)
    else:
        obj = ipc.new(getattr(sysvkit, kind), path, proj, create=True, **kw)
    return obj, path, proj


KINDS = ["SharedMemory", "MessageQueue", "SemaphoreSet", "Semaphore", "Lock"]


@pytest.mark.parametrize("kind", KINDS)
def test_new_objects_are_0o600_by_default(ipc: Any, kind: str) -> None:
    obj, _, _ = _make(ipc, kind)
    assert obj.stat().mode == 0o600


@pytest.mark.parametrize("kind", KINDS)
def test_mode_is_honoured(ipc: Any, kind: str) -> None:
    obj, _, _ = _make(ipc, kind, mode=0o640)
    assert obj.stat().mode == 0o640


@pytest.mark.parametrize("kind", KINDS)
def test_other_user_gets_permission_error(ipc: Any, run_py: Callable[..., Any],
                                          kind: str) -> None:
    obj, path, proj = _make(ipc, kind)
    code = """
        import os, sys, sysvkit
        os.setgid(%d); os.setuid(%d)
        kind, key, ident = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        cls = getattr(sysvkit, kind)
        for attempt in ("open", "from_id"):
            try:
                if attempt == "from_id":
                    cls.from_id(ident)
                else:
                    cls(key=key)
            except PermissionError as exc:
                print(attempt, "PermissionError", exc)
            else:
                print(attempt, "ACCESS GRANTED")
    """ % (NOBODY, NOBODY)
    proc = run_py(code, kind, str(obj.key), str(obj.id))
    lines = proc.stdout.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["open", "PermissionError"], ["from_id", "PermissionError"]], proc.stdout
    assert obj.exists()


def test_cli_rm_removes_only_what_it_is_told(ipc: Any, run_py: Callable[..., Any]) -> None:
    keep = [_make(ipc, kind)[0] for kind in ("SharedMemory", "MessageQueue", "SemaphoreSet")]
    victim = ipc.new(sysvkit.MessageQueue, key=sysvkit.IPC_PRIVATE)
    run_py("import sys; from sysvkit.cli import main; sys.exit(main(['rm', '-q', sys.argv[1]]))",
           str(victim.id))
    assert not victim.exists()
    assert all(obj.exists() for obj in keep)
    # An id of another kind is not touched.
    shm = keep[0]
    proc = run_py("import sys; from sysvkit.cli import main; sys.exit(main(['rm', '-q', sys.argv[1]]))",
                  str(shm.id + 10_000_000), check=False)
    assert proc.returncode == 1
    assert all(obj.exists() for obj in keep)
