"""The bench's report: ratios, the summary, the table and the --json document."""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .optional import np, sysv_ipc
from .runner import Result, Settings
from .transports import counterparts
from .transports.own import SK_LOCK, SK_QUEUE, SK_SEM, SK_SHM
from .transports.peers import SI_QUEUE, SI_SEM, SI_SHM

# What a sysvkit transport is compared with in sysv_ipc.
_SYSV_IPC_TWIN = {SK_QUEUE: SI_QUEUE, SK_SEM: SI_SEM, SK_SHM: SI_SHM}


def _cost(r: Result) -> float:
    """A figure where lower is better (for ratios)."""
    assert r.value is not None
    return r.value if r.better == "lower" else 1.0 / r.value


def add_ratios(results: List[Result]) -> None:
    """Fill in vs_best and vs_sysv_ipc."""
    by_workload: Dict[str, List[Result]] = {}
    for r in results:
        if r.applicable:
            by_workload.setdefault(r.workload, []).append(r)
    for rows in by_workload.values():
        candidates = [r for r in rows if not r.reference] or rows
        best = min(_cost(r) for r in candidates)
        twins = {r.transport: r for r in rows}
        for r in rows:
            if best > 0:
                r.vs_best = _cost(r) / best
            twin = twins.get(_SYSV_IPC_TWIN.get(r.transport, ""))
            if twin is None and r.transport == SK_LOCK:
                twin = twins.get(SI_SEM)
            if twin is not None and _cost(twin) > 0:
                r.vs_sysv_ipc = _cost(r) / _cost(twin)


# Groups whose figures make no ratio a user could read (CPU near 0 %).
_NOT_SUMMED = frozenset(("idle",))


@dataclass
class Comparison:
    """How a sysvkit transport did beside another on the workloads both ran:
    ``speed`` is the other's cost over sysvkit's (above 1: sysvkit is
    faster), the geometric mean over those workloads; ``low``/``high`` the
    least and greatest of the single ratios."""

    sysvkit: str
    other: str
    reference: bool        # the other is a C loop or private memory: a floor
    speed: float
    low: float
    high: float
    workloads: List[str]

    def as_dict(self) -> Dict[str, Any]:
        return {"sysvkit": self.sysvkit, "other": self.other, "reference": self.reference,
                "speed_ratio": self.speed, "min": self.low, "max": self.high,
                "workloads": list(self.workloads)}


def summary(results: List[Result]) -> List[Comparison]:
    """For each other transport, how sysvkit's counterpart compares with it
    on this machine; peers first, then references, each in table order."""
    pairs = counterparts()
    from .registry import GROUP_COUNTERPARTS
    idx = {(r.workload, r.transport): r for r in results if r.applicable}
    ratios: Dict[Tuple[str, str], List[Tuple[str, float]]] = {}
    reference: Dict[str, bool] = {}
    for r in results:
        mine = GROUP_COUNTERPARTS.get(r.group, pairs).get(r.transport)
        if mine is None or not r.applicable or r.group in _NOT_SUMMED:
            continue
        sk = idx.get((r.workload, mine))
        if sk is None or _cost(sk) <= 0 or _cost(r) <= 0:
            continue
        ratios.setdefault((mine, r.transport), []).append((r.workload, _cost(r) / _cost(sk)))
        reference[r.transport] = reference.get(r.transport, False) or r.reference
    out = []
    for (mine, other), got in ratios.items():
        values = [v for _, v in got]
        mean = math.exp(sum(math.log(v) for v in values) / len(values))
        out.append(Comparison(mine, other, reference[other], mean, min(values), max(values),
                              [w for w, _ in got]))
    out.sort(key=lambda c: c.reference)      # stable: table order within each part
    return out


def _times(v: float) -> str:
    return "%.2fx" % v if v < 100 else "%.0fx" % v


