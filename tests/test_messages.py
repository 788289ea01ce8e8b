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


def kernel_shmmax() -> int:
    with open("/proc/sys/kernel/shmmax") as f:
        return int(f.read())


def test_one_shmmax_everywhere_the_kernels(ipc: Any) -> None:
    shmmax = kernel_shmmax()
    assert sysvkit.limits().shmmax == shmmax
    with pytest.raises(ValueError) as info:
        sysvkit.SharedMemory(key=ipc.key(), size=shmmax + 1, create=True)
    assert "kernel's shmmax, %d bytes" % shmmax in str(info.value), str(info.value)
    with pytest.raises(ValueError) as info:
        sysvkit.SharedMemory(key=ipc.key(), create=True)
    assert "kernel's shmmax, %d" % shmmax in str(info.value), str(info.value)


def test_size_between_ssize_max_and_shmmax_names_both(ipc: Any) -> None:
    shmmax, ssize_max = kernel_shmmax(), (1 << 63) - 1
    if shmmax <= ssize_max:
        pytest.skip("this kernel's shmmax (%d) is within what a buffer can address" % shmmax)
    with pytest.raises(ValueError) as info:
        sysvkit.SharedMemory(key=ipc.key(), size=ssize_max + 1, create=True)
    message = str(info.value)
    assert "at most %d bytes, the largest buffer Python can address" % ssize_max in message
    assert "the kernel's shmmax is %d" % shmmax in message, message
