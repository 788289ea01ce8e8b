"""``sysvkit ipcs``: list IPC objects as util-linux ipcs does, or every field as JSON."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from typing import Any, Dict, List, Optional

import sysvkit
from sysvkit import lowlevel as ll

from .common import CommandError, parse_id
from .orphans import is_orphan
from .resolve import resolve_keys
from .tables import (JSON_ORDER, KINDS, TEXT_ORDER, Resolved, detail_lines, limits_lines,
                     listing_lines, members, sections_text, slot_order, summary_lines)

# Record fields that are times (seconds since the epoch, 0 for never).
_TIME_FIELDS = frozenset(("attach_time", "detach_time", "change_time", "send_time",
                          "receive_time", "op_time"))


def _iso(t: int) -> Optional[str]:
    """ISO 8601 local time with its UTC offset; None for 'never'."""
    if not t:
        return None
    return datetime.datetime.fromtimestamp(t).astimezone().isoformat()


def _print_sections(sections: List[List[str]]) -> None:
    sys.stdout.write(sections_text(sections))


# -- ipcs: JSON ---------------------------------------------------------------------------

def record_json(kind: str, rec: Any,
                resolved: Resolved = None) -> Dict[str, Any]:
    """A record's fields by name, times in ISO 8601 (None for never)."""
    item: Dict[str, Any] = {}
    for field in dataclasses.fields(rec):
        value = getattr(rec, field.name)
        item[field.name] = _iso(value) if field.name in _TIME_FIELDS else value
    if kind == "sem":
        item["semaphores"] = members(rec.id, rec.count)
    if resolved is not None:
        item["resolved"] = [{"path": p, "proj_id": n} for p, n in resolved.get(rec.key, [])]
    return item


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


# -- ipcs ------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    asked = [k for k in TEXT_ORDER if getattr(args, k)]
    if args.all:
        asked = list(TEXT_ORDER)
    if args.orphans:
        if any(k != "shm" for k in asked):
            parser.error("--orphans lists shared memory segments only")
        asked = ["shm"]
    fmt = args.format
    if args.json and fmt in ("time", "pid", "creator", "summary"):
        parser.error("--json gives every field already; it does not combine with -%s"
                     % {"time": "t", "pid": "p", "creator": "c", "summary": "u"}[fmt])
    if args.id is not None:
        if len(asked) != 1:
            parser.error("when using an ID, a single resource must be specified")
        return _ipcs_one(asked[0], args.id, args)
    kinds = asked or list(TEXT_ORDER)
    unit = "human" if args.human else "bytes" if args.bytes else "default"

    if fmt == "limits":
        if args.json:
            lim = dataclasses.asdict(sysvkit.limits())
            lim["shmmin"] = ll.shmctl(0, ll.IPC_INFO)[2]
            lim["semvmx"] = ll.SEMVMX
            _print_json({"limits": lim})
            return 0
        _print_sections([limits_lines(k, unit) for k in kinds])
        return 0
    if fmt == "summary":
        _print_sections([summary_lines(k, args.human) for k in kinds])
        return 0

    records = {k: KINDS[k].listing() for k in kinds}
    if args.orphans:
        records["shm"] = [s for s in records["shm"] if is_orphan(s)]
    resolved = None
    if args.resolve is not None:
        resolved = resolve_keys(args.resolve, [r.key for recs in records.values() for r in recs])
    if args.json:
        _print_json({KINDS[k].json_name: [record_json(k, r, resolved) for r in records[k]]
                     for k in JSON_ORDER if k in records})
        return 0
    _print_sections([listing_lines(k, sorted(records[k], key=slot_order), fmt, args.human, resolved)
                     for k in kinds])
    return 0


def _ipcs_one(kind: str, ident: int, args: argparse.Namespace) -> int:
    found = [r for r in KINDS[kind].listing() if r.id == ident]
    if not found:
        raise CommandError("id %d not found" % ident)
    rec = found[0]
    if args.json:
        resolved = resolve_keys(args.resolve, [rec.key]) if args.resolve is not None else None
        _print_json({KINDS[kind].json_name: [record_json(kind, rec, resolved)]})
        return 0
    sys.stdout.write("".join(line + "\n" for line in detail_lines(kind, rec, args.human)))
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("ipcs", help="list IPC objects, like util-linux ipcs",
                       description="List System V IPC objects in the layout of util-linux "
                       "ipcs (keys in 0x%08x).")
    res = p.add_argument_group("resource options")
    res.add_argument("-m", "--shmems", dest="shm", action="store_true",
                     help="shared memory segments")
    res.add_argument("-q", "--queues", dest="msg", action="store_true", help="message queues")
    res.add_argument("-s", "--semaphores", dest="sem", action="store_true", help="semaphores")
    res.add_argument("-a", "--all", action="store_true", help="all (default)")
    res.add_argument("-i", "--id", type=parse_id, metavar="ID",
                     help="details on the object with this id (with one of -m, -q, -s)")
    out = p.add_argument_group("output options")
    for flag, long, fmt, text in (("-t", "--time", "time", "attach, detach and change times"),
                                  ("-p", "--pid", "pid", "PIDs of creator and last operator"),
                                  ("-c", "--creator", "creator", "creator and owner"),
                                  ("-l", "--limits", "limits", "resource limits"),
                                  ("-u", "--summary", "summary", "status summary")):
        out.add_argument(flag, long, dest="format", action="store_const", const=fmt, help=text)
    out.add_argument("--human", action="store_true", help="sizes in human-readable format")
    out.add_argument("-b", "--bytes", action="store_true", help="sizes in bytes")
    out.add_argument("--json", action="store_true",
                     help="one JSON object: every field of each record, times in ISO 8601")
    out.add_argument("--resolve", metavar="DIR",
                     help="name, beside each key, the file under DIR and the proj_id that "
                     "ftok turns into it")
    out.add_argument("--orphans", action="store_true",
                     help="only segments nothing is attached to whose creator and last "
                     "user are both gone")
    p.set_defaults(run=run, format=None, parser=p)
