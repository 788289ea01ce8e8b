"""What the user reads when an object is missing: the kind, the name they
gave (path and proj_id, or the key) and how to create it."""

from __future__ import annotations

import errno
import re
from typing import Any, Callable, Dict

import pytest

import sysvkit

OPENERS: Dict[str, Callable[..., Any]] = {
    "shared memory segment": sysvkit.SharedMemory,
    "message queue": sysvkit.MessageQueue,
    "semaphore set": sysvkit.SemaphoreSet,
    "semaphore": sysvkit.Semaphore,
}


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_missing_object_by_path_names_path_proj_id_and_create(ipc: Any, kind: str) -> None:
    path, proj = ipc.path()
    key = sysvkit.ftok(path, proj)
    with pytest.raises(FileNotFoundError) as info:
        OPENERS[kind](path, proj)
    assert info.value.errno == errno.ENOENT
    message = str(info.value)
    assert "no %s for path %r, proj_id %d (key 0x%08x)" % (
        kind, path, proj, key & 0xFFFFFFFF) in message, message
    assert message.endswith("create=True creates it"), message
    assert "shmget" not in message and "msgget" not in message and "semget" not in message


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_missing_object_by_key_names_the_key_and_create(ipc: Any, kind: str) -> None:
    key = ipc.key()
    with pytest.raises(FileNotFoundError) as info:
        OPENERS[kind](key=key)
    message = str(info.value)
    assert re.search(r"no %s with key 0x%08x: create=True creates it$"
                     % (kind, key & 0xFFFFFFFF), message), message
