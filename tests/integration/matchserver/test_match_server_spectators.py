"""Spectators on a real match server (real Redis, real Socket.IO clients): a spectator
token connects to `/match`, gets `spectate` frames never newer than the delay, sees a
player's trade only once the delay has passed, cannot act, is counted in the match
status hash, and a spectator over the match's cap is refused; the last frame carries
the delayed view's final phase. A pool server routes a spectator by its token's match
and refuses one over its process limit (`server_busy`)."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aredis
import socketio

from tradearena.contracts import keys
from tradearena.contracts.spectate import (
    SERVER_BUSY,
    SPECTATE_EVENT,
    SPECTATE_SYNC_EVENT,
    SPECTATOR_READ_ONLY,
    SPECTATORS_FULL,
    STATUS_SPECTATORS,
)
from tradearena.testing.match_client import MatchClient
from tradearena.testing.matchserver import MatchServerProcess, pool_server
from tradearena.testing.pool import assign, wait_accepting, wait_ready
from tradearena.testing.waiting import eventually

MATCH = "m-watch"
PLAYERS = ("alice", "bob")
DELAY_MS = 2500
CAP = 2
FRAME_MS = 200
DURATION_MS = 12_000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """The packaged modes with a short spectator delay, a small cap and quick frames."""
    text = resources.files("tradearena").joinpath("modes.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^delay_ms = 60000", f"delay_ms = {DELAY_MS}", text)
    text = re.sub(r"(?m)^cap = 200", f"cap = {CAP}", text)
    text = re.sub(r"(?m)^frame_ms = 1000", f"frame_ms = {FRAME_MS}", text)
    path = tmp_path / "modes.toml"
    path.write_text(text)
    return path


@pytest.fixture
def server(tmp_path: Path, redis_url: str, catalogue: Path) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(
        tmp_path,
        redis_url,
        MATCH,
        PLAYERS,
        env_extra={
            "TRADEARENA_CATALOGUE": str(catalogue),
            "TRADEARENA_DURATION_MS": str(DURATION_MS),
        },
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def spectator(server: MatchServerProcess, user: str) -> tuple[MatchClient, str]:
    return MatchClient(server, user), server.signer.spectator_token(MATCH, user, ttl_s=600)


def frames(client: MatchClient) -> list[tuple[int, dict[str, Any]]]:
    """(arrival wall ms, frame) of every `spectate` frame so far."""
    return [
        (ms, data)
        for ms, (event, data) in zip(client.received_ms, client.events, strict=True)
        if event == SPECTATE_EVENT
    ]


def metric(server: MatchServerProcess, name: str) -> float:
    with urllib.request.urlopen(f"{server.admin_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def test_a_spectator_watches_the_match_delayed_and_read_only(
    server: MatchServerProcess, redis_url: str
) -> None:
    alice, bob = MatchClient(server, "alice"), MatchClient(server, "bob")
    await alice.connect()
    await bob.connect()
    await alice.wait_for("phase", lambda d: d["phase"] == "live")
    watcher, token = spectator(server, "watcher-1")
    await watcher.connect(token)
    first = await watcher.wait_for(SPECTATE_EVENT)
    assert set(first) >= {
        "match_id",
        "mode",
        "symbol",
        "delay_ms",
        "at",
        "phase",
        "started_at",
        "end_at",
        "official_price",
        "frozen",
        "spectators",
        "players",
        "candle",
    }
    assert (first["match_id"], first["delay_ms"]) == (MATCH, DELAY_MS)
    assert {r["player"] for r in first["players"]} == set(PLAYERS)

    # Read-only: no action, no player's sync; its own sync is the delayed view + candles.
    act = await watcher.act(
        type="open", side="long", margin="100", leverage=5, client_order_id="w-1"
    )
    assert (act["ok"], act["code"]) == (False, SPECTATOR_READ_ONLY)
    assert (await watcher.call("sync", {}))["code"] == SPECTATOR_READ_ONLY
    before_sync = wall_ms()
    synced = await watcher.call(SPECTATE_SYNC_EVENT, {})
    assert synced["ok"] is True
    assert synced["state"]["at"] <= before_sync + 50 - DELAY_MS  # + the request's own way
    assert synced["state"]["candles"]["interval"] == "1s"

    # A trade shows only once it is DELAY_MS old.
    await eventually(lambda: _live_in_view(watcher), within=10)
    sent = wall_ms()
    ack = await alice.act(
        type="open", side="long", margin="500", leverage=10, client_order_id="a-1"
    )
    assert ack["ok"], ack
    seen = await watcher.wait_for(
        SPECTATE_EVENT, lambda f: _position("alice", f) is not None, within=DELAY_MS / 1000 + 5
    )
    assert seen["at"] >= sent
    shown = next(ms for ms, f in frames(watcher) if f is seen)
    assert shown >= sent + DELAY_MS
    for ms, frame in frames(watcher):
        assert frame["at"] <= ms - DELAY_MS  # never newer than the delay (one clock)
        if frame["at"] < sent:
            assert _position("alice", frame) is None

    # The cap: a second spectator is taken, a third refused; the status hash counts two.
    second, token2 = spectator(server, "watcher-2")
    await second.connect(token2)
    third, token3 = spectator(server, "watcher-3")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await third.connect(token3)
    assert third.refused["data"]["code"] == SPECTATORS_FULL
    # A player's token is no spectator's, and a spectator's token no player's.
    stranger = MatchClient(server, "x")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await stranger.connect(server.signer.spectator_token("m-other", "x", ttl_s=600))
    assert stranger.refused["data"]["code"] == "token_wrong_audience"

    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    try:

        async def counted(n: int) -> bool:
            return await client.hget(keys.match_status(MATCH), STATUS_SPECTATORS) == str(n)

        await eventually(lambda: counted(2), within=5)
        await second.close()
        await eventually(lambda: counted(1), within=5)

        assert metric(server, "tradearena_match_spectator_frames_total") >= 10
        assert (
            metric(server, 'tradearena_match_spectator_refusals_total{code="spectators_full"}') == 1
        )
        assert metric(server, "tradearena_match_spectators_connected") == 1

        # The end: the last frame carries the delayed view's final phase.
        last = await watcher.wait_for(
            SPECTATE_EVENT, lambda f: f["phase"] == "finished", within=DURATION_MS / 1000 + 10
        )
        assert [f for _, f in frames(watcher)][-1] is last
        assert last["at"] >= last["end_at"]
        await eventually(lambda: counted(0), within=10)
    finally:
        await client.aclose()
    for c in (alice, bob, watcher):
        await c.close()


async def _live_in_view(watcher: MatchClient) -> bool:
    return any(f["phase"] == "live" for _, f in frames(watcher))


def _position(player: str, frame: dict[str, Any]) -> dict[str, Any] | None:
    row = next(r for r in frame["players"] if r["player"] == player)
    position: dict[str, Any] | None = row["position"]
    return position


async def test_a_pool_server_routes_spectators_and_keeps_a_process_limit(
    tmp_path: Path, redis_url: str, catalogue: Path
) -> None:
    proc = pool_server(
        tmp_path,
        redis_url,
        "pool-watch",
        capacity=2,
        env_extra={
            "TRADEARENA_CATALOGUE": str(catalogue),
            "TRADEARENA_MATCH_MAX_SPECTATORS": "1",
        },
    )
    proc.start()
    client = aredis.Redis.from_url(redis_url)
    try:
        await wait_accepting(client, "pool-watch")
        for mid in ("m-a", "m-b"):
            await assign(client, "pool-watch", mid, PLAYERS, now_ms=wall_ms())
            await wait_ready(client, mid)
        first = MatchClient(proc, "w1")
        await first.connect(proc.signer.spectator_token("m-a", "w1", ttl_s=600))
        frame = await first.wait_for(SPECTATE_EVENT)
        assert frame["match_id"] == "m-a"
        assert frame["at"] <= wall_ms() - DELAY_MS
        refused: dict[str, str] = {}
        for mid, user in (("m-b", "w2"), ("m-none", "w3")):
            other = MatchClient(proc, user)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await other.connect(proc.signer.spectator_token(mid, user, ttl_s=600))
            refused[mid] = other.refused["data"]["code"]
        assert refused == {"m-b": SERVER_BUSY, "m-none": "unknown_match"}
        await first.close()
    finally:
        await client.aclose()
        proc.stop()