def summary_lines(comparisons: List[Comparison]) -> List[str]:
    """The summary under the table, in the user's terms."""
    if not comparisons:
        return []
    lines = ["How sysvkit compares on this machine (times as fast as the other, "
             "geometric mean over the workloads both ran; above 1: sysvkit is faster):"]
    width = max(len("%s vs %s" % (c.sysvkit, c.other)) for c in comparisons)
    shown_reference = False
    for c in comparisons:
        if c.reference and not shown_reference:
            lines.append("Beside the same work done without Python (C loops, private memory):")
            shown_reference = True
        n = len(c.workloads)
        spread = (" (%s..%s over %d workloads)" % (_times(c.low), _times(c.high), n)
                  if n > 1 else " (%s)" % c.workloads[0])
        lines.append("  %s  %6s%s" % (("%s vs %s" % (c.sysvkit, c.other)).ljust(width),
                                      _times(c.speed), spread))
    return lines


# -- output --------------------------------------------------------------------------


def _fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e6:
        return "%.3gM" % (v / 1e6)
    if a >= 1e4:
        return "%.0f" % v
    if a >= 100:
        return "%.1f" % v
    if a >= 1:
        return "%.2f" % v
    return "%.3f" % v


def _ratio(v: Optional[float]) -> str:
    return "-" if v is None else "%.2f" % v


def format_table(results: List[Result], comparisons: List[Comparison],
                 meta: Dict[str, Any]) -> str:
    """The table of every row, then the summary."""
    lines = ["sysvkit bench: %s run, %d samples per figure (median, min..max)%s"
             % (meta["mode"], meta["repeats"],
                {"same": ", all processes on one CPU",
                 "split": ", this process on one CPU, its partners on another"}.get(
                     meta.get("pinned", "none"), "")),
             "%s, Python %s, %d CPUs, msgmax %d, msgmnb %d; optional: %s" % (
                 meta["platform"], meta["python"], meta["cpus"],
                 meta["limits"]["msgmax"], meta["limits"]["msgmnb"],
                 ", ".join("%s %s" % (k, "yes" if v else "not installed")
                           for k, v in meta["optional"].items())),
             ""]
    header = ("workload", "transport", "median", "min..max", "unit", "vs best",
              "vs sysv_ipc")
    rows: List[Tuple[str, ...]] = []
    for r in results:
        if r.applicable:
            assert r.spread is not None
            unit = r.unit
            if "MB/s" in r.extra:
                unit += " (%s MB/s)" % _fmt(r.extra["MB/s"])
            rows.append((r.workload, r.transport, _fmt(r.value),
                         "%s..%s" % (_fmt(r.spread["min"]), _fmt(r.spread["max"])),
                         unit, _ratio(r.vs_best), _ratio(r.vs_sysv_ipc)))
        else:
            rows.append((r.workload, r.transport, "n/a", "", r.note, "", ""))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    right = {2, 3, 5, 6}

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, c in enumerate(cells):
            out.append(c.rjust(widths[i]) if i in right else c.ljust(widths[i]))
        return "  ".join(out).rstrip()
    lines.append(line(header))
    prev = None
    for row in rows:
        if prev is not None and row[0] != prev:
            lines.append("")
        prev = row[0]
        lines.append(line(row))
    lines += ["", "vs best: times worse than the best non-reference transport of the "
              "workload; vs sysv_ipc: sysvkit's cost over sysv_ipc's (< 1: faster).", ""]
    lines += summary_lines(comparisons)
    return "\n".join(lines)


def meta(st: Settings) -> Dict[str, Any]:
    """The run's settings and the machine: the JSON's top-level fields."""
    from .. import __version__, limits
    lim = limits()
    return {
        "sysvkit": __version__,
        "python": platform.python_version(),
        "platform": "%s %s %s" % (platform.system(), platform.release(), platform.machine()),
        "cpus": os.cpu_count() or 1,
        "mode": st.mode,
        "repeats": st.repeats,
        "budget_seconds": st.budget,
        "limits": {"msgmax": lim.msgmax, "msgmnb": lim.msgmnb},
        "optional": {"numpy": np is not None, "sysv_ipc": sysv_ipc is not None},
    }


def to_json(results: List[Result], comparisons: List[Comparison], info: Dict[str, Any]) -> str:
    """The --json document: ``info`` (see meta()), then the rows and the summary."""
    doc = dict(info)
    doc["results"] = [r.as_dict() for r in results]
    doc["summary"] = [c.as_dict() for c in comparisons]
    return json.dumps(doc, indent=1, allow_nan=False)
