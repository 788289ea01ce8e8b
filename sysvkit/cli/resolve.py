"""``ipcs --resolve DIR``: the file under DIR and the proj_id that ftok turns into each key."""

from __future__ import annotations

import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import sysvkit

from .common import CommandError


def _walk(top: str) -> Iterator[Tuple[str, Optional[int]]]:
    """(path, inode-or-None) of ``top`` and everything under it; symlinks to
    directories are not followed.  The inode comes from the directory entry
    where it is trustworthy (regular files), else None (stat needed)."""
    yield top, None
    stack = [top]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                entries = list(it)
        except OSError:
            continue
        # Some file systems (overlayfs, for one) may give readdir inodes that
        # differ from stat's: check one entry per directory before trusting them.
        trusted: Optional[bool] = None
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file(follow_symlinks=False)
                if is_file and trusted is None:
                    trusted = entry.inode() == entry.stat(follow_symlinks=False).st_ino
            except OSError:
                continue
            if is_dir:
                stack.append(entry.path)
            yield entry.path, (entry.inode() if is_file and trusted else None)


def resolve_keys(top: str, keys: Sequence[int]) -> Dict[int, List[Tuple[str, int]]]:
    """For each key, the (path, proj_id) pairs under ``top`` that ftok turns
    into it.  Only files whose inode and device match the key's bits are
    passed to ftok."""
    if not os.path.isdir(top):
        raise CommandError("--resolve: not a directory: %s" % top)
    wanted: Dict[Tuple[int, int], List[Tuple[int, int]]] = {}
    for key in set(keys):
        parts = sysvkit.explain_key(key)
        if key != sysvkit.IPC_PRIVATE and parts.proj_id:
            wanted.setdefault((parts.device, parts.inode), []).append((key, parts.proj_id))
    inodes = {inode for _, inode in wanted}
    found: Dict[int, List[Tuple[str, int]]] = {}
    if not wanted:
        return found
    for path, inode in _walk(top):
        if inode is not None and inode & 0xFFFF not in inodes:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        for key, proj in wanted.get((st.st_dev & 0xFF, st.st_ino & 0xFFFF), ()):
            try:
                if sysvkit.ftok(path, proj) == key:
                    found.setdefault(key, []).append((path, proj))
            except OSError:
                continue
    for matches in found.values():
        matches.sort()
    return found
