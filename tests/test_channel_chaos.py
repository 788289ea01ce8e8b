"""Channel under load and abuse: many senders and receivers with checksummed
messages, SIGKILL at random instants, and random bytes scribbled over a
live channel."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import struct
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import pytest

from sysvkit import IPC_PRIVATE, Channel
from sysvkit import _core
from sysvkit import lowlevel as ll

METHODS = ["fork", "spawn"]
RECORD = struct.Struct("=III")       # what receivers log: sender, seq, flags

# A message: sender, seq, length, then a body derived from them, then a CRC.
MESSAGE_SRC = textwrap.dedent('''
    import struct, zlib
    HEAD = struct.Struct("=III")

    def make(sender, seq, n):
        body = (struct.pack("=II", sender, seq) * (n // 8 + 1))[:n]
        m = HEAD.pack(sender, seq, n) + body
        return m + struct.pack("=I", zlib.crc32(m))

    def check(m):
        """(sender, seq) if m is whole and unchanged, else None."""
        if len(m) < HEAD.size + 4:
            return None
        sender, seq, n = HEAD.unpack_from(m)
        if len(m) != HEAD.size + n + 4 or m != make(sender, seq, n):
            return None
        return sender, seq
''')


def start(method: str, code: str, *args: Any) -> Any:
    ctx = multiprocessing.get_context(method)
    proc = ctx.Process(target=exec, args=(MESSAGE_SRC + textwrap.dedent(code), {"ARGS": args}))
    proc.start()
    return proc


def read_log(path: Path) -> List[Tuple[int, int, int]]:
    data = path.read_bytes() if path.exists() else b""
    return [RECORD.unpack_from(data, i) for i in range(0, len(data) - len(data) % RECORD.size,
                                                      RECORD.size)]


# Receivers log every message they took (sender, seq, 0), or (0, 0, 1) for a
# message that was not whole.  They stop once the stop file exists and the
# channel stayed empty for a second.  With strict, two receives in a row
# that wait a second each while the channel holds messages are a stall
# (messages waiting, and nobody can take them): exit code 3.  An empty
# channel is not a stall: the senders may all be new processes still
# starting, which takes over a second on a busy machine.
_RECEIVER = """
import os, struct, time
ch, log, stop, many, strict = ARGS
fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
rec = struct.Struct("=III")
waited = False
while True:
    try:
        got = ch.receive_many(16, timeout=1.0) if many else [ch.receive(timeout=1.0)]
    except TimeoutError:
        if os.path.exists(stop):
            break
        if strict and len(ch):
            if waited:
                os._exit(3)
            waited = True
        else:
            waited = False
        continue
    waited = False
    out = b""
    for m in got:
        who = check(m)
        out += rec.pack(who[0], who[1], 0) if who else rec.pack(0, 0, 1)
    os.write(fd, out)
os.close(fd)
os._exit(0)
"""

# Senders send seq 0, 1, 2... until the stop file exists, then log how many
# they sent.  A send that waits a second while the channel is empty is a
# stall (there is room, and it cannot be used): exit code 3.  A full channel
# is not: the receivers may all be new processes still starting.
_SENDER = """
import os, random, struct
ch, sender, log, stop, limit, many = ARGS
rnd = random.Random(sender)
seq = 0
while seq < limit and not (seq % 64 == 0 and os.path.exists(stop)):
    try:
        if many:
            batch = [make(sender, seq + k, rnd.randrange(0, 300)) for k in range(16)]
            seq += ch.send_many(batch, timeout=1.0)
        else:
            n = rnd.randrange(0, 3000) if rnd.random() < 0.95 else rnd.randrange(0, 40000)
            ch.send(make(sender, seq, n), timeout=1.0)
            seq += 1
    except TimeoutError:
        if len(ch) == 0:
            os._exit(3)
with open(log, "w") as f:
    f.write(str(seq))
