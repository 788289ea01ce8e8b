"""The bench's report: ratios between transports, the table printed by default, and the JSON document of --json."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .optional import np, sysv_ipc
from .runner import Result, Settings
from .transports.own import C_LOCK, C_MSG, C_SEM, C_SEM_UNDO, SK_LOCK, SK_QUEUE, SK_SEM, SK_SHM
from .transports.peers import PRIVATE, SI_QUEUE, SI_SEM, SI_SHM
from .workloads.pair import PAIR_SIZES

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


@dataclass
class Target:
    name: str
    value: float
    target: str
    met: bool

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "value": self.value, "target": self.target,
                "met": self.met}


def targets(results: List[Result]) -> List[Target]:
    """The ratios issue 7 asks for, from whatever was measured."""
    idx = {(r.workload, r.transport): r for r in results if r.applicable}
    out: List[Target] = []

    def ratio(a: Optional[Result], b: Optional[Result]) -> Optional[float]:
        if a is None or b is None:
            return None
        return _cost(a) / _cost(b) if _cost(b) > 0 else None

    def add(name: str, value: Optional[float], op: str, limit: float) -> None:
        if value is None:
            return
        met = {"<=": value <= limit, "<": value < limit, ">=": value >= limit}[op]
        out.append(Target(name, value, "%s %g" % (op, limit), met))

    for _, label in PAIR_SIZES:
        w = "pair-" + label
        add("sysvkit queue pair / C pair (%s)" % label,
            ratio(idx.get((w, SK_QUEUE)), idx.get((w, C_MSG))), "<=", 1.2)
    c_lock = idx.get(("sem-pair", C_LOCK)) or idx.get(("sem-pair", C_SEM_UNDO))
    add("sysvkit Lock pair / C lock pair", ratio(idx.get(("sem-pair", SK_LOCK)), c_lock),
        "<=", 1.15)
    add("sysvkit Semaphore pair / C semop pair",
        ratio(idx.get(("sem-pair", SK_SEM)), idx.get(("sem-pair", C_SEM))), "<=", 1.15)
    for r in results:
        if r.vs_sysv_ipc is not None and r.group != "idle":
            add("%s vs sysv_ipc (%s)" % (r.transport, r.workload), r.vs_sysv_ipc, "<", 1.0)
    for name in (SK_QUEUE, SK_SEM, SK_LOCK):
        idle = idx.get(("idle-cpu", name))
        if idle is not None:
            add("%s idle CPU while waiting (%% of a core)" % name, idle.value, "<", 1.0)
    for name in (SK_QUEUE, SK_SEM):
        add("%s wake-up with timeout / without" % name,
            ratio(idx.get(("wakeup-timeout", name)), idx.get(("wakeup", name))), "<=", 1.2)
    fills = [r for r in results if r.workload.startswith("shm-fill-") and r.applicable]
    sk = next((r for r in fills if r.transport == SK_SHM), None)
    priv = next((r for r in fills if r.transport == PRIVATE), None)
    if sk is not None and priv is not None:
        assert sk.value is not None and priv.value is not None
        add("sysvkit shm fill / bytearray fill (%s)" % sk.workload[len("shm-fill-"):],
            sk.value / priv.value, ">=", 0.9)
    return out


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


def format_table(results: List[Result], tgts: List[Target], meta: Dict[str, Any]) -> str:
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
    if tgts:
        lines.append("Targets (issue 7):")
        w = max(len(t.name) for t in tgts)
        for t in tgts:
            lines.append("  %s  %7.3f  %-7s %s" % (t.name.ljust(w), t.value, t.target,
                                                  "met" if t.met else "MISSED"))
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


def to_json(results: List[Result], tgts: List[Target], info: Dict[str, Any]) -> str:
    """The --json document: ``info`` (see meta()), then the rows and targets."""
    doc = dict(info)
    doc["results"] = [r.as_dict() for r in results]
    doc["targets"] = [t.as_dict() for t in tgts]
    return json.dumps(doc, indent=1, allow_nan=False)
