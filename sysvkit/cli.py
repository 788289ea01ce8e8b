"""The ``sysvkit`` command line: ipcs, key, rm, bench and demo.

``ipcs`` and ``rm`` follow util-linux ``ipcs`` and ``ipcrm`` (same options,
same section titles, columns and key format), so their users read the
output at a glance.  Data comes only through the public API: the listing
functions, ``limits()``, ``ftok()``/``explain_key()`` and ``sysvkit.lowlevel``.

Expected errors print one line on stderr and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import errno
import grp
import json
import os
import pwd
import sys
import time
from typing import (Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence,
                    Tuple)

import sysvkit
from sysvkit import lowlevel as ll

PROG = "sysvkit"

_U64 = (1 << 64) - 1

# Record fields that are times (seconds since the epoch, 0 for never).
_TIME_FIELDS = frozenset(("attach_time", "detach_time", "change_time", "send_time",
                          "receive_time", "op_time"))


class CommandError(Exception):
    """An expected failure: printed as one line on stderr, exit status 1."""


# -- formatting helpers -------------------------------------------------------------

def key_hex(key: int) -> str:
    """A key as ipcs prints it: 0x%08x of its 32-bit two's complement."""
    return "0x%08x" % (key & 0xFFFFFFFF)


_names: Dict[Tuple[str, int], Optional[str]] = {}


