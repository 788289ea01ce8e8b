"""Keys: ftok, key normalisation and explain_key."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Optional, Union

from . import _core
from ._args import check_int

StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

IPC_PRIVATE = 0

_DATACLASS_KW = {"frozen": True, "slots": True} if sys.version_info >= (3, 10) else {"frozen": True}


def ftok(path: StrPath, proj_id: int) -> int:
    """The System V key for an existing ``path`` and ``proj_id`` (1..255).

    Equal to C's ftok(3), as a signed 32-bit key_t.  A missing path raises
    FileNotFoundError (with ``filename`` set); a proj_id outside 1..255
    raises ValueError, a non-int TypeError.
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError("path must be str, bytes or os.PathLike, not %s" % type(path).__name__)
    proj = check_int(proj_id, "proj_id", 1, 255)
    return _core.ftok(path, proj)


def normalize_key(key: object) -> int:
    """A key given in the signed or unsigned 32-bit range, as a signed key_t."""
    k = check_int(key, "key")
    if not -0x80000000 <= k <= 0xFFFFFFFF:
        raise ValueError("key must be in the signed (-2**31..2**31-1) or unsigned "
                         "(0..2**32-1) 32-bit range, got %d" % k)
    return k - 0x100000000 if k > 0x7FFFFFFF else k


def resolve_key(path: Optional[StrPath], proj_id: Optional[int], key: Optional[int]) -> int:
    """The key named by (path, proj_id) or by key=, exactly one of them."""
    if key is not None:
        if path is not None or proj_id is not None:
            raise TypeError("give either (path, proj_id) or key=, not both")
        return normalize_key(key)
    if path is None or proj_id is None:
        if path is None and proj_id is None:
            raise TypeError("give (path, proj_id) or key= to name the object")
        raise TypeError("path and proj_id go together: give both, or key=")
    return ftok(path, proj_id)


def key_hex(key: int) -> str:
    """A key as ipcs prints it: 0x%08x of its 32-bit two's complement."""
    return "0x%08x" % (key & 0xFFFFFFFF)


@dataclass(**_DATACLASS_KW)
class KeyParts:
    """What glibc's ftok packs into a key."""

    key: int
    proj_id: int
    device: int
    inode: int


def explain_key(key: int) -> KeyParts:
    """Split a key into the proj_id (bits 24..31), the low byte of the
    device (bits 16..23) and the low 16 bits of the inode, as glibc's ftok
    packs them."""
    k = normalize_key(key) & 0xFFFFFFFF
    return KeyParts(key=normalize_key(key), proj_id=(k >> 24) & 0xFF,
                    device=(k >> 16) & 0xFF, inode=k & 0xFFFF)
