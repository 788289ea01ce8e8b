"""SharedArray: a numpy array in a System V shared memory segment whose
header records its dtype and shape, so another process opens it by name.

Layout of the segment (written down in ``csrc/array.h``; native byte
order, every process sharing it runs on this host):

- bytes 0..63: the common structure header (magic, kind ARRAY, format
  version, state, size) of ``csrc/structs.h``;
- bytes 64..95: ``ndim`` (u32), ``descr_len`` (u32), ``itemsize`` (u64),
  ``nbytes`` (u64), ``data_offset`` (u64);
- from byte 96: ``ndim`` dimensions (u64 each), then the dtype's
  description (``descr_len`` bytes of UTF-8: ``numpy.dtype.str``, or the
  repr of ``numpy.lib.format.dtype_to_descr`` for a structured dtype);
- at ``data_offset`` (a multiple of 64 and of the dtype's alignment, right
  after the description): the data, ``nbytes`` bytes.

Everything read from the header is checked against the segment before an
array is made over it; anything out of place raises CorruptError.

numpy is an optional dependency of sysvkit: this module imports it only
when an array is asked for, and says ``pip install numpy`` if it is missing.
"""

from __future__ import annotations

import ast
import struct
import time
import weakref
from typing import Any, Callable, Optional, Tuple, Type

from . import _core
from ._args import check_mode
from ._base import ACCESS_R, open_or_create
from ._core import CorruptError
from ._keys import IPC_PRIVATE, StrPath, normalize_key
from ._numpy import ShapeLike, _items, check_dtype, check_shape, need_numpy
from ._structure import HEADER_SIZE, SETTLE_SECONDS, Structure, _alive
from .shm import _shmmax

__all__ = ["SharedArray"]

# The layout is csrc/array.h's.
MAX_NDIM: int = _core.ARRAY_MAX_NDIM        # numpy's own limit before 2.0
MAX_DESCR: int = _core.ARRAY_MAX_DESCR      # bytes of dtype description
DATA_ALIGN: int = _core.ARRAY_ALIGN         # the data starts on a cache line, at least

_FIXED = struct.Struct("=IIQQQ")            # ndim, descr_len, itemsize, nbytes, data_offset
_SHAPE_AT: int = _core.ARRAY_SHAPE_OFFSET   # 96
assert _FIXED.size == _core.ARRAY_HEADER_SIZE and _SHAPE_AT == HEADER_SIZE + _FIXED.size
_BIG = 1 << 62                              # cap on itemsize * every non-zero dimension


def _fits(shape: Tuple[int, ...], itemsize: int) -> bool:
    """True if numpy can lay the shape out (every stride fits in 62 bits)."""
    running = itemsize
    for d in shape:
        running *= max(d, 1)
        if running > _BIG:
            return False
    return True


# -- the dtype's description --------------------------------------------------------------

def encode_dtype(np: Any, dt: Any) -> bytes:
    if dt.fields is None and dt.subdtype is None:
        text: str = dt.str
    else:
        text = repr(np.lib.format.dtype_to_descr(dt))
    return text.encode("utf-8")


def decode_dtype(np: Any, raw: bytes) -> Any:
    """The dtype a description names; CorruptError unless it is exactly how
    encode_dtype() writes a dtype fit for shared memory."""
    try:
        text = raw.decode("utf-8")
        if text.startswith("["):
            dt = np.lib.format.descr_to_dtype(ast.literal_eval(text))
        else:
            dt = np.dtype(text)
        ok = (not dt.hasobject and dt.itemsize > 0 and dt.subdtype is None
              and encode_dtype(np, dt) == raw)
    except Exception:   # hostile text: whatever numpy or the parser makes of it
        ok = False
    if not ok:
        raise CorruptError("dtype description %r is not a valid stored dtype" % raw[:80])
    return dt


def _data_offset(ndim: int, descr_len: int, alignment: int) -> int:
    align = DATA_ALIGN if DATA_ALIGN % alignment == 0 else DATA_ALIGN * alignment
    end = _SHAPE_AT + 8 * ndim + descr_len
    return (end + align - 1) // align * align


