"""Workload "channel": sysvkit.Channel beside the other message transports.

A one-way stream of 16 B, 4 KiB and 1 MiB messages from another process
(messages/s received here, and MB/s), and a 16 B ping-pong.  Channel runs
per message and with send_many/receive_many in batches of 64; faster_fifo
with put/get and put_many/get_many; and "C ring (reference)" moves the
messages through the same Channel in C loops, without Python's per-call
cost: the floor of the ring itself.
"""

from __future__ import annotations

import contextlib
from itertools import repeat
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ..optional import faster_fifo
from ..runner import KIB, MIB, Child, Loop, Result, Settings, child, clock, latency, \
    measure_all, not_applicable, opened, result
from ..transports import message_channels
from ..transports.base import Channel as Transport, Ends, remove_quietly

TITLE = "Channel: a message ring in shared memory"

SK_CHANNEL = "sysvkit.Channel"
SK_CHANNEL_MANY = "sysvkit.Channel, batches of 64"
FF_MANY = "faster_fifo.Queue, put_many/get_many"
FF_ONE = "faster_fifo.Queue, put/get"
C_RING = "C ring (reference)"
BATCH = 64
STREAM_SIZES = ((16, "16B"), (4 * KIB, "4KiB"), (MIB, "1MiB"))
CAPACITY = 4 * MIB + 4 * KIB           # room for three of the largest messages
# The Channel's ring in the streams of small messages: a sample moves 100 000
# and more of them (a few MiB), and a ring that held them all would be filled
# before the receiver ran, so a 256 KiB one (about ten thousand 16 B messages)
# keeps the ring a small part of what a sample moves, as for the others'
# buffers (a pipe's is 64 KiB).
SMALL_RING = 256 * KIB


def ring_for(size: int) -> int:
    """The capacity of the Channels streaming messages of ``size`` bytes."""
    return SMALL_RING if 3 * (size + 64) <= SMALL_RING else CAPACITY

# The summary compares these with Channel (sysvkit's MessageQueue is in the
# rows, beside it, but the summary never compares sysvkit with itself).
COUNTERPARTS: Dict[str, str] = {
    FF_ONE: SK_CHANNEL, FF_MANY: SK_CHANNEL_MANY, C_RING: SK_CHANNEL,
    "os.pipe": SK_CHANNEL, "unix stream socket": SK_CHANNEL, "unix datagram socket": SK_CHANNEL,
    "tcp 127.0.0.1": SK_CHANNEL, "multiprocessing.Queue": SK_CHANNEL,
    "sysv_ipc.MessageQueue": SK_CHANNEL,
}

Sender = Callable[[int, int], None]      # send(n, size) n messages
Receiver = Callable[[int, int], None]    # receive(n, size) n messages


class ChannelPair(Transport):
    """Two Channels: end 0 sends on the first, end 1 on the second."""

    name = SK_CHANNEL

    def __init__(self, capacity: int = CAPACITY) -> None:
        from ... import IPC_PRIVATE, Channel
        self.chans = [Channel(key=IPC_PRIVATE, create=True, capacity=capacity),
                      Channel(key=IPC_PRIVATE, create=True, capacity=capacity)]

    def unsupported(self, size: int) -> Optional[str]:
        if size > self.chans[0].max_message_size:
            return "message larger than the channel's max_message_size"
        return None

    def ends(self, side: int, size: int) -> Ends:
        return self.chans[side].send, self.chans[1 - side].receive

    def close(self) -> None:
        for ch in self.chans:
            remove_quietly(ch)


class FasterFifoPair(Transport):
    """faster_fifo with room for the largest messages (bytes, pickled)."""

    name = FF_ONE

    def __init__(self) -> None:
        self.queues = [faster_fifo.Queue(max_size_bytes=CAPACITY),
                       faster_fifo.Queue(max_size_bytes=CAPACITY)]

    def ends(self, side: int, size: int) -> Ends:
        put, get = self.queues[side].put, self.queues[1 - side].get

        def send(data: Any) -> None:
            put(data, True, 1e7)

        def recv() -> Any:
            return get(True, 1e7)
        return send, recv

    def close(self) -> None:
        for q in self.queues:
            q.close()


def _per_message(ch: Transport, side: int) -> Tuple[Sender, Receiver]:
    def send(n: int, size: int) -> None:
        put = ch.ends(side, size)[0]
        data = b"x" * size
        for _ in repeat(None, n):
            put(data)

    def recv(n: int, size: int) -> None:
        get = ch.ends(side, size)[1]
        for _ in repeat(None, n):
            get()
    return send, recv


def _channel_batches(ch: ChannelPair, side: int) -> Tuple[Sender, Receiver]:
    out, inn = ch.chans[side], ch.chans[1 - side]

    def send(n: int, size: int) -> None:
        batch = [b"x" * size] * BATCH
        while n > 0:
            n -= out.send_many(batch if n >= BATCH else batch[:n])

    def recv(n: int, size: int) -> None:
        get = inn.receive_many
        while n > 0:
            n -= len(get(min(n, BATCH)))
    return send, recv


