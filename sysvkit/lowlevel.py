"""Thin wrappers over the System V IPC system calls, in the style of ``os``.

Ints in; ints, bytes and tuples out; ``OSError`` (the built-in subclass for
the errno, errno kept) on failure, naming the call and the key or id.
Blocking calls release the GIL and retry on EINTR after running signal
handlers (PEP 475); ``msgsnd``, ``msgrcv`` and ``semop`` take an optional
``timeout`` in seconds and raise ``TimeoutError`` when it expires, and
``semtimedop(semid, ops, timeout)`` is semop with the time limit given as C
gives it.

Shared memory is attached as an :class:`Attachment` that owns the mapping
(no raw addresses: nothing here can make Python touch unmapped memory).
"""

from ._core import (  # noqa: F401
    GETALL, GETNCNT, GETPID, GETVAL, GETZCNT, IPC_CREAT, IPC_EXCL, IPC_INFO,
    IPC_NOWAIT, IPC_PRIVATE, IPC_RMID, IPC_SET, IPC_STAT, MSG_COPY, MSG_EXCEPT,
    MSG_INFO, MSG_NOERROR, MSG_STAT, MSG_STAT_ANY, SEM_INFO, SEM_STAT,
    SEM_STAT_ANY, SEM_UNDO, SEMVMX, SETALL, SETVAL, SHM_DEST, SHM_EXEC,
    SHM_HUGETLB, SHM_INFO, SHM_LOCK, SHM_LOCKED, SHM_NORESERVE, SHM_RDONLY,
    SHM_RND, SHM_STAT, SHM_STAT_ANY, SHM_UNLOCK, Attachment, RemovedError,
    ftok, monotonic, msgctl, msgget, msgrcv, msgsnd, semctl, semget, semop,
    semtimedop, shmat, shmctl, shmdt, shmget,
)

# Spelled out (not computed) so that type checkers see the re-exports.
__all__ = [
    "Attachment", "GETALL", "GETNCNT", "GETPID", "GETVAL", "GETZCNT", "IPC_CREAT",
    "IPC_EXCL", "IPC_INFO", "IPC_NOWAIT", "IPC_PRIVATE", "IPC_RMID", "IPC_SET",
    "IPC_STAT", "MSG_COPY", "MSG_EXCEPT", "MSG_INFO", "MSG_NOERROR", "MSG_STAT",
    "MSG_STAT_ANY", "RemovedError", "SEMVMX", "SEM_INFO", "SEM_STAT", "SEM_STAT_ANY",
    "SEM_UNDO", "SETALL", "SETVAL", "SHM_DEST", "SHM_EXEC", "SHM_HUGETLB", "SHM_INFO",
    "SHM_LOCK", "SHM_LOCKED", "SHM_NORESERVE", "SHM_RDONLY", "SHM_RND", "SHM_STAT",
    "SHM_STAT_ANY", "SHM_UNLOCK", "ftok", "monotonic", "msgctl", "msgget", "msgrcv",
    "msgsnd", "semctl", "semget", "semop", "semtimedop", "shmat", "shmctl", "shmdt",
    "shmget",
]
