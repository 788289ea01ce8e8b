# Keys, timeouts and the one errno -> exception helper.

from libc.errno cimport errno, EINTR, ENOENT, EEXIST, EACCES, EPERM, EAGAIN, EIDRM, ETIMEDOUT
from libc.math cimport isnan
from libc.string cimport strerror
from cpython.exc cimport PyErr_CheckSignals

cimport sysv
from sysv cimport (
    key_t, ipc_perm, shmid_ds, shminfo, shm_info, msqid_ds, msginfo, semid_ds,
    seminfo, sembuf, timespec, sysvkit_semun, sysvkit_timer,
    sysvkit_perm_key, sysvkit_monotonic, sysvkit_to_timespec,
    sysvkit_timer_start, sysvkit_timer_stop,
    IPC_PRIVATE, IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT,
    IPC_INFO, SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC, SHM_LOCK, SHM_UNLOCK,
    SHM_STAT, SHM_STAT_ANY, SHM_INFO, SHM_DEST, SHM_LOCKED, SHM_HUGETLB,
    SHM_NORESERVE, MSG_NOERROR, MSG_EXCEPT, MSG_COPY, MSG_STAT, MSG_STAT_ANY,
    MSG_INFO, SEM_UNDO, GETPID, GETVAL, GETALL, GETNCNT, GETZCNT, SETVAL,
    SETALL, SEM_STAT, SEM_STAT_ANY, SEM_INFO, SEMVMX,
)

import operator as _operator
import os as _os



class RemovedError(FileNotFoundError):
    """The IPC object was removed (EIDRM), or its id no longer names one."""


RemovedError.__module__ = "sysvkit"


class CorruptError(ValueError):
    """A structure in shared memory holds something no sysvkit process
    wrote: a length, index or offset out of bounds, an impossible state."""


CorruptError.__module__ = "sysvkit"

# OSError(errno, msg) picks its subclass, but a subclass constructor does not:
# keep the table here, in one place.
_ERRNO_CLASSES = {
    ENOENT: FileNotFoundError,
    EEXIST: FileExistsError,
    EACCES: PermissionError,
    EPERM: PermissionError,
    EAGAIN: BlockingIOError,
    EIDRM: RemovedError,
    EINTR: InterruptedError,
    ETIMEDOUT: TimeoutError,
}

cdef enum:
    WHAT_KEY = 0
    WHAT_ID = 1
    WHAT_INDEX = 2


cdef str _what(int kind, long long value):
    if kind == WHAT_KEY:
        return "key 0x%08x" % (value & 0xFFFFFFFF)
    if kind == WHAT_INDEX:
        return "index %d" % value
    return "id %d" % value


cdef int raise_errno(int err, str call, int kind, long long value) except -1:
    """Raise the exception for ``err`` naming the call and the object."""
    cls = _ERRNO_CLASSES.get(err, OSError)
    msg = "%s (%s, %s)" % (strerror(err).decode("utf-8", "replace"), call, _what(kind, value))
    raise cls(err, msg)


cdef int raise_timeout(str call, int kind, long long value) except -1:
    raise TimeoutError(ETIMEDOUT, "timed out (%s, %s)" % (call, _what(kind, value)))


cdef key_t c_key(object key) except? -1:
    """A key in the signed or unsigned 32-bit range, as C's key_t."""
    cdef long long k
    if isinstance(key, bool):
        raise TypeError("key must be an int, not bool")
    if not isinstance(key, int):
        try:
            key = _operator.index(key)      # numpy integers and the like, as os does
        except TypeError:
            raise TypeError("key must be an int, not %s" % type(key).__name__) from None
    if not -0x80000000 <= key <= 0xFFFFFFFF:
        raise ValueError("key must be in the signed or unsigned 32-bit range, got %r" % (key,))
    k = key
    if k > 0x7FFFFFFF:
        k -= 0x100000000
    return <key_t>k


cdef int parse_timeout(object timeout, double *deadline) except -1:
    """0 for no timeout; 1 and the absolute deadline otherwise."""
    cdef double t
    if timeout is None:
        return 0
    if isinstance(timeout, (bool, str, bytes, bytearray)) or not (
            isinstance(timeout, (int, float)) or hasattr(type(timeout), "__float__")
            or hasattr(type(timeout), "__index__")):
        raise TypeError("timeout must be a number of seconds or None, not %s"
                        % type(timeout).__name__)
    try:
        t = timeout                     # numpy numbers, Fraction, Decimal too
    except OverflowError:               # an int beyond any double
        if timeout > 0:
            return 0                    # as good as for ever
        raise ValueError("timeout must be >= 0 seconds or None, got %r" % (timeout,)) from None
    if isnan(t) or t < 0:
        raise ValueError("timeout must be >= 0 seconds or None, got %r" % (timeout,))
    if t > 1e9:     # ~31 years: as good as for ever, and no overflow below
        return 0
    deadline[0] = sysvkit_monotonic() + t
    return 1


def ftok(path, int proj_id):
    """ftok(3): the key for an existing path and a project id."""
    global errno
    cdef bytes p = _os.fsencode(path)
    cdef key_t key
    if b"\0" in p:
        raise ValueError("path must not contain NUL bytes")
    # -1 is also a valid key (proj_id 0xff, device 0x..ff, inode 0x....ffff):
    # only errno tells a failed stat() from it.
    errno = 0
    key = sysv.ftok(p, proj_id)
    if key == -1 and errno != 0:
        err = errno
        raise _ERRNO_CLASSES.get(err, OSError)(err, strerror(err).decode("utf-8", "replace"), path)
    return key


def monotonic():
    """CLOCK_MONOTONIC in seconds, the clock that timeouts are measured on."""
    return sysvkit_monotonic()