def _user(uid: int) -> Optional[str]:
    if ("u", uid) not in _names:
        try:
            _names["u", uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _names["u", uid] = None
    return _names["u", uid]


def _group(gid: int) -> Optional[str]:
    if ("g", gid) not in _names:
        try:
            _names["g", gid] = grp.getgrgid(gid).gr_name
        except KeyError:
            _names["g", gid] = None
    return _names["g", gid]


def _owner(uid: int) -> str:
    """The owner column: the user name cut to 10 characters, or the uid."""
    name = _user(uid)
    return "%-10.10s" % name if name is not None else "%-10d" % uid


def _short_time(t: int) -> str:
    """'Nov 21 05:12:06 ' (ctime without the weekday), or 'Not set'."""
    return time.ctime(t)[4:20] if t else "Not set"


def _long_time(t: int) -> str:
    """'Sat Nov 21 05:12:06 2026', or 'Not set'."""
    return time.ctime(t) if t else "Not set"


def _alt_octal(mode: int) -> str:
    """C's %#o: a leading 0, except for zero itself."""
    return "0%o" % mode if mode else "0"


def human_size(n: int) -> str:
    """A size the way util-linux prints it with --human: 4K, 97.7K, 16E, 0B."""
    exp = 0
    for shift in range(10, 70, 10):
        if n < (1 << shift):
            break
        exp = shift
    whole = n >> exp
    frac = 0
    if exp:
        frac = n & ((1 << exp) - 1)
        # One decimal digit, rounded.
        frac = (frac // (1 << (exp - 10)) + 50) // 100
        if frac == 10:
            whole, frac = whole + 1, 0
    suffix = "BKMGTPE"[exp // 10]
    return "%d.%d%s" % (whole, frac, suffix) if frac else "%d%s" % (whole, suffix)


def _iso(t: int) -> Optional[str]:
    """ISO 8601 local time with its UTC offset; None for 'never'."""
    if not t:
        return None
    return datetime.datetime.fromtimestamp(t).astimezone().isoformat()


# -- what the kinds have in common ---------------------------------------------------

class Kind(NamedTuple):
    name: str                       # shm, msg, sem
    json_name: str                  # the --json member
    title: str                      # for messages
    listing: Callable[[], List[Any]]
    get: Callable[[int], int]       # key -> id of an existing object
    rmid: Callable[[int], Any]


KINDS: Dict[str, Kind] = {
    "shm": Kind("shm", "shared_memory", "shared memory segment",
                lambda: sysvkit.list_shared_memory(),
                lambda k: ll.shmget(k, 0, 0), lambda i: ll.shmctl(i, ll.IPC_RMID)),
    "msg": Kind("msg", "message_queues", "message queue",
                lambda: sysvkit.list_message_queues(),
                lambda k: ll.msgget(k, 0), lambda i: ll.msgctl(i, ll.IPC_RMID)),
    "sem": Kind("sem", "semaphores", "semaphore set",
                lambda: sysvkit.list_semaphores(),
                lambda k: ll.semget(k, 0, 0), lambda i: ll.semctl(i, 0, ll.IPC_RMID)),
}

# Order of the sections in util-linux ipcs (2.38) and in our --json.
_TEXT_ORDER = ("msg", "shm", "sem")
_JSON_ORDER = ("shm", "msg", "sem")


def _pid_gone(pid: int) -> bool:
    """True if no process has this pid (0: none recorded)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def is_orphan(seg: sysvkit.ShmInfo) -> bool:
    """Nothing attached, and the creator and the last attacher/detacher are gone.

    The kernel shows a pid as 0 when that process is outside our pid
    namespace (another container sharing this IPC namespace): such a
    process may well be alive, so the segment is not called an orphan.  A
    last pid of 0 is "nobody" only for a segment never attached at all.
    """
    if seg.attached or seg.creator_pid <= 0 or not _pid_gone(seg.creator_pid):
        return False
    if seg.last_pid <= 0:
        return seg.attach_time == 0 and seg.detach_time == 0
    return _pid_gone(seg.last_pid)


def _members(semid: int, count: int) -> Optional[List[Dict[str, int]]]:
    """The members of a semaphore set, or None without read permission."""
    try:
        return [{"value": ll.semctl(semid, i, ll.GETVAL),
                 "waiting": ll.semctl(semid, i, ll.GETNCNT),
                 "waiting_for_zero": ll.semctl(semid, i, ll.GETZCNT),
                 "last_pid": ll.semctl(semid, i, ll.GETPID)} for i in range(count)]
    except PermissionError:
        return None
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EIDRM):    # removed meanwhile
            return None
        raise


# -- --resolve DIR ----------------------------------------------------------------------

def _walk(top: str) -> Iterator[Tuple[str, Optional[int]]]:
    """(path, inode-or-None) of ``top`` and everything under it; symlinks to
    directories are not followed.  The inode comes from the directory entry
    where it is trustworthy (regular files), else None (stat needed)."""
    yield top, None
    stack = [top]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                entries = list(it)
        except OSError:
            continue
        # Some file systems (overlayfs, for one) may give readdir inodes that
        # differ from stat's: check one entry per directory before trusting them.
        trusted: Optional[bool] = None
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file(follow_symlinks=False)
                if is_file and trusted is None:
                    trusted = entry.inode() == entry.stat(follow_symlinks=False).st_ino
            except OSError:
                continue
            if is_dir:
                stack.append(entry.path)
            yield entry.path, (entry.inode() if is_file and trusted else None)


def resolve_keys(top: str, keys: Sequence[int]) -> Dict[int, List[Tuple[str, int]]]:
    """For each key, the (path, proj_id) pairs under ``top`` that ftok turns
    into it.  Only files whose inode and device match the key's bits are
    passed to ftok."""
    if not os.path.isdir(top):
        raise CommandError("--resolve: not a directory: %s" % top)
    wanted: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
    for key in set(keys):
        parts = sysvkit.explain_key(key)
        if key != sysvkit.IPC_PRIVATE and parts.proj_id:
            wanted.setdefault((parts.device, parts.inode), []).append((key, parts.proj_id))
    inodes = {inode for _, inode in wanted}
    found: Dict[int, List[Tuple[str, int]]] = {}
    if not wanted:
        return found
    for path, inode in _walk(top):
        if inode is not None and inode & 0xFFFF not in inodes:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        for key, proj in wanted.get((st.st_dev & 0xFF, st.st_ino & 0xFFFF), ()):
            try:
                if sysvkit.ftok(path, proj) == key:
                    found.setdefault(key, []).append((path, proj))
            except OSError:
                continue
    for matches in found.values():
        matches.sort()
    return found


def _resolved_text(matches: Optional[List[Tuple[str, int]]]) -> str:
    if not matches:
        return ""
    path, proj = matches[0]
    more = " (+%d more)" % (len(matches) - 1) if len(matches) > 1 else ""
    return " %s proj_id=%d%s" % (path, proj, more)


# -- ipcs: text layouts ----------------------------------------------------------------

def _shm_lines(segs: List[Any], fmt: Optional[str], human: bool,
               resolved: Optional[Dict[int, List[Tuple[str, int]]]]) -> List[str]:
    out = []
    if fmt == "creator":
        out.append("------ Shared Memory Segment Creators/Owners --------")
        out.append("%-10s %-10s %-10s %-10s %-10s %-10s" % ("shmid", "perms", "cuid", "cgid",
                                                           "uid", "gid"))
        out.extend(_creator_row(s) for s in segs)
    elif fmt == "time":
        out.append("------ Shared Memory Attach/Detach/Change Times --------")
        out.append("%-10s %-10s %-20s %-20s %-20s" % ("shmid", "owner", "attached",
                                                      "detached", "changed"))
        for s in segs:
            out.append("%-10d %s %-20s %-20s %-20s" % (
                s.id, _owner(s.uid), _short_time(s.attach_time), _short_time(s.detach_time),
                _short_time(s.change_time)))
    elif fmt == "pid":
        out.append("------ Shared Memory Creator/Last-op PIDs --------")
        out.append("%-10s %-10s %-10s %-10s" % ("shmid", "owner", "cpid", "lpid"))
        for s in segs:
            out.append("%-10d %s %-10d %-10d" % (s.id, _owner(s.uid), s.creator_pid,
                                                 s.last_pid))
    else:
        out.append("------ Shared Memory Segments --------")
        header = "%-10s %-10s %-10s %-10s %-10s %-10s %-12s" % (
            "key", "shmid", "owner", "perms", "size" if human else "bytes", "nattch", "status")
        out.append(header + (" file, proj_id" if resolved is not None else ""))
        for s in segs:
            size = " %6s    " % human_size(s.size) if human else " %-10d" % s.size
            out.append("%s %-10d %s %-10o%s %-10d %-6s %-6s%s" % (
                key_hex(s.key), s.id, _owner(s.uid), s.mode, size, s.attached,
                "dest" if s.removed else " ", "locked" if s.locked else " ",
                _resolved_text(resolved.get(s.key)) if resolved is not None else ""))
    return out


def _msg_lines(queues: List[Any], fmt: Optional[str], human: bool,
               resolved: Optional[Dict[int, List[Tuple[str, int]]]]) -> List[str]:
    out = []
    if fmt == "creator":
        out.append("------ Message Queues Creators/Owners --------")
        out.append("%-10s %-10s %-10s %-10s %-10s %-10s" % ("msqid", "perms", "cuid", "cgid",
                                                           "uid", "gid"))
        out.extend(_creator_row(q) for q in queues)
    elif fmt == "time":
        out.append("------ Message Queues Send/Recv/Change Times --------")
        out.append("%-8s %-10s %-20s %-20s %-20s" % ("msqid", "owner", "send", "recv",
                                                     "change"))
        for q in queues:
            out.append("%-8d %s %-20s %-20s %-20s" % (
                q.id, _owner(q.uid), _short_time(q.send_time), _short_time(q.receive_time),
                _short_time(q.change_time)))
    elif fmt == "pid":
        out.append("------ Message Queues PIDs --------")
        out.append("%-10s %-10s %-10s %-10s" % ("msqid", "owner", "lspid", "lrpid"))
        for q in queues:
            out.append("%-8d %s  %5d     %5d" % (q.id, _owner(q.uid), q.last_send_pid,
                                                 q.last_receive_pid))
    else:
        out.append("------ Message Queues --------")
        header = "%-10s %-10s %-10s %-10s %-12s %-12s" % (
            "key", "msqid", "owner", "perms", "size" if human else "used-bytes", "messages")
        out.append(header + (" file, proj_id" if resolved is not None else ""))
        for q in queues:
            used = " %6s      " % human_size(q.bytes) if human else " %-12d" % q.bytes
            out.append("%s %-10d %s %-10o%s %-12d%s" % (
                key_hex(q.key), q.id, _owner(q.uid), q.mode, used, q.messages,
                _resolved_text(resolved.get(q.key)) if resolved is not None else ""))
    return out


def _sem_lines(sets: List[Any], fmt: Optional[str], human: bool,
               resolved: Optional[Dict[int, List[Tuple[str, int]]]]) -> List[str]:
    out = []
    if fmt == "creator":
        out.append("------ Semaphore Arrays Creators/Owners --------")
        out.append("%-10s %-10s %-10s %-10s %-10s %-10s" % ("semid", "perms", "cuid", "cgid",
                                                           "uid", "gid"))
        out.extend(_creator_row(s) for s in sets)
    elif fmt == "time":
        out.append("------ Semaphore Operation/Change Times --------")
        out.append("%-8s %-10s %-26.24s %-26.24s" % ("semid", "owner", "last-op",
                                                     "last-changed"))
        for s in sets:
            out.append("%-8d %s  %-26s %-26s" % (s.id, _owner(s.uid), _long_time(s.op_time),
                                                 _long_time(s.change_time)))
    elif fmt == "pid":
        pass    # semaphore sets record no pids (util-linux prints nothing either)
    else:
        out.append("------ Semaphore Arrays --------")
        header = "%-10s %-10s %-10s %-10s %-10s" % ("key", "semid", "owner", "perms", "nsems")
        out.append(header + (" file, proj_id" if resolved is not None else ""))
        for s in sets:
            out.append("%s %-10d %s %-10o %-10d%s" % (
                key_hex(s.key), s.id, _owner(s.uid), s.mode, s.count,
                _resolved_text(resolved.get(s.key)) if resolved is not None else ""))
    return out


def _creator_row(rec: Any) -> str:
    def name(n: Optional[str], number: int) -> str:
        return "%-10s" % (n if n is not None else number)
    return "%-10d %-10o %s %s %s %s" % (rec.id, rec.mode, name(_user(rec.cuid), rec.cuid),
                                        name(_group(rec.cgid), rec.cgid),
                                        name(_user(rec.uid), rec.uid),
                                        name(_group(rec.gid), rec.gid))


_LINES = {"shm": _shm_lines, "msg": _msg_lines, "sem": _sem_lines}


def listing_lines(kind: str, records: List[Any], fmt: Optional[str] = None,
                  human: bool = False) -> List[str]:
    """One ipcs section ("shm", "msg" or "sem") for these records, as lines;
    ``fmt`` is None (the default layout), "time", "pid" or "creator"."""
    return _LINES[kind](records, fmt, human, None)


def _limits_lines(kind: str, unit: str) -> List[str]:
    """ipcs -l; unit is 'default' (kbytes for shared memory), 'bytes' or 'human'."""
    lim = sysvkit.limits()
    if kind == "msg":
        if unit == "human":
            sizes = ["max size of message = %s" % human_size(lim.msgmax),
                     "default max size of queue = %s" % human_size(lim.msgmnb)]
        else:
            sizes = ["max size of message (bytes) = %d" % lim.msgmax,
                     "default max size of queue (bytes) = %d" % lim.msgmnb]
        return ["------ Messages Limits --------",
                "max queues system wide = %d" % lim.msgmni] + sizes
    if kind == "sem":
        return ["------ Semaphore Limits --------",
                "max number of arrays = %d" % lim.semmni,
                "max semaphores per array = %d" % lim.semmsl,
                "max semaphores system wide = %d" % lim.semmns,
                "max ops per semop call = %d" % lim.semopm,
                "semaphore max value = %d" % ll.SEMVMX]
    page = os.sysconf("SC_PAGE_SIZE")
    shmmin = ll.shmctl(0, ll.IPC_INFO)[2]

    def total(multiplier: int) -> int:
        # shmall is in pages; like util-linux, cap at the largest multiple
        # that fits in 64 bits rather than printing a wrapped-round number.
        value = lim.shmall * multiplier
        return value if value <= _U64 else _U64 - _U64 % multiplier

    out = ["------ Shared Memory Limits --------", "max number of segments = %d" % lim.shmmni]
    if unit == "human":
        out += ["max seg size = %s" % human_size(lim.shmmax),
                "max total shared memory = %s" % human_size(total(page)),
                "min seg size = %s" % human_size(shmmin)]
        return out
    if unit == "bytes":
        out += ["max seg size (bytes) = %d" % lim.shmmax,
                "max total shared memory (bytes) = %d" % total(page)]
    else:
        out += ["max seg size (kbytes) = %d" % (lim.shmmax // 1024),
                "max total shared memory (kbytes) = %d" % total(page // 1024)]
    return out + ["min seg size (bytes) = %d" % shmmin]


def _summary_lines(kind: str, human: bool) -> List[str]:
    """ipcs -u, from the kernel's *_INFO calls."""
    if kind == "msg":
        info = ll.msgctl(0, ll.MSG_INFO)   # (maxindex, msgpool, msgmap, ..., msgtql, msgseg)
        used = human_size(info[7]) if human else "%d bytes" % info[7]
        return ["------ Messages Status --------", "allocated queues = %d" % info[1],
                "used headers = %d" % info[2], "used space = %s" % used]
    if kind == "sem":
        info = ll.semctl(0, 0, ll.SEM_INFO)   # (..., semusz, semvmx, semaem)
        return ["------ Semaphore Status --------", "used arrays = %d" % info[8],
                "allocated semaphores = %d" % info[10]]
    info = ll.shmctl(0, ll.SHM_INFO)   # (maxindex, used_ids, tot, rss, swp, attempts, successes)
    return ["------ Shared Memory Status --------",
            "segments allocated %d" % info[1], "pages allocated %d" % info[2],
            "pages resident  %d" % info[3], "pages swapped   %d" % info[4],
            "Swap performance: %d attempts\t %d successes" % (info[5], info[6])]


def _detail_lines(kind: str, rec: Any, human: bool) -> List[str]:
    """ipcs -i ID."""
    if kind == "shm":
        mode = rec.mode | (ll.SHM_DEST if rec.removed else 0) | (ll.SHM_LOCKED if rec.locked else 0)
        size = "size=%s" % human_size(rec.size) if human else "bytes=%d" % rec.size
        return ["", "Shared memory Segment shmid=%d" % rec.id,
                "uid=%d\tgid=%d\tcuid=%d\tcgid=%d" % (rec.uid, rec.gid, rec.cuid, rec.cgid),
                "mode=%s\taccess_perms=%s" % (_alt_octal(mode), _alt_octal(rec.mode)),
                "%s\tlpid=%d\tcpid=%d\tnattch=%d" % (size, rec.last_pid, rec.creator_pid,
                                                     rec.attached),
                "att_time=%-26s" % _long_time(rec.attach_time),
                "det_time=%-26s" % _long_time(rec.detach_time),
                "change_time=%-26s" % _long_time(rec.change_time), ""]
    if kind == "msg":
        if human:
            sizes = "csize=%s\tqsize=%s" % (human_size(rec.bytes), human_size(rec.max_bytes))
        else:
            sizes = "cbytes=%d\tqbytes=%d" % (rec.bytes, rec.max_bytes)
        return ["", "Message Queue msqid=%d" % rec.id,
                "uid=%d\tgid=%d\tcuid=%d\tcgid=%d\tmode=%s" % (
                    rec.uid, rec.gid, rec.cuid, rec.cgid, _alt_octal(rec.mode)),
                "%s\tqnum=%d\tlspid=%d\tlrpid=%d" % (sizes, rec.messages, rec.last_send_pid,
                                                     rec.last_receive_pid),
                "send_time=%-26s" % _long_time(rec.send_time),
                "rcv_time=%-26s" % _long_time(rec.receive_time),
                "change_time=%-26s" % _long_time(rec.change_time), ""]
    members = _members(rec.id, rec.count)
    if members is None:
        raise CommandError("cannot read the semaphores of set id %d: permission denied" % rec.id)
    out = ["", "Semaphore Array semid=%d" % rec.id,
           "uid=%d\t gid=%d\t cuid=%d\t cgid=%d" % (rec.uid, rec.gid, rec.cuid, rec.cgid),
           "mode=%s, access_perms=%s" % (_alt_octal(rec.mode), _alt_octal(rec.mode)),
           "nsems = %d" % rec.count,
           "otime = %-26s" % _long_time(rec.op_time),
           "ctime = %-26s" % _long_time(rec.change_time),
           "%-10s %-10s %-10s %-10s %-10s" % ("semnum", "value", "ncount", "zcount", "pid")]
    for i, m in enumerate(members):
        out.append("%-10d %-10d %-10d %-10d %-10d" % (
            i, m["value"], m["waiting"], m["waiting_for_zero"], m["last_pid"]))
    return out + [""]


# -- ipcs: JSON ---------------------------------------------------------------------------

def record_json(kind: str, rec: Any,
                resolved: Optional[Dict[int, List[Tuple[str, int]]]] = None) -> Dict[str, Any]:
    """A record's fields by name, times in ISO 8601 (None for never)."""
    item: Dict[str, Any] = {}
    for field in dataclasses.fields(rec):
        value = getattr(rec, field.name)
        item[field.name] = _iso(value) if field.name in _TIME_FIELDS else value
    if kind == "sem":
        item["semaphores"] = _members(rec.id, rec.count)
    if resolved is not None:
        item["resolved"] = [{"path": p, "proj_id": n} for p, n in resolved.get(rec.key, [])]
    return item


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


# -- ipcs ------------------------------------------------------------------------------------

def _cmd_ipcs(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    asked = [k for k in _TEXT_ORDER if getattr(args, k)]
    if args.all:
        asked = list(_TEXT_ORDER)
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
    kinds = asked or list(_TEXT_ORDER)
    unit = "human" if args.human else "bytes" if args.bytes else "default"

    if fmt == "limits":
        if args.json:
            lim = dataclasses.asdict(sysvkit.limits())
            lim["shmmin"] = ll.shmctl(0, ll.IPC_INFO)[2]
            lim["semvmx"] = ll.SEMVMX
            _print_json({"limits": lim})
            return 0
        _print_sections([_limits_lines(k, unit) for k in kinds])
        return 0
    if fmt == "summary":
        _print_sections([_summary_lines(k, args.human) for k in kinds])
        return 0

    records = {k: KINDS[k].listing() for k in kinds}
    if args.orphans:
        records["shm"] = [s for s in records["shm"] if is_orphan(s)]
    resolved = None
    if args.resolve is not None:
        resolved = resolve_keys(args.resolve, [r.key for recs in records.values() for r in recs])
    if args.json:
        _print_json({KINDS[k].json_name: [record_json(k, r, resolved) for r in records[k]]
                     for k in _JSON_ORDER if k in records})
        return 0
    _print_sections([_LINES[k](sorted(records[k], key=_slot_order), fmt, args.human, resolved)
                     for k in kinds])
    return 0


def _slot_order(record: Any) -> Tuple[int, int]:
    """util-linux ipcs prints objects in the kernel's slot order; an id is
    (sequence << 15) | slot (<< 24 with ipcmni_extend, where slots below
    32768 still sort the same), so once slots are reused it differs from
    the id order of the listing functions."""
    return (record.id & 0x7FFF, record.id)


def _print_sections(sections: List[List[str]]) -> None:
    """Like ipcs: a blank line first, and one after each section."""
    text = "\n"
    for lines in sections:
        text += "".join(line + "\n" for line in lines) + "\n"
    sys.stdout.write(text)


def _ipcs_one(kind: str, ident: int, args: argparse.Namespace) -> int:
    found = [r for r in KINDS[kind].listing() if r.id == ident]
    if not found:
        raise CommandError("id %d not found" % ident)
    rec = found[0]
    if args.json:
        resolved = resolve_keys(args.resolve, [rec.key]) if args.resolve is not None else None
        _print_json({KINDS[kind].json_name: [record_json(kind, rec, resolved)]})
        return 0
    sys.stdout.write("".join(line + "\n" for line in _detail_lines(kind, rec, args.human)))
    return 0


# -- key --------------------------------------------------------------------------------------

def _parse_key(text: str) -> int:
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


def _parse_proj(text: str) -> int:
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


def _parse_id(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError("not an id: %r" % text)
    if not 0 <= value <= 0x7FFFFFFF:
        raise argparse.ArgumentTypeError("id out of range: %r" % text)
    return value


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError("not an int: %r" % text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError("must be in %d..%d, got %d" % (lo, hi, value))
        return value
    return parse


def _cmd_key(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.parser
    if args.explain is not None:
        if args.path is not None:
            parser.error("give either PATH PROJ_ID or --explain KEY, not both")
        parts = sysvkit.explain_key(args.explain)
        proj = parts.proj_id
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


# -- rm ------------------------------------------------------------------------------------------

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
            _error_line(args, "no %s with %s" % (kind.title, what))
            return False
        print("would remove %s %s" % (kind.title, what))
        return True
    try:
        kind.rmid(ident)
    except OSError as exc:
        _error_line(args, _removal_error(kind, what, exc))
        return False
    if args.verbose:
        print("removed %s %s" % (kind.title, what))
    return True


def _id_of_key(kind: Kind, key: int) -> Optional[int]:
    try:
        return kind.get(key)
    except FileNotFoundError:
        return None


def _cmd_rm(args: argparse.Namespace) -> int:
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
                _error_line(args, "no %s with key %s" % (kind.title, key_hex(key)))
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
            _error_line(args, "no %s with key %s (%s, proj_id %d)"
                        % (what, key_hex(key), args.path, args.proj))
            ok = False
    if args.orphans:
        me = os.geteuid()
        for seg in sysvkit.list_shared_memory():
            if not is_orphan(seg) or not (args.all_users or me in (seg.uid, seg.cuid)):
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
                _error_line(args, _removal_error(KINDS["shm"], "id %d" % seg.id, exc))
                ok = False
                continue
            if args.verbose:
                print("removed shared memory segment %s" % what)
    return 0 if ok else 1


def _error_line(args: argparse.Namespace, message: str) -> None:
    sys.stderr.write("%s %s: %s\n" % (PROG, args.command, message))


# -- bench and demo ----------------------------------------------------------------------------

def _cmd_bench(args: argparse.Namespace) -> int:
    from sysvkit import bench
    return int(bench.run(args))


def _cmd_demo(args: argparse.Namespace) -> int:
    from sysvkit import demo
    try:
        return demo.run(workers=args.workers, numbers=args.numbers)
    except demo.DemoError as exc:
        raise CommandError(str(exc)) from None


# -- the parser ----------------------------------------------------------------------------------

def _add_ipcs(sub: Any) -> None:
    p = sub.add_parser("ipcs", help="list IPC objects, like util-linux ipcs",
                       description="List System V IPC objects in the layout of util-linux "
                       "ipcs (keys in 0x%08x).")
    res = p.add_argument_group("resource options")
    res.add_argument("-m", "--shmems", dest="shm", action="store_true",
                     help="shared memory segments")
    res.add_argument("-q", "--queues", dest="msg", action="store_true", help="message queues")
    res.add_argument("-s", "--semaphores", dest="sem", action="store_true", help="semaphores")
    res.add_argument("-a", "--all", action="store_true", help="all (default)")
    res.add_argument("-i", "--id", type=_parse_id, metavar="ID",
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
    p.set_defaults(run=_cmd_ipcs, format=None, parser=p)


def _add_key(sub: Any) -> None:
    p = sub.add_parser("key", help="the key ftok makes of PATH and PROJ_ID",
                       description="Print the System V key (0x%08x) that ftok(3) makes of "
                       "PATH and PROJ_ID, or with --explain the parts of a key.")
    p.add_argument("path", nargs="?", metavar="PATH")
    p.add_argument("proj_id", nargs="?", type=_parse_proj, metavar="PROJ_ID",
                   help="1..255, or a single character")
    p.add_argument("--explain", type=_parse_key, metavar="KEY",
                   help="print the proj_id, device low byte and inode low 16 bits of KEY")
    p.set_defaults(run=_cmd_key, parser=p)


def _add_rm(sub: Any) -> None:
    p = sub.add_parser("rm", help="remove IPC objects, like util-linux ipcrm",
                       description="Remove System V IPC objects by id, key or path, like "
                       "util-linux ipcrm.  Removes exactly what it is told.")
    for short, long, dest, title in (("-m", "--shmem-id", "shm_id", "shared memory segment"),
                                     ("-q", "--queue-id", "msg_id", "message queue"),
                                     ("-s", "--semaphore-id", "sem_id", "semaphore set")):
        p.add_argument(short, long, dest=dest, action="append", nargs="?", const=_PICK,
                       type=_parse_id, metavar="ID",
                       help="remove the %s with this id (without ID: pick this kind for "
                       "--path/--proj)" % title)
    for short, long, dest, title in (("-M", "--shmem-key", "shm_key", "shared memory segment"),
                                     ("-Q", "--queue-key", "msg_key", "message queue"),
                                     ("-S", "--semaphore-key", "sem_key", "semaphore set")):
        p.add_argument(short, long, dest=dest, action="append", type=_parse_key, metavar="KEY",
                       help="remove the %s with this key (hex or decimal)" % title)
    p.add_argument("--path", metavar="P", help="name the key by a path (with --proj)")
    p.add_argument("--proj", type=_parse_proj, metavar="N", help="the proj_id for --path")
    p.add_argument("--orphans", action="store_true",
                   help="remove the segments 'ipcs --orphans' shows (your own only)")
    p.add_argument("--all-users", action="store_true",
                   help="with --orphans: other users' segments too")
    p.add_argument("--dry-run", action="store_true", help="print what would be removed")
    p.add_argument("-v", "--verbose", action="store_true", help="say what is removed")
    p.set_defaults(run=_cmd_rm, parser=p)


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
    p.add_argument("--workers", type=_int_in(1, 64), default=4, metavar="N",
                   help="worker processes, 1..64 (default 4)")
    p.add_argument("--numbers", type=_int_in(1, 10_000_000), default=200_000, metavar="N",
                   help="how many numbers to test for primality (default 200000)")
    p.set_defaults(run=_cmd_demo, parser=p)


def build_parser(with_bench: bool = False) -> argparse.ArgumentParser:
    """The argument parser; bench's own options load only if ``with_bench``."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="System V IPC: list, name and remove objects; benchmark; demo.")
    parser.add_argument("--version", action="version", version="%(prog)s " + sysvkit.__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_ipcs(sub)
    _add_key(sub)
    _add_rm(sub)
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
