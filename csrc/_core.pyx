# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False, autotestdict=False
"""sysvkit._core: thin wrappers over the System V IPC system calls.

Private; its public face is ``sysvkit.lowlevel``.  Shaped like the system
calls: ints in; ints, bytes and tuples out; OSError with errno on failure.
"""

include "_errors.pxi"
include "_shm.pxi"
include "_structure.pxi"
include "_msg.pxi"
include "_sem.pxi"
include "_msgobj.pxi"
include "_semobj.pxi"
include "_bench.pxi"
include "_mutex.pxi"
include "_rwlock.pxi"
include "_array.pxi"
include "_bench_bulk.pxi"
include "_channel.pxi"
include "_queue.pxi"
include "_aio.pxi"
