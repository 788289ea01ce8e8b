"""The bench command: its options, run() and main() (``python -m sysvkit.bench``).

run() runs every chosen workload group, then prints the report.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .optional import sysv_ipc
from .registry import GROUPS
from .report import add_ratios, format_table, meta, summary, to_json
from .runner import PIN_MODES, Result, Settings, on_sigchld, pinned


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bench`` options to ``parser``."""
    parser.add_argument("--quick", action="store_true",
                        help="a short run (under 30 s): fewer, shorter samples")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the table")
    parser.add_argument("--repeats", type=int, metavar="N", default=None,
                        help="samples per figure (default: 5 quick, 7 full)")
    parser.add_argument("--only", action="append", metavar="GROUP",
                        choices=sorted(GROUPS),
                        help="run only this group of workloads (repeatable): %s"
                        % ", ".join(GROUPS))
    parser.add_argument("--bulk-mib", type=int, metavar="MIB", default=None,
                        help="size of the shared memory copy (default: 64 quick, 256 full)")
    parser.add_argument("--pin", choices=PIN_MODES, default="same",
                        help="where processes run: same (one CPU for all: steady "
                        "figures; the default), split (this process on one CPU, its "
                        "partners on another), none (the scheduler decides)")
    parser.add_argument("--progress", action="store_true",
                        help="report each workload group on stderr as it starts "
                        "(the default when stderr is a terminal)")


class _Terminated(Exception):
    """SIGTERM during a run: unwind (cleaning up) as for Ctrl-C."""


def _on_sigterm(signo: int, frame: Any) -> None:
    raise _Terminated()


# A workload that cannot finish (a child died, a call failed): one line, exit 1.
_FAILURES: Tuple["type[BaseException]", ...] = (OSError, RuntimeError, EOFError) + (
    (sysv_ipc.Error,) if sysv_ipc is not None else ())


def run(args: argparse.Namespace) -> int:
    """Run the benchmarks chosen by ``args`` and print the table (or JSON).

    Returns the exit status: 0; 1 if a workload failed (an OSError or a
    child process that died, printed on stderr); 2 for a bad option value;
    130 on Ctrl-C (or SIGTERM).  Whatever happens, every process and IPC
    object the run made is gone when it returns.
    """
    repeats = getattr(args, "repeats", None)
    if repeats is not None and repeats < 1:
        print("sysvkit bench: --repeats must be >= 1", file=sys.stderr)
        return 2
    bulk = getattr(args, "bulk_mib", None)
    if bulk is not None and bulk < 1:
        print("sysvkit bench: --bulk-mib must be >= 1", file=sys.stderr)
        return 2
    pin = getattr(args, "pin", "same") or "same"
    if pin not in PIN_MODES:
        print("sysvkit bench: --pin must be one of %s" % ", ".join(PIN_MODES),
              file=sys.stderr)
        return 2
    st = Settings.for_mode(bool(getattr(args, "quick", False)), repeats, bulk)
    only = getattr(args, "only", None) or list(GROUPS)
    progress = bool(getattr(args, "progress", False)) or sys.stderr.isatty()
    results: List[Result] = []
    old_term: Any = None
    old_chld: Any = None
    main_thread = _is_main_thread()
    if main_thread:
        old_term = signal.signal(signal.SIGTERM, _on_sigterm)
        old_chld = signal.signal(signal.SIGCHLD, on_sigchld)
    placed = "none"
    try:
        with pinned(pin) as placed:
            for group in GROUPS:
                if group not in only:
                    continue
                title, func = GROUPS[group]
                if progress:
                    print("bench: %s (%s)" % (group, title), file=sys.stderr, flush=True)
                results.extend(func(st))
    except (KeyboardInterrupt, _Terminated):
        print("sysvkit bench: interrupted; everything it made was removed",
              file=sys.stderr)
        return 130
    except _FAILURES as exc:
        print("sysvkit bench: %s" % exc, file=sys.stderr)
        return 1
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGCHLD, old_chld)
    order: Dict[str, int] = {}
    for r in results:
        order.setdefault(r.workload, len(order))
    results.sort(key=lambda r: order[r.workload])   # stable: rows keep their order
    add_ratios(results)
    comparisons = summary(results)
    info = meta(st)
    info["pinned"] = placed
    if getattr(args, "json", False):
        print(to_json(results, comparisons, info))
    else:
        print(format_table(results, comparisons, info))
    return 0


def _is_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m sysvkit.bench``: the same as ``python -m sysvkit bench``."""
    parser = argparse.ArgumentParser(prog="sysvkit bench",
                                     description="How fast is each IPC mechanism on this "
                                     "machine?")
    add_arguments(parser)
    return run(parser.parse_args(argv))
