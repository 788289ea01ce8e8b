"""``sysvkit bench``: every workload on every transport yields a figure, the
JSON is as documented, and nothing (processes, IPC objects, POSIX segments)
is left behind, also when Ctrl-C arrives mid-run.  No assertion on speed."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any, Callable, Dict, List, Set, Tuple

import pytest

from sysvkit import _core, bench

HAVE_SYSV_IPC = bench._sysv_ipc is not None
HAVE_FASTER_FIFO = bench._faster_fifo is not None
def posix_shm_names() -> Set[str]:
    """The bench's POSIX segments whose creating process is gone (leftovers;
    other runs' live segments come and go and are not counted)."""
    from sysvkit.bench.transports.peers import POSIX_SHM_PREFIX
    out = set()
    for n in os.listdir("/dev/shm"):
        if n.startswith(POSIX_SHM_PREFIX):
            pid = int(n[len(POSIX_SHM_PREFIX):].split("_")[0])
            if not os.path.exists("/proc/%d" % pid):
                out.add(n)
    return out


def marked_pids(marker: str) -> List[int]:
    """Live (not zombie) processes whose environment carries ``marker``."""
    found = []
    needle = ("SYSVKIT_BENCH_TEST=%s" % marker).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open("/proc/%s/stat" % entry) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry))
    return found


