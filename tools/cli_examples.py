"""Capture the command line examples of the manual (docs/cli/*.txt) by running them.

Runs inside a fresh IPC namespace of its own (``unshare --ipc``, as root), so
the listings show only the objects made here, and everything made vanishes
with the namespace.  It makes a few objects keyed by files in a temporary
directory ``app/``, then runs each documented ``sysvkit`` command and writes
the command line and its output to ``docs/cli/<name>.txt``.

    sudo python tools/cli_examples.py            # rewrite docs/cli/*.txt
    python tools/cli_examples.py --out DIR       # write them elsewhere (the tests)

The manual includes those files as they are; the tests run this script again
and compare the layout (headers and columns) with what the manual shows.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from typing import List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS_CLI = os.path.join(os.path.dirname(HERE), "docs", "cli")

# (file name, arguments after "sysvkit"); "{Q}" and "{S}" stand for the ids
# of the example queue and semaphore set, "{APP}" for the key files' directory.
EXAMPLES: List[Tuple[str, str]] = [
    ("ipcs", "ipcs"),
    ("ipcs-m-human", "ipcs -m --human"),
    ("ipcs-p", "ipcs -p"),
    ("ipcs-t", "ipcs -t"),
    ("ipcs-c", "ipcs -c"),
    ("ipcs-u", "ipcs -u"),
    ("ipcs-l", "ipcs -l"),
    ("ipcs-s-i", "ipcs -s -i {S}"),
    ("ipcs-resolve", "ipcs -q --resolve app"),
    ("ipcs-json", "ipcs -q --json"),
    ("key", "key app/jobs 1"),
    ("key-explain", "key --explain {QKEY}"),
    ("rm", "rm -v -q {Q}"),
]


def _in_own_namespace() -> bool:
    return os.environ.get("SYSVKIT_CLI_EXAMPLES_NS") == "1"


def _run(args: str, cwd: str) -> str:
    """``sysvkit ARGS`` (as python -m sysvkit, the installed package) -> its output.

    Started with posix_spawn, which shares this process's memory until the
    exec, and never with fork: a forked child inherits the example segment's
    attachment and drops it at exec, which stamps the segment's detach time
    and last pid (subprocess forks on Python 3.9; it uses vfork from 3.10).
    """
    argv = [sys.executable, "-m", "sysvkit", *shlex.split(args)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        old_cwd = os.getcwd()
        os.chdir(cwd)
        try:
            pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        finally:
            os.chdir(old_cwd)
        status = os.waitpid(pid, 0)[1]
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit("sysvkit %s failed (%d): %s" % (args, code, stderr))
    return stdout


def capture(out_dir: str) -> None:
    """Make the example objects and write each example's output (in this namespace)."""
    import sysvkit

    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as top:
        os.chdir(top)          # relative paths ("app/jobs") in the examples
        os.mkdir("app")
        for name in ("frames", "jobs", "workers", "lock"):
            open(os.path.join("app", name), "w").close()
        made: List[object] = []
        try:
            shm = sysvkit.SharedMemory("app/frames", 1, size=4 << 20, create=True)
            made.append(shm)
            q = sysvkit.MessageQueue("app/jobs", 1, create=True)
            made.append(q)
            for i in range(3):
                q.send(b"job %d" % i, type=1)
            sems = sysvkit.SemaphoreSet("app/workers", 1, count=3, initial=[2, 0, 1],
                                        create=True)
            made.append(sems)
            lock = sysvkit.Lock("app/lock", 1)
            made.append(lock)
            fields = {"Q": str(q.id), "S": str(sems.id), "APP": "app",
                      "QKEY": "0x%08x" % (q.key & 0xFFFFFFFF)}
            for name, args in EXAMPLES:
                line = args.format(**fields)
                text = "$ sysvkit %s\n%s" % (line, _run(line, top))
                with open(os.path.join(out_dir, name + ".txt"), "w") as f:
                    f.write(text.rstrip("\n") + "\n")
        finally:
            for obj in reversed(made):
                try:
                    obj.remove()  # type: ignore[attr-defined]
                except OSError:
                    pass          # the rm example removed the queue already
                try:
                    obj.close()  # type: ignore[attr-defined]
                except (OSError, ValueError):
                    pass


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DOCS_CLI, help="directory for the .txt files "
                        "(default: docs/cli)")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    if _in_own_namespace():
        capture(out)
        return 0
    # Start again in a new IPC namespace: only the examples' objects are listed,
    # and none can outlive the run.
    env = dict(os.environ, SYSVKIT_CLI_EXAMPLES_NS="1")
    cmd = ["unshare", "--ipc", sys.executable, os.path.abspath(__file__), "--out", out]
    return subprocess.run(cmd, env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
