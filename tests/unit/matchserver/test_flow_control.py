"""Flow control in the frame writer: what a client that is behind gets, and when."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from matchserver.broadcast import LEGACY_BEHIND_PACKETS, FlowConfig, FrameWriter
from matchserver.metrics import MatchMetrics


class FakeTransport:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.buffered = 0
        self.aborted = False

    def write(self, frame: bytes) -> None:
        self.frames.append(frame)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


class FakeSocket:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.closed = False


class Client:
    """One connected socket as the writer sees it; `events()` is what reached it."""

    def __init__(self, writer: FrameWriter, sid: str) -> None:
        self.sid = sid
        self.transport = FakeTransport()
        self.socket = FakeSocket()
        writer.add(sid, self.socket, {})
        writer.routes[sid].transport = self.transport  # type: ignore[assignment]

    def events(self) -> list[tuple[str, Any]]:
        out = []
        for frame in self.transport.frames:
            text = frame[2:].decode() if frame[1] < 126 else frame[4:].decode()
            event, data = json.loads(text[len("42/match,") :])
            out.append((event, data))
        return out


def tick(writer: FrameWriter, sids: list[str], price: int) -> None:
    writer.send(sids, "/match", "tick", {"price": str(price), "at": price})


def seqs(client: Client) -> list[int]:
    return [d["seq"] for e, d in client.events() if e == "tick"]


def sample(metrics: MatchMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels or None) or 0.0


@pytest.fixture
def now() -> list[float]:
    return [100.0]


@pytest.fixture
def metrics() -> MatchMetrics:
    return MatchMetrics()


@pytest.fixture
def writer(now: list[float], metrics: MatchMetrics) -> FrameWriter:
    return FrameWriter(FlowConfig(window=8, stuck_ms=5000), metrics, clock=lambda: now[0])


def test_ticks_are_numbered_and_a_client_that_acks_gets_every_one(writer: FrameWriter) -> None:
    a = Client(writer, "a")
    for price in range(1, 41):
        tick(writer, ["a"], price)
        writer.ack("a", writer.seq)
    assert seqs(a) == list(range(1, 41))
    assert writer.behind == 0


def test_behind_by_the_window_gets_only_the_newest_tick_and_board_once_it_acks(
    writer: FrameWriter, metrics: MatchMetrics
) -> None:
    a = Client(writer, "a")
    tick(writer, ["a"], 1)
    writer.ack("a", 1)
    for price in range(2, 30):
        tick(writer, ["a"], price)
        if price == 12:
            writer.send(["a"], "/match", "leaderboard", {"at": 12})
        if price == 20:
            writer.send(["a"], "/match", "leaderboard", {"at": 20})
    assert seqs(a) == list(range(1, 10))  # acked 1, so 2..9 fit the window of 8
    assert writer.behind == 1
    assert sample(metrics, "tradearena_match_clients_behind") == 1
    writer.ack("a", 9)
    events = a.events()[-2:]
    # The newest of each kind, in the order they were produced: board at 20, tick 29.
    assert events == [("leaderboard", {"at": 20}), ("tick", {"price": "29", "at": 29, "seq": 29})]
    assert writer.behind == 0
    # Ticks 10..28 and the board at 12 were replaced by newer ones before they went out.
    assert sample(metrics, "tradearena_match_conflated_total", event="tick") == 28 - 10 + 1
    assert sample(metrics, "tradearena_match_conflated_total", event="leaderboard") == 1


def test_other_events_are_never_held_and_follow_the_newest_held_tick(writer: FrameWriter) -> None:
    a = Client(writer, "a")
    tick(writer, ["a"], 1)
    writer.ack("a", 1)
    for price in range(2, 15):
        tick(writer, ["a"], price)
    writer.send(["a"], "/match", "fill", {"price": "14"})
    writer.send(["a"], "/match", "player", {"player": "b"})
    tail = a.events()[-3:]
    assert tail == [
        ("tick", {"price": "14", "at": 14, "seq": 14}),
        ("fill", {"price": "14"}),
        ("player", {"player": "b"}),
    ]
    assert seqs(a) == [*range(1, 10), 14]  # a subsequence, in order


def test_a_client_that_never_acked_is_held_only_when_its_buffers_back_up(
    writer: FrameWriter,
) -> None:
    a = Client(writer, "a")
    for price in range(1, 21):
        tick(writer, ["a"], price)
    assert seqs(a) == list(range(1, 21))  # no acks, no problem
    a.transport.buffered = 1 << 20
    for _ in range(LEGACY_BEHIND_PACKETS):  # what the socket still had to write
        a.socket.queue.put_nowait(object())
    for price in range(21, 30):
        tick(writer, ["a"], price)
    assert a.socket.queue.qsize() == LEGACY_BEHIND_PACKETS  # nothing more queued
    assert writer.behind == 1
    a.transport.buffered = 0
    a.socket.queue = asyncio.Queue()
    tick(writer, ["a"], 30)
    assert seqs(a)[-1] == 30
    assert writer.behind == 0


def test_a_client_behind_longer_than_the_limit_is_cut_off_and_counted(
    writer: FrameWriter, metrics: MatchMetrics, now: list[float]
) -> None:
    a, b = Client(writer, "a"), Client(writer, "b")
    tick(writer, ["a", "b"], 1)
    writer.ack("a", 1)
    writer.ack("b", 1)
    for price in range(2, 200):
        now[0] += 0.05
        tick(writer, ["a", "b"], price)
        writer.ack("b", writer.seq)
    assert a.transport.aborted  # behind from tick 10 on, for over 5 s
    assert "a" not in writer.routes
    assert not b.transport.aborted
    assert seqs(b) == list(range(1, 200))
    assert sample(metrics, "tradearena_match_stuck_disconnects_total") == 1
    assert writer.behind == 0


def test_a_slow_client_that_keeps_acking_is_never_cut_off(
    writer: FrameWriter, now: list[float]
) -> None:
    a = Client(writer, "a")
    for price in range(1, 400):
        now[0] += 0.05
        tick(writer, ["a"], price)
        if price % 40 == 0:  # catches up every 2 s: always behind, never stuck
            writer.ack("a", seqs(a)[-1])
    assert not a.transport.aborted
    assert seqs(a) == sorted(set(seqs(a)))


def test_an_ack_beyond_what_was_sent_counts_as_the_newest_sent(writer: FrameWriter) -> None:
    Client(writer, "a")
    tick(writer, ["a"], 1)
    writer.ack("a", 10**9)
    route = writer.routes["a"]
    assert route.acked == 1
    writer.ack("a", 0)  # an older ack never moves it back
    assert route.acked == 1
    writer.ack("nobody", 3)  # an unknown socket is ignored


async def test_a_spectators_writer_conflates_spectate_frames_for_a_backed_up_client() -> None:
    writer = FrameWriter(conflated=("spectate",))
    slow, fast = Client(writer, "slow"), Client(writer, "fast")
    writer.send(["slow", "fast"], "/match", "spectate", {"at": 1})
    slow.transport.buffered = 10**6  # its buffers are full: behind
    for at in (2, 3, 4):
        writer.send(["slow", "fast"], "/match", "spectate", {"at": at})
    assert [d["at"] for _, d in fast.events()] == [1, 2, 3, 4]
    assert [d["at"] for _, d in slow.events()] == [1]
    slow.transport.buffered = 0  # drained: the newest frame replaces what was held
    writer.send(["slow", "fast"], "/match", "spectate", {"at": 5})
    assert [d["at"] for _, d in slow.events()] == [1, 5]
