"""Which shared memory segments are orphans (nothing attached, their users gone).

What ``ipcs --orphans`` lists and ``rm --orphans`` removes.
"""

from __future__ import annotations

import os

import sysvkit


def _pid_gone(pid: int) -> bool:
    """True if no live process has this pid (0: none recorded).  A zombie
    (exited, not yet reaped by its parent) is gone: it holds nothing."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """True if /proc says this process has exited (state Z or X)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return True                     # reaped meanwhile
    except OSError:
        return False                    # cannot tell: take it for alive
    # "pid (comm) state ...": comm may hold spaces and parentheses.
    fields = stat.rpartition(b")")[2].split()
    return bool(fields) and fields[0] in (b"Z", b"X")


def is_orphan(seg: sysvkit.ShmInfo) -> bool:
    """Nothing attached, and the creator and the last attacher/detacher are gone.

    The kernel shows a pid as 0 when that process is outside our pid
    namespace (another container sharing this IPC namespace): such a
    process may well be alive, so the segment is not called an orphan.  A
    last pid of 0 is "nobody" only for a segment never attached at all.
    """
    if seg.attached or seg.creator_pid <= 0 or not _pid_gone(seg.creator_pid):
        return False
    if seg.last_pid <= 0:
        return seg.attach_time == 0 and seg.detach_time == 0
    return _pid_gone(seg.last_pid)
