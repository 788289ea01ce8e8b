"""sysvkit: System V IPC for Python on Linux.

Shared memory, message queues and semaphores named by a file path and a
project id (ftok), with a compiled core (``sysvkit.lowlevel``) and safe,
idiomatic classes on top.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._core import RemovedError
from ._keys import IPC_PRIVATE, KeyParts, explain_key, ftok
from ._records import Limits, MessageQueueInfo, SemaphoreSetInfo, ShmInfo, limits

__version__ = "0.1.0"

# The object classes and the listing functions load on first use.
_LAZY = {
    "SharedMemory": "shm",
    "MessageQueue": "msgqueue",
    "SemaphoreSet": "semaphores",
    "Semaphore": "semaphores",
    "Lock": "semaphores",
    "list_shared_memory": "listing",
    "list_message_queues": "listing",
    "list_semaphores": "listing",
}

if TYPE_CHECKING:  # pragma: no cover
    from .listing import list_message_queues, list_semaphores, list_shared_memory
    from .msgqueue import MessageQueue
    from .semaphores import Lock, Semaphore, SemaphoreSet
    from .shm import SharedMemory


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError("module 'sysvkit' has no attribute %r" % name)
    value = getattr(importlib.import_module("." + module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "IPC_PRIVATE", "KeyParts", "Limits", "Lock", "MessageQueue", "MessageQueueInfo",
    "RemovedError", "Semaphore", "SemaphoreSet", "SemaphoreSetInfo", "SharedMemory",
    "ShmInfo", "explain_key", "ftok", "limits", "list_message_queues", "list_semaphores",
    "list_shared_memory",
]