class _Layout:
    """What a SharedArray's header says, or will say."""

    def __init__(self, np: Any, dtype: Any, shape: Tuple[int, ...]) -> None:
        self.dtype = dtype
        self.shape = shape
        self.descr = encode_dtype(np, dtype)
        self.nbytes: int = _items(shape) * int(dtype.itemsize)
        self.data_offset = _data_offset(len(shape), len(self.descr), dtype.alignment)
        self.size = self.data_offset + self.nbytes

    def header(self) -> bytes:
        return (_FIXED.pack(len(self.shape), len(self.descr), self.dtype.itemsize,
                            self.nbytes, self.data_offset)
                + struct.pack("=%dQ" % len(self.shape), *self.shape) + self.descr)


def _unpickle(cls: Type["SharedArray"], ident: int, readonly: bool) -> "SharedArray":
    return cls.from_id(ident, readonly=readonly)


class SharedArray(_core._ArrayBase, Structure):
    """A numpy array in a System V shared memory segment, named like every
    sysvkit object; its header records shape and dtype, so another process
    opens it by name alone::

        a = SharedArray("/srv/app", 1, create=True, shape=(1000, 3), dtype="f8")
        b = SharedArray("/srv/app", 1)          # elsewhere: same shape, dtype, data
        b.array[0] = 1.0

    ``.array`` is the ndarray over the segment (zero copy).  While it, or
    any view of it, is alive, ``close()`` raises BufferError and the
    segment stays attached: no array can reach unmapped memory.
    """

    _kind = "shared array"
    _kind_code = _core.STRUCT_KIND_ARRAY
    _version = _core.ARRAY_VERSION

    _layout: Optional[_Layout]
    _stored: _Layout
    _array: Any
    _ro: bool

    def __init__(self, path: Optional[StrPath] = None, proj_id: Optional[int] = None, *,
                 key: Optional[int] = None, create: bool = False, exclusive: bool = False,
                 shape: Optional[ShapeLike] = None, dtype: Any = None, mode: int = 0o600,
                 readonly: bool = False, populate: bool = False) -> None:
        """Open, or create, the array named by ``(path, proj_id)`` or ``key=``.

        - ``shape`` and ``dtype``: required to create (``dtype`` defaults to
          float64 then).  When opening, None takes the stored ones, and a
          value that differs from the stored one is ValueError.  New arrays
          read as zeros.
        - ``readonly``: attach read-only (the array is not writeable);
          opening needs only read permission.
        - ``populate``: map every page at attach (see SharedMemory).
        - ``create``/``exclusive``/``mode``: as every sysvkit object.

        Raises ImportError without numpy, TypeError/ValueError for bad
        arguments (before any system call), FileNotFoundError if it does not
        exist and ``create`` is false, ValueError (CorruptError) if the
        segment is not a valid shared array.
        """
        np = need_numpy()
        check_mode(mode)
        if exclusive and not create:
            raise ValueError("exclusive=True needs create=True")
        want_shape = None if shape is None else check_shape(shape)
        want_dtype = None if dtype is None else check_dtype(np, dtype)
        if want_dtype is not None and want_dtype.subdtype is not None:
            base, sub = want_dtype.subdtype
            raise ValueError("dtype %s is a subarray dtype: give dtype=%s and add %r to the shape"
                             % (want_dtype, base, sub))
        plan = None
        if want_shape is not None:
            plan = self._plan(np, want_dtype if want_dtype is not None else np.dtype("f8"),
                              want_shape)
        elif create or (key is not None and path is None and proj_id is None
                        and normalize_key(key) == IPC_PRIVATE):
            raise ValueError("shape is required to create a shared array")
        k = self._resolve(path, proj_id, key)
        creating = bool(create) or k == IPC_PRIVATE
        # The layout this call may write: when creating, or repairing a
        # half-made segment with both shape and dtype given.
        layout = plan if creating or want_dtype is not None else None
        self._prepare(bool(readonly), layout)
        if self._ro and creating:
            # Settle the header read-write once, then attach read-only.
            with SharedArray(path, proj_id, key=key, create=create, exclusive=exclusive,
                             shape=shape, dtype=dtype, mode=mode) as first:
                ident = first.id
            self._open_readonly(k, ident)
        elif self._ro:
            self._open_readonly(k, None, path, proj_id)
        else:
            self._open_structure(path, proj_id, key, create=bool(create), exclusive=exclusive,
                                 mode=mode, size=layout.size if layout else HEADER_SIZE)
        self._after_open(bool(populate), want_shape, want_dtype)

    @staticmethod
    def _plan(np: Any, dt: Any, shape: Tuple[int, ...]) -> _Layout:
        if not _fits(shape, dt.itemsize):
            raise ValueError("shape %r of dtype %s is too large to address" % (shape, dt))
        lay = _Layout(np, dt, shape)
        if len(lay.descr) > MAX_DESCR:
            raise ValueError("dtype %s is too complex to store: its description takes %d "
                             "bytes; at most %d" % (dt, len(lay.descr), MAX_DESCR))
        try:
            same = decode_dtype(np, lay.descr) == dt
        except CorruptError:
            same = False
        if not same:
            raise ValueError("dtype %s cannot be stored in a shared array" % (dt,))
        if lay.size > _shmmax():
            raise ValueError("shape %r of dtype %s needs a %d-byte segment; this system's "
                             "limit (shmmax) is %d" % (shape, dt, lay.size, _shmmax()))
        return lay

    def _prepare(self, readonly: bool, layout: Optional[_Layout]) -> None:
        self._ro = readonly
        self._layout = layout
        self._array = None

    def _open_readonly(self, k: int, ident: Optional[int], path: Optional[StrPath] = None,
                       proj_id: Optional[int] = None) -> None:
        if ident is None:
            ident, _ = open_or_create(lambda key, flags: _core.shmget(key, 0, flags), k,
                                      create=False, exclusive=False, mode=0o600,
                                      access=ACCESS_R, kind=self._kind, path=path,
                                      proj_id=proj_id)
        self._set_ids(k, ident)
        try:
            self._attach_and_settle(self._stat_id(ident), False, 0)
        except BaseException:
            self._drop_mapping()
            raise

    def _attach_and_settle(self, t: Tuple[int, ...], created: bool, size: int) -> None:
        if not self._ro:
            super()._attach_and_settle(t, created, size)
            return
        if t[7] < HEADER_SIZE:
            raise ValueError("%s is %d bytes: too small to be a sysvkit %s"
                             % (self._name(), t[7], self._kind))
        try:
            self._seg_attach(t[0], _core.SHM_RDONLY)
        except OSError as exc:
            self._fail(exc)
        self._st_bind()
        self._wait_ready(t[9])
        self._check_header()
        self._check_body()

    def _wait_ready(self, creator: int) -> None:
        """Read-only: wait for the initialiser (a read-only attach cannot
        repair a half-made segment; a read-write opener does)."""
        deadline = time.monotonic() + SETTLE_SECONDS + 1.0
        pause = 0.0005
        while True:
            state = self._st_state()
            phase, pid = state & 0xFF, state >> 8
            if phase == _core.STRUCT_STATE_READY:
                return
            if phase not in (_core.STRUCT_STATE_FRESH, _core.STRUCT_STATE_INIT):
                raise CorruptError("%s is not a sysvkit %s (state word 0x%x)"
                                   % (self._name(), self._kind, state))
            owner = pid if phase == _core.STRUCT_STATE_INIT else creator
            if not _alive(owner) or time.monotonic() >= deadline:
                raise CorruptError("%s was left half-made by a process that stopped while "
                                   "creating it; open it read-write with create=True, shape= "
                                   "and dtype= to create it again" % self._name())
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def _after_open(self, populate: bool, want_shape: Optional[Tuple[int, ...]],
                    want_dtype: Any) -> None:
        st = self._stored
        bad = []
        if want_shape is not None and want_shape != st.shape:
            bad.append("shape %r" % (want_shape,))
        if want_dtype is not None and want_dtype != st.dtype:
            bad.append("dtype %s" % want_dtype)
        try:
            if bad:
                raise ValueError("%s holds shape %r, dtype %s; asked for %s (give None to "
                                 "take the stored ones)" % (self._name(), st.shape, st.dtype,
                                                            " and ".join(bad)))
            if populate:
                self._seg_populate()
        except BaseException:
            self._drop_mapping()
            Structure.close(self)
            raise

    # -- the kind's own header --------------------------------------------------------

    def _init_body(self) -> None:
        lay = self._layout
        if lay is None:
            raise CorruptError("%s was left half-made by a process that stopped while "
                               "creating it; open it with create=True, shape= and dtype= "
                               "to create it again" % self._name())
        self._seg_write(lay.header(), HEADER_SIZE)

    def _check_body(self) -> None:
        np = need_numpy()
        limit = self._st_header()[4]      # checked against the segment already
        name = self._name()
        if limit < _SHAPE_AT:
            raise CorruptError("%s: its header claims %d bytes, too few for an array header"
                               % (name, limit))
        ndim, dlen, itemsize, nbytes, off = _FIXED.unpack(self._seg_read(_FIXED.size,
                                                                         HEADER_SIZE))
        if ndim > MAX_NDIM:
            raise CorruptError("%s: %d dimensions; at most %d" % (name, ndim, MAX_NDIM))
        if not 0 < dlen <= MAX_DESCR:
            raise CorruptError("%s: dtype description of %d bytes; 1..%d" % (name, dlen, MAX_DESCR))
        end = _SHAPE_AT + 8 * ndim + dlen
        if end > limit:
            raise CorruptError("%s: its array header needs %d bytes; the structure has %d"
                               % (name, end, limit))
        shape = struct.unpack("=%dQ" % ndim, self._seg_read(8 * ndim, _SHAPE_AT))
        try:
            dt = decode_dtype(np, self._seg_read(dlen, _SHAPE_AT + 8 * ndim))
        except CorruptError as exc:
            raise CorruptError("%s: %s" % (name, exc)) from None
        if dt.itemsize != itemsize:
            raise CorruptError("%s: items of %d bytes, but dtype %s has %d"
                               % (name, itemsize, dt, dt.itemsize))
        if not _fits(shape, itemsize) or _items(shape) * itemsize != nbytes:
            raise CorruptError("%s: shape %r of %d-byte items does not make %d bytes"
                               % (name, shape, itemsize, nbytes))
        if off != _data_offset(ndim, dlen, dt.alignment) or off + nbytes > limit:
            raise CorruptError("%s: data of %d bytes at offset %d does not fit its %d-byte "
                               "layout" % (name, nbytes, off, limit))
        st = _Layout(np, dt, tuple(int(d) for d in shape))
        assert st.data_offset == off and st.nbytes == nbytes
        self._stored = st

    # -- the array ------------------------------------------------------------------------

    @property
    def array(self) -> Any:
        """The numpy array over the segment (zero copy; read-only if opened
        with ``readonly=True``).  ValueError once closed.

        The same array is returned while one is alive; the object keeps no
        strong reference to it (the array holds the segment, so a strong
        one would be a cycle the garbage collector cannot see through numpy
        arrays).  In a hot loop, keep ``arr = shared.array`` in a variable.
        """
        self._check_open()
        ref = self._array
        arr = ref() if ref is not None else None
        if arr is None:
            st = self._stored
            np = need_numpy()
            arr = np.ndarray(st.shape, st.dtype, buffer=memoryview(self), offset=st.data_offset)
            self._array = weakref.ref(arr)
        return arr

    @property
    def shape(self) -> Tuple[int, ...]:
        """The stored shape."""
        return self._stored.shape

    @property
    def dtype(self) -> Any:
        """The stored dtype (a numpy.dtype)."""
        return self._stored.dtype

    @property
    def nbytes(self) -> int:
        """Bytes of data (the array's nbytes)."""
        return self._stored.nbytes

    @property
    def readonly(self) -> bool:
        """True if attached read-only."""
        return self._ro

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Detach the segment; the array stays for other processes (see
        remove()).  Idempotent.  BufferError, and nothing changes, while
        ``.array`` or views of it are alive in this process."""
        super().close()

    @classmethod
    def from_id(cls, ident: int, *, readonly: bool = False,
                populate: bool = False) -> "SharedArray":
        """Open an existing array by its segment's id."""
        need_numpy()
        t = cls._stat_id(ident)
        obj = cls.__new__(cls)
        obj._prepare(bool(readonly), None)
        obj._init_from_stat(t)
        obj._after_open(bool(populate), None, None)
        return obj

    def __reduce__(self) -> Tuple[Callable[..., "SharedArray"], Tuple[Any, ...]]:
        return (_unpickle, (type(self), self._ident, self._ro))

    def _repr_extra(self) -> str:
        try:
            st = self._stored
        except AttributeError:
            return ""
        return " shape=%r dtype=%s%s" % (st.shape, st.dtype, " readonly" if self._ro else "")
