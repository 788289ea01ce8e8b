# Semaphore sets: semget, semop/semtimedop (several operations, one atomic
# call), semctl.

from cpython.tuple cimport PyTuple_Check, PyTuple_GET_SIZE, PyTuple_GET_ITEM
from cpython.list cimport PyList_Check

cdef extern from *:
    """
    #define SYSVKIT_STACK_SOPS 64
    """
    enum: SYSVKIT_STACK_SOPS


def semget(key, int nsems, int flags):
    """semget(2): the id of the set for ``key``."""
    cdef key_t k = c_key(key)
    cdef int r
    with nogil:
        r = sysv.semget(k, nsems, flags)
    if r == -1:
        raise_errno(errno, "semget", WHAT_KEY, k)
    return r


cdef int _fill_sops(object ops, sembuf *sops, Py_ssize_t n) except -1:
    cdef Py_ssize_t i
    for i in range(n):
        op = ops[i]
        if len(op) != 3:
            raise TypeError("each operation must be (sem_num, sem_op, sem_flg)")
        sops[i].sem_num = op[0]
        sops[i].sem_op = op[1]
        sops[i].sem_flg = op[2]
    return 0


cdef bint _any_nowait(sembuf *sops, Py_ssize_t n):
    """True if the caller asked not to wait (IPC_NOWAIT on an operation):
    then EAGAIN means "would block", whatever the timeout."""
    cdef Py_ssize_t i
    for i in range(n):
        if sops[i].sem_flg & IPC_NOWAIT:
            return True
    return False


def semop(int semid, ops, *, timeout=None):
    """semop(2), or semtimedop(2) with ``timeout`` (seconds).

    ``ops`` is a sequence of (sem_num, sem_op, sem_flg), applied atomically.
    Timed out: TimeoutError.  EINTR runs signal handlers and retries with
    the time left (PEP 475).
    """
    return _semop(semid, ops, timeout, False)


def semtimedop(int semid, ops, timeout):
    """semtimedop(2): semop with a time limit of ``timeout`` seconds (None:
    no limit, as a NULL timeout in C).

    ``ops`` is a sequence of (sem_num, sem_op, sem_flg), applied atomically.
    Timed out (EAGAIN from the kernel once the time is up, without
    IPC_NOWAIT): TimeoutError.  EINTR runs signal handlers and retries with
    the time left (PEP 475).  Errors name semtimedop and the id.
    """
    return _semop(semid, ops, timeout, True)


cdef object _semop(int semid, object ops, object timeout, bint as_semtimedop):
    """semop and semtimedop; ``as_semtimedop``: always call (and name)
    semtimedop, with a NULL timeout when ``timeout`` is None."""
    cdef sembuf stackops[SYSVKIT_STACK_SOPS]
    cdef sembuf *sops = stackops
    cdef Py_ssize_t n = len(ops)
    cdef int r, err = 0
    cdef double deadline = 0, left
    cdef bint timed = parse_timeout(timeout, &deadline)
    cdef bint nowait = False
    cdef timespec ts
    if n == 0:
        raise ValueError("ops must hold at least one operation")
    if n > SYSVKIT_STACK_SOPS:
        sops = <sembuf *>malloc(n * sizeof(sembuf))
        if sops == NULL:
            raise MemoryError()
    try:
        _fill_sops(ops, sops, n)
        nowait = _any_nowait(sops, n)
        while True:
            if timed:
                left = deadline - sysvkit_monotonic()
                sysvkit_to_timespec(left, &ts)
                with nogil:
                    r = sysv.semtimedop(semid, sops, n, &ts)
                    if r == -1:
                        err = errno
            elif as_semtimedop:
                with nogil:
                    r = sysv.semtimedop(semid, sops, n, NULL)
                    if r == -1:
                        err = errno
            else:
                with nogil:
                    r = sysv.semop(semid, sops, n)
                    if r == -1:
                        err = errno
            if r == 0:
                return None
            if err != EINTR:
                break
            PyErr_CheckSignals()
    finally:
        if sops != stackops:
            free(sops)
    if err == EAGAIN and timed and not nowait and sysvkit_monotonic() >= deadline:
        raise_timeout("semtimedop", WHAT_ID, semid)
    raise_errno(err, "semtimedop" if timed or as_semtimedop else "semop", WHAT_ID, semid)


cdef tuple _sem_tuple(int ident, semid_ds *ds):
    return (ident, sysvkit_perm_key(ds.sem_perm), ds.sem_perm.uid, ds.sem_perm.gid,
            ds.sem_perm.cuid, ds.sem_perm.cgid, ds.sem_perm.mode, ds.sem_nsems,
            ds.sem_otime, ds.sem_ctime)