os._exit(0)
"""


def verify(logs: List[Path], sent: Dict[int, int], killed_senders: Set[int],
           lost_allowed: int) -> int:
    """Check what the receivers logged; returns the number of messages lost."""
    per_sender: Dict[int, List[int]] = {}
    for path in logs:
        last: Dict[int, int] = {}
        for sender, seq, flags in read_log(path):
            assert flags == 0, "a torn or changed message was delivered"
            assert seq > last.get(sender, -1), "sender %d's order broken" % sender
            last[sender] = seq
            per_sender.setdefault(sender, []).append(seq)
    lost = 0
    for sender, seqs in per_sender.items():
        assert len(seqs) == len(set(seqs)), "a message of sender %d came twice" % sender
        top = sent.get(sender, max(seqs) + 1)
        assert max(seqs) < top
        lost += top - len(seqs) if sender in sent else max(seqs) + 1 - len(seqs)
    for sender, n in sent.items():
        if sender not in per_sender:
            lost += n
    assert lost <= lost_allowed, "%d messages lost, at most %d allowed" % (lost, lost_allowed)
    return lost


# -- stress --------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("many", [False, True], ids=["single", "batches"])
@pytest.mark.parametrize("method", METHODS)
def test_stress_4_senders_4_receivers(ipc: Any, tmp_path: Path, method: str, many: bool) -> None:
    total = 100_000
    ch = ipc.track(Channel(key=IPC_PRIVATE, create=True, capacity=1 << 16))
    stop = str(tmp_path / "stop")
    logs = [tmp_path / ("recv-%d" % r) for r in range(4)]
    recv = [start(method, _RECEIVER, ch, str(logs[r]), stop, many, False) for r in range(4)]
    send = [start(method, _SENDER, ch, s + 1, str(tmp_path / ("sent-%d" % s)), stop,
                  total // 4, many) for s in range(4)]
    for p in send:
        p.join(300)
    Path(stop).touch()
    for p in recv:
        p.join(60)
    for p in send + recv:
        if p.is_alive():
            p.kill()
            p.join()
    assert [p.exitcode for p in send + recv] == [0] * 8
    sent = {s + 1: int((tmp_path / ("sent-%d" % s)).read_text()) for s in range(4)}
    assert sum(sent.values()) >= total
    assert verify(logs, sent, set(), 0) == 0
    assert len(ch) == 0


# -- chaos ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_chaos_sigkill_senders_and_receivers(ipc: Any, tmp_path: Path, method: str) -> None:
    kills = 200
    rnd = random.Random(os.getpid())
    ch = ipc.track(Channel(key=IPC_PRIVATE, create=True, capacity=1 << 16))
    stop = str(tmp_path / "stop")
    next_sender = iter(range(1, 1 << 30))
    senders: Dict[int, Tuple[Any, int]] = {}       # slot -> (process, sender id)
    receivers: Dict[int, Tuple[Any, bool]] = {}
    logs: List[Path] = []
    killed_senders: Set[int] = set()
    lost_allowed = 0

    def new_sender(slot: int) -> None:
        sid = next(next_sender)
        many = rnd.random() < 0.3
        p = start(method, _SENDER, ch, sid, str(tmp_path / ("sent-%d" % sid)), stop,
                  1 << 40, many)
        senders[slot] = (p, sid)

    def new_receiver(slot: int) -> None:
        log = tmp_path / ("recv-%d" % len(logs))
        logs.append(log)
        many = rnd.random() < 0.3
        p = start(method, _RECEIVER, ch, str(log), stop, many, True)
        receivers[slot] = (p, many)

    for slot in range(3):
        new_sender(slot)
        new_receiver(slot)
    time.sleep(0.5 if method == "spawn" else 0.1)
    for _ in range(kills):
        time.sleep(rnd.uniform(0.005, 0.08))
        for role, group in (("sender", senders), ("receiver", receivers)):
            for slot, entry in group.items():      # nobody stalled or failed meanwhile
                assert entry[0].exitcode is None, "a surviving %s exited with %s" % (
                    role, entry[0].exitcode)
        if rnd.random() < 0.5:
            slot = rnd.randrange(3)
            p, sid = senders[slot]
            os.kill(p.pid, signal.SIGKILL)
            p.join()
            killed_senders.add(sid)
            new_sender(slot)
        else:
            slot = rnd.randrange(3)
            p, many = receivers[slot]
            os.kill(p.pid, signal.SIGKILL)
            p.join()
            lost_allowed += 16 if many else 1
            new_receiver(slot)
    Path(stop).touch()
    procs = [p for p, _ in senders.values()] + [p for p, _ in receivers.values()]
    for p in procs:
        p.join(60)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    assert [p.exitcode for p in procs] == [0] * len(procs)
    sent = {}
    for p, sid in senders.values():
        sent[sid] = int((tmp_path / ("sent-%d" % sid)).read_text())
    # A killed receiver loses at most what it had taken (one message, or one
    # batch of up to 16 with receive_many) and not yet logged; a killed
    # sender only the message it was sending, which no receiver ever sees.
    verify(logs, sent, killed_senders, lost_allowed)
    assert len(ch) == 0


# -- fuzz ----------------------------------------------------------------------------------
_FUZZ_CHILD = """
import os, sys, threading, time
import sysvkit
from sysvkit import Channel, CorruptError
ch = Channel.from_id(int(sys.argv[1]))
seconds = float(sys.argv[2])
print("ready", flush=True)
allowed = (CorruptError, TimeoutError, BlockingIOError)
counts = {}
bad = []

