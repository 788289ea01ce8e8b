"""sysvkit: System V IPC for Python on Linux.

Shared memory, message queues and semaphores named by a file path and a
project id (ftok), with a compiled core (``sysvkit.lowlevel``) and safe,
idiomatic classes on top.
"""

# Everything is imported here, eagerly: a program that imports sysvkit and
# then drops privileges (setuid) must not need to read the package again.
try:
    from ._core import CorruptError, RemovedError
except ModuleNotFoundError as _exc:  # pragma: no cover - depends on how Python was started
    if _exc.name != __name__ + "._core":
        raise
    import os as _os

    raise ImportError(
        "sysvkit's compiled core is missing from %s: this is an unbuilt source tree "
        "(python -m and python -c put the current directory first on sys.path). "
        "Run from another directory, use the installed 'sysvkit' command, or build "
        "in place with: pip install -e ." % _os.path.dirname(__file__)) from None
from ._keys import IPC_PRIVATE, KeyParts, explain_key, ftok
from ._records import Limits, MessageQueueInfo, SemaphoreSetInfo, ShmInfo, limits
from .listing import list_message_queues, list_semaphores, list_shared_memory
from .msgqueue import MessageQueue
from .mutex import Mutex
from .semaphores import Lock, Semaphore, SemaphoreSet
from .shm import SharedMemory
from .rwlock import RWLock
from .event import Event
from .array import SharedArray
from .channel import Channel

__version__ = "0.1.0"

__all__ = [
    "Channel", "CorruptError", "Event", "IPC_PRIVATE", "KeyParts", "Limits", "Lock",
    "MessageQueue", "MessageQueueInfo", "Mutex", "RWLock", "RemovedError", "Semaphore",
    "SemaphoreSet", "SemaphoreSetInfo", "SharedArray", "SharedMemory", "ShmInfo",
    "explain_key", "ftok", "limits", "list_message_queues", "list_semaphores",
    "list_shared_memory",
]