def semctl(int semid, int semnum, int cmd, arg=None):
    """semctl(2).

    GETVAL, GETPID, GETNCNT, GETZCNT -> int; SETVAL takes arg=int;
    GETALL -> tuple of values; SETALL takes arg=sequence of values;
    IPC_STAT -> (id, key, uid, gid, cuid, cgid, mode, nsems, otime, ctime);
    SEM_STAT/SEM_STAT_ANY take an index and return the same tuple with the
    id found there; IPC_SET takes arg=(uid, gid, mode); IPC_INFO/SEM_INFO
    -> (maxindex, semmap, semmni, semmns, semmnu, semmsl, semopm, semume,
    semusz, semvmx, semaem); IPC_RMID -> 0.
    """
    cdef semid_ds ds
    cdef seminfo sinfo
    cdef sysvkit_semun u
    cdef unsigned short *values = NULL
    cdef Py_ssize_t i, nsems
    cdef int r
    memset(&ds, 0, sizeof(ds))
    if cmd == SETVAL:
        if arg is None:
            raise TypeError("SETVAL needs arg=value")
        u.val = arg
        with nogil:
            r = sysv.semctl(semid, semnum, cmd, u)
    elif cmd == GETALL or cmd == SETALL:
        u.buf = &ds
        with nogil:
            r = sysv.semctl(semid, 0, IPC_STAT, u)
        if r == -1:
            raise_errno(errno, "semctl", WHAT_ID, semid)
        nsems = ds.sem_nsems
        values = <unsigned short *>malloc((nsems + 1) * sizeof(unsigned short))
        if values == NULL:
            raise MemoryError()
        try:
            if cmd == SETALL:
                if arg is None or len(arg) != nsems:
                    raise ValueError("SETALL needs arg=a sequence of %d values" % nsems)
                for i in range(nsems):
                    values[i] = arg[i]
            u.array = values
            with nogil:
                r = sysv.semctl(semid, 0, cmd, u)
            if r == -1:
                raise_errno(errno, "semctl", WHAT_ID, semid)
            if cmd == GETALL:
                return tuple([values[i] for i in range(nsems)])
            return r
        finally:
            free(values)
    elif cmd == IPC_SET:
        if arg is None or len(arg) != 3:
            raise TypeError("IPC_SET needs arg=(uid, gid, mode)")
        u.buf = &ds
        with nogil:
            r = sysv.semctl(semid, 0, IPC_STAT, u)
        if r == -1:
            raise_errno(errno, "semctl", WHAT_ID, semid)
        ds.sem_perm.uid, ds.sem_perm.gid, ds.sem_perm.mode = arg
        with nogil:
            r = sysv.semctl(semid, 0, IPC_SET, u)
    elif cmd == IPC_INFO or cmd == SEM_INFO:
        u.__buf = &sinfo
        with nogil:
            r = sysv.semctl(semid, 0, cmd, u)
        if r != -1:
            return (r, sinfo.semmap, sinfo.semmni, sinfo.semmns, sinfo.semmnu, sinfo.semmsl,
                    sinfo.semopm, sinfo.semume, sinfo.semusz, sinfo.semvmx, sinfo.semaem)
    else:
        u.buf = &ds
        with nogil:
            r = sysv.semctl(semid, semnum, cmd, u)
    if r == -1:
        raise_errno(errno, "semctl", WHAT_INDEX if cmd in (SEM_STAT, SEM_STAT_ANY) else WHAT_ID, semid)
    if cmd == IPC_STAT:
        return _sem_tuple(semid, &ds)
    if cmd == SEM_STAT or cmd == SEM_STAT_ANY:
        return _sem_tuple(r, &ds)
    return r


# Constants, under their C names (as the os module exports them).
globals().update({
    "IPC_PRIVATE": IPC_PRIVATE,
    "IPC_CREAT": IPC_CREAT,
    "IPC_EXCL": IPC_EXCL,
    "IPC_NOWAIT": IPC_NOWAIT,
    "IPC_RMID": IPC_RMID,
    "IPC_SET": IPC_SET,
    "IPC_STAT": IPC_STAT,
    "IPC_INFO": IPC_INFO,
    "SHM_RDONLY": SHM_RDONLY,
    "SHM_RND": SHM_RND,
    "SHM_EXEC": SHM_EXEC,
    "SHM_LOCK": SHM_LOCK,
    "SHM_UNLOCK": SHM_UNLOCK,
    "SHM_STAT": SHM_STAT,
    "SHM_STAT_ANY": SHM_STAT_ANY,
    "SHM_INFO": SHM_INFO,
    "SHM_DEST": SHM_DEST,
    "SHM_LOCKED": SHM_LOCKED,
    "SHM_HUGETLB": SHM_HUGETLB,
    "SHM_NORESERVE": SHM_NORESERVE,
    "MSG_NOERROR": MSG_NOERROR,
    "MSG_EXCEPT": MSG_EXCEPT,
    "MSG_COPY": MSG_COPY,
    "MSG_STAT": MSG_STAT,
    "MSG_STAT_ANY": MSG_STAT_ANY,
    "MSG_INFO": MSG_INFO,
    "SEM_UNDO": SEM_UNDO,
    "GETPID": GETPID,
    "GETVAL": GETVAL,
    "GETALL": GETALL,
    "GETNCNT": GETNCNT,
    "GETZCNT": GETZCNT,
    "SETVAL": SETVAL,
    "SETALL": SETALL,
    "SEM_STAT": SEM_STAT,
    "SEM_STAT_ANY": SEM_STAT_ANY,
    "SEM_INFO": SEM_INFO,
    "SEMVMX": SEMVMX,
})
