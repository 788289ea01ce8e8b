"""The optional packages the bench uses: numpy, sysv_ipc, faster_fifo (or None)."""

from __future__ import annotations

import importlib
from typing import Any

np: Any
try:  # fills shared memory from an array; memoryviews without it
    np = importlib.import_module("numpy")
except ImportError:  # pragma: no cover - depends on the environment
    np = None

sysv_ipc: Any
try:  # a peer to compare with
    sysv_ipc = importlib.import_module("sysv_ipc")   # untyped: used as Any
except ImportError:  # pragma: no cover - depends on the environment
    sysv_ipc = None

faster_fifo: Any
try:  # a peer to compare with: a queue in shared memory
    faster_fifo = importlib.import_module("faster_fifo")
except ImportError:  # pragma: no cover - depends on the environment
    faster_fifo = None


def sysv_ipc_sem_timeout() -> bool:
    """Whether sysv_ipc's Semaphore.acquire() honours a timeout (a build
    without semtimedop ignores it and waits for ever)."""
    return sysv_ipc is not None and bool(getattr(sysv_ipc, "SEMAPHORE_TIMEOUT_SUPPORTED",
                                                 False))
