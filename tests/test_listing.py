"""sysvkit.list_shared_memory / list_message_queues / list_semaphores."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import sysvkit
from sysvkit import _core, listing
from sysvkit import lowlevel as ll

PROC = "/proc/sysvipc"

LISTERS: Dict[str, Tuple[Callable[[], List[Any]], Callable[[Optional[str]], List[Any]]]] = {
    "shm": (sysvkit.list_shared_memory, listing._list_shared_memory),
    "msg": (sysvkit.list_message_queues, listing._list_message_queues),
    "sem": (sysvkit.list_semaphores, listing._list_semaphores),
}


def by_id(records: List[Any], ident: int) -> Any:
    found = [r for r in records if r.id == ident]
    assert len(found) == 1, "id %d listed %d times" % (ident, len(found))
    return found[0]


@pytest.fixture
def objects(ipc: Any) -> Any:
    """One object of each kind, made with the classes, with some state."""
    shm = ipc.new(sysvkit.SharedMemory, *ipc.path(), size=10000, create=True, mode=0o640)
    q = ipc.new(sysvkit.MessageQueue, *ipc.path(), create=True)
    q.send(b"x" * 123, 5)
    q.send(b"yz", 7)
    sems = ipc.new(sysvkit.SemaphoreSet, *ipc.path(), count=3, initial=[1, 2, 3], create=True)
    return shm, q, sems


def test_exports_and_types() -> None:
    assert sysvkit.list_shared_memory is listing.list_shared_memory
    assert sysvkit.list_message_queues is listing.list_message_queues
    assert sysvkit.list_semaphores is listing.list_semaphores
    for lister, _ in LISTERS.values():
        assert isinstance(lister(), list)


def test_objects_listed_as_their_stat_records(objects: Any) -> None:
    shm, q, sems = objects
    seg = by_id(sysvkit.list_shared_memory(), shm.id)
    assert isinstance(seg, sysvkit.ShmInfo)
    assert seg == shm.stat()
    assert (seg.key, seg.size, seg.mode, seg.attached) == (shm.key, 10000, 0o640, 1)
    assert seg.creator_pid == os.getpid() and not seg.removed and not seg.locked

    queue = by_id(sysvkit.list_message_queues(), q.id)
    assert isinstance(queue, sysvkit.MessageQueueInfo)
    assert queue == q.stat()
    assert (queue.messages, queue.bytes, queue.last_send_pid) == (2, 125, os.getpid())
    assert queue.max_bytes == q.max_bytes

    sset = by_id(sysvkit.list_semaphores(), sems.id)
    assert isinstance(sset, sysvkit.SemaphoreSetInfo)
    assert sset == sems.stat()
    assert sset.count == 3 and sset.key == sems.key


def test_sorted_by_id(ipc: Any) -> None:
    for _ in range(3):
        ipc.track_id("sem", ll.semget(ll.IPC_PRIVATE, 1, ll.IPC_CREAT | 0o600))
        ipc.track_id("msg", ll.msgget(ll.IPC_PRIVATE, ll.IPC_CREAT | 0o600))
        ipc.track_id("shm", ll.shmget(ll.IPC_PRIVATE, 100, ll.IPC_CREAT | 0o600))
    for lister, _ in LISTERS.values():
        ids = [r.id for r in lister()]
        assert len(ids) >= 3 and ids == sorted(ids)


def test_keys_are_signed_key_t(ipc: Any, tmp_path: Path) -> None:
    # proj_id 0xfe puts the top bit in the key: /proc prints it negative.
    path = tmp_path / "signed"
    path.touch()
    key = sysvkit.ftok(path, 0xFE)
    assert key < 0
    ident = ipc.track_id("shm", ll.shmget(key, 64, ll.IPC_CREAT | ll.IPC_EXCL | 0o600))
    assert by_id(sysvkit.list_shared_memory(), ident).key == key
    ident = ipc.track_id("msg", ll.msgget(key, ll.IPC_CREAT | ll.IPC_EXCL | 0o600))
    assert by_id(sysvkit.list_message_queues(), ident).key == key
    ident = ipc.track_id("sem", ll.semget(key, 1, ll.IPC_CREAT | ll.IPC_EXCL | 0o600))
    assert by_id(sysvkit.list_semaphores(), ident).key == key


def test_removed_while_attached_shows_key_0_and_removed(ipc: Any) -> None:
    shm = ipc.new(sysvkit.SharedMemory, *ipc.path(), size=4096, create=True)
    key = shm.key
    assert key != 0
    shm.remove()
    for proc_dir in (PROC, None):
        seg = by_id(listing._list_shared_memory(proc_dir), shm.id)
        assert seg.key == 0 and seg.removed and seg.attached == 1 and seg.mode == 0o600
    shm.close()
    assert shm.id not in [s.id for s in sysvkit.list_shared_memory()]


def test_locked_segment_decoded(ipc: Any) -> None:
    ident = ipc.track_id("shm", ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600))
    try:
        ll.shmctl(ident, ll.SHM_LOCK)
    except PermissionError:
        pytest.skip("SHM_LOCK needs CAP_IPC_LOCK or RLIMIT_MEMLOCK room")
    for proc_dir in (PROC, None):
        seg = by_id(listing._list_shared_memory(proc_dir), ident)
        assert seg.locked and not seg.removed and seg.mode == 0o600   # flags kept out of mode
    ll.shmctl(ident, ll.SHM_UNLOCK)
    assert not by_id(sysvkit.list_shared_memory(), ident).locked


@pytest.mark.parametrize("kind", ["shm", "msg", "sem"])
def test_proc_and_scan_agree(objects: Any, ipc: Any, kind: str) -> None:
    shm, _, _ = objects
    gone = ipc.new(sysvkit.SharedMemory, key=sysvkit.IPC_PRIVATE, size=100)
    gone.remove()   # still attached: key 0, removed
    _, private = LISTERS[kind]
    from_proc = private(PROC)
    from_scan = private(None)
    assert from_proc == from_scan
    assert len(from_proc) >= 1


def test_fallback_when_proc_is_missing(objects: Any, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    shm, q, sems = objects
    real = {kind: lister() for kind, (lister, _) in LISTERS.items()}
    monkeypatch.setattr(listing, "_PROC_DIR", str(tmp_path / "no-such-dir"))
    for kind, (lister, _) in LISTERS.items():
        assert lister() == real[kind]
    assert by_id(sysvkit.list_shared_memory(), shm.id) == shm.stat()
    assert by_id(sysvkit.list_message_queues(), q.id) == q.stat()
    assert by_id(sysvkit.list_semaphores(), sems.id) == sems.stat()


def _permute_columns(src: str, dst: Path) -> None:
    """Copy a /proc/sysvipc file with its columns in reverse order."""
    lines = Path(src).read_text().splitlines()
    dst.write_text("\n".join(" ".join(reversed(line.split())) for line in lines) + "\n")


def test_columns_found_by_header_name(objects: Any, tmp_path: Path) -> None:
    for kind in ("shm", "msg", "sem"):
        _permute_columns("%s/%s" % (PROC, kind), tmp_path / kind)
    for kind, (_, private) in LISTERS.items():
        assert private(str(tmp_path)) == private(PROC)


def test_unknown_layout_falls_back_to_scan(objects: Any, tmp_path: Path) -> None:
    for kind in ("shm", "msg", "sem"):
        (tmp_path / kind).write_text("       key      nosuchcolumn\n         1          2\n")
    for kind, (_, private) in LISTERS.items():
        assert private(str(tmp_path)) == private(None)


def test_other_users_objects_listed_without_permission(objects: Any, run_py: Any) -> None:
    """/proc/sysvipc lists every object; a queue's capacity (not in /proc)
    comes from MSG_STAT_ANY when the caller may not read the queue."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    shm, q, sems = objects
    q.max_bytes = 4321
    proc = run_py("""
        import dataclasses, json, os
        import sysvkit
        from sysvkit import listing      # imports first: /root may be closed to nobody
        os.setgid(65534); os.setuid(65534)
        out = {}
        for name in ("shared_memory", "message_queues", "semaphores"):
            out[name] = [dataclasses.asdict(r) for r in getattr(sysvkit, "list_" + name)()]
            scan = getattr(listing, "_list_" + name)(None)
            assert [dataclasses.asdict(r) for r in scan] == out[name], name
        print(json.dumps(out))
    """)
    seen = json.loads(proc.stdout)
    assert by_id([sysvkit.ShmInfo(**d) for d in seen["shared_memory"]], shm.id) == shm.stat()
    theirs = by_id([sysvkit.MessageQueueInfo(**d) for d in seen["message_queues"]], q.id)
    assert theirs == q.stat() and theirs.max_bytes == 4321
    assert by_id([sysvkit.SemaphoreSetInfo(**d) for d in seen["semaphores"]],
                 sems.id) == sems.stat()


