"""Spectators' admission and priority (matchserver.spectators), in one event loop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from matchserver.broadcast import FrameWriter
from matchserver.engine.match import Match
from matchserver.metrics import MatchMetrics
from matchserver.spectators import LoopLag, MatchSpectators, SpectatorGate
from tradearena.contracts.spectate import SERVER_BUSY, SPECTATE_EVENT, SPECTATORS_FULL
from tradearena.modes import SpectateRules, default_catalogue


@dataclass
class Live:
    match: Match


def spectators(gate: SpectatorGate, metrics: MatchMetrics, counts: list[int]) -> MatchSpectators:
    rules = default_catalogue().mode("standard").rules
    live = Live(Match("m-1", "standard", rules, ("alice", "bob"), 180_000, 0))

    async def count(n: int) -> None:
        counts.append(n)

    return MatchSpectators(
        live,
        SpectateRules(delay_ms=1000, cap=2, frame_ms=100),
        "BTCUSDT",
        FrameWriter(conflated=(SPECTATE_EVENT,)),
        gate,
        metrics,
        count,
        lambda: 5_000,
        "/match",
    )


async def test_the_loop_lag_sees_a_blocked_loop_and_forgets_it() -> None:
    lag = LoopLag()
    lag.start()
    await asyncio.sleep(0.12)
    time.sleep(0.3)  # noqa: ASYNC251 - the loop blocked: what a loaded server looks like
    await asyncio.sleep(0.06)
    assert lag.lag_ms > 200
    gate = SpectatorGate(10, 200, lag)
    assert gate.loaded
    await asyncio.sleep(1.5)
    assert not gate.loaded  # about a second later it is forgotten
    await lag.close()


async def test_refusals_and_frames_give_way_to_load() -> None:
    lag = LoopLag()  # not started: its lag is set by hand
    gate = SpectatorGate(3, 250, lag)
    metrics, counts = MatchMetrics(), []
    watched = spectators(gate, metrics, counts)
    assert watched.refusal() is None
    watched.join("s1", "u1")
    watched.join("s2", "u2")
    assert watched.refusal() == SPECTATORS_FULL
    assert gate.connected == 2
    watched.leave("s2")
    lag.lag_ms = 300  # loaded: nobody new, and frames are skipped
    assert watched.refusal() == SERVER_BUSY
    await asyncio.sleep(0.35)
    skipped = metrics.spectator_frames_skipped._value.get()
    assert skipped >= 2
    assert metrics.spectator_frames._value.get() == 0
    lag.lag_ms = 0
    await asyncio.sleep(0.25)
    assert metrics.spectator_frames._value.get() >= 1
    gate.connected = 3  # the process's limit, over every match
    assert watched.refusal() == SERVER_BUSY
    gate.connected = 1
    await watched.close()
    assert gate.connected == 0
    assert counts and counts[0] == 1
