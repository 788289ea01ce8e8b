"""Typing: the hand-written stub matches the compiled core (stubtest), the
package passes mypy --strict, and user code type-checks against it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

import pytest

import sysvkit

pytest.importorskip("mypy")

ROOT = Path(sysvkit.__file__).resolve().parent.parent


def mypy(*args: str, timeout: float = 180) -> "subprocess.CompletedProcess[str]":
    """Run a mypy tool on the sysvkit that Python imports: an installed copy
    is found like any installed package; an editable install's source tree
    is named on MYPYPATH (mypy cannot follow the editable import hook).  No
    cache, so parallel runs cannot collide."""
    env = dict(os.environ, MYPY_FORCE_COLOR="0")
    if (ROOT / "setup.py").is_file():
        env["MYPYPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_package_ships_typing_files() -> None:
    pkg = Path(sysvkit.__file__).parent
    assert (pkg / "py.typed").is_file()
    assert (pkg / "_core.pyi").is_file()


# Before Python 3.12 (PEP 688) a C type that lends buffers has no
# __buffer__ attribute at run time, yet the stub must declare it (as
# typeshed does for bytes and mmap) for memoryview(attachment) to type-check.
STUBTEST_ALLOWLIST = r"""
sysvkit\._core\.[A-Za-z_]+\.__(release_)?buffer__
"""


def test_stubtest_core(tmp_path: Path) -> None:
    args = ["mypy.stubtest", "sysvkit._core"]
    if sys.version_info < (3, 12):
        allow = tmp_path / "allowlist.txt"
        allow.write_text(STUBTEST_ALLOWLIST)
        args += ["--allowlist", str(allow), "--ignore-unused-allowlist"]
    proc = mypy(*args)
    assert proc.returncode == 0, "stubtest failed:\n%s%s" % (proc.stdout, proc.stderr)


def test_mypy_strict_package() -> None:
    proc = mypy("mypy", "--strict", "--cache-dir", os.devnull, "-p", "sysvkit")
    assert proc.returncode == 0, "mypy --strict failed:\n%s%s" % (proc.stdout, proc.stderr)
    assert "Success" in proc.stdout


USER_CODE = '''
from __future__ import annotations

import pathlib
from typing import Tuple

import sysvkit
from sysvkit import lowlevel as ll
from sysvkit.lowlevel import IPC_CREAT, IPC_NOWAIT, msgget, msgrcv, msgsnd

key: int = sysvkit.ftok("/tmp", 1)
key = sysvkit.ftok(b"/tmp", 2)
key = sysvkit.ftok(pathlib.Path("/tmp"), 3)
q: int = msgget(key, IPC_CREAT | 0o600)
msgsnd(q, b"data", 1, timeout=0.5)
msgsnd(q, bytearray(b"data"), 1)
msgsnd(q, memoryview(b"data"), 1, IPC_NOWAIT)
got: Tuple[bytes, int] = msgrcv(q, 100, 0, IPC_NOWAIT, timeout=1.0)
att: ll.Attachment = ll.shmat(ll.shmget(ll.IPC_PRIVATE, 4096, IPC_CREAT | 0o600))
view = memoryview(att)
written: int = att.write(b"x", 0)
data: bytes = att.read(1, 0)
closed: bool = att.closed
ll.shmdt(att)
ll.semop(ll.semget(0, 1, IPC_CREAT), [(0, 1, 0)], timeout=None)
parts: sysvkit.KeyParts = sysvkit.explain_key(key)
proj: int = parts.proj_id
limits: sysvkit.Limits = sysvkit.limits()
msgmax: int = limits.msgmax
removed: type[FileNotFoundError] = sysvkit.RemovedError
private: int = sysvkit.IPC_PRIVATE
'''

# Each line must be an error: the stubs are precise, not Any.
WRONG_CODE = '''
import sysvkit
from sysvkit import lowlevel as ll

sysvkit.ftok(1.5, 1)
sysvkit.ftok("/tmp", "1")
ll.msgsnd(1, "text", 1)
ll.msgrcv(1, 100, timeout="1")
n: str = ll.msgget(0, 0)
ll.shmdt(5)
b: int = ll.shmat(1).read()
s: str = sysvkit.explain_key(1).proj_id
ll.no_such_function()
'''


def _check_file(tmp_path: Path, name: str, code: str) -> "subprocess.CompletedProcess[str]":
    path = tmp_path / name
    path.write_text(textwrap.dedent(code).lstrip("\n"))
    # The package itself is checked above; here only the user file counts.
    return mypy("mypy", "--strict", "--follow-imports=silent", "--cache-dir", os.devnull,
                "--no-error-summary", str(path))


def test_user_code_type_checks(tmp_path: Path) -> None:
    proc = _check_file(tmp_path, "user_ok.py", USER_CODE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_user_mistakes_are_caught(tmp_path: Path) -> None:
    proc = _check_file(tmp_path, "user_wrong.py", WRONG_CODE)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = WRONG_CODE.lstrip("\n").split("\n")
    expected = [i + 1 for i, line in enumerate(lines)
                if line and not line.startswith(("import", "from"))]
    flagged: List[int] = sorted({int(m.group(1)) for m in
                                 re.finditer(r"user_wrong\.py:(\d+): error", proc.stdout)})
    assert flagged == expected, proc.stdout
