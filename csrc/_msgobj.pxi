# MessageQueue hot path: a cdef base class whose send/receive are C methods.
