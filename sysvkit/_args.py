"""Argument checks shared by the Python layer.

Every check runs before any system call and raises TypeError or ValueError
with a message that names the argument and its limit.
"""

from __future__ import annotations

import math
import operator
from typing import Optional


def check_int(value: object, name: str, lo: Optional[int] = None, hi: Optional[int] = None) -> int:
    """``value`` as an int in lo..hi (bool is refused, as a likely mistake)."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    number = operator.index(value)  # type: ignore[arg-type]  # numpy ints and the like
    if lo is not None and number < lo:
        if hi is None:
            raise ValueError("%s must be >= %d, got %d" % (name, lo, number))
        raise ValueError("%s must be in %d..%d, got %d" % (name, lo, hi, number))
    if hi is not None and number > hi:
        if lo is None:
            raise ValueError("%s must be <= %d, got %d" % (name, hi, number))
        raise ValueError("%s must be in %d..%d, got %d" % (name, lo, hi, number))
    return int(number)


def check_timeout(timeout: object, name: str = "timeout") -> Optional[float]:
    """Seconds as a float, or None for ever.  Negative or NaN: ValueError."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        if isinstance(timeout, (bool, str, bytes, bytearray)):   # float() accepts these
            raise TypeError("%s must be a number of seconds or None, not %s"
                            % (name, type(timeout).__name__))
        try:
            timeout = float(timeout)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TypeError("%s must be a number of seconds or None, not %s"
                            % (name, type(timeout).__name__)) from None
    try:
        t = float(timeout)
    except OverflowError:       # an int beyond any float: for ever, or negative
        t = math.inf if timeout > 0 else -math.inf
    if math.isnan(t) or t < 0:
        raise ValueError("%s must be >= 0 seconds or None, got %r" % (name, timeout))
    return t


def check_mode(mode: object) -> int:
    """Permission bits for a new object, 0..0o777."""
    value = check_int(mode, "mode")
    if not 0 <= value <= 0o777:
        raise ValueError("mode must be permission bits in 0..0o777, got %s" % oct(value))
    return value
