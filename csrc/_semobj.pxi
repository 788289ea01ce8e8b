# Semaphore hot path: a cdef base class whose acquire/release are C methods.
