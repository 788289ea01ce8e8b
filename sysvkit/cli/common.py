"""What every command shares: the program name, CommandError and the argument types.

CommandError is an expected failure: one line on stderr, exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

PROG = "sysvkit"


class CommandError(Exception):
    """An expected failure: printed as one line on stderr, exit status 1."""


def error_line(args: argparse.Namespace, message: str) -> None:
    """One error line of a command that goes on (rm: one object of several)."""
    sys.stderr.write("%s %s: %s\n" % (PROG, args.command, message))


def parse_key(text: str) -> int:
    """A key in hex (0x...) or decimal, signed or unsigned 32-bit, as signed."""
    try:
        value = int(text, 0)
    except ValueError:
        try:
            value = int(text, 16) if text.lower().startswith(("0x", "-0x")) else int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError("not a key (hex 0x... or decimal): %r" % text)
    if not -0x80000000 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError("key out of the 32-bit range: %r" % text)
    return value - (1 << 32) if value > 0x7FFFFFFF else value


def parse_proj(text: str) -> int:
    """A proj_id: an int 1..255 (decimal, 0x hex, 0o octal) or one character."""
    try:
        value = int(text, 0)
    except ValueError:
        if len(text) != 1:
            raise argparse.ArgumentTypeError(
                "proj_id must be an int in 1..255 or a single character, got %r" % text)
        value = ord(text)
    if not 1 <= value <= 255:
        raise argparse.ArgumentTypeError("proj_id must be in 1..255, got %r" % text)
    return value


def parse_id(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError("not an id: %r" % text)
    if not 0 <= value <= 0x7FFFFFFF:
        raise argparse.ArgumentTypeError("id out of range: %r" % text)
    return value


def int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError("not an int: %r" % text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError("must be in %d..%d, got %d" % (lo, hi, value))
        return value
    return parse
