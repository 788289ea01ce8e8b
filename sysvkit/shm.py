"""SharedMemory: a System V shared memory segment, attached and lent as a buffer.

The mapping itself is owned by the core's ``_Segment`` base class, which
implements the buffer protocol (a pure-Python class cannot before Python
3.12) and refuses to detach while any buffer of the segment is alive; the
naming, opening and creating rules come from :class:`IPCObject`.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Callable, Optional, Tuple, Type

from . import _core
from ._args import check_int, check_mode
from ._base import ACCESS_R, ACCESS_RW, IPCObject, open_or_create
from ._core import RemovedError
from ._keys import IPC_PRIVATE, StrPath
from ._numpy import view_of
from ._records import ShmInfo, shm_info

__all__ = ["SharedMemory"]

_SIZE_MAX = (1 << 63) - 1   # Py_ssize_t: the largest mapping Python can address


def _shmmax() -> int:
    """The kernel's largest segment size (shmmax), exactly as the kernel gives
    it (IPC_INFO; the number in /proc/sys/kernel/shmmax and in limits())."""
    return int(_core.shmctl(0, _core.IPC_INFO)[1])


def _check_size(nbytes: int, shmmax: int) -> None:
    """A size above the kernel's shmmax, or above what a Python buffer can
    address, is ValueError.  Messages always give the kernel's shmmax as the
    kernel reports it, never capped: on 64-bit Linux the default is
    18446744073692774399, above the largest ssize_t; when the buffer limit
    (2**63 - 1 bytes) is the one that binds, the message names it apart."""
    if nbytes > shmmax:
        raise ValueError("size must be at most the kernel's shmmax, %d bytes, got %d"
                         % (shmmax, nbytes))
    if nbytes > _SIZE_MAX:
        raise ValueError("size must be at most %d bytes, the largest buffer Python can "
                         "address (the kernel's shmmax is %d), got %d"
                         % (_SIZE_MAX, shmmax, nbytes))


def _unpickle(cls: Type[SharedMemory], ident: int, readonly: bool) -> SharedMemory:
    return cls.from_id(ident, readonly=readonly)


class SharedMemory(_core._Segment, IPCObject):
    """A System V shared memory segment, attached on construction.

    ``shm.buf`` is a memoryview of the mapped segment itself (zero copy), and
    the object supports the buffer protocol (``memoryview(shm)``,
    ``numpy.frombuffer(shm)``, ``bytes(shm)``).  While any buffer of the
    segment is alive (a memoryview, a slice of one, a numpy array made from
    either, a ``pickle.PickleBuffer``), ``close()`` raises BufferError, as
    ``mmap`` does, and the segment stays attached.

    One kind of array cannot be counted: ``numpy.ndarray(..., buffer=shm)``
    on the object itself, for which numpy releases the buffer at once.  Such
    an array is still safe: closing replaces the mapping with private zero
    pages in one step, so it never reaches unmapped memory (its later writes
    go nowhere).  Use ``buffer=shm.buf`` to have close() refuse instead.

    ``close()`` (and leaving a ``with`` block) detaches, ``remove()``
    destroys.  A SharedMemory that is never closed is detached when it is
    garbage collected, with a ResourceWarning.  It pickles by id.
    """

    _kind = "shared memory segment"

    _stat_raw = staticmethod(lambda ident: _core.shmctl(ident, _core.IPC_STAT))
    _rmid = staticmethod(lambda ident: _core.shmctl(ident, _core.IPC_RMID))
    _record = staticmethod(shm_info)

    def __init__(self, path: Optional[StrPath] = None, proj_id: Optional[int] = None, *,
                 key: Optional[int] = None, create: bool = False, exclusive: bool = False,
                 mode: int = 0o600, size: int = 0, readonly: bool = False,
                 populate: bool = False, huge_pages: bool = False,
                 hugetlb: bool = False) -> None:
        """Open, or create, the segment named by ``(path, proj_id)`` or ``key=``
        and attach it.

        - ``size``: bytes; required (> 0) to create.  When opening, 0 means
          the segment's size; a size larger than the segment is ValueError.
          The object's size is always the segment's.
        - ``create``: False (the default) opens an existing segment only;
          True opens it, or creates it if there is none.  ``exclusive=True``
          (with ``create=True``) insists on creating: FileExistsError if it
          exists.  ``mode``: the permission bits of a new segment (default
          0o600, the owner only).  ``key=IPC_PRIVATE`` always creates.
        - ``readonly``: attach read-only (SHM_RDONLY): ``buf`` is read-only
          and writing raises TypeError.  Opening needs only read permission.
        - ``populate``: map every page at attach (MADV_POPULATE_READ on a
          read-only attach, _WRITE on a read-write one, several threads for
          a large segment, the GIL released), so that reading the whole
          segment costs one pass over the page tables instead of one page
          fault per page.  It costs time in proportion to the segment's
          size, not to what is read, and commits memory for pages never
          written: use it when the process will touch most of the segment.
        - ``huge_pages``: create the segment on huge pages (SHM_HUGETLB;
          ``hugetlb=`` is the same); an OSError naming ``vm.nr_hugepages``
          if the system has none to give.  Ignored when opening an existing
          segment.

        Raises TypeError/ValueError for bad arguments (before any system
        call), FileNotFoundError if the segment does not exist and
        ``create`` is false, FileExistsError with ``exclusive=True`` if it
        does, PermissionError if the caller may not use it.
        """
        nbytes = check_int(size, "size", 0)      # argument checks before ftok and shmget
        check_mode(mode)
        if exclusive and not create:
            raise ValueError("exclusive=True needs create=True")
        k = self._resolve(path, proj_id, key)
        creating = bool(create) or k == IPC_PRIVATE
        shmmax = _shmmax()
        _check_size(nbytes, shmmax)
        if creating and nbytes == 0:
            raise ValueError("size is required to create a segment: give size > 0 (bytes, "
                             "at most the kernel's shmmax, %d)" % shmmax)
        readonly = bool(readonly)
        populate = bool(populate)
        extra = _core.SHM_HUGETLB if huge_pages or hugetlb else 0

        def get(key: int, flags: int) -> int:
            if not flags & _core.IPC_CREAT:
                return _core.shmget(key, 0, flags)   # the size is checked below, by stat
            try:
                return _core.shmget(key, nbytes, flags | extra)
            except OSError as exc:
                if extra and exc.errno in (errno.ENOMEM, errno.EINVAL, errno.EPERM):
                    raise _hugetlb_error(exc, nbytes) from None
                raise

        ident, created = open_or_create(get, k, create=bool(create), exclusive=exclusive,
                                        mode=mode, access=ACCESS_R if readonly else ACCESS_RW,
                                        kind=self._kind, path=path, proj_id=proj_id)
        try:
            t = self._stat_id(ident)
            if not created and nbytes > t[7]:
                raise ValueError("size=%d is larger than the segment (%d bytes); give size=0 "
                                 "for the segment's own size" % (nbytes, t[7]))
            self._set_ids(k, ident)
            self._attach_to(ident, readonly)
            if populate:
                self._populate_or_detach()
        except BaseException:
            if created:
                try:
                    _core.shmctl(ident, _core.IPC_RMID)
                except OSError:
                    pass
            raise

    # -- opening by id ------------------------------------------------------------

    @classmethod
    def from_id(cls, ident: int, *, readonly: bool = False,
                populate: bool = False) -> SharedMemory:
        """Open and attach an existing segment by its id (``readonly`` and
        ``populate`` as for the constructor).

        FileNotFoundError (RemovedError) if no segment has that id, or it
        was removed (even if still attached elsewhere); PermissionError if
        the caller may not use it.
        """
        t = cls._stat_id(ident)
        obj = cls.__new__(cls)
        obj._open_stat(t, bool(readonly))
        if populate:
            obj._populate_or_detach()
        return obj

    def _init_from_stat(self, t: Tuple[int, ...]) -> None:
        self._open_stat(t, False)

    def _open_stat(self, t: Tuple[int, ...], readonly: bool) -> None:
        if t[6] & _core.SHM_DEST:
            raise RemovedError(errno.EIDRM, "%s with id %d was removed"
                               % (self._kind, t[0]))
        IPCObject._init_from_stat(self, t)
        self._attach_to(t[0], readonly)

    def _attach_to(self, ident: int, readonly: bool) -> None:
        try:
            self._seg_attach(ident, _core.SHM_RDONLY if readonly else 0)
        except OSError as exc:
            self._fail(exc)

    # -- the segment ---------------------------------------------------------------

    def _populate_or_detach(self) -> None:
        try:
            self._seg_populate()
        except BaseException:
            self._seg_detach()
            IPCObject.close(self)
            raise

    def _check_open(self) -> None:
        if not self._seg_attached:
            raise ValueError("operation on a closed %s" % self._kind)

    @property
    def size(self) -> int:
        """The segment's size in bytes (``len(shm)`` while attached)."""
        return self._seg_size

    @property
    def readonly(self) -> bool:
        """True if attached read-only."""
        return self._seg_readonly

    @property
    def closed(self) -> bool:
        """True once close() detached the segment."""
        return not self._seg_attached

    def __len__(self) -> int:
        self._check_open()
        return self._seg_size

    @property
    def buf(self) -> memoryview:
        """A memoryview of the mapped segment (zero copy).

        Each access returns a new view; while any is alive, close() raises
        BufferError.  Read-only if attached with ``readonly=True``.
        ValueError once closed.
        """
        self._check_open()
        return memoryview(self)

    def read(self, size: int = -1, offset: int = 0) -> bytes:
        """Copy ``size`` bytes (-1: to the end) starting at ``offset``.

        ValueError if the range is outside the segment or it is closed.
        """
        self._check_open()
        n = check_int(size, "size", -1)
        off = check_int(offset, "offset", 0)
        return self._seg_read(n, off)

    def write(self, data: Any, offset: int = 0) -> int:
        """Copy a bytes-like object into the segment at ``offset``; returns
        the number of bytes written.

        TypeError for ``str`` or a read-only attachment; ValueError if the
        data does not fit (nothing is written) or the segment is closed.
        """
        self._check_open()
        off = check_int(offset, "offset", 0)
        return self._seg_write(data, off)

    def readinto(self, buffer: Any, offset: int = 0) -> int:
        """Copy ``len(buffer)`` bytes, from ``offset`` on, into a writable
        C-contiguous buffer (a bytearray, a numpy array...); returns the
        number of bytes copied.

        The copy runs without the GIL; a large one is split over a few
        threads, each mapping its part of the segment in one pass and
        copying it, so a fresh attachment is read faster than by one thread
        touching page after page.  ValueError if the range is outside the
        segment (nothing is copied) or it is closed.
        """
        self._check_open()
        off = check_int(offset, "offset", 0)
        try:
            n: int = self._seg_readinto(buffer, off)
        except BufferError:
            with memoryview(buffer) as view:
                if view.readonly:
                    raise TypeError("readinto() needs a writable buffer, not a read-only %s"
                                    % type(buffer).__name__) from None
                if not view.c_contiguous:
                    raise BufferError("readinto() needs a C-contiguous buffer") from None
            raise
        return n

    def prefault(self) -> None:
        """Fault every page of the segment into this process now.

        A new segment's pages are allocated on first touch, one page fault
        each, which makes the first fill of a large segment several times
        slower than later ones; prefault() does that work up front, in one
        call that releases the GIL (MADV_POPULATE_WRITE, or _READ when
        read-only; on kernels before 5.14 it touches each page), so the
        first fill runs at memory speed.  Data is not changed.  The memory
        is committed: do not prefault a large segment you use sparsely.
        ValueError once closed; OSError (ENOMEM) if memory runs out.
        """
        self._check_open()
        self._seg_populate()

    def ndarray(self, dtype: Any, shape: Any = None, offset: int = 0) -> Any:
        """A numpy array over the segment (zero copy), from byte ``offset``.

        ``shape``: an int or a tuple of ints; None makes a 1-d array of as
        many items as fit after ``offset``.  The array holds a buffer of the
        segment, so close() raises BufferError while it (or a view of it)
        is alive.  Read-only on a read-only attach.

        ValueError if ``offset`` is not a multiple of the dtype's alignment
        or the array would not fit in the segment; TypeError for a dtype
        holding Python objects; ImportError (``pip install numpy``) without
        numpy; ValueError once closed.
        """
        self._check_open()
        return view_of(self, dtype, shape, offset, "the segment")

    # -- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        """Detach the segment (the kernel object stays; see remove()).

        Idempotent.  BufferError, and nothing changes, while memoryviews or
        arrays of the segment are alive.
        """
        self._seg_detach()
        IPCObject.close(self)

    def remove(self) -> None:
        """Mark the segment for destruction (IPC_RMID): the kernel frees it at
        the last detach; until then attachments, this one too, keep working.

        RemovedError if it was already removed.
        """
        try:
            removed = bool(self._stat_raw(self._ident)[6] & _core.SHM_DEST)
        except OSError:
            removed = False          # gone, or not ours to stat: IPC_RMID says which
        if removed:
            raise RemovedError(errno.EIDRM, "%s was already removed" % self._name())
        super().remove()

    def stat(self) -> ShmInfo:
        """The segment's kernel record.  RemovedError once it is freed."""
        info: ShmInfo = super().stat()
        return info

    def __reduce__(self) -> Tuple[Callable[..., SharedMemory], Tuple[Any, ...]]:
        return (_unpickle, (type(self), self._ident, self.readonly))

    def _repr_extra(self) -> str:
        return " size=%d%s" % (self._seg_size, " readonly" if self.readonly else "")


def _read_proc_int(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _hugetlb_error(exc: OSError, size: int) -> OSError:
    """The kernel refused a SHM_HUGETLB segment: say why, keeping errno."""
    group = ("membership of the group in vm.hugetlb_shm_group (or CAP_IPC_LOCK)")
    reserved = _read_proc_int("/proc/sys/vm/nr_hugepages")
    have = "" if reserved is None else " (vm.nr_hugepages is %d)" % reserved
    if exc.errno == errno.EPERM:
        why = "this process may not use them: it needs %s" % group
        if reserved == 0:
            why += "; and the system has none configured (vm.nr_hugepages is 0)"
    else:
        why = ("none are free for %d bytes%s: reserve some with sysctl vm.nr_hugepages; "
               "see /proc/meminfo HugePages_*" % (size, have))
        if os.geteuid() != 0:
            why += "; a user other than root also needs %s" % group
    msg = "huge pages are unavailable: %s [%s]" % (why, exc.strerror)
    err = exc.errno if exc.errno is not None else errno.ENOMEM
    cls = PermissionError if err == errno.EPERM else OSError
    return cls(err, msg)
