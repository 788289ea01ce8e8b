"""The manual (docs/) builds without a warning, its examples run, and what it
shows of the command line is what the command line prints.

- ``sphinx-build -W -b html`` (warnings are errors) over docs/.
- ``sphinx-build -b doctest``: every ``>>>`` example runs against the
  installed sysvkit.  Where the tests may make an IPC namespace of their own
  (root: ``unshare --ipc``), the build runs in one, and the namespace must
  be empty afterwards: the examples remove everything they make.
- The getting-started producer and consumer run as two processes, in both
  orders, and leave no queue behind.
- docs/cli/*.txt (the output the manual shows) still match what
  tools/cli_examples.py captures now, up to ids, pids, keys and times.
- The fields of ``sysvkit bench --json`` are the ones the bench page names.
- The README's links to the manual name files that exist.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

import sysvkit

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TOOLS = ROOT / "tools"

try:
    import sphinx  # noqa: F401
    HAVE_SPHINX = True
except ImportError:
    HAVE_SPHINX = False

needs_sphinx = pytest.mark.skipif(
    not HAVE_SPHINX,
    reason="Sphinx is not installed (the test extras install it on Python 3.11 and newer)")

# Lists the IPC objects of the current namespace, one "kind id" per line.
_LIST_IPC = """
for kind in ("shm", "msg", "sem"):
    with open("/proc/sysvipc/" + kind) as f:
        next(f)
        for line in f:
            if line.strip():
                print(kind, line.split()[1])
"""


def _can_unshare_ipc() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        proc = subprocess.run(["unshare", "--ipc", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


CAN_UNSHARE = _can_unshare_ipc()


def _sphinx(builder: str, out: Path, *, own_namespace: bool) -> "subprocess.CompletedProcess[str]":
    """Build docs/ with ``builder`` into ``out``; in a new IPC namespace if asked,
    printing that namespace's objects after the build."""
    build = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder,
             "-d", str(out / "doctrees"), str(DOCS), str(out / builder)]
    if own_namespace:
        script = ("import subprocess, sys\n"
                  "rc = subprocess.run(sys.argv[1:]).returncode\n"
                  "print('--- objects left ---', flush=True)\n"
                  + _LIST_IPC +
                  "sys.exit(rc)\n")
        cmd = ["unshare", "--ipc", sys.executable, "-c", script, *build]
    else:
        cmd = build
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=str(out))


def _objects_left(stdout: str) -> List[str]:
    _, _, after = stdout.partition("--- objects left ---\n")
    return [line for line in after.splitlines() if line.strip()]


@needs_sphinx
def test_html_builds_without_warnings(tmp_path: Path) -> None:
    proc = _sphinx("html", tmp_path, own_namespace=False)
    assert proc.returncode == 0, "sphinx-build -W -b html failed:\n%s%s" % (proc.stdout,
                                                                           proc.stderr)
    html = tmp_path / "html"
    for page in ("index", "getting-started", "cli", "bench", "api"):
        assert (html / (page + ".html")).is_file(), page
    # Every kind page is in the manual and reachable from the index.
    index = (html / "index.html").read_text()
    for rst in sorted((DOCS / "kinds").glob("*.rst")):
        assert (html / "kinds" / (rst.stem + ".html")).is_file(), rst.name
        assert 'href="kinds/%s.html"' % rst.stem in index, rst.name
    # Every public name is in the reference, new ones too.
    from sysvkit import lowlevel
    api = (html / "api.html").read_text()
    names = (["sysvkit." + n for n in sysvkit.__all__]
             + ["sysvkit.lowlevel." + n for n in lowlevel.__all__])
    missing = [name for name in names if 'id="%s"' % name not in api]
    assert missing == [], "not in the API reference: %s" % missing
    # The compiled core's signatures are there too (Cython's embedsignature).
    assert re.search(r'id="sysvkit\.lowlevel\.msgrcv".*?maxsize.*?timeout', api, re.S)


@needs_sphinx
def test_doctests_pass_and_remove_what_they_make(tmp_path: Path) -> None:
    proc = _sphinx("doctest", tmp_path, own_namespace=CAN_UNSHARE)
    report = tmp_path / "doctest" / "output.txt"
    text = report.read_text() if report.exists() else ""
    assert proc.returncode == 0, "sphinx-build -b doctest failed:\n%s%s%s" % (
        text, proc.stdout, proc.stderr)
    summary = re.search(r"(\d+) tests\s+(\d+) failures in tests", text)
    assert summary, text
    assert int(summary.group(1)) > 20 and summary.group(2) == "0", text
    assert "0 failures in setup code" in text and "0 failures in cleanup code" in text, text
    if CAN_UNSHARE:
        assert _objects_left(proc.stdout) == [], (
            "the examples left IPC objects behind: %s" % _objects_left(proc.stdout))


