# Reference loops for the benchmarks: the same system calls made from C, so
# `sysvkit bench` can compare the Python API with raw C in the same run
# without a compiler on the user's machine.


def bench_c_msg_pair(int msqid, Py_ssize_t size, Py_ssize_t n):
    """Seconds for n msgsnd+msgrcv pairs of ``size`` bytes (<= 8192) from C."""
    cdef sysvkit_stackmsg buf
    cdef Py_ssize_t i
    cdef double t0, t1
    cdef int failed = 0
    if size < 0 or size > SYSVKIT_STACK_MSG:
        raise ValueError("size must be in 0..%d, got %d" % (SYSVKIT_STACK_MSG, size))
    memset(&buf, 0, sizeof(buf))
    with nogil:
        t0 = sysvkit_monotonic()
        for i in range(n):
            buf.mtype = 1
            if sysv.msgsnd(msqid, &buf, size, 0) == -1:
                failed = errno
                break
            if sysv.msgrcv(msqid, &buf, SYSVKIT_STACK_MSG, 0, 0) == -1:
                failed = errno
                break
        t1 = sysvkit_monotonic()
    if failed:
        raise_errno(failed, "msgsnd/msgrcv", WHAT_ID, msqid)
    return t1 - t0


def bench_c_sem_pair(int semid, Py_ssize_t n, int flags=0):
    """Seconds for n semop(-1) + semop(+1) pairs on member 0 from C."""
    cdef sembuf down, up
    cdef Py_ssize_t i
    cdef double t0, t1
    cdef int failed = 0
    down.sem_num = 0
    down.sem_op = -1
    down.sem_flg = flags
    up.sem_num = 0
    up.sem_op = 1
    up.sem_flg = flags
    with nogil:
        t0 = sysvkit_monotonic()
        for i in range(n):
            if sysv.semop(semid, &down, 1) == -1:
                failed = errno
                break
            if sysv.semop(semid, &up, 1) == -1:
                failed = errno
                break
        t1 = sysvkit_monotonic()
    if failed:
        raise_errno(failed, "semop", WHAT_ID, semid)
    return t1 - t0
