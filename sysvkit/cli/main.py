"""The ``sysvkit`` command line's entry point: main(), the parser, one-line errors.

ipcs, key and rm live in their own modules; bench and demo are dispatched
to sysvkit.bench and sysvkit.demo, loaded only when asked for.

``ipcs`` and ``rm`` follow util-linux ``ipcs`` and ``ipcrm`` (same options,
same section titles, columns and key format), so their users read the
output at a glance.  Data comes only through the public API: the listing
functions, ``limits()``, ``ftok()``/``explain_key()`` and ``sysvkit.lowlevel``.

Expected errors print one line on stderr and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional, Sequence

import sysvkit

from . import ipcs, key, rm
from .common import PROG, CommandError, int_in


# -- bench and demo: their own packages, loaded only when asked for --------------------------

def _cmd_bench(args: argparse.Namespace) -> int:
    from sysvkit import bench
    return int(bench.run(args))


def _cmd_demo(args: argparse.Namespace) -> int:
    from sysvkit import demo
    try:
        return demo.run(workers=args.workers, numbers=args.numbers)
    except demo.DemoError as exc:
        raise CommandError(str(exc)) from None


def _add_bench(sub: Any, full: bool) -> None:
    p = sub.add_parser("bench", help="measure queues, semaphores and shared memory beside "
                       "pipes, sockets and TCP")
    if full:
        from sysvkit import bench       # only when bench is asked for
        bench.add_arguments(p)
    p.set_defaults(run=_cmd_bench, parser=p)


def _add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="workers sharing a segment, a queue and a lock",
                       description="Worker processes count primes in parallel through a "
                       "shared memory segment, a message queue and a lock; prints what "
                       "they did and the live listing, then removes everything it made.")
    p.add_argument("--workers", type=int_in(1, 64), default=4, metavar="N",
                   help="worker processes, 1..64 (default 4)")
    p.add_argument("--numbers", type=int_in(1, 10_000_000), default=200_000, metavar="N",
                   help="how many numbers to test for primality (default 200000)")
    p.set_defaults(run=_cmd_demo, parser=p)


def build_parser(with_bench: bool = False) -> argparse.ArgumentParser:
    """The argument parser; bench's own options load only if ``with_bench``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="System V IPC: list, name and remove objects; benchmark; demo.")
    parser.add_argument("--version", action="version", version="%(prog)s " + sysvkit.__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ipcs.add_parser(sub)
    key.add_parser(sub)
    rm.add_parser(sub)
    _add_bench(sub, with_bench)
    _add_demo(sub)
    return parser


def _command_of(argv: Sequence[str]) -> Optional[str]:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
        if exc.filename is not None:
            text += ": %s" % os.fsdecode(exc.filename)
        return text
    return str(exc) or type(exc).__name__


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (0, 1 on errors, 2 on usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    try:
        try:
            parser = build_parser(with_bench=command == "bench")
        except ImportError as exc:
            if command != "bench":
                raise
            raise CommandError("bench is not available: %s" % exc) from None
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_usage(sys.stderr)
            sys.stderr.write("%s: error: a command is required (ipcs, key, rm, bench, demo)\n"
                             % PROG)
            return 2
        return int(args.run(args))
    except SystemExit as exc:           # argparse: --help (0) and usage errors (2)
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except KeyboardInterrupt as exc:
        _fail_line(command, "interrupted" + (" (%s)" % exc if str(exc) else ""))
        return 130
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, and keep Python's
        # final flush from complaining about it.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except (CommandError, OSError, ValueError) as exc:
        _fail_line(command, _describe(exc))
        return 1
    except Exception as exc:   # a bug: still one line, never a traceback
        _fail_line(command, "internal error: %s: %s" % (type(exc).__name__, exc))
        return 1


def _fail_line(command: Optional[str], message: str) -> None:
    where = PROG
    if command in ("ipcs", "key", "rm", "bench", "demo"):
        where += " " + str(command)
    lines = message.splitlines() or [""]
    sys.stderr.write("%s: %s\n" % (where, lines[0]))
