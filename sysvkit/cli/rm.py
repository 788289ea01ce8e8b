"""``sysvkit rm``: remove IPC objects by id, key, path or as orphans, like ipcrm."""

from __future__ import annotations

import argparse
import errno
import os
from typing import Any, Optional

import sysvkit
from sysvkit import lowlevel as ll

from .common import error_line, parse_id, parse_key, parse_proj
from .orphans import is_orphan
from .tables import KINDS, Kind, key_hex

_PICK = -1     # -m/-q/-s without an id: picks the kind for --path/--proj


def _removal_error(kind: Kind, what: str, exc: OSError) -> str:
    if exc.errno == errno.EINVAL:
        return "no %s with %s" % (kind.title, what)
    if exc.errno == errno.EIDRM:
        return "%s with %s was already removed" % (kind.title, what)
    if exc.errno in (errno.EPERM, errno.EACCES):
        return "permission denied: cannot remove %s with %s" % (kind.title, what)
    return "cannot remove %s with %s: %s" % (kind.title, what, exc.strerror or exc)


def _remove_id(kind: Kind, ident: int, what: str, args: argparse.Namespace) -> bool:
    """Remove one object by id (or say so with --dry-run); False on error."""
    if args.dry_run:
        if not any(r.id == ident for r in kind.listing()):
            error_line(args, "no %s with %s" % (kind.title, what))
            return False
        print("would remove %s %s" % (kind.title, what))
        return True
    try:
        kind.rmid(ident)
    except OSError as exc:
        error_line(args, _removal_error(kind, what, exc))
        return False
    if args.verbose:
        print("removed %s %s" % (kind.title, what))
    return True


def _id_of_key(kind: Kind, key: int) -> Optional[int]:
    try:
        return kind.get(key)
    except FileNotFoundError:
        return None


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    ids = {k: list(getattr(args, k + "_id") or []) for k in KINDS}
    keys = {k: list(getattr(args, k + "_key") or []) for k in KINDS}
    picked = [k for k in KINDS if _PICK in ids[k]]
    for k in KINDS:
        ids[k] = [i for i in ids[k] if i != _PICK]
    if (args.path is None) != (args.proj is None):
        parser.error("--path and --proj go together")
    if picked and args.path is None:
        parser.error("-m, -q and -s take an ID (they pick the kind only with --path/--proj)")
    if args.path is not None and any(ids.values()):
        parser.error("--path/--proj take -m, -q or -s without an ID")
    if any(0 in ks for ks in keys.values()):
        parser.error("key 0 is IPC_PRIVATE, which names no single object: remove it by id")
    if args.all_users and not args.orphans:
        parser.error("--all-users goes with --orphans")
    if not (any(ids.values()) or any(keys.values()) or args.path is not None or args.orphans):
        parser.error("nothing to remove: give -m/-q/-s ID, -M/-Q/-S KEY, --path/--proj "
                     "or --orphans")

    ok = True
    for k, kind in KINDS.items():
        for ident in ids[k]:
            ok &= _remove_id(kind, ident, "id %d" % ident, args)
        for key in keys[k]:
            ident = _id_of_key(kind, key)
            if ident is None:
                error_line(args, "no %s with key %s" % (kind.title, key_hex(key)))
                ok = False
            else:
                ok &= _remove_id(kind, ident, "key %s (id %d)" % (key_hex(key), ident), args)
    if args.path is not None:
        key = sysvkit.ftok(args.path, args.proj)
        found = 0
        for k in picked or list(KINDS):
            kind = KINDS[k]
            ident = _id_of_key(kind, key)
            if ident is not None:
                found += 1
                ok &= _remove_id(kind, ident, "key %s (id %d)" % (key_hex(key), ident), args)
        if not found:
            what = " or ".join(KINDS[k].title for k in picked) if picked else "IPC object"
            error_line(args, "no %s with key %s (%s, proj_id %d)"
                       % (what, key_hex(key), args.path, args.proj))
            ok = False
    if args.orphans:
        me = os.geteuid()
        others = 0          # other users' orphans, left alone without --all-users
        for seg in sysvkit.list_shared_memory():
            if not is_orphan(seg):
                continue
            if not (args.all_users or me in (seg.uid, seg.cuid)):
                others += 1
                continue
            what = "id %d (key %s, %d bytes)" % (seg.id, key_hex(seg.key), seg.size)
            if args.dry_run:
                print("would remove shared memory segment %s" % what)
                continue
            try:
                ll.shmctl(seg.id, ll.IPC_RMID)
            except OSError as exc:
                if exc.errno in (errno.EINVAL, errno.EIDRM):
                    continue        # gone meanwhile: nothing left to do
                error_line(args, _removal_error(KINDS["shm"], "id %d" % seg.id, exc))
                ok = False
                continue
            if args.verbose:
                print("removed shared memory segment %s" % what)
        if others and me == 0:      # root could remove them: say so
            print("%d orphaned shared memory segment%s of other users left alone; "
                  "--all-users %s too" % (others, "" if others == 1 else "s",
                                          "would remove them" if args.dry_run
                                          else "removes them"))
    return 0 if ok else 1


def add_parser(sub: Any) -> None:
    p = sub.add_parser("rm", help="remove IPC objects, like util-linux ipcrm",
                       description="Remove System V IPC objects by id, key or path, like "
                       "util-linux ipcrm.  Removes exactly what it is told.")
    for short, long, dest, title in (("-m", "--shmem-id", "shm_id", "shared memory segment"),
                                     ("-q", "--queue-id", "msg_id", "message queue"),
                                     ("-s", "--semaphore-id", "sem_id", "semaphore set")):
        p.add_argument(short, long, dest=dest, action="append", nargs="?", const=_PICK,
                       type=parse_id, metavar="ID",
                       help="remove the %s with this id (without ID: pick this kind for "
                       "--path/--proj)" % title)
    for short, long, dest, title in (("-M", "--shmem-key", "shm_key", "shared memory segment"),
                                     ("-Q", "--queue-key", "msg_key", "message queue"),
                                     ("-S", "--semaphore-key", "sem_key", "semaphore set")):
        p.add_argument(short, long, dest=dest, action="append", type=parse_key, metavar="KEY",
                       help="remove the %s with this key (hex or decimal)" % title)
    p.add_argument("--path", metavar="P", help="name the key by a path (with --proj)")
    p.add_argument("--proj", type=parse_proj, metavar="N", help="the proj_id for --path")
    p.add_argument("--orphans", action="store_true",
                   help="remove the segments 'ipcs --orphans' shows (your own only)")
    p.add_argument("--all-users", action="store_true",
                   help="with --orphans: other users' segments too")
    p.add_argument("--dry-run", action="store_true", help="print what would be removed")
    p.add_argument("-v", "--verbose", action="store_true", help="say what is removed")
    p.set_defaults(run=run, parser=p)
