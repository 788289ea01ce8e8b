"""The util-linux ipcs table layouts, for every listing the command line prints.

Sections, columns, key format, sizes and times of ipcs and its -l, -u and
-i views, and of the demo's live listing.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import sysvkit
from sysvkit import lowlevel as ll

from .common import CommandError

_U64 = (1 << 64) - 1

Resolved = Optional[Dict[int, List[Tuple[str, int]]]]   # key -> (path, proj_id) pairs


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
    """A size the way util-linux prints it with --human: 4K, 97.7K, 1.9K, 16E, 0B.

    Its arithmetic, in 64-bit unsigned integers: the whole units, and the
    remainder scaled to thousandths of a unit first (truncated), then
    rounded to one decimal; a remainder that rounds up to a whole unit
    carries into it.
    """
    exp = 0
    for shift in range(10, 70, 10):
        if n < (1 << shift):
            break
        exp = shift
    whole = n >> exp
    frac = n & ((1 << exp) - 1)
    if frac:
        if frac >= _U64 // 1000:       # frac * 1000 would overflow 64 bits
            thousandths = (frac // 1024) * 1000 // (1 << (exp - 10))
        else:
            thousandths = frac * 1000 // (1 << exp)
        frac = (thousandths + 50) // 100
        if frac == 10:
            whole, frac = whole + 1, 0
    suffix = "BKMGTPE"[exp // 10]
    return "%d.%d%s" % (whole, frac, suffix) if frac else "%d%s" % (whole, suffix)


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
TEXT_ORDER = ("msg", "shm", "sem")
JSON_ORDER = ("shm", "msg", "sem")


def members(semid: int, count: int) -> Optional[List[Dict[str, int]]]:
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


def _resolved_text(matches: Optional[List[Tuple[str, int]]]) -> str:
    if not matches:
        return ""
    path, proj = matches[0]
    more = " (+%d more)" % (len(matches) - 1) if len(matches) > 1 else ""
    return " %s proj_id=%d%s" % (path, proj, more)


# -- ipcs: text layouts ----------------------------------------------------------------

def _shm_lines(segs: List[Any], fmt: Optional[str], human: bool,
               resolved: Resolved) -> List[str]:
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
               resolved: Resolved) -> List[str]:
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
               resolved: Resolved) -> List[str]:
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
                  human: bool = False, resolved: Resolved = None) -> List[str]:
    """One ipcs section ("shm", "msg" or "sem") for these records, as lines;
    ``fmt`` is None (the default layout), "time", "pid" or "creator";
    ``resolved`` (key -> [(path, proj_id)]) adds a "file, proj_id" column."""
    return _LINES[kind](records, fmt, human, resolved)


def slot_order(record: Any) -> Tuple[int, int]:
    """util-linux ipcs prints objects in the kernel's slot order; an id is
    (sequence << 15) | slot (<< 24 with ipcmni_extend, where slots below
    32768 still sort the same), so once slots are reused it differs from
    the id order of the listing functions."""
    return (record.id & 0x7FFF, record.id)


def sections_text(sections: List[List[str]]) -> str:
    """Sections as ipcs prints them: a blank line first, and one after each."""
    text = "\n"
    for lines in sections:
        text += "".join(line + "\n" for line in lines) + "\n"
    return text


def limits_lines(kind: str, unit: str) -> List[str]:
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


def summary_lines(kind: str, human: bool) -> List[str]:
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


def detail_lines(kind: str, rec: Any, human: bool) -> List[str]:
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
    sems = members(rec.id, rec.count)
    if sems is None:
        raise CommandError("cannot read the semaphores of set id %d: permission denied" % rec.id)
    out = ["", "Semaphore Array semid=%d" % rec.id,
           "uid=%d\t gid=%d\t cuid=%d\t cgid=%d" % (rec.uid, rec.gid, rec.cuid, rec.cgid),
           "mode=%s, access_perms=%s" % (_alt_octal(rec.mode), _alt_octal(rec.mode)),
           "nsems = %d" % rec.count,
           "otime = %-26s" % _long_time(rec.op_time),
           "ctime = %-26s" % _long_time(rec.change_time),
           "%-10s %-10s %-10s %-10s %-10s" % ("semnum", "value", "ncount", "zcount", "pid")]
    for i, m in enumerate(sems):
        out.append("%-10d %-10d %-10d %-10d %-10d" % (
            i, m["value"], m["waiting"], m["waiting_for_zero"], m["last_pid"]))
    return out + [""]