def _ff_batches(ch: FasterFifoPair, side: int) -> Tuple[Sender, Receiver]:
    out, inn = ch.queues[side], ch.queues[1 - side]

    def send(n: int, size: int) -> None:
        batch = [b"x" * size] * BATCH
        # put_many waits until the whole batch fits: at most half the queue.
        most = max(1, min(BATCH, CAPACITY // (2 * (size + 64))))
        while n > 0:
            k = min(n, most)
            out.put_many(batch[:k], True, 1e7)
            n -= k

    def recv(n: int, size: int) -> None:
        while n > 0:
            n -= len(inn.get_many(True, 1e7, max_messages_to_get=min(n, BATCH)))
    return send, recv


def _c_ring(ch: ChannelPair, side: int) -> Tuple[Sender, Receiver]:
    out, inn = ch.chans[side], ch.chans[1 - side]

    def send(n: int, size: int) -> None:
        out._bench_send(n, size)

    def recv(n: int, size: int) -> None:
        inn._bench_receive(n, size)
    return send, recv


Kind = Tuple[str, Callable[[], Transport], Callable[[Any, int], Tuple[Sender, Receiver]]]


def _kinds(size: int = MIB) -> List[Kind]:
    """What is measured, with Channels sized for messages of ``size`` bytes."""
    def pair() -> ChannelPair:
        return ChannelPair(ring_for(size))
    kinds: List[Kind] = [(SK_CHANNEL, pair, _per_message),
                         (SK_CHANNEL_MANY, pair, _channel_batches),
                         (C_RING, pair, _c_ring)]
    for name, factory in message_channels():
        if name != "faster_fifo.Queue":
            kinds.append((name, factory, _per_message))
    if faster_fifo is not None:
        kinds += [(FF_ONE, FasterFifoPair, _per_message), (FF_MANY, FasterFifoPair, _ff_batches)]
    return kinds


def _too_big(name: str, size: int) -> Optional[str]:
    if name == "unix datagram socket" and size > 64 * KIB:
        return "a datagram this large exceeds the socket's limit"
    return None


def _served(st: Settings, stack: contextlib.ExitStack, kinds: List[Kind], size: int,
            echo: bool) -> List[Tuple[str, Any, Optional[Child], Tuple[Sender, Receiver]]]:
    """Each transport opened, with a child that sends (or echoes) ``size`` bytes."""
    out: List[Tuple[str, Any, Optional[Child], Tuple[Sender, Receiver]]] = []
    for name, factory, ways in kinds:
        ch = stack.enter_context(opened(factory))
        if ch.unsupported(size) or _too_big(name, size):
            out.append((name, ch, None, ways(ch, 0)))
            continue

        def serve(ch: Any = ch, ways: Any = ways) -> Loop:
            send, recv = ways(ch, 1)

            def loop(n: int) -> float:
                # -> when the first message went (clock() is system-wide):
                # a stream is timed from there to the last one received.
                if echo:
                    # One more than asked: the first, untimed, brings
                    # the parent's clock in with this process already
                    # awake and waiting (see ping() in run()).
                    put, get = ch.ends(1, size)
                    for _ in repeat(None, n + 1):
                        put(get())
                    return 0.0
                t0 = clock()
                send(n, size)
                return t0
            return loop
        c = stack.enter_context(child(st, ch, serve=serve))
        out.append((name, ch, c, ways(ch, 0)))
    return out


def run(st: Settings) -> Iterator[Result]:
    """Streams from another process, then a ping-pong with it."""
    for size, label in STREAM_SIZES:
        workload = "channel-stream-" + label
        with contextlib.ExitStack() as stack:
            served = _served(st, stack, _kinds(size), size, echo=False)
            loops: List[Tuple[str, Loop]] = []
            for name, ch, c, (_, recv) in served:
                if c is None:
                    yield not_applicable(workload, "channel", name, "msg/s", "higher",
                                         ch.unsupported(size) or _too_big(name, size) or "")
                    continue
                # A name of type Child for the default: mypy 1.x (Python 3.9) does not
                # narrow c (Optional) in a nested function's defaults.
                served_by: Child = c

                def loop(n: int, c: Child = served_by, recv: Receiver = recv,
                         size: int = size) -> float:
                    # From the child's first send (its clock, taken once it
                    # is awake: its wake-up is not the transport's cost) to
                    # the last message received here.  Not from the first
                    # message received: by then the sender may have filled
                    # the ring (all of it, for small messages, with both
                    # processes on one CPU), and draining a full ring is
                    # not a stream.
                    c.send(("loop", n))
                    recv(n, size)
                    t1 = clock()
                    t0: float = c.recv()
                    return t1 - t0
                loops.append((name, loop))
            got = measure_all(loops, st)
            for name, _ in loops:
                per, n = got[name]
                r = result(workload, "channel", name, "msg/s", "higher",
                           [1.0 / s for s in per], n, reference=name == C_RING)
                assert r.value is not None
                r.extra["MB/s"] = r.value * size / 1e6
                yield r
    # Ping-pong: one message each way at a time; batches do not apply.
    pp = [k for k in _kinds(16) if k[0] not in (SK_CHANNEL_MANY, FF_MANY, C_RING)]
    with contextlib.ExitStack() as stack:
        served = _served(st, stack, pp, 16, echo=True)
        loops = []
        data = b"x" * 16
        for name, ch, c, _ in served:
            assert c is not None
            served_by = c
            put, get = ch.ends(0, 16)

            def ping(n: int, c: Child = served_by, put: Any = put, get: Any = get) -> float:
                c.send(("loop", n))
                put(data)           # one untimed exchange first (see loop above)
                get()
                t0 = clock()
                for _ in repeat(None, n):
                    put(data)
                    get()
                took = clock() - t0
                c.recv()
                return took
            loops.append((name, ping))
        got = measure_all(loops, st)
        for name, _ in loops:
            per, n = got[name]
            yield latency("channel-roundtrip-16B", "channel", name, per, n)
