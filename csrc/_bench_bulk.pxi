# Reference loops for the bench's "attach" workload: a fresh attach of a
# segment copied out, made from C without Python (with and without
# MADV_POPULATE_READ, and split over threads), for `sysvkit bench` to show
# the floor beside SharedMemory's populate=True and readinto().


def bench_c_attach_read(int shmid, buffer, int populate, int threads, Py_ssize_t n):
    """Seconds for n rounds of shmat(SHM_RDONLY) + (MADV_POPULATE_READ if
    ``populate``) + memcpy of the whole segment into ``buffer`` (a writable
    buffer at least that large), the shmdt after each round untimed.  With
    ``threads`` > 1 each thread maps and copies its part (svk_copy_out)."""
    cdef Py_buffer dst
    cdef shmid_ds ds
    cdef void *addr
    cdef size_t size
    cdef Py_ssize_t i
    cdef double total = 0.0, t0
    cdef int failed = 0
    if threads < 1:
        raise ValueError("threads must be >= 1, got %d" % threads)
    if sysv.shmctl(shmid, IPC_STAT, &ds) == -1:
        raise_errno(errno, "shmctl", WHAT_ID, shmid)
    size = ds.shm_segsz
    PyObject_GetBuffer(buffer, &dst, PyBUF_WRITABLE | PyBUF_ND)
    try:
        if <size_t>dst.len < size:
            raise ValueError("buffer must hold %d bytes, got %d" % (size, dst.len))
        with nogil:
            for i in range(n):
                t0 = sysvkit_monotonic()
                addr = sysv.shmat(shmid, NULL, SHM_RDONLY)
                if addr == <void *>-1:
                    failed = errno
                    break
                if threads > 1:
                    svk_copy_out(<char *>dst.buf, <const char *>addr, size, threads)
                else:
                    if populate:
                        madvise(addr, size, MADV_POPULATE_READ)
                    memcpy(dst.buf, addr, size)
                total += sysvkit_monotonic() - t0
                sysv.shmdt(addr)
    finally:
        PyBuffer_Release(&dst)
    if failed:
        raise_errno(failed, "shmat", WHAT_ID, shmid)
    return total
