"""``sysvkit key``: the key ftok makes of a path and a proj_id, or a key's parts."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import sysvkit

from .common import parse_key, parse_proj
from .tables import key_hex


def run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    if args.explain is not None:
        if args.path is not None:
            parser.error("give either PATH PROJ_ID or --explain KEY, not both")
        parts = sysvkit.explain_key(args.explain)
        proj = parts.proj_id
        if parts.key == sysvkit.IPC_PRIVATE:
            sys.stdout.write("key      %s (0): IPC_PRIVATE, which names no single object; "
                             "each such object has only its id\n" % key_hex(parts.key))
            return 0
        if proj == 0:
            # ftok takes a proj_id of 1..255, so its byte is never 0: the
            # program that made the key chose all 32 bits itself.
            sys.stdout.write(
                "key      %s (%d)\n" % (key_hex(parts.key), parts.key)
                + "proj_id  0: not made by ftok (ftok's proj_id is 1..255), so it names no "
                "file;\n"
                + "         the program that made it chose the number (PostgreSQL, for one, "
                "uses its data\n         directory's inode)\n")
            return 0
        char = " %r" % chr(proj) if 32 < proj < 127 else ""
        sys.stdout.write(
            "key      %s (%d)\n" % (key_hex(parts.key), parts.key)
            + "proj_id  %d (0x%02x%s)\n" % (proj, proj, char)
            + "device   0x%02x (low byte of st_dev)\n" % parts.device
            + "inode    0x%04x (low 16 bits of st_ino)\n" % parts.inode)
        return 0
    if args.path is None or args.proj_id is None:
        parser.error("give PATH PROJ_ID, or --explain KEY")
    sys.stdout.write(key_hex(sysvkit.ftok(args.path, args.proj_id)) + "\n")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("key", help="the key ftok makes of PATH and PROJ_ID",
                       description="Print the System V key (0x%08x) that ftok(3) makes of "
                       "PATH and PROJ_ID, or with --explain the parts of a key.")
    p.add_argument("path", nargs="?", metavar="PATH")
    p.add_argument("proj_id", nargs="?", type=parse_proj, metavar="PROJ_ID",
                   help="1..255, or a single character")
    p.add_argument("--explain", type=parse_key, metavar="KEY",
                   help="print the proj_id, device low byte and inode low 16 bits of KEY")
    p.set_defaults(run=run, parser=p)
