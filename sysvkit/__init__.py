"""sysvkit: System V IPC for Python on Linux.

Shared memory, message queues and semaphores named by a file path and a
project id (ftok), with a compiled core (``sysvkit.lowlevel``) and safe,
idiomatic classes on top.
"""

from __future__ import annotations

from ._core import RemovedError
from ._keys import IPC_PRIVATE, KeyParts, explain_key, ftok
from ._records import Limits, MessageQueueInfo, SemaphoreSetInfo, ShmInfo, limits

__version__ = "0.1.0"

__all__ = [
    "IPC_PRIVATE", "KeyParts", "Limits", "MessageQueueInfo", "RemovedError",
    "SemaphoreSetInfo", "ShmInfo", "explain_key", "ftok", "limits",
]
