"""numpy helpers shared by SharedMemory.ndarray() and SharedArray: the
optional import, dtype and shape checks, and a checked view of a segment.

numpy is an optional dependency of sysvkit: nothing here imports it until an
array is asked for, and its absence is an ImportError saying ``pip install
numpy``.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Tuple, Union

from . import _core
from ._args import check_int

MAX_NDIM: int = _core.ARRAY_MAX_NDIM     # numpy's own limit before 2.0

ShapeLike = Union[int, Iterable[int]]


def need_numpy() -> Any:
    """The numpy module, or ImportError saying how to install it."""
    try:
        import numpy
    except ImportError as exc:
        raise ImportError("numpy arrays over shared memory need numpy, which is not "
                          "installed: pip install numpy") from exc
    return numpy


# -- arguments -------------------------------------------------------------------------

def check_dtype(np: Any, dtype: Any, name: str = "dtype") -> Any:
    """``dtype`` as a numpy.dtype fit for shared memory: no Python objects
    (pointers mean nothing in another process), at least one byte per item."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError("%s: %s" % (name, exc)) from None
    if dt.hasobject:
        raise TypeError("%s %s holds Python objects, which cannot live in shared memory"
                        % (name, dt))
    if dt.itemsize == 0:
        raise ValueError("%s %s has items of 0 bytes; give a size (such as 'S10')" % (name, dt))
    return dt


def check_shape(shape: object, name: str = "shape") -> Tuple[int, ...]:
    """An int or a sequence of ints >= 0, at most MAX_NDIM of them."""
    if isinstance(shape, (str, bytes)) or not (hasattr(type(shape), "__index__")
                                               or isinstance(shape, Iterable)):
        raise TypeError("%s must be an int or a sequence of ints, not %s"
                        % (name, type(shape).__name__))
    if not isinstance(shape, Iterable):
        dims: Tuple[int, ...] = (check_int(shape, name, 0),)
    else:
        dims = tuple(check_int(d, "%s[%d]" % (name, i), 0) for i, d in enumerate(shape))
    if len(dims) > MAX_NDIM:
        raise ValueError("%s has %d dimensions; at most %d" % (name, len(dims), MAX_NDIM))
    return dims


def _items(shape: Tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def view_of(seg: Any, dtype: Any, shape: Optional[ShapeLike], offset: int,
            what: str) -> Any:
    """A numpy array over the segment object ``seg`` (a buffer exporter that
    counts its exports), bounds and alignment checked before numpy sees it."""
    np = need_numpy()
    dt = check_dtype(np, dtype)
    size = seg._seg_size
    off = check_int(offset, "offset", 0, size)
    if off % dt.alignment:
        raise ValueError("offset must be a multiple of %d (the alignment of dtype %s), got %d"
                         % (dt.alignment, dt, off))
    if shape is None:
        dims: Tuple[int, ...] = ((size - off) // dt.itemsize,)
    else:
        dims = check_shape(shape)
    need = _items(dims) * dt.itemsize
    if need > size - off:
        raise ValueError("shape %r of dtype %s needs %d bytes at offset %d; %s has %d"
                         % (dims, dt, need, off, what, size))
    return np.ndarray(dims, dt, buffer=memoryview(seg), offset=off)
