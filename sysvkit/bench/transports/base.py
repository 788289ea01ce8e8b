"""What every bench transport is: the Channel and Segment bases and their helpers.

A Channel is two ends of a message transport; a Segment shared memory to
fill here and read in another process.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, List, Optional, Tuple

from ..optional import sysv_ipc
from ..runner import Loop, nothing

#
# A channel joins two ends, 0 (this process) and 1 (the same process, or a
# forked child).  ends(side, size) gives (send(data), recv() -> bytes) for
# messages of ``size`` bytes; waiter(side, size, timeout) a blocking receive
# with that timeout (None: none).  Messages from end 0 go to end 1 and back.

Ends = Tuple[Callable[[Any], Any], Callable[[], Any]]


def remove_quietly(obj: Any) -> None:
    """Remove a System V object (sysvkit or sysv_ipc) unless already gone
    (a child removes what it serves if this process dies first)."""
    gone: Tuple["type[BaseException]", ...] = (FileNotFoundError,)
    if sysv_ipc is not None:
        gone += (sysv_ipc.ExistentialError,)
    with contextlib.suppress(*gone):
        obj.remove()


class Channel:
    """A message transport with two ends."""

    name = "channel"
    # Why a wait with a timeout cannot be measured (when has_timeout() is False).
    no_timeout = "no receive with a timeout"

    def unsupported(self, size: int) -> Optional[str]:
        """Why a message of ``size`` bytes cannot be sent, or None."""
        return None

    def ends(self, side: int, size: int) -> Ends:
        raise NotImplementedError

    def pair(self, size: int) -> Ends:
        """send and receive for an in-process pair (end 0 to end 1)."""
        return self.ends(0, size)[0], self.ends(1, size)[1]

    def references(self, size: int) -> List[Tuple[str, Loop]]:
        """Reference loops (C) over the same object, measured beside the pair."""
        return []

    def reference_names(self) -> List[str]:
        """The names references() gives, also when the size is unsupported."""
        return []

    def waiter(self, side: int, size: int, timeout: Optional[float]) -> Callable[[], Any]:
        if timeout is not None:
            raise NotImplementedError
        return self.ends(side, size)[1]

    def has_timeout(self) -> bool:
        return True

    def in_child(self) -> None:
        """Called in the child right after fork."""

    def close(self) -> None:
        raise NotImplementedError


def exact(read: Callable[[int], bytes], size: int) -> Callable[[], bytes]:
    """A receive of exactly ``size`` bytes from a byte stream."""
    def recv() -> bytes:
        b = read(size)
        if len(b) == size:
            return b
        parts = [b]
        got = len(b)
        while got < size:
            if not b:
                raise EOFError("the other end closed the stream")
            b = read(size - got)
            parts.append(b)
            got += len(b)
        return b"".join(parts)
    return recv


def expect_timeout(call: Callable[[], Any], *errors: "type[BaseException]") -> Callable[[], Any]:
    """An idle wait: ``call`` must time out (raise one of ``errors`` or
    return False), never return early."""
    def wait() -> Any:
        try:
            got = call()
        except errors:
            return None
        if got is not False:
            raise RuntimeError("an idle wait returned early")
        return None
    return wait


class Segment:
    """Shared memory of one kind: ``buf`` to fill here, ``open()`` to map it
    in another process (-> (memoryview, close)), ``destroy()`` to remove it by
    name from any process (the child that reads it does so if this process
    dies first), ``close()`` to remove and unmap it here."""

    name = "segment"
    reference = False      # a ceiling, not a candidate for "best"

    def __init__(self, size: int) -> None:
        self.buf: memoryview = memoryview(bytearray(0))
        self.destroy: Callable[[], None] = nothing

    def open(self) -> Tuple[memoryview, Callable[[], None]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
