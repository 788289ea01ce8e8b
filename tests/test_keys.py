"""Keys: sysvkit.ftok against C's ftok(3) and sysv_ipc, key normalisation
and explain_key."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pathlib
from typing import Any, Callable, List, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sysvkit
from sysvkit import lowlevel as ll
from sysvkit._args import check_int, check_timeout
from sysvkit._keys import explain_key, key_hex, normalize_key, resolve_key

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
UINT32_MAX = (1 << 32) - 1


def _c_ftok() -> Callable[[bytes, int], int]:
    """C's ftok(3) from libc, through ctypes (in the tests only)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fn = libc.ftok
    fn.argtypes = [ctypes.c_char_p, ctypes.c_int]
    fn.restype = ctypes.c_int     # key_t is a signed int on Linux
    return lambda path, proj: int(fn(path, proj))


c_ftok = _c_ftok()


@pytest.fixture
def paths(tmp_path: pathlib.Path) -> List[Union[str, bytes, pathlib.Path]]:
    """A few existing paths in each accepted form: str, bytes, pathlib.Path."""
    f = tmp_path / "a-file"
    f.write_bytes(b"x")
    d = tmp_path / "a-dir"
    d.mkdir()
    return [str(f), os.fsencode(str(d)), f, pathlib.Path(d), str(tmp_path), "/"]


# -- ftok --------------------------------------------------------------------

def test_ftok_equals_c_ftok_for_every_proj_id(paths: List[Any]) -> None:
    for path in paths:
        raw = os.fsencode(path)
        for proj in range(1, 256):
            key = sysvkit.ftok(path, proj)
            assert key == c_ftok(raw, proj), (path, proj)
            assert INT32_MIN <= key <= INT32_MAX
            assert type(key) is int


def test_ftok_equals_sysv_ipc(paths: List[Any]) -> None:
    sysv_ipc = pytest.importorskip("sysv_ipc")
    for path in paths:
        name = os.fsdecode(os.fspath(path))
        for proj in (1, 2, 127, 128, 200, 255):
            assert sysvkit.ftok(path, proj) == sysv_ipc.ftok(name, proj, True)


def test_ftok_is_signed_key_t(tmp_path: pathlib.Path) -> None:
    # proj_id >= 128 sets bit 31: as a signed key_t the key is negative.
    key = sysvkit.ftok(tmp_path, 200)
    assert key < 0
    assert key == c_ftok(os.fsencode(str(tmp_path)), 200)
    assert sysvkit.ftok(tmp_path, 1) > 0


def test_ftok_equals_lowlevel_and_same_object(tmp_path: pathlib.Path) -> None:
    assert sysvkit.ftok(tmp_path, 7) == ll.ftok(str(tmp_path), 7) == ll.ftok(tmp_path, 7)
    # Another name for the same file gives the same key.
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    assert sysvkit.ftok(link, 7) == sysvkit.ftok(tmp_path, 7)


