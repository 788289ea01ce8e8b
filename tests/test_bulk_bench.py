"""The bench's "attach" rows: a fresh attach of a large segment copied out,
each way, with nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Set

import pytest

from sysvkit import _core
from sysvkit.bench.workloads import attach as a


def shm_creators() -> Set[int]:
    """Creator pids of every segment in this namespace."""
    with open("/proc/sysvipc/shm") as f:
        head = f.readline().split()
        col = head.index("cpid")
        return {int(line.split()[col]) for line in f if line.strip()}


def test_attach_rows() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sysvkit", "bench", "--json", "--quick",
                             "--only", "attach", "--bulk-mib", "16", "--repeats", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    doc = json.loads(out)
    rows = {r["transport"]: r for r in doc["results"]}
    want = {"sysvkit.SharedMemory", a.SK_POPULATE, a.SK_READINTO,
            "multiprocessing.shared_memory", a.C_PLAIN, a.C_POPULATE, a.C_THREADS}
    assert want <= set(rows)
    for r in rows.values():
        assert r["workload"] == "attach-read-16MiB" and r["group"] == "attach"
        assert r["unit"] == "GB/s" and r["value"] > 0
        assert r["reference"] == r["transport"].endswith("(reference)")
    assert proc.pid not in shm_creators()          # its segments are gone


def test_c_attach_read_floor(ipc: Any) -> None:
    import sysvkit
    shm = ipc.new(sysvkit.SharedMemory, key=sysvkit.IPC_PRIVATE, size=1 << 20)
    shm.write(b"\x09" * (1 << 20))
    for populate, threads in ((0, 1), (1, 1), (1, 2)):
        dst = bytearray(1 << 20)
        assert _core.bench_c_attach_read(shm.id, dst, populate, threads, 2) > 0
        assert dst == b"\x09" * (1 << 20)
    with pytest.raises(ValueError, match="must hold"):
        _core.bench_c_attach_read(shm.id, bytearray(10), 0, 1, 1)
    with pytest.raises(ValueError, match="threads"):
        _core.bench_c_attach_read(shm.id, bytearray(1 << 20), 0, 0, 1)
    assert shm.stat().attached == 1
