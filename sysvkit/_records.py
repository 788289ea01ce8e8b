"""Frozen records built from the tuples the core returns, and limits()."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from . import _core
from ._keys import _DATACLASS_KW


@dataclass(**_DATACLASS_KW)
class ShmInfo:
    """A shared memory segment, as shmctl(IPC_STAT) reports it."""

    key: int
    id: int
    uid: int
    gid: int
    cuid: int
    cgid: int
    mode: int
    size: int
    attached: int
    creator_pid: int
    last_pid: int
    attach_time: int
    detach_time: int
    change_time: int
    removed: bool = False    # SHM_DEST: removed, freed at the last detach
    locked: bool = False     # SHM_LOCKED: locked in memory (SHM_LOCK)


@dataclass(**_DATACLASS_KW)
class MessageQueueInfo:
    """A message queue, as msgctl(IPC_STAT) reports it."""

    key: int
    id: int
    uid: int
    gid: int
    cuid: int
    cgid: int
    mode: int
    messages: int
    bytes: int
    max_bytes: int
    last_send_pid: int
    last_receive_pid: int
    send_time: int
    receive_time: int
    change_time: int


@dataclass(**_DATACLASS_KW)
class SemaphoreSetInfo:
    """A semaphore set, as semctl(IPC_STAT) reports it."""

    key: int
    id: int
    uid: int
    gid: int
    cuid: int
    cgid: int
    mode: int
    count: int
    op_time: int
    change_time: int


@dataclass(**_DATACLASS_KW)
class Limits:
    """The kernel's System V IPC limits, each exactly as the kernel reports
    it (IPC_INFO).  ``shmmax`` is not capped: on 64-bit Linux its default,
    18446744073692774399, is above what a Python buffer can address
    (2**63 - 1 bytes), and SharedMemory's size errors give both."""

    shmmax: int
    shmall: int
    shmmni: int
    msgmax: int
    msgmnb: int
    msgmni: int
    semmsl: int
    semmns: int
    semopm: int
    semmni: int


def shm_info(t: Tuple[int, ...]) -> ShmInfo:
    """ShmInfo from a shmctl IPC_STAT/SHM_STAT tuple."""
    ident, key, uid, gid, cuid, cgid, mode, size, nattch, cpid, lpid, atime, dtime, ctime = t
    return ShmInfo(key, ident, uid, gid, cuid, cgid, mode & 0o777, size, nattch, cpid, lpid,
                   atime, dtime, ctime, bool(mode & _core.SHM_DEST), bool(mode & _core.SHM_LOCKED))


def msg_info(t: Tuple[int, ...]) -> MessageQueueInfo:
    """MessageQueueInfo from a msgctl IPC_STAT/MSG_STAT tuple."""
    ident, key, uid, gid, cuid, cgid, mode, *rest = t
    return MessageQueueInfo(key, ident, uid, gid, cuid, cgid, mode & 0o777, *rest)


def sem_info(t: Tuple[int, ...]) -> SemaphoreSetInfo:
    """SemaphoreSetInfo from a semctl IPC_STAT/SEM_STAT tuple."""
    ident, key, uid, gid, cuid, cgid, mode, *rest = t
    return SemaphoreSetInfo(key, ident, uid, gid, cuid, cgid, mode & 0o777, *rest)


def limits() -> Limits:
    """The kernel's limits, from the IPC_INFO calls (no /proc needed)."""
    shm = _core.shmctl(0, _core.IPC_INFO)
    msg = _core.msgctl(0, _core.IPC_INFO)
    sem = _core.semctl(0, 0, _core.IPC_INFO)
    return Limits(shmmax=shm[1], shmall=shm[5], shmmni=shm[3],
                  msgmax=msg[3], msgmnb=msg[4], msgmni=msg[5],
                  semmsl=sem[5], semmns=sem[3], semopm=sem[6], semmni=sem[2])
