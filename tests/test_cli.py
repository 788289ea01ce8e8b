"""The command line: ipcs (against util-linux ipcs), key, rm, demo, errors."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Set, Tuple

import pytest

import sysvkit
from sysvkit import cli
from sysvkit import lowlevel as ll
from sysvkit.cli import main
from sysvkit.cli.tables import slot_order

IPCS = shutil.which("ipcs")
IPCMK = shutil.which("ipcmk")
needs_util_linux = pytest.mark.skipif(IPCS is None or IPCMK is None,
                                      reason="util-linux ipcs/ipcmk not installed")

KIND_OF_SECTION = {"Message Queues": "msg", "Shared Memory Segments": "shm",
                   "Semaphore Arrays": "sem"}
JSON_NAME = {"shm": "shared_memory", "msg": "message_queues", "sem": "semaphores"}
LISTER: Dict[str, Callable[[], List[Any]]] = {
    "shm": sysvkit.list_shared_memory, "msg": sysvkit.list_message_queues,
    "sem": sysvkit.list_semaphores}
TIME_FIELDS = {"attach_time", "detach_time", "change_time", "send_time", "receive_time",
               "op_time"}


# -- helpers -----------------------------------------------------------------------------

def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> Tuple[int, str, str]:
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def run_cli(*args: str, **kwargs: Any) -> "subprocess.CompletedProcess[str]":
    proc = subprocess.run([sys.executable, "-m", "sysvkit", *args], capture_output=True,
                          text=True, timeout=120, **kwargs)
    assert proc.returncode >= 0, "killed by signal %d: %s" % (-proc.returncode, proc.stderr)
    return proc


def run_unforked(argv: List[str], env: Dict[str, str], timeout: float = 60) -> str:
    """Run ``argv`` and return its output, starting it with posix_spawn.

    Never fork: a forked child inherits this process's shared memory
    attachments and drops them at exec, which changes the segments' last
    pid and detach time between our listing and the one compared with it
    (subprocess forks on Python 3.9; it uses vfork from 3.10)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.posix_spawn(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise subprocess.TimeoutExpired(argv, timeout)
            time.sleep(0.005)
        out.seek(0)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise subprocess.CalledProcessError(code, argv, out.read(), err.read())
        return out.read().decode()


def util_ipcs(*args: str) -> str:
    assert IPCS is not None
    env = dict(os.environ, LC_ALL="C")     # untranslated titles and headers
    return run_unforked([IPCS, *args], env)


def ipcmk(ipc: Any, kind: str, *args: str) -> int:
    """Make an object with util-linux ipcmk; returns its id (tracked)."""
    assert IPCMK is not None
    flag = {"shm": "-M", "msg": "-Q", "sem": "-S"}[kind]
    out = subprocess.run([IPCMK, flag, *args], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    ident = int(re.search(r"id: (\d+)", out).group(1))  # type: ignore[union-attr]
    return ipc.track_id(kind, ident)  # type: ignore[no-any-return]


def parse_ipcs(text: str) -> Dict[str, Dict[int, Dict[str, str]]]:
    """The default ipcs layout as {kind: {id: {column: value}}}."""
    result: Dict[str, Dict[int, Dict[str, str]]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        m = re.match(r"------ (.*) --------$", line)
        if not m:
            continue
        kind = KIND_OF_SECTION[m.group(1)]
        header = next(lines).split()
        rows: Dict[int, Dict[str, str]] = {}
        for row in lines:
            if not row.strip():
                break
            fields = row.split()
            item = dict(zip(header, fields))
            if kind == "shm":     # status is zero, one or two words
                item["status"] = " ".join(fields[len(header) - 1:])
            rows[int(item[header[1]])] = item
        result[kind] = rows
    return result


def all_ids() -> Dict[str, Set[int]]:
    return {kind: {r.id for r in lister()} for kind, lister in LISTER.items()}


def private_namespace() -> bool:
    """True if this process has an IPC namespace of its own (unshare --ipc)."""
    try:
        return os.readlink("/proc/self/ns/ipc") != os.readlink("/proc/1/ns/ipc")
    except OSError:
        return False


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def objects(ipc: Any) -> Dict[str, Any]:
    """Objects made by util-linux ipcmk and by sysvkit, in several states."""
    made: Dict[str, Any] = {
        "mk_shm": ipcmk(ipc, "shm", "4096"),
        "mk_shm_perm": ipcmk(ipc, "shm", "100000", "-p", "0640"),
        "mk_msg": ipcmk(ipc, "msg"),
        "mk_sem": ipcmk(ipc, "sem", "3"),
    }
    shm = ipc.new(sysvkit.SharedMemory, *ipc.path(), size=3_000_000, create=True, mode=0o604)
    q = ipc.new(sysvkit.MessageQueue, *ipc.path(), create=True)
    q.send(b"hello world", 3)
    q.send(b"!", 4)
    sems = ipc.new(sysvkit.SemaphoreSet, *ipc.path(), count=2, initial=[4, 7], create=True)
    sems.op([(1, -2)])
    dest = ipc.new(sysvkit.SharedMemory, *ipc.path(), size=8192, create=True)
    dest.remove()          # attached: shows key 0 and "dest"
    made.update(shm=shm, msg=q, sem=sems, dest=dest)
    return made


# -- ipcs against util-linux ipcs --------------------------------------------------------

@needs_util_linux
def test_ipcs_rows_match_util_linux(objects: Dict[str, Any],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc, ours_text, err = run_main(capsys, "ipcs")
    assert rc == 0 and err == ""
    theirs = parse_ipcs(util_ipcs())
    for text in (ours_text, run_cli("ipcs").stdout):
        ours = parse_ipcs(text)
        assert set(ours) == {"shm", "msg", "sem"}
        ids = {"shm": [objects["mk_shm"], objects["mk_shm_perm"], objects["shm"].id,
                       objects["dest"].id],
               "msg": [objects["mk_msg"], objects["msg"].id],
               "sem": [objects["mk_sem"], objects["sem"].id]}
        for kind, idents in ids.items():
            for ident in idents:
                assert ours[kind][ident] == theirs[kind][ident], (kind, ident)
    ours = parse_ipcs(ours_text)
    shm = ours["shm"][objects["shm"].id]
    assert shm["key"] == "0x%08x" % (objects["shm"].key & 0xFFFFFFFF)
    assert (shm["perms"], shm["bytes"], shm["nattch"], shm["status"]) == \
        ("604", "3000000", "1", "")
    assert ours["shm"][objects["mk_shm_perm"]]["perms"] == "640"
    dest = ours["shm"][objects["dest"].id]
    assert (dest["key"], dest["status"]) == ("0x00000000", "dest")
    q = ours["msg"][objects["msg"].id]
    assert (q["used-bytes"], q["messages"]) == ("12", "2")
    assert ours["sem"][objects["mk_sem"]]["nsems"] == "3"


LAYOUTS = [[], ["-a"], ["-m"], ["-q"], ["-s"], ["-t"], ["-p"], ["-c"], ["-u"], ["-b"],
           ["--human"], ["-m", "--human"], ["-q", "--human"], ["-u", "--human"],
           ["-l"], ["-l", "-b"], ["-l", "--human"], ["-m", "-l"], ["-m", "-t", "-c"],
           ["-s", "-t"], ["-q", "-p"]]


@needs_util_linux
@pytest.mark.parametrize("opts", LAYOUTS, ids=lambda o: " ".join(o) or "default")
def test_ipcs_layout_identical_to_util_linux(objects: Dict[str, Any], opts: List[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Same titles, headers, column widths, key and time formats, byte for byte."""
    for _ in range(3):      # a concurrent change between the two runs: try again
        rc, ours, _ = run_main(capsys, "ipcs", *opts)
        theirs = util_ipcs(*opts)
        if ours == theirs:
            break
    assert rc == 0
    assert ours == theirs


@needs_util_linux
def test_ipcs_id_details_identical_to_util_linux(objects: Dict[str, Any],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    objects["sem"].op([(0, -1)])
    cases = [("-m", objects["mk_shm"]), ("-m", objects["shm"].id), ("-m", objects["dest"].id),
             ("-q", objects["msg"].id), ("-q", objects["mk_msg"]), ("-s", objects["sem"].id),
             ("-s", objects["mk_sem"])]
    for flag, ident in cases:
        for extra in ([], ["--human"]):
            rc, ours, _ = run_main(capsys, "ipcs", flag, "-i", str(ident), *extra)
            assert rc == 0
            assert ours == util_ipcs(flag, "-i", str(ident), *extra), (flag, ident, extra)
    rc, ours, _ = run_main(capsys, "ipcs", "-s", "-i", str(objects["sem"].id))
    assert re.search(r"^1 +5 +0 +0 +%d +$" % os.getpid(), ours, re.M)


# -- --json ------------------------------------------------------------------------------

def _check_item(item: Dict[str, Any], record: Any) -> None:
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if field.name in TIME_FIELDS:
            if value == 0:
                assert item[field.name] is None
            else:
                parsed = datetime.datetime.fromisoformat(item[field.name])
                assert parsed.tzinfo is not None and parsed.timestamp() == value
        else:
            assert item[field.name] == value and type(item[field.name]) is type(value)


def test_json_matches_records(objects: Dict[str, Any],
                              capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_main(capsys, "ipcs", "--json")
    assert rc == 0
    data = json.loads(out)
    assert list(data) == ["shared_memory", "message_queues", "semaphores"]
    for kind, lister in LISTER.items():
        items = data[JSON_NAME[kind]]
        records = lister()
        assert [i["id"] for i in items] == [r.id for r in records]
        for item, record in zip(items, records):
            _check_item(item, record)
    sem = [i for i in data["semaphores"] if i["id"] == objects["sem"].id][0]
    assert sem["semaphores"] == [
        {"value": 4, "waiting": 0, "waiting_for_zero": 0,
         "last_pid": objects["sem"][0].last_pid},
        {"value": 5, "waiting": 0, "waiting_for_zero": 0, "last_pid": os.getpid()}]
    dest = [i for i in data["shared_memory"] if i["id"] == objects["dest"].id][0]
    assert dest["key"] == 0 and dest["removed"] is True
    assert json.loads(run_cli("ipcs", "--json").stdout).keys() == data.keys()


def test_json_only_kinds_asked(objects: Dict[str, Any],
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert list(json.loads(run_main(capsys, "ipcs", "--json", "-m")[1])) == ["shared_memory"]
    assert list(json.loads(run_main(capsys, "ipcs", "-s", "--json", "-q")[1])) == \
        ["message_queues", "semaphores"]
    rc, out, _ = run_main(capsys, "ipcs", "--json", "-q", "-i", str(objects["msg"].id))
    assert rc == 0
    (item,) = json.loads(out)["message_queues"]
    _check_item(item, objects["msg"].stat())


def test_json_semaphore_waiters(ipc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sems = ipc.new(sysvkit.SemaphoreSet, key=sysvkit.IPC_PRIVATE, count=1)
    waiter = subprocess.Popen([sys.executable, "-c",
                               "from sysvkit import lowlevel as ll; "
                               "ll.semop(%d, [(0, -1, 0)], timeout=60)" % sems.id])
    try:
        deadline = time.monotonic() + 30
        while sems[0].waiting != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        rc, out, _ = run_main(capsys, "ipcs", "-s", "--json")
        (item,) = [i for i in json.loads(out)["semaphores"] if i["id"] == sems.id]
        assert item["semaphores"] == [{"value": 0, "waiting": 1, "waiting_for_zero": 0,
                                       "last_pid": sems[0].last_pid}]
        sems[0].release()
        assert waiter.wait(30) == 0
    finally:
        waiter.kill()
        waiter.wait()


# -- -l and -u ---------------------------------------------------------------------------

def _settings(text: str) -> Dict[str, int]:
    return {k.strip(): int(v) for k, v in re.findall(r"^(.*) = (\d+)$", text, re.M)}


def test_limits_match_proc_sys_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    def sysctl(name: str) -> List[int]:
        return [int(x) for x in Path("/proc/sys/kernel", name).read_text().split()]
    semmsl, semmns, semopm, semmni = sysctl("sem")
    page = os.sysconf("SC_PAGE_SIZE")
    total = sysctl("shmall")[0] * page
    u64 = (1 << 64) - 1
    got = _settings(run_main(capsys, "ipcs", "-l", "-b")[1])
    assert got == {
        "max queues system wide": sysctl("msgmni")[0],
        "max size of message (bytes)": sysctl("msgmax")[0],
        "default max size of queue (bytes)": sysctl("msgmnb")[0],
        "max number of segments": sysctl("shmmni")[0],
        "max seg size (bytes)": sysctl("shmmax")[0],
        "max total shared memory (bytes)": total if total <= u64 else u64 - u64 % page,
        "min seg size (bytes)": 1,
        "max number of arrays": semmni, "max semaphores per array": semmsl,
        "max semaphores system wide": semmns, "max ops per semop call": semopm,
        "semaphore max value": 32767}
    got = _settings(run_main(capsys, "ipcs", "-m", "-l")[1])
    assert got["max seg size (kbytes)"] == sysctl("shmmax")[0] // 1024
    rc, out, _ = run_main(capsys, "ipcs", "-l", "--json")
    assert json.loads(out)["limits"]["msgmnb"] == sysctl("msgmnb")[0]


def test_summary_counts(ipc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # The totals are the whole namespace's: other programs' objects coming
    # and going (or their queues filling) between the two listings change
    # them too, so try a few times and accept a run in which only ours changed.
    for _ in range(5):
        before = _settings(run_main(capsys, "ipcs", "-u")[1].replace(" bytes", ""))
        q = ipc.new(sysvkit.MessageQueue, key=sysvkit.IPC_PRIVATE)
        q.send(b"12345")
        sems = ipc.new(sysvkit.SemaphoreSet, key=sysvkit.IPC_PRIVATE, count=4)
        after = _settings(run_main(capsys, "ipcs", "-u")[1].replace(" bytes", ""))
        got = [after["allocated queues"] - before["allocated queues"],
               after["used headers"] - before["used headers"],
               int(after.get("used space", 0)) - int(before.get("used space", 0)),
               after["used arrays"] - before["used arrays"],
               after["allocated semaphores"] - before["allocated semaphores"]]
        q.remove()
        sems.remove()
        if got == [1, 1, 5, 1, 4]:
            break
    assert got == [1, 1, 5, 1, 4]


def test_human_sizes() -> None:
    assert [cli.human_size(n) for n in (0, 1023, 1024, 4096, 100000, 3000000, 1 << 30)] == \
        ["0B", "1023B", "1K", "4K", "97.7K", "2.9M", "1G"]
    assert cli.human_size((1 << 64) - (1 << 24) - 1) == "16E"


def util_linux_human(size: int) -> str:
    """util-linux's size_to_human_string (lib/strutils.c, one-letter suffix,
    one decimal) step by step in 64-bit unsigned arithmetic, as documented
    there: the exponent is the largest of 10, 20, ... 60 with 2**exp <= size;
    the remainder is scaled to thousandths of a unit (truncating, and
    dividing by 1024 first where times 1000 would overflow), rounded half
    up to tenths; ten tenths carry into the whole."""
    u64 = (1 << 64) - 1
    exp = 0
    while exp < 60 and size >= 1 << (exp + 10):
        exp += 10
    dec = size >> exp
    frac = size - (dec << exp)
    if frac:
        if frac >= u64 // 1000:
            frac = ((frac // 1024) * 1000) // (1 << (exp - 10))
        else:
            frac = (frac * 1000) // (1 << exp)
        frac = ((frac + 50) // 100) * 10          # tenths, times ten ("%02d")
        if frac == 100:
            dec, frac = dec + 1, 0
    unit = "BKMGTPE"[exp // 10]
    if not frac:
        return "%d%s" % (dec, unit)
    digits = "%02d" % frac
    return "%d.%s%s" % (dec, digits.rstrip("0") if digits.endswith("0") else digits, unit)


def human_sizes_to_check() -> List[int]:
    """Thousands of sizes: every one up to 5000, the edges of each unit, and
    pseudo-random ones of every magnitude up to 2**64 - 1."""
    import random
    rng = random.Random(11)
    sizes = list(range(5001))
    for exp in range(10, 70, 10):
        for k in (1, 2, 3, 5, 9, 10, 99, 100, 511, 512, 1000, 1023):
            base = k << exp
            sizes += [base - 1, base, base + 1]
            for tenth in range(1, 10):      # around each rounding threshold
                edge = base + (tenth << exp) // 10 - (1 << exp) // 20
                sizes += [edge - 1, edge, edge + 1]
    for bits in range(1, 65):
        sizes += [rng.getrandbits(bits) for _ in range(150)]
    return sorted({n for n in sizes if 0 <= n < 1 << 64})


def test_human_sizes_round_as_util_linux() -> None:
    sizes = human_sizes_to_check()
    assert len(sizes) > 10_000
    wrong = [(n, cli.human_size(n), util_linux_human(n)) for n in sizes
             if cli.human_size(n) != util_linux_human(n)]
    assert not wrong, "%d sizes differ, e.g. %r" % (len(wrong), wrong[:5])
    # The figures util-linux 2.38 prints for these (seen with ipcs --human).
    assert [cli.human_size(n) for n in (1996, 26976, 16838)] == ["1.9K", "26.3K", "16.4K"]


@needs_util_linux
def test_human_sizes_match_real_ipcs(ipc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Segments of 150 sizes, listed by /usr/bin/ipcs --human and by ours."""
    import random
    rng = random.Random(5)
    limit = min(sysvkit.limits().shmmax, 1 << 34)
    sizes = [1996, 26976, 16838] + [rng.randrange(1, 1 << rng.randrange(1, 35)) for _ in range(147)]
    ids = {}
    for size in sizes:
        size = max(1, min(size, limit))
        ident = ipc.track_id("shm", ll.shmget(ll.IPC_PRIVATE, size, ll.IPC_CREAT | 0o600))
        ids[ident] = size
    theirs = parse_ipcs(util_ipcs("-m", "--human"))["shm"]
    rc, out, _ = run_main(capsys, "ipcs", "-m", "--human")
    assert rc == 0
    ours = parse_ipcs(out)["shm"]
    differ = [(size, theirs[i]["size"], ours[i]["size"]) for i, size in ids.items()
              if theirs[i]["size"] != ours[i]["size"]]
    assert not differ, differ[:5]


# -- --resolve ---------------------------------------------------------------------------

def test_resolve_names_file_and_proj_id(ipc: Any, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    target = tree / "a" / "b" / "app.conf"
    target.touch()
    for i in range(50):
        (tree / ("other-%d" % i)).touch()
    q = ipc.new(sysvkit.MessageQueue, str(target), 42, create=True)
    unrelated = ipc.new(sysvkit.SemaphoreSet, *ipc.path(), count=1, create=True)
    rc, out, _ = run_main(capsys, "ipcs", "--resolve", str(tree))
    assert rc == 0
    row = [line for line in out.splitlines() if line.startswith(cli.key_hex(q.key))]
    assert len(row) == 1 and row[0].endswith(" %s proj_id=42" % target)
    other = [line for line in out.splitlines() if line.startswith(cli.key_hex(unrelated.key))]
    assert len(other) == 1 and "proj_id=" not in other[0]
    data = json.loads(run_main(capsys, "ipcs", "--json", "--resolve", str(tree))[1])
    (item,) = [i for i in data["message_queues"] if i["id"] == q.id]
    assert item["resolved"] == [{"path": str(target), "proj_id": 42}]


def test_resolve_calls_ftok_only_for_candidates(ipc: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(300):
        (tmp_path / ("f%d" % i)).touch()
    target = tmp_path / "f123"
    key = sysvkit.ftok(target, 9)
    calls: List[Tuple[str, int]] = []
    real_ftok = sysvkit.ftok

    def counting_ftok(path: Any, proj: int) -> int:
        calls.append((str(path), proj))
        return real_ftok(path, proj)
    monkeypatch.setattr(sysvkit, "ftok", counting_ftok)
    found = cli.resolve_keys(str(tmp_path), [key, 0])
    assert found == {key: [(str(target), 9)]}
    inode_bits = target.stat().st_ino & 0xFFFF
    same_bits = [p for p in tmp_path.iterdir() if p.stat().st_ino & 0xFFFF == inode_bits]
    assert len(calls) == len(same_bits) == 1


def test_resolve_when_readdir_inodes_differ_from_stat(
        ipc: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where readdir's d_ino is not stat's st_ino (overlayfs), every file is stat-ed."""
    for i in range(20):
        (tmp_path / ("f%d" % i)).touch()
    target = tmp_path / "f7"
    key = sysvkit.ftok(target, 200)
    real_scandir = os.scandir

    class Entry:
        def __init__(self, entry: Any) -> None:
            self._entry = entry

        def __getattr__(self, name: str) -> Any:
            return getattr(self._entry, name)

        def inode(self) -> int:
            return int(self._entry.inode()) + 1

    class Scan:
        def __init__(self, path: Any) -> None:
            self._it = real_scandir(path)

        def __enter__(self) -> Any:
            return (Entry(e) for e in self._it)

        def __exit__(self, *exc: Any) -> None:
            self._it.close()

    monkeypatch.setattr(os, "scandir", Scan)
    assert cli.resolve_keys(str(tmp_path), [key]) == {key: [(str(target), 200)]}


# -- --orphans ---------------------------------------------------------------------------

def _segment_of_killed_process(ipc: Any) -> int:
    """A segment whose creator attached it and was SIGKILLed."""
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from sysvkit import lowlevel as ll\n"
         "i = ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600)\n"
         "a = ll.shmat(i)\n"
         "print(i, flush=True)\n"
         "time.sleep(60)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        ident = ipc.track_id("shm", int(child.stdout.readline()))
    finally:
        child.kill()
        child.wait()
        if child.stdout:
            child.stdout.close()
    return int(ident)


def test_rm_orphans_only_own_unless_all_users(ipc: Any, run_py: Any) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    orphan = _segment_of_killed_process(ipc)      # root's
    code = """
        import gettext, locale, os, shutil, sys  # imports first: /root may be closed to nobody
        import sysvkit.cli, sysvkit.listing
        os.setgid(65534); os.setuid(65534)
        sys.exit(sysvkit.cli.main(["rm", "--orphans", "--dry-run"] + sys.argv[1:]))
    """
    mine = run_py(code)
    assert "segment id %d " % orphan not in mine.stdout
    everyone = run_py(code, "--all-users")
    assert "would remove shared memory segment id %d " % orphan in everyone.stdout
    assert orphan in all_ids()["shm"]


def _segment_never_attached(ipc: Any) -> int:
    """A segment made (not attached) by a process that has exited, as ipcmk does."""
    out = subprocess.run(
        [sys.executable, "-c", "from sysvkit import lowlevel as ll\n"
         "print(ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600))"],
        capture_output=True, text=True, check=True, timeout=60).stdout
    return int(ipc.track_id("shm", int(out)))


def test_orphans(ipc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    orphan = _segment_of_killed_process(ipc)
    never = _segment_never_attached(ipc)
    held = ipc.track(sysvkit.SharedMemory.from_id(_segment_of_killed_process(ipc)))
    alive = ipc.new(sysvkit.SharedMemory, key=sysvkit.IPC_PRIVATE, size=4096)
    alive.close()       # nothing attached, but its creator (we) lives

    rc, out, _ = run_main(capsys, "ipcs", "--orphans")
    assert rc == 0
    listed = parse_ipcs(out)
    assert set(listed) == {"shm"}
    assert orphan in listed["shm"] and never in listed["shm"]
    assert held.id not in listed["shm"] and alive.id not in listed["shm"]
    ids = [i["id"] for i in json.loads(run_main(capsys, "ipcs", "--orphans", "--json")[1])
           ["shared_memory"]]
    assert orphan in ids and held.id not in ids and alive.id not in ids

    rc, out, _ = run_main(capsys, "rm", "--orphans", "--dry-run")
    assert rc == 0 and "would remove shared memory segment id %d " % orphan in out
    assert {orphan, held.id, alive.id} <= all_ids()["shm"]
    if not private_namespace():
        return   # rm --orphans would touch other people's segments: run under unshare --ipc
    rc, out, err = run_main(capsys, "rm", "--orphans", "-v")
    assert rc == 0 and err == ""
    assert "removed shared memory segment id %d " % orphan in out
    left = all_ids()["shm"]
    assert orphan not in left and never not in left and {held.id, alive.id} <= left


def test_orphans_zombie_creator_is_gone(ipc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """A creator that exited but is not yet reaped (a zombie) holds nothing:
    its segment is an orphan, attached once or never."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from sysvkit import lowlevel as ll\n"
         "never = ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600)\n"
         "used = ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600)\n"
         "ll.shmdt(ll.shmat(used))\n"
         "print(never, used, flush=True)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        never, used = (ipc.track_id("shm", int(i)) for i in proc.stdout.read().split())
        deadline = time.monotonic() + 30
        while True:         # exited, and left unreaped: never poll() or wait() here
            with open("/proc/%d/stat" % proc.pid) as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    break
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        rc, out, _ = run_main(capsys, "ipcs", "--orphans")
        assert rc == 0
        listed = parse_ipcs(out)["shm"]
        assert never in listed and used in listed
        rc, out, _ = run_main(capsys, "rm", "--orphans", "--dry-run")
        assert "would remove shared memory segment id %d " % used in out
    finally:
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_orphans_never_guesses_across_pid_namespaces(ipc: Any) -> None:
    """Seen from another pid namespace, a live creator's pid reads 0: not an orphan."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1)")
    shm = ipc.new(sysvkit.SharedMemory, key=sysvkit.IPC_PRIVATE, size=4096)
    shm.close()             # nothing attached; its creator (this process) lives
    inside = subprocess.run([unshare, "--pid", "--fork", sys.executable, "-m", "sysvkit",
                             "ipcs", "-m", "--json"], capture_output=True, text=True,
                            timeout=60)
    if inside.returncode != 0:
        pytest.skip("cannot make a pid namespace here: %s" % inside.stderr.strip())
    (seen,) = [s for s in json.loads(inside.stdout)["shared_memory"] if s["id"] == shm.id]
    assert seen["creator_pid"] == 0 and seen["attached"] == 0      # we are invisible there
    orphans = subprocess.run([unshare, "--pid", "--fork", sys.executable, "-m", "sysvkit",
                              "ipcs", "--orphans", "--json"], capture_output=True, text=True,
                             timeout=60, check=True)
    assert shm.id not in [s["id"] for s in json.loads(orphans.stdout)["shared_memory"]]


# -- rm ----------------------------------------------------------------------------------

def test_rm_by_id_removes_exactly_that(ipc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    made = {kind: [ipc.track_id(kind, ident) for ident in idents] for kind, idents in {
        "shm": [ll.shmget(ll.IPC_PRIVATE, 64, ll.IPC_CREAT | 0o600) for _ in range(3)],
        "msg": [ll.msgget(ll.IPC_PRIVATE, ll.IPC_CREAT | 0o600) for _ in range(3)],
        "sem": [ll.semget(ll.IPC_PRIVATE, 1, ll.IPC_CREAT | 0o600) for _ in range(3)],
    }.items()}
    rc, out, err = run_main(capsys, "rm", "-m", str(made["shm"][1]), "-q", str(made["msg"][0]),
                            "-s", str(made["sem"][2]))
    assert (rc, out, err) == (0, "", "")
    ids = all_ids()
    assert made["shm"][1] not in ids["shm"] and {made["shm"][0], made["shm"][2]} <= ids["shm"]
    assert made["msg"][0] not in ids["msg"] and set(made["msg"][1:]) <= ids["msg"]
    assert made["sem"][2] not in ids["sem"] and set(made["sem"][:2]) <= ids["sem"]


@needs_util_linux
def test_rm_by_key(ipc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    shm, msg, sem = ipcmk(ipc, "shm", "4096"), ipcmk(ipc, "msg"), ipcmk(ipc, "sem", "1")
    keep = ipcmk(ipc, "shm", "4096")
    keys = {r.id: r.key for kind in LISTER for r in LISTER[kind]()}
    rc, _, err = run_main(capsys, "rm", "-M", cli.key_hex(keys[shm]),
                          "-Q", str(keys[msg] & 0xFFFFFFFF),   # unsigned decimal
                          "-S", str(keys[sem]))                # signed decimal
    assert rc == 0, err
    ids = all_ids()
    assert shm not in ids["shm"] and msg not in ids["msg"] and sem not in ids["sem"]
    assert keep in ids["shm"]


def test_rm_by_path_and_proj(ipc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path, proj = ipc.path()
    shm = ipc.new(sysvkit.SharedMemory, path, proj, size=64, create=True)
    shm.close()
    q = ipc.new(sysvkit.MessageQueue, path, proj, create=True)
    sems = ipc.new(sysvkit.SemaphoreSet, path, proj, count=1, create=True)
    other = ipc.new(sysvkit.MessageQueue, *ipc.path(), create=True)
    rc, out, _ = run_main(capsys, "rm", "--path", path, "--proj", str(proj), "-m", "--dry-run")
    assert rc == 0 and out.startswith("would remove shared memory segment key ")
    assert shm.exists()
    assert run_main(capsys, "rm", "--path", path, "--proj", str(proj), "-m")[0] == 0
    assert not shm.exists() and q.exists() and sems.exists()
    assert run_main(capsys, "rm", "--path", path, "--proj", str(proj))[0] == 0
    assert not q.exists() and not sems.exists() and other.exists()
    rc, _, err = run_main(capsys, "rm", "--path", path, "--proj", str(proj))
    assert rc == 1 and "no IPC object with key" in one_error_line(err)


def test_rm_dry_run_removes_nothing(ipc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    q = ipc.new(sysvkit.MessageQueue, key=sysvkit.IPC_PRIVATE)
    rc, out, _ = run_main(capsys, "rm", "-q", str(q.id), "--dry-run")
    assert rc == 0 and out == "would remove message queue id %d\n" % q.id
    assert q.exists()


def test_rm_errors(ipc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    unused = max(all_ids()["shm"] | {0}) + 12345
    rc, out, err = run_main(capsys, "rm", "-m", str(unused))
    assert rc == 1 and out == ""
    assert one_error_line(err) == "sysvkit rm: no shared memory segment with id %d" % unused
    rc, _, err = run_main(capsys, "rm", "-Q", cli.key_hex(ipc.key()))
    assert rc == 1 and "no message queue with key" in one_error_line(err)
    # One failure does not stop the others, and the status says it failed.
    q = ipc.new(sysvkit.MessageQueue, key=sysvkit.IPC_PRIVATE)
    rc, _, err = run_main(capsys, "rm", "-m", str(unused), "-q", str(q.id))
    assert rc == 1 and not q.exists()
    proc = run_cli("rm", "-s", str(unused))
    assert proc.returncode == 1 and proc.stdout == ""
    assert "no semaphore set with id" in one_error_line(proc.stderr)


def test_rm_orphans_as_root_says_what_it_left_alone(ipc: Any, run_py: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Root without --all-users removes its own orphans only, and says how
    many of other users' it left alone and how to remove them."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make another user's segment")
    theirs = ipc.track_id("shm", int(run_py("""
        import os
        from sysvkit import lowlevel as ll
        os.setgid(65534); os.setuid(65534)
        print(ll.shmget(ll.IPC_PRIVATE, 4096, ll.IPC_CREAT | 0o600))
    """).stdout))
    rc, out, err = run_main(capsys, "rm", "--orphans", "--dry-run")
    assert rc == 0 and err == ""
    assert "segment id %d " % theirs not in out
    note = [line for line in out.splitlines() if "left alone" in line]
    assert len(note) == 1, out
    count = int(re.search(r"(\d+) orphaned", note[0]).group(1))  # type: ignore[union-attr]
    assert count >= 1 and "--all-users" in note[0]
    assert theirs in all_ids()["shm"]


def test_rm_permission_denied(ipc: Any, run_py: Any) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    shm = ipc.new(sysvkit.SharedMemory, key=sysvkit.IPC_PRIVATE, size=64)
    proc = run_py("""
        import os, sys
        import gettext, locale, shutil    # imports first: /root may be closed to nobody
        import sysvkit.cli, sysvkit.listing
        os.setgid(65534); os.setuid(65534)
        sys.exit(sysvkit.cli.main(["rm", "-m", "%d"]))
    """ % shm.id, check=False)
    assert proc.returncode == 1
    assert one_error_line(proc.stderr) == \
        "sysvkit rm: permission denied: cannot remove shared memory segment with id %d" % shm.id
    assert shm.exists()


# -- key ---------------------------------------------------------------------------------

def test_key_equals_ftok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "k"
    path.touch()
    for proj in ("1", "65", "A", "0xff", "255"):
        rc, out, _ = run_main(capsys, "key", str(path), proj)
        value = ord(proj) if proj == "A" else int(proj, 0)
        assert rc == 0 and out == "0x%08x\n" % (sysvkit.ftok(path, value) & 0xFFFFFFFF)
    proc = run_cli("key", str(path), "7")
    assert proc.stdout == "0x%08x\n" % (sysvkit.ftok(path, 7) & 0xFFFFFFFF)


def test_key_explain(capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("0x41012345", str(0x41012345), str(0xF6368999 - (1 << 32)), "0xf6368999"):
        rc, out, _ = run_main(capsys, "key", "--explain", text)
        assert rc == 0
        parts = sysvkit.explain_key(int(text, 0))
        fields = dict(re.findall(r"^(\w+) +(0x[0-9a-f]+|\d+)", out, re.M))
        assert int(fields["key"], 16) == parts.key & 0xFFFFFFFF
        assert int(fields["proj_id"]) == parts.proj_id
        assert int(fields["device"], 16) == parts.device
        assert int(fields["inode"], 16) == parts.inode
    assert "proj_id  65 (0x41 'A')" in run_main(capsys, "key", "--explain", "0x41012345")[1]


def test_key_explain_proj_id_zero_is_not_from_ftok(capsys: pytest.CaptureFixture[str]) -> None:
    """A key whose proj_id byte is 0 (PostgreSQL's, say) was not made by
    ftok: no device and inode are read into it."""
    for text in ("0x0052e2c1", "5432001", "0x00ffffff"):
        rc, out, _ = run_main(capsys, "key", "--explain", text)
        assert rc == 0
        assert "not made by ftok" in out
        assert "device" not in out and "inode    " not in out
        assert out.startswith("key      0x%08x" % int(text, 0))
    rc, out, _ = run_main(capsys, "key", "--explain", "0")
    assert rc == 0 and "IPC_PRIVATE" in out and "device" not in out


# -- errors and exit codes ---------------------------------------------------------------

USAGE_ERRORS = [
    [], ["nosuchcommand"], ["ipcs", "-x"], ["ipcs", "-i", "0"], ["ipcs", "-m", "-q", "-i", "0"],
    ["ipcs", "-m", "-i", "abc"], ["ipcs", "--orphans", "-q"], ["ipcs", "--json", "-t"],
    ["rm"], ["rm", "-m", "abc"], ["rm", "-m"], ["rm", "-M", "0"], ["rm", "-M", "0x1ffffffff"],
    ["rm", "--path", "/tmp"], ["rm", "--all-users"],
    ["rm", "--path", "/tmp", "--proj", "1", "-m", "3"],
    ["key"], ["key", "/tmp"], ["key", "/tmp", "0"], ["key", "/tmp", "256"], ["key", "/tmp", "AB"],
    ["key", "--explain", "zz"], ["key", "/tmp", "1", "--explain", "1"],
    ["demo", "--workers", "0"], ["demo", "--numbers", "x"],
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=lambda a: " ".join(a) or "nothing")
def test_usage_errors_exit_2(args: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_main(capsys, *args)
    assert rc == 2 and out == ""
    assert "Traceback" not in err and "usage:" in err


def test_expected_errors_one_line_exit_1(ipc: Any, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    unused = max(all_ids()["shm"] | {0}) + 12345
    cases = [
        (["key", str(tmp_path / "missing"), "1"], "No such file or directory"),
        (["ipcs", "-m", "-i", str(unused)], "id %d not found" % unused),
        (["ipcs", "--resolve", str(tmp_path / "missing")], "not a directory"),
    ]
    for args, text in cases:
        rc, out, err = run_main(capsys, *args)
        assert rc == 1 and out == "", args
        line = one_error_line(err)
        assert line.startswith("sysvkit %s: " % args[0]) and text in line, line
        proc = run_cli(*args)
        assert proc.returncode == 1 and proc.stderr == err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--help"], ["ipcs", "--help"], ["rm", "--help"], ["key", "--help"],
                 ["demo", "--help"]):
        rc, out, _ = run_main(capsys, *args)
        assert rc == 0 and "usage:" in out
    rc, out, _ = run_main(capsys, "--version")
    assert rc == 0 and sysvkit.__version__ in out


def test_main_module_and_bench_loaded_only_for_bench(run_py: Any) -> None:
    proc = run_py("""
        import sys
        from sysvkit.cli import main
        assert main(["ipcs", "-l"]) == 0
        assert "sysvkit.bench" not in sys.modules
    """)
    assert "Shared Memory Limits" in proc.stdout
    proc = run_cli("bench", "--help")
    assert proc.returncode == 0 and "usage: sysvkit bench" in proc.stdout


# -- demo --------------------------------------------------------------------------------

DEMO_IDS = re.compile(r"shared memory segment \(id (\d+),.*\n.*message queue \(id (\d+)\)"
                      r".*lock \(id (\d+)\)")


def demo_ids(text: str) -> Dict[str, int]:
    """The ids the demo printed for its segment, queue and lock."""
    m = DEMO_IDS.search(text)
    assert m, text
    return {"shm": int(m.group(1)), "msg": int(m.group(2)), "sem": int(m.group(3))}


def assert_gone(ids: Dict[str, int]) -> None:
    now = all_ids()
    for kind, ident in ids.items():
        assert ident not in now[kind], "the demo left %s id %d behind" % (kind, ident)


def test_demo_runs_and_leaves_nothing_behind() -> None:
    proc = run_cli("demo", "--workers", "3", "--numbers", "20000")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    ids = demo_ids(out)
    assert_gone(ids)
    assert "the parent's sieve agrees: yes" in out
    assert "20000 numbers checked" in out
    assert len(re.findall(r"^  worker \d \(pid \d+\)", out, re.M)) == 3
    listing = parse_ipcs(out.split("Live listing", 1)[1])
    assert list(listing["shm"]) == [ids["shm"]]
    assert listing["shm"][ids["shm"]]["nattch"] == "4"     # the parent and three workers
    assert list(listing["msg"]) == [ids["msg"]] and list(listing["sem"]) == [ids["sem"]]


DEMO_NAMES = re.compile(r"ftok\('([^']+)', proj_id\) gives the key:\n"
                        r"    proj_id (\d+) +-> key (0x[0-9a-f]{8})  \(the segment\)\n"
                        r"    proj_id (\d+) +-> key (0x[0-9a-f]{8})  \(the queue\)\n"
                        r"    proj_id (\d+) +-> key (0x[0-9a-f]{8})  \(the lock\)\n")


def demo_names(text: str) -> Tuple[str, Dict[str, Tuple[int, int]]]:
    """The file the demo named its objects by, and {kind: (proj_id, key)}."""
    m = DEMO_NAMES.search(text)
    assert m, text
    g = m.groups()
    return g[0], {kind: (int(g[1 + 2 * i]), int(g[2 + 2 * i], 16))
                  for i, kind in enumerate(("shm", "msg", "sem"))}


def test_demo_names_its_objects_by_a_file_and_proj_id() -> None:
    """Not IPC_PRIVATE: each object's key is ftok of a temporary file and a
    proj_id, shown with the listing as ipcs --resolve shows it; the file
    goes with the objects."""
    proc = run_cli("demo", "--workers", "2", "--numbers", "3000")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    ids = demo_ids(out)
    path, names = demo_names(out)
    listing = parse_ipcs(out.split("Live listing", 1)[1])
    assert "--resolve %s" % os.path.dirname(path) in out
    for kind, (proj, key) in names.items():
        assert key != 0 and key >> 24 == proj         # ftok's top byte is the proj_id
        (row,) = listing[kind].values()
        assert int(row["key"], 16) == key and int(row[{"shm": "shmid", "msg": "msqid",
                                                       "sem": "semid"}[kind]]) == ids[kind]
        rows = [line for line in out.splitlines() if line.startswith("0x%08x " % key)]
        assert len(rows) == 1 and rows[0].endswith(" %s proj_id=%d" % (path, proj))
    assert len({p for p, _ in names.values()}) == 3
    assert_gone(ids)
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))
    # (Gone by id, not "no object has those keys": the file's inode, and so
    # its keys, can be reused at once by another program's new file, such
    # as another demo's.)


def test_demo_failing_still_removes_its_file_and_objects() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "sysvkit", "demo", "--workers", "2",
                             "--numbers", "2000000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        head = ""
        for line in proc.stdout:
            head += line
            if "(the lock)" in line:
                break
        ids = demo_ids(head)
        path, names = demo_names(head)
        assert os.path.exists(path)
        deadline = time.monotonic() + 30
        workers: List[int] = []
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = _spawned_workers(proc.pid)
            time.sleep(0.01)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert_gone(ids)
    assert not os.path.exists(os.path.dirname(path))
    # (Not "no object has those keys": the file's inode, and so its keys,
    # can be reused at once by another program's new file.)


def start_long_demo() -> Tuple["subprocess.Popen[str]", Dict[str, int]]:
    """Start a long demo (2 workers, 2 million numbers); return it and the ids
    of its objects, read from its first lines."""
    proc = subprocess.Popen([sys.executable, "-m", "sysvkit", "demo", "--workers", "2",
                             "--numbers", "2000000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        head = ""
        for line in proc.stdout:
            head += line
            if "a message queue (id" in line:
                break
        return proc, demo_ids(head)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("when", ["starting", "working"])
def test_demo_interrupted_removes_everything(sig: int, when: str) -> None:
    proc, ids = start_long_demo()
    try:
        now = all_ids()
        assert all(ident in now[kind] for kind, ident in ids.items())   # made, in use
        if when == "working":    # wait until both workers have attached the segment
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and proc.poll() is None:
                segs = [s for s in sysvkit.list_shared_memory() if s.id == ids["shm"]]
                if segs and segs[0].attached == 3:
                    break
                time.sleep(0.01)
            assert segs and segs[0].attached == 3
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert one_error_line(err).startswith("sysvkit demo: interrupted")
    assert_gone(ids)
    # No worker is left running in the demo's session (multiprocessing's
    # resource tracker may take a moment to see its parent gone).
    deadline = time.monotonic() + 10
    while _session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _session_processes(proc.pid)


def _session_processes(sid: int) -> List[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path("/proc", entry, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def _spawned_workers(parent: int) -> List[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path("/proc", entry, "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = Path("/proc", entry, "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            pids.append(int(entry))
    return pids


def test_demo_worker_killed_fails_cleanly() -> None:
    """A worker that dies (SIGKILL) fails the demo: one line, exit 1, nothing left."""
    proc, ids = start_long_demo()
    try:
        deadline = time.monotonic() + 30
        workers: List[int] = []
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = _spawned_workers(proc.pid)
            time.sleep(0.01)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    line = one_error_line(err)
    assert line.startswith("sysvkit demo: worker sysvkit-demo-") and "died" in line, line
    assert_gone(ids)


def test_installed_script(tmp_path: Path) -> None:
    """The ``sysvkit`` console script ([project.scripts]) runs the same main()."""
    script = Path(sys.executable).with_name("sysvkit")
    if not script.exists():
        pytest.skip("the sysvkit script is not installed next to this interpreter")
    path = tmp_path / "f"
    path.touch()
    proc = subprocess.run([str(script), "key", str(path), "3"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout == "0x%08x\n" % (sysvkit.ftok(path, 3)
                                                                 & 0xFFFFFFFF)
    proc = subprocess.run([str(script), "demo", "--workers", "2", "--numbers", "1000"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert_gone(demo_ids(proc.stdout))


def test_ipcs_rows_in_kernel_slot_order_like_util_linux() -> None:
    """util-linux prints objects by slot; once a slot is reused its new id
    (sequence << 15 | slot) is larger than ids in later slots.  The listing
    functions stay sorted by id; ipcs prints slot order."""
    def seg(ident: int) -> sysvkit.ShmInfo:
        return sysvkit.ShmInfo(0, ident, 0, 0, 0, 0, 0o600, 4096, 0, 1, 1, 0, 0, 0)

    rows = [seg(98365), seg(98366), seg(131072), seg(98367)]    # 131072: slot 0, sequence 4
    ordered = [r.id for r in sorted(rows, key=slot_order)]
    assert ordered == [131072, 98365, 98366, 98367]