# -- the producer and the consumer of "Getting started" ---------------------------------

def _start(script: str, path: str) -> "subprocess.Popen[str]":
    return subprocess.Popen([sys.executable, str(DOCS / "examples" / script), path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: "subprocess.Popen[str]") -> str:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, "%s exited %s\n%s%s" % (proc.args, proc.returncode, out, err)
    return out


def _queue_with_key(key: int) -> Optional[sysvkit.MessageQueueInfo]:
    for info in sysvkit.list_message_queues():
        if info.key == key:
            return info
    return None


@pytest.mark.parametrize("first", ["consumer", "producer"])
def test_producer_and_consumer_run_as_two_processes(ipc, first: str) -> None:
    path, _ = ipc.path()
    key = sysvkit.ftok(path, 1)
    try:
        if first == "consumer":
            consumer = _start("consumer.py", path)
            producer = _start("producer.py", path)
        else:
            producer = _start("producer.py", path)
            consumer = _start("consumer.py", path)
        assert _finish(producer) == "sum of squares: 385\n"
        assert _finish(consumer) == "squared 10 numbers\n"
        assert _queue_with_key(key) is None, "the examples left their queue behind"
    finally:
        info = _queue_with_key(key)
        if info is not None:        # only on failure: the queue these scripts made
            ipc.track_id("msg", info.id)


# -- the command line output the manual shows ---------------------------------------------

_HEX = re.compile(r"0x[0-9a-f]+")
_DIGITS = re.compile(r"\d+")
_NAMES = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
                    r"|Nov|Dec)\b")


def _layout(line: str) -> str:
    """A line with what differs between runs and machines masked: keys,
    numbers (ids, pids, sizes, limits) and day and month names.  A line
    without digits (titles, column headers) stays as it is."""
    line = line.rstrip()
    if not re.search(r"\d", line):
        return line
    line = _NAMES.sub("D", _DIGITS.sub("9", _HEX.sub("0xK", line)))
    return " ".join(line.split())


@pytest.mark.skipif(not CAN_UNSHARE, reason="needs a private IPC namespace (unshare --ipc, "
                    "as root) so that the listings show only the examples' objects")
def test_cli_output_in_the_manual_is_current(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(TOOLS / "cli_examples.py"), "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = sorted(p.name for p in (DOCS / "cli").glob("*.txt"))
    now = sorted(p.name for p in tmp_path.glob("*.txt"))
    assert shown == now
    cli_rst = (DOCS / "cli.rst").read_text()
    for name in shown:
        assert "cli/%s" % name in cli_rst, "docs/cli/%s is not shown in cli.rst" % name
        old = [_layout(line) for line in (DOCS / "cli" / name).read_text().splitlines()]
        new = [_layout(line) for line in (tmp_path / name).read_text().splitlines()]
        assert old == new, ("docs/cli/%s differs from what the command prints now; "
                            "run tools/cli_examples.py (as root) to capture it again" % name)


def test_layout_masks_only_what_varies() -> None:
    a = "0x0100f3a2 0          root       600        15           3           "
    b = "0x0200e1b7 12         root       600        15           3"
    assert _layout(a) == _layout(b)
    assert _layout("key        msqid      owner") != _layout("key        msqid     owner")
    assert _layout("0  root  600") != _layout("0  root  644 x")


# -- the bench page --------------------------------------------------------------------------

def test_bench_json_fields_are_the_documented_ones() -> None:
    """Every field of ``sysvkit bench --json`` (the run, a result, a summary
    item) is named on the bench page, and the page names no other."""
    proc = subprocess.run([sys.executable, "-m", "sysvkit", "bench", "--quick", "--repeats", "1",
                           "--only", "sem", "--json"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    page = (DOCS / "bench.rst").read_text()
    json_part = page[page.index("\nJSON\n"):]
    fields = set(data) | set(data["results"][0]) | set(data["results"][0]["spread"])
    if data["summary"]:
        fields |= set(data["summary"][0])
    undocumented = sorted(f for f in fields if '``%s``' % f not in json_part
                          and '"%s"' % f not in json_part)
    assert undocumented == [], "bench --json fields missing from docs/bench.rst: %s" % undocumented
    shown = set(re.findall(r'"([a-z_]+)":', json_part))
    assert shown - fields == set(), "docs/bench.rst shows fields bench --json no longer has"


# -- README -----------------------------------------------------------------------------

def test_readme_links_to_manual_pages_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#\s]+)", readme)
    assert links, "the README links no page of the manual"
    for link in links:
        assert (ROOT / link).exists(), link
    for page in ("getting-started", "cli", "bench", "api"):
        assert "docs/%s.rst" % page in links, page
