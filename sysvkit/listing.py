"""Every System V IPC object in this IPC namespace, as frozen records.

The lists come from ``/proc/sysvipc/{shm,msg,sem}``, which shows the
objects of every user; where that is missing (or unreadable, or laid out in
a way we do not understand) they come from the ``*_INFO`` + ``*_STAT_ANY``
index scan, which needs no permission on the objects either.
"""

from __future__ import annotations

import errno
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from . import _core
from ._records import (MessageQueueInfo, SemaphoreSetInfo, ShmInfo, msg_info, sem_info,
                       shm_info)

__all__ = ["list_message_queues", "list_semaphores", "list_shared_memory"]

_PROC_DIR = "/proc/sysvipc"

_R = TypeVar("_R")

# The columns each /proc/sysvipc file must have, by header name.
_SHM_COLUMNS = ("key", "shmid", "perms", "size", "cpid", "lpid", "nattch", "uid", "gid",
                "cuid", "cgid", "atime", "dtime", "ctime")
_MSG_COLUMNS = ("key", "msqid", "perms", "cbytes", "qnum", "lspid", "lrpid", "uid", "gid",
                "cuid", "cgid", "stime", "rtime", "ctime")
_SEM_COLUMNS = ("key", "semid", "perms", "nsems", "uid", "gid", "cuid", "cgid", "otime",
                "ctime")

# An id is (sequence << shift) + index; the shift is 15, or 24 when the
# kernel was booted with ipcmni_extend.
_INDEX_MASKS = (0x7FFF, 0xFFFFFF)


class _Unreadable(Exception):
    """/proc/sysvipc is missing or not in a layout we understand."""


def _read_proc(proc_dir: str, kind: str, columns: Sequence[str]) -> List[Dict[str, int]]:
    """Rows of /proc/sysvipc/<kind> as {column: int}; perms parsed as octal."""
    try:
        with open("%s/%s" % (proc_dir, kind)) as f:
            lines = f.read().splitlines()
    except OSError:
        raise _Unreadable(kind) from None
    if not lines:
        raise _Unreadable(kind)
    header = lines[0].split()
    try:
        where = {name: header.index(name) for name in columns}
    except ValueError:
        raise _Unreadable(kind) from None
    rows = []
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        if len(fields) < len(header):
            raise _Unreadable(kind)
        try:
            rows.append({name: int(fields[i], 8 if name == "perms" else 10)
                         for name, i in where.items()})
        except ValueError:
            raise _Unreadable(kind) from None
    return rows


def _scan(info: Callable[[], Tuple[int, ...]], stat_any: Callable[[int], Tuple[int, ...]],
          stat: Callable[[int], Tuple[int, ...]],
          record: Callable[[Tuple[int, ...]], _R]) -> List[_R]:
    """Every object found by *_STAT_ANY over the indexes 0..maxindex.

    A kernel older than 4.17 has no *_STAT_ANY (EINVAL, as for a free
    slot): then *_STAT, which shows only the objects the caller may read.
    """
    found = []
    for index in range(info()[0] + 1):
        try:
            found.append(record(stat_any(index)))
            continue
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EIDRM):   # a free slot, or just removed
                raise
        try:
            found.append(record(stat(index)))
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EIDRM, errno.EACCES):
                raise
    return found


def _by_id(records: List[_R]) -> List[_R]:
    return sorted(records, key=lambda r: r.id)  # type: ignore[attr-defined]


# -- shared memory --------------------------------------------------------------

def _shm_from_proc(proc_dir: str) -> List[ShmInfo]:
    return [ShmInfo(key=r["key"], id=r["shmid"], uid=r["uid"], gid=r["gid"], cuid=r["cuid"],
                    cgid=r["cgid"], mode=r["perms"] & 0o777, size=r["size"],
                    attached=r["nattch"], creator_pid=r["cpid"], last_pid=r["lpid"],
                    attach_time=r["atime"], detach_time=r["dtime"], change_time=r["ctime"],
                    removed=bool(r["perms"] & _core.SHM_DEST),
                    locked=bool(r["perms"] & _core.SHM_LOCKED))
            for r in _read_proc(proc_dir, "shm", _SHM_COLUMNS)]


def _shm_from_scan() -> List[ShmInfo]:
    return _scan(lambda: _core.shmctl(0, _core.IPC_INFO),
                 lambda i: _core.shmctl(i, _core.SHM_STAT_ANY),
                 lambda i: _core.shmctl(i, _core.SHM_STAT),
                 shm_info)


def _list_shared_memory(proc_dir: Optional[str]) -> List[ShmInfo]:
    """From ``proc_dir`` (falling back to the scan), or from the scan if None."""
    if proc_dir is not None:
        try:
            return _by_id(_shm_from_proc(proc_dir))
        except _Unreadable:
            pass
    return _by_id(_shm_from_scan())