def wait_gone(marker: str, timeout: float = 10.0) -> List[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = marked_pids(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def start_bench(*args: str) -> Tuple["subprocess.Popen[str]", str]:
    marker = uuid.uuid4().hex
    env = dict(os.environ, SYSVKIT_BENCH_TEST=marker)
    proc = subprocess.Popen([sys.executable, "-m", "sysvkit", "bench", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return proc, marker


def run_bench_json(*args: str) -> Tuple[Dict[str, Any], str]:
    """Run ``bench --json *args`` to the end (killed if it overruns); its
    parsed output and its marker."""
    proc, marker = start_bench("--json", *args)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return json.loads(out), marker


try:
    import posix_ipc  # noqa: F401
    HAVE_POSIX_IPC = True
except ImportError:
    HAVE_POSIX_IPC = False


def expected_rows() -> Set[Tuple[str, str]]:
    """(workload, transport) of every row a full set of groups must have."""
    msg = [bench.SK_QUEUE, bench.PIPE, bench.UNIX_STREAM, bench.UNIX_DGRAM, bench.TCP,
           bench.MP_QUEUE]
    if HAVE_SYSV_IPC:
        msg.append(bench.SI_QUEUE)
    if HAVE_FASTER_FIFO:           # a peer, where installed
        msg.append(bench.FF_QUEUE)
    rows: Set[Tuple[str, str]] = set()
    for w in ("pair-16B", "pair-1KiB", "pair-64KiB"):
        rows |= {(w, t) for t in msg + [bench.C_MSG]}
    sem = [bench.SK_SEM, bench.SK_LOCK, bench.C_SEM, bench.MP_LOCK]
    sem.append(bench.C_LOCK if hasattr(_core, "bench_c_lock_pair") else bench.C_SEM_UNDO)
    if HAVE_SYSV_IPC:
        sem.append(bench.SI_SEM)
    rows |= {("sem-pair", t) for t in sem}
    for w in ("roundtrip-16B", "roundtrip-4KiB", "throughput-16B", "throughput-4KiB"):
        rows |= {(w, t) for t in msg}
    shm = [bench.SK_SHM, bench.MP_SHM, bench.PRIVATE] + ([bench.SI_SHM] if HAVE_SYSV_IPC else [])
    for w in ("shm-fill-64MiB", "shm-read-64MiB"):
        rows |= {(w, t) for t in shm}
    idle = [bench.SK_QUEUE, bench.SK_SEM, bench.SK_LOCK, bench.PIPE, bench.UNIX_STREAM,
            bench.UNIX_DGRAM, bench.TCP, bench.MP_QUEUE]
    if HAVE_SYSV_IPC:
        idle += [bench.SI_QUEUE, bench.SI_SEM]
    if HAVE_FASTER_FIFO:
        idle.append(bench.FF_QUEUE)
    rows |= {("idle-cpu", t) for t in idle}
    wake = msg + [bench.SK_SEM] + ([bench.SI_SEM] if HAVE_SYSV_IPC else [])
    for w in ("wakeup", "wakeup-timeout"):
        rows |= {(w, t) for t in wake}
    rows |= _mutex_rows()
    rows |= _rwlock_rows()
    rows |= _attach_rows()
    rows |= channel_rows()
    rows |= _queue_rows()
    rows |= _aio_rows()
    return rows


def channel_rows() -> Set[Tuple[str, str]]:
    """The rows of the "channel" group."""
    from sysvkit.bench.workloads import channel as c
    msg = [bench.SK_QUEUE, bench.PIPE, bench.UNIX_STREAM, bench.UNIX_DGRAM, bench.TCP,
           bench.MP_QUEUE] + ([bench.SI_QUEUE] if HAVE_SYSV_IPC else [])
    ff = [c.FF_ONE, c.FF_MANY] if HAVE_FASTER_FIFO else []
    rows = {("channel-stream-" + label, t) for _, label in c.STREAM_SIZES
            for t in msg + ff + [c.SK_CHANNEL, c.SK_CHANNEL_MANY, c.C_RING]}
    return rows | {("channel-roundtrip-16B", t) for t in msg + [c.SK_CHANNEL]
                   + ([c.FF_ONE] if HAVE_FASTER_FIFO else [])}


def _queue_rows() -> Set[Tuple[str, str]]:
    import importlib.util
    from sysvkit.bench.workloads import objqueue as q
    peers = [q.MP_QUEUE] + [name for name, mod in ((q.FASTER_FIFO, "faster_fifo"),
                                                    (q.PY_SHM, "py_sharedmemory"))
                            if importlib.util.find_spec(mod) is not None]
    return ({("queue-small", t) for t in [q.SK_QUEUE, q.C_FLOOR] + peers}
            | {("queue-array-64MiB", t) for t in [q.SK_QUEUE, q.SK_QUEUE_OWN, q.C_FLOOR] + peers})


def _mutex_rows() -> Set[Tuple[str, str]]:
    from sysvkit.bench.workloads import mutex as m
    locks = [m.SK_MUTEX, m.SK_LOCK, m.MP_LOCK] + ([m.POSIX_SEM] if HAVE_POSIX_IPC else [])
    return ({("mutex-pair", t) for t in locks + [m.C_MUTEX, m.C_LOCK]}
            | {("mutex-handoff", t) for t in locks})


def _aio_rows() -> Set[Tuple[str, str]]:
    from sysvkit.bench.workloads import aio
    return {("aio-wakeup", t) for t in aio.TRANSPORTS}


def _rwlock_rows() -> Set[Tuple[str, str]]:
    from sysvkit.bench.workloads import rwlock as rw
    return {("rwlock-read-pair", t) for t in (rw.SK_READ, rw.SK_READ_WITH, rw.SK_LOCK, rw.C_READ)}


def _attach_rows(mib: int = 64) -> Set[Tuple[str, str]]:
    from sysvkit.bench.workloads import attach as a
    ways = [bench.SK_SHM, a.SK_POPULATE, a.SK_READINTO, bench.MP_SHM, a.C_PLAIN, a.C_POPULATE,
            a.C_THREADS] + ([bench.SI_SHM] if HAVE_SYSV_IPC else [])
    return {("attach-read-%dMiB" % mib, t) for t in ways}


def check_results(doc: Dict[str, Any], rows: Set[Tuple[str, str]]) -> None:
    results = doc["results"]
    got = [(r["workload"], r["transport"]) for r in results]
    assert len(got) == len(set(got)), "duplicate rows"
    assert set(got) == rows
    for r in results:
        assert set(r) >= {"workload", "group", "transport", "applicable", "value", "unit",
                          "better", "spread", "samples", "iterations", "reference",
                          "vs_best", "vs_sysv_ipc", "extra", "note"}
        assert r["better"] in ("lower", "higher")
        if not r["applicable"]:
            assert r["value"] is None and r["note"], r
            continue
        v = r["value"]
        assert isinstance(v, float) and math.isfinite(v), r
        if r["group"] == "idle":
            assert v >= 0, r           # CPU while waiting may round to nothing
        else:
            assert v > 0, r
        s = r["spread"]
        assert s["min"] <= s["q1"] <= v <= s["q3"] <= s["max"], r
        assert r["samples"] >= 1 and r["iterations"] >= 1
        if not r["reference"] and r["vs_best"] is not None:
            assert r["vs_best"] >= 1.0 - 1e-9, r
        if r["transport"].startswith("sysvkit.") and HAVE_SYSV_IPC \
                and r["group"] in ("pair", "roundtrip", "throughput", "shm") \
                and r["workload"] != "pair-64KiB":
            assert r["vs_sysv_ipc"] is not None and r["vs_sysv_ipc"] > 0, r
        if r["group"] == "throughput":
            assert r["extra"]["MB/s"] > 0
    # n/a is reserved for what cannot apply: System V messages over msgmax
    # (and datagrams over the socket's limit), and waits that have no
    # timeout in sysv_ipc.
    for r in results:
        if not r["applicable"]:
            assert r["workload"] in ("pair-64KiB", "idle-cpu", "wakeup-timeout",
                                     "channel-stream-1MiB"), r
            assert ("sysv" in r["transport"] or "C " in r["transport"]
                    or r["transport"] == bench.UNIX_DGRAM), r
    assert "targets" not in doc
    for c in doc["summary"]:
        assert set(c) == {"sysvkit", "other", "reference", "speed_ratio", "min", "max",
                          "workloads"}
        assert c["sysvkit"].startswith("sysvkit.") and not c["other"].startswith("sysvkit.")
        assert 0 < c["min"] <= c["speed_ratio"] * (1 + 1e-9)
        assert c["speed_ratio"] <= c["max"] * (1 + 1e-9)
        assert c["workloads"] and isinstance(c["reference"], bool)
        assert not any(w.startswith("idle") for w in c["workloads"])


@pytest.mark.slow
def test_quick_json_every_workload_and_transport(
        ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    before, before_posix = ipc_ids(), posix_shm_names()
    doc, marker = run_bench_json("--quick")
    assert doc["mode"] == "quick"
    assert doc["pinned"] == "same"       # the default: steady figures
    assert doc["limits"]["msgmax"] > 0
    check_results(doc, expected_rows())
    others = {c["other"] for c in doc["summary"]}
    assert {bench.PIPE, bench.UNIX_STREAM, bench.UNIX_DGRAM, bench.TCP, bench.MP_QUEUE,
            bench.MP_LOCK, bench.MP_SHM, bench.C_MSG, bench.C_SEM, bench.PRIVATE} <= others
    if HAVE_SYSV_IPC:
        assert {bench.SI_QUEUE, bench.SI_SEM, bench.SI_SHM} <= others
    assert not wait_gone(marker), "benchmark processes left running"
    assert ipc_ids() == before, "IPC objects left behind"
    assert posix_shm_names() <= before_posix


def test_run_directly_json(capsys: pytest.CaptureFixture[str],
                           ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    """bench.run() on the parser bench.add_arguments() builds (the CLI's path)."""
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    before = ipc_ids()
    args = parser.parse_args(["--json", "--only", "sem", "--only", "pair", "--repeats", "1"])
    args.quick = True
    assert bench.run(args) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {r for r in expected_rows() if r[0] in ("sem-pair", "pair-16B", "pair-1KiB",
                                                   "pair-64KiB")}
    check_results(doc, rows)
    assert doc["repeats"] == 1
    assert ipc_ids() == before


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--quick", "--only", "sem", "--repeats", "1"])
    assert bench.run(args) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("workload"))
    for col in ("transport", "median", "min..max", "unit", "vs best", "vs sysv_ipc"):
        assert col in header
    assert "sysvkit.Lock" in out and "sysvkit.Semaphore" in out
    # A summary in the user's terms: how sysvkit compares, no targets or issues.
    assert "Targets" not in out and "MISSED" not in out and "issue" not in out.lower()
    assert "How sysvkit compares on this machine" in out
    assert "sysvkit.Lock vs multiprocessing.Lock" in out
    assert "sysvkit.Semaphore vs C semop pair (reference)" in out


def test_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.run(parser.parse_args(["--repeats", "0"])) == 2
    assert "--repeats" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--only", "nosuchgroup"])


def fake(workload: str, transport: str, value: float, better: str = "lower",
         reference: bool = False, group: str = "pair") -> bench.Result:
    return bench.Result(workload, group, transport, "us" if better == "lower" else "msg/s",
                        better, value, {"min": value, "q1": value, "q3": value, "max": value},
                        3, 10, reference)


def test_ratios_and_summary() -> None:
    rows = [
        fake("pair-16B", bench.SK_QUEUE, 1.1),
        fake("pair-16B", bench.C_MSG, 1.0, reference=True),
        fake("pair-16B", bench.SI_QUEUE, 2.2),
        fake("pair-16B", bench.PIPE, 0.55),
        fake("throughput-16B", bench.SK_QUEUE, 200.0, "higher", group="throughput"),
        fake("throughput-16B", bench.SI_QUEUE, 100.0, "higher", group="throughput"),
        fake("sem-pair", bench.SK_LOCK, 1.3, group="sem"),
        fake("sem-pair", bench.C_LOCK, 1.0, reference=True, group="sem"),
        fake("idle-cpu", bench.SK_QUEUE, 0.5, group="idle"),
        fake("wakeup", bench.SK_QUEUE, 10.0, group="wakeup"),
        fake("wakeup-timeout", bench.SK_QUEUE, 11.0, group="wakeup"),
        fake("shm-fill-64MiB", bench.SK_SHM, 9.0, "higher", group="shm"),
        fake("shm-fill-64MiB", bench.PRIVATE, 10.0, "higher", reference=True, group="shm"),
        bench.Result("pair-64KiB", "pair", bench.SK_QUEUE, "us", "lower", note="too big"),
    ]
    bench.add_ratios(rows)
    by = {(r.workload, r.transport): r for r in rows}
    # The best non-reference transport is the unit; a reference may beat it.
    assert by["pair-16B", bench.PIPE].vs_best == pytest.approx(1.0)
    assert by["pair-16B", bench.SK_QUEUE].vs_best == pytest.approx(2.0)
    assert by["pair-16B", bench.C_MSG].vs_best == pytest.approx(1.0 / 0.55)
    assert by["pair-16B", bench.SK_QUEUE].vs_sysv_ipc == pytest.approx(0.5)
    # Higher is better: twice the rate is half the cost.
    assert by["throughput-16B", bench.SK_QUEUE].vs_sysv_ipc == pytest.approx(0.5)
    assert by["throughput-16B", bench.SI_QUEUE].vs_best == pytest.approx(2.0)
    assert by["pair-64KiB", bench.SK_QUEUE].vs_best is None
    got = {(c.sysvkit, c.other): c for c in bench.summary(rows)}
    # The other's cost over sysvkit's counterpart: above 1, sysvkit is faster.
    c = got[bench.SK_QUEUE, bench.SI_QUEUE]
    assert c.speed == pytest.approx(2.0) and c.workloads == ["pair-16B", "throughput-16B"]
    assert (c.low, c.high) == (pytest.approx(2.0), pytest.approx(2.0)) and not c.reference
    assert got[bench.SK_QUEUE, bench.PIPE].speed == pytest.approx(0.5)
    c = got[bench.SK_QUEUE, bench.C_MSG]
    assert c.speed == pytest.approx(1.0 / 1.1) and c.reference
    assert got[bench.SK_LOCK, bench.C_LOCK].speed == pytest.approx(1.0 / 1.3)
    assert got[bench.SK_SHM, bench.PRIVATE].speed == pytest.approx(0.9)
    assert not any(w.startswith("idle") for c in got.values() for w in c.workloads)
    assert [c.reference for c in bench.summary(rows)] == sorted(c.reference for c in got.values())
    text = bench.format_table(rows, bench.summary(rows), {
        "mode": "quick", "repeats": 3, "platform": "Linux", "python": "3", "cpus": 2,
        "limits": {"msgmax": 8192, "msgmnb": 16384}, "optional": {}})
    assert "sysvkit.MessageQueue vs sysv_ipc.MessageQueue" in text
    assert "Targets" not in text and "MISSED" not in text and "issue" not in text


def test_measure_calibrates_to_budget() -> None:
    calls: List[int] = []

    def loop(n: int) -> float:
        calls.append(n)
        return n * 1e-6          # a pretend operation of 1 us

    st = bench.Settings("quick", 0.01, 4, 1, 0.1, 1, 1)
    per, n = bench.measure(loop, st)
    assert per == [pytest.approx(1e-6)] * 4
    assert n == pytest.approx(10000, rel=0.01)
    assert calls[-5:] == [n] * 5          # a warm-up, then the samples


def interrupt_mid_run(args: List[str], ready: str,
                      ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    """Start the bench, SIGINT it once its child and its objects exist, then
    check that it exited promptly and left nothing behind."""
    before, before_posix = ipc_ids(), posix_shm_names()
    proc, marker = start_bench(*args, "--progress")
    try:
        assert proc.stderr is not None
        line = ""
        while ready not in line:
            line = proc.stderr.readline()
            assert line, "bench ended early: %s" % proc.communicate()[1]
        deadline = time.monotonic() + 30
        while len(marked_pids(marker)) < 2:      # the bench and a child
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no child process appeared"
            time.sleep(0.01)
        time.sleep(0.2)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert not wait_gone(marker), "benchmark processes left running"
    assert ipc_ids() == before, "IPC objects left behind"
    assert posix_shm_names() <= before_posix


@pytest.mark.slow
@pytest.mark.parametrize("group", ["roundtrip", "wakeup"])
def test_ctrl_c_mid_run_cleans_up(group: str, ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    interrupt_mid_run(["--quick", "--json", "--only", group], "bench: %s" % group, ipc_ids)


@pytest.mark.slow
def test_ctrl_c_during_shared_memory_cleans_up(ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    interrupt_mid_run(["--quick", "--only", "shm", "--bulk-mib", "32"], "bench: shm", ipc_ids)


def test_not_applicable_over_msgmax() -> None:
    msgmax = bench._msgmax()
    rows = list(bench.bench_pair(bench.Settings("quick", 0.001, 1, 1, 0.1, 1, 1)))
    big = [r for r in rows if r.workload == "pair-64KiB" and r.transport == bench.SK_QUEUE]
    assert len(big) == 1
    if 64 * 1024 > msgmax:
        assert big[0].value is None and "msgmax" in big[0].note
    else:
        assert big[0].value is not None and big[0].value > 0


@pytest.mark.slow
def test_child_killed_mid_run_fails_cleanly(ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    """A child that dies mid-measurement ends the run with one line and
    exit 1 (never a hang), and the cleanup still runs."""
    before, before_posix = ipc_ids(), posix_shm_names()
    proc, marker = start_bench("--quick", "--only", "roundtrip", "--progress")
    try:
        assert proc.stderr is not None
        assert "bench: roundtrip" in proc.stderr.readline()
        deadline = time.monotonic() + 30
        while True:
            children = [p for p in marked_pids(marker) if p != proc.pid]
            if len(children) >= 3:
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no child processes appeared"
            time.sleep(0.01)
        time.sleep(0.2)
        os.kill(children[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert "exited unexpectedly" in err
    assert "Traceback" not in err, err
    assert not wait_gone(marker), "benchmark processes left running"
    assert ipc_ids() == before, "IPC objects left behind"
    assert posix_shm_names() <= before_posix


def test_without_numpy_and_sysv_ipc(run_py: Any,
                                    ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    """Optional packages missing: their rows go, the rest still runs (shared
    memory is then copied with memoryviews)."""
    before = ipc_ids()
    proc = run_py("""
        import sys
        sys.modules["numpy"] = None
        sys.modules["sysv_ipc"] = None
        from sysvkit import bench
        raise SystemExit(bench.main(["--quick", "--json", "--repeats", "1", "--only", "sem",
                                     "--only", "shm", "--only", "idle", "--bulk-mib", "4"]))
    """, timeout=120)
    doc = json.loads(proc.stdout)
    assert doc["optional"] == {"numpy": False, "sysv_ipc": False}
    transports = {r["transport"] for r in doc["results"]}
    assert not any(t.startswith("sysv_ipc") for t in transports)
    assert {bench.SK_SHM, bench.MP_SHM, bench.PRIVATE, bench.SK_LOCK} <= transports
    for r in doc["results"]:
        assert r["applicable"] and r["value"] >= 0 and r["vs_sysv_ipc"] is None, r
    assert ipc_ids() == before


@pytest.mark.slow
@pytest.mark.parametrize("group", ["roundtrip", "shm"])
def test_parent_killed_children_clean_up(group: str,
                                         ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    """SIGKILL leaves the bench no chance to clean up: its children notice
    (their lifeline closes), remove the objects they serve, and exit."""
    before, before_posix = ipc_ids(), posix_shm_names()
    args = ["--quick", "--only", group, "--progress"]
    if group == "shm":
        args += ["--bulk-mib", "16"]
    proc, marker = start_bench(*args)
    try:
        assert proc.stderr is not None
        assert "bench: %s" % group in proc.stderr.readline()
        deadline = time.monotonic() + 30
        while len([p for p in marked_pids(marker) if p != proc.pid]) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no child processes appeared"
            time.sleep(0.01)
        time.sleep(0.2)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not wait_gone(marker), "benchmark processes left running"
    deadline = time.monotonic() + 5
    while ipc_ids() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ipc_ids() == before, "IPC objects left behind"
    assert posix_shm_names() <= before_posix


@pytest.mark.parametrize("pin", ["none", "split"])
def test_pinned_placement(pin: str, ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    if pin == "split" and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    before = ipc_ids()
    doc, marker = run_bench_json("--quick", "--only", "roundtrip", "--repeats", "1",
                                 "--pin", pin)
    assert doc["pinned"] == pin
    check_results(doc, {r for r in expected_rows() if r[0].startswith("roundtrip-")})
    assert not wait_gone(marker)
    assert ipc_ids() == before