def test_records_are_frozen(objects: Any) -> None:
    shm, _, _ = objects
    seg = by_id(sysvkit.list_shared_memory(), shm.id)
    with pytest.raises(dataclasses.FrozenInstanceError):
        seg.size = 1


class _NoStatAny:
    """sysvkit._core as a kernel before 4.17 shows it: *_STAT_ANY is EINVAL."""

    def __init__(self, core: Any) -> None:
        self._core = core

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    @staticmethod
    def _check(cmd: int, stat_any: int) -> None:
        if cmd == stat_any:
            raise OSError(errno.EINVAL, "Invalid argument")

    def shmctl(self, ident: int, cmd: int, *args: Any) -> Any:
        self._check(cmd, self._core.SHM_STAT_ANY)
        return self._core.shmctl(ident, cmd, *args)

    def msgctl(self, ident: int, cmd: int, *args: Any) -> Any:
        self._check(cmd, self._core.MSG_STAT_ANY)
        return self._core.msgctl(ident, cmd, *args)

    def semctl(self, ident: int, num: int, cmd: int, *args: Any) -> Any:
        self._check(cmd, self._core.SEM_STAT_ANY)
        return self._core.semctl(ident, num, cmd, *args)


def test_scan_without_stat_any(objects: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where *_STAT_ANY does not exist, the scan uses *_STAT (readable objects)."""
    expected = {kind: private(PROC) for kind, (_, private) in LISTERS.items()}
    monkeypatch.setattr(listing, "_core", _NoStatAny(_core))
    for kind, (_, private) in LISTERS.items():
        assert private(None) == expected[kind]