def list_shared_memory() -> List[ShmInfo]:
    """Every shared memory segment in this IPC namespace, sorted by id.

    A segment removed while still attached shows key 0 and ``removed=True``.
    Raises OSError only if neither /proc/sysvipc nor the kernel's index
    scan can be read.
    """
    return _list_shared_memory(_PROC_DIR)


# -- message queues ---------------------------------------------------------------

def _queue_capacity(ident: int) -> Optional[int]:
    """msg_qbytes of queue ``ident`` (not in /proc), or None once it is gone;
    -1 if it cannot be read at all."""
    try:
        return _core.msgctl(ident, _core.IPC_STAT)[9]  # type: ignore[no-any-return]
    except PermissionError:
        pass    # no read permission: MSG_STAT_ANY needs none, but takes an index
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.EIDRM):
            return None
        raise
    for mask in _INDEX_MASKS:
        try:
            t = _core.msgctl(ident & mask, _core.MSG_STAT_ANY)
        except OSError:
            continue
        if t[0] == ident:
            return t[9]  # type: ignore[no-any-return]
    return -1       # a kernel before 4.17 (no MSG_STAT_ANY) and no read permission


def _msg_from_proc(proc_dir: str) -> List[MessageQueueInfo]:
    queues = []
    for r in _read_proc(proc_dir, "msg", _MSG_COLUMNS):
        qbytes = _queue_capacity(r["msqid"])
        if qbytes is None:      # removed since /proc was read
            continue
        queues.append(MessageQueueInfo(
            key=r["key"], id=r["msqid"], uid=r["uid"], gid=r["gid"], cuid=r["cuid"],
            cgid=r["cgid"], mode=r["perms"] & 0o777, messages=r["qnum"], bytes=r["cbytes"],
            max_bytes=qbytes, last_send_pid=r["lspid"], last_receive_pid=r["lrpid"],
            send_time=r["stime"], receive_time=r["rtime"], change_time=r["ctime"]))
    return queues


def _msg_from_scan() -> List[MessageQueueInfo]:
    return _scan(lambda: _core.msgctl(0, _core.IPC_INFO),
                 lambda i: _core.msgctl(i, _core.MSG_STAT_ANY),
                 lambda i: _core.msgctl(i, _core.MSG_STAT),
                 msg_info)


def _list_message_queues(proc_dir: Optional[str]) -> List[MessageQueueInfo]:
    """From ``proc_dir`` (falling back to the scan), or from the scan if None."""
    if proc_dir is not None:
        try:
            return _by_id(_msg_from_proc(proc_dir))
        except _Unreadable:
            pass
    return _by_id(_msg_from_scan())


def list_message_queues() -> List[MessageQueueInfo]:
    """Every message queue in this IPC namespace, sorted by id.

    ``max_bytes`` is not in /proc/sysvipc/msg: it is read with msgctl
    (IPC_STAT, or MSG_STAT_ANY without read permission); it is -1 for a
    queue the caller may not read on a kernel older than 4.17.  Raises
    OSError only if the kernel cannot be asked at all.
    """
    return _list_message_queues(_PROC_DIR)


# -- semaphores -------------------------------------------------------------------

def _sem_from_proc(proc_dir: str) -> List[SemaphoreSetInfo]:
    return [SemaphoreSetInfo(key=r["key"], id=r["semid"], uid=r["uid"], gid=r["gid"],
                             cuid=r["cuid"], cgid=r["cgid"], mode=r["perms"] & 0o777,
                             count=r["nsems"], op_time=r["otime"], change_time=r["ctime"])
            for r in _read_proc(proc_dir, "sem", _SEM_COLUMNS)]


def _sem_from_scan() -> List[SemaphoreSetInfo]:
    return _scan(lambda: _core.semctl(0, 0, _core.IPC_INFO),
                 lambda i: _core.semctl(i, 0, _core.SEM_STAT_ANY),
                 lambda i: _core.semctl(i, 0, _core.SEM_STAT),
                 sem_info)


def _list_semaphores(proc_dir: Optional[str]) -> List[SemaphoreSetInfo]:
    """From ``proc_dir`` (falling back to the scan), or from the scan if None."""
    if proc_dir is not None:
        try:
            return _by_id(_sem_from_proc(proc_dir))
        except _Unreadable:
            pass
    return _by_id(_sem_from_scan())


def list_semaphores() -> List[SemaphoreSetInfo]:
    """Every semaphore set in this IPC namespace, sorted by id.

    Raises OSError only if neither /proc/sysvipc nor the kernel's index
    scan can be read.
    """
    return _list_semaphores(_PROC_DIR)