def work(kind):
    buf = bytearray(1 << 16)
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        i += 1
        try:
            if kind == 0:
                ch.send(b"m" * (i % 3000), timeout=0.05)
            elif kind == 1:
                ch.receive(timeout=0.05)
            elif kind == 2:
                ch.send_many([b"x" * (i % 100)] * 8, timeout=0.05)
            elif kind == 3:
                ch.receive_many(8, timeout=0.05)
            elif kind == 4:
                ch.receive_into(buf, timeout=0.05)
            else:
                len(ch)
                if i % 50 == 0:
                    Channel.from_id(ch.id).close()
            counts["ok"] = counts.get("ok", 0) + 1
        except allowed as exc:
            counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1
        except ValueError as exc:      # a header check at open (kind, version, size)
            counts["ValueError"] = counts.get("ValueError", 0) + 1
        except BaseException as exc:
            bad.append(repr(exc))

threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(counts)
if bad:
    print("unexpected:", bad[:5])
    sys.exit(1)
"""


@pytest.mark.slow
@pytest.mark.parametrize("region", ["header", "ring", "all"])
def test_fuzz_scribbles_on_a_live_channel(ipc: Any, run_py: Any, region: str) -> None:
    import subprocess
    import sys
    seconds = float(os.environ.get("SYSVKIT_FUZZ_SECONDS", "2.5"))
    ch = ipc.track(Channel(key=IPC_PRIVATE, create=True, capacity=1 << 14))
    ring = _core.CHANNEL_RING_OFFSET
    lo, hi = {"header": (0, ring), "ring": (ring, ring + (1 << 14)),
              "all": (0, ring + (1 << 14))}[region]
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_FUZZ_CHILD), str(ch.id),
                             str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    rnd = random.Random(os.getpid())
    a = ll.shmat(ch.id)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end and proc.poll() is None:
            # Mostly transient damage (put back after a moment, when the
            # channel may have moved on), so that the channel keeps working
            # between scribbles and every path meets them.
            n = rnd.choice([1, 2, 4, 8, 16])
            off = rnd.randrange(lo, hi - n)
            old = a.read(n, off)
            a.write(os.urandom(n), off)
            time.sleep(rnd.uniform(0, 0.005))
            if rnd.random() < 0.9:
                a.write(old, off)
            time.sleep(rnd.uniform(0, 0.005))
    finally:
        ll.shmdt(a)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode >= 0, "killed by signal %d\n%s\n%s" % (-proc.returncode, out, err)
    assert proc.returncode == 0, out + err
    print(out)