def test_ftok_missing_path(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "no-such-file"
    for form in (str(missing), os.fsencode(str(missing)), missing):
        with pytest.raises(FileNotFoundError) as info:
            sysvkit.ftok(form, 1)
        assert info.value.filename == form
        assert info.value.errno == 2
    with pytest.raises(FileNotFoundError) as info:
        ll.ftok(str(missing), 1)
    assert info.value.filename == str(missing)


@pytest.mark.parametrize("proj", [0, 256, -1, 1 << 40])
def test_ftok_proj_id_out_of_range(tmp_path: pathlib.Path, proj: int) -> None:
    with pytest.raises(ValueError, match="proj_id"):
        sysvkit.ftok(tmp_path, proj)


@pytest.mark.parametrize("proj", [True, False, 1.0, "1", None, b"\x01"])
def test_ftok_proj_id_wrong_type(tmp_path: pathlib.Path, proj: Any) -> None:
    with pytest.raises(TypeError, match="proj_id"):
        sysvkit.ftok(tmp_path, proj)


def test_ftok_proj_id_checked_before_path(tmp_path: pathlib.Path) -> None:
    # Bad arguments are reported before any system call, even for a missing path.
    with pytest.raises(ValueError):
        sysvkit.ftok(tmp_path / "missing", 0)


def test_ftok_accepts_index_ints(tmp_path: pathlib.Path) -> None:
    np = pytest.importorskip("numpy")
    assert sysvkit.ftok(tmp_path, np.int64(9)) == sysvkit.ftok(tmp_path, 9)


@pytest.mark.parametrize("path", [123, None, 1.5, ["/"], bytearray(b"/")])
def test_ftok_path_wrong_type(path: Any) -> None:
    with pytest.raises(TypeError):
        sysvkit.ftok(path, 1)


def test_ftok_path_with_nul() -> None:
    with pytest.raises(ValueError):
        sysvkit.ftok("/tmp\0x", 1)


def test_ipc_private() -> None:
    assert sysvkit.IPC_PRIVATE == 0
    assert ll.IPC_PRIVATE == 0


# -- key normalisation ---------------------------------------------------------

def test_normalize_key_signed_and_unsigned_forms() -> None:
    assert normalize_key(0) == 0
    assert normalize_key(1) == 1
    assert normalize_key(INT32_MAX) == INT32_MAX
    assert normalize_key(1 << 31) == INT32_MIN
    assert normalize_key(INT32_MIN) == INT32_MIN
    assert normalize_key(UINT32_MAX) == -1
    assert normalize_key(-1) == -1
    assert normalize_key(0xDEADBEEF) == 0xDEADBEEF - (1 << 32)


@pytest.mark.parametrize("key", [UINT32_MAX + 1, INT32_MIN - 1, 1 << 64, -(1 << 40)])
def test_normalize_key_out_of_range(key: int) -> None:
    with pytest.raises(ValueError, match="key"):
        normalize_key(key)


@pytest.mark.parametrize("key", [True, False, 1.0, "1", None, b"1"])
def test_normalize_key_wrong_type(key: Any) -> None:
    with pytest.raises(TypeError, match="key"):
        normalize_key(key)


def test_resolve_key_rules(tmp_path: pathlib.Path) -> None:
    assert resolve_key(tmp_path, 3, None) == sysvkit.ftok(tmp_path, 3)
    assert resolve_key(None, None, 0xFFFFFFFF) == -1
    with pytest.raises(TypeError):
        resolve_key(tmp_path, 3, 5)            # both
    with pytest.raises(TypeError):
        resolve_key(None, None, None)          # neither
    with pytest.raises(TypeError):
        resolve_key(tmp_path, None, None)      # half


def test_key_hex() -> None:
    assert key_hex(-1) == "0xffffffff"
    assert key_hex(0x1A2B3C) == "0x001a2b3c"
    assert key_hex(INT32_MIN) == "0x80000000"


def test_core_key_forms_name_the_same_object(ipc: Any) -> None:
    """The core takes both forms too, and they open the same queue."""
    key = ipc.key()
    unsigned = key & 0xFFFFFFFF
    qid = ipc.track_id("msg", ll.msgget(key, ll.IPC_CREAT | ll.IPC_EXCL | 0o600))
    assert ll.msgget(unsigned, 0) == qid
    assert ll.msgget(key, 0) == qid
    assert ll.msgctl(qid, ll.IPC_STAT)[1] == key
    with pytest.raises(ValueError):
        ll.msgget(1 << 32, 0)
    with pytest.raises(ValueError):
        ll.msgget(INT32_MIN - 1, 0)
    with pytest.raises(TypeError):
        ll.msgget(True, 0)
    with pytest.raises(TypeError):
        ll.msgget(1.0, 0)


def _negative_key(ipc: Any) -> int:
    """A fresh key >= 2**31 in its unsigned form (negative as key_t)."""
    for _ in range(300):
        path, _proj = ipc.path()
        key = sysvkit.ftok(path, 200)
        if key < 0:
            return key
    raise AssertionError("no negative key found")  # pragma: no cover


@pytest.mark.parametrize("clsname", ["MessageQueue", "SharedMemory", "SemaphoreSet"])
def test_class_key_forms_name_the_same_object(ipc: Any, clsname: str) -> None:
    try:
        cls = getattr(sysvkit, clsname)
    except (ImportError, AttributeError):
        pytest.skip("%s is not written yet" % clsname)
    key = _negative_key(ipc)
    extra = {"size": 4096} if clsname == "SharedMemory" else {}
    if clsname == "SemaphoreSet":
        extra = {"count": 1}
    obj = ipc.new(cls, key=key & 0xFFFFFFFF, create=True, exclusive=True, **extra)
    assert obj.key == key
    other = ipc.new(cls, key=key)
    assert other.id == obj.id
    with pytest.raises(ValueError):
        cls(key=1 << 32)
    with pytest.raises(TypeError):
        cls(key=1.0)
    with pytest.raises(TypeError):
        cls(key=True)


# -- explain_key ------------------------------------------------------------------

def test_explain_key_parts_match_stat(paths: List[Any]) -> None:
    for path in paths:
        st_ = os.stat(path)
        for proj in (1, 77, 128, 255):
            key = sysvkit.ftok(path, proj)
            parts = sysvkit.explain_key(key)
            assert parts.key == key
            assert parts.proj_id == proj
            assert parts.device == st_.st_dev & 0xFF
            assert parts.inode == st_.st_ino & 0xFFFF
            # Unsigned form of the same key: same parts.
            assert sysvkit.explain_key(key & 0xFFFFFFFF) == parts


def test_explain_key_is_frozen() -> None:
    parts = sysvkit.explain_key(0x01020304)
    assert (parts.proj_id, parts.device, parts.inode) == (1, 2, 0x0304)
    with pytest.raises(AttributeError):
        parts.proj_id = 5  # type: ignore[misc]


def test_explain_key_rejects_bad_keys() -> None:
    with pytest.raises(ValueError):
        sysvkit.explain_key(1 << 32)
    with pytest.raises(TypeError):
        sysvkit.explain_key(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sysvkit.explain_key(True)


# -- property tests ----------------------------------------------------------------

@given(st.integers(min_value=INT32_MIN, max_value=UINT32_MAX))
def test_normalize_key_property(key: int) -> None:
    k = normalize_key(key)
    assert INT32_MIN <= k <= INT32_MAX
    assert k & 0xFFFFFFFF == key & 0xFFFFFFFF       # the same 32 bits
    assert normalize_key(k) == k                    # idempotent
    assert normalize_key(k & 0xFFFFFFFF) == k       # unsigned form: same key


@given(st.one_of(st.integers(max_value=INT32_MIN - 1), st.integers(min_value=UINT32_MAX + 1)))
def test_normalize_key_property_out_of_range(key: int) -> None:
    with pytest.raises(ValueError):
        normalize_key(key)


@settings(max_examples=200)
@given(st.one_of(st.integers(min_value=INT32_MIN - 10, max_value=UINT32_MAX + 10),
                 st.integers()))
def test_core_and_normalize_key_agree_on_the_range(key: int) -> None:
    """The core's own key check accepts exactly what normalize_key accepts."""
    if key & 0xFFFFFFFF == 0 and INT32_MIN <= key <= UINT32_MAX:
        return      # IPC_PRIVATE with flags 0 would create a queue
    try:
        expected: object = normalize_key(key)
    except ValueError:
        expected = ValueError
    try:
        ll.msgget(key, 0)        # never creates: opens, or FileNotFoundError
        got: object = expected
    except FileNotFoundError as exc:
        assert key_hex(expected) in str(exc)  # type: ignore[arg-type]
        got = expected
    except ValueError:
        got = ValueError
    assert got == expected


@given(st.integers(min_value=INT32_MIN, max_value=UINT32_MAX))
def test_explain_key_property(key: int) -> None:
    parts = explain_key(key)
    assert parts.key == normalize_key(key)
    assert 0 <= parts.proj_id <= 0xFF
    assert 0 <= parts.device <= 0xFF
    assert 0 <= parts.inode <= 0xFFFF
    packed = parts.proj_id << 24 | parts.device << 16 | parts.inode
    assert normalize_key(packed) == parts.key


@settings(max_examples=60, deadline=None)
@given(proj=st.integers(min_value=1, max_value=255), name=st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20))
def test_ftok_explain_roundtrip_property(tmp_path_factory: pytest.TempPathFactory,
                                         proj: int, name: str) -> None:
    d = tmp_path_factory.getbasetemp() / "hypo-ftok"
    d.mkdir(exist_ok=True)
    p = d / name
    p.touch()
    key = sysvkit.ftok(p, proj)
    assert key == c_ftok(os.fsencode(str(p)), proj)
    parts = explain_key(key)
    st_ = p.stat()
    assert (parts.proj_id, parts.device, parts.inode) == (
        proj, st_.st_dev & 0xFF, st_.st_ino & 0xFFFF)


# -- argument helpers shared by the classes ---------------------------------------------

def test_check_int_messages() -> None:
    assert check_int(5, "count", 1, 9) == 5
    with pytest.raises(ValueError, match=r"count must be in 1\.\.9, got 0"):
        check_int(0, "count", 1, 9)
    with pytest.raises(ValueError, match=r"count must be in 1\.\.9, got 10"):
        check_int(10, "count", 1, 9)
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        check_int(0, "n", 1)
    with pytest.raises(ValueError, match=r"n must be <= 3"):
        check_int(4, "n", None, 3)
    with pytest.raises(TypeError, match="count must be an int, not float"):
        check_int(1.0, "count")
    with pytest.raises(TypeError, match="count must be an int, not bool"):
        check_int(True, "count")


def test_check_timeout() -> None:
    assert check_timeout(None) is None
    assert check_timeout(0) == 0.0
    assert check_timeout(1.5) == 1.5
    for bad in (-1, -0.001, float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            check_timeout(bad)
    for wrong in ("1", b"1", True, [1], object()):
        with pytest.raises(TypeError, match="timeout"):
            check_timeout(wrong)
    assert check_timeout(10 ** 400) == float("inf")        # beyond any float: for ever
    with pytest.raises(ValueError, match="timeout"):
        check_timeout(-(10 ** 400))
