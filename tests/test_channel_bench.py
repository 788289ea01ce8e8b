"""The bench's "channel" rows: every transport measured (or marked not
applicable, saying why), and nothing left behind."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable, Dict, Set

import pytest

# The bench tests' helpers (the suite runs with --import-mode=importlib, so
# test modules do not import each other by name).
_spec = importlib.util.spec_from_file_location("_sysvkit_bench_tests",
                                               Path(__file__).with_name("test_bench.py"))
assert _spec is not None and _spec.loader is not None
_bench_tests: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench_tests)
check_results, channel_rows = _bench_tests.check_results, _bench_tests.channel_rows
posix_shm_names, run_bench_json = _bench_tests.posix_shm_names, _bench_tests.run_bench_json
wait_gone = _bench_tests.wait_gone


@pytest.mark.slow
def test_channel_rows(ipc_ids: Callable[[], Dict[str, Set[int]]]) -> None:
    before, before_posix = ipc_ids(), posix_shm_names()
    doc, marker = run_bench_json("--quick", "--only", "channel", "--repeats", "1")
    check_results(doc, channel_rows())
    by_row: Dict[Any, Any] = {(r["workload"], r["transport"]): r for r in doc["results"]}
    big = by_row[("channel-stream-1MiB", "sysvkit.MessageQueue")]
    assert not big["applicable"] and "msgmax" in big["note"]
    assert by_row[("channel-stream-1MiB", "sysvkit.Channel")]["applicable"]
    assert by_row[("channel-stream-16B", "C ring (reference)")]["reference"]
    assert not wait_gone(marker), "benchmark processes left running"
    assert ipc_ids() == before, "IPC objects left behind"
    assert posix_shm_names() <= before_posix
