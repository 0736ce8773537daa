"""The match server as a real process: real Redis, real Socket.IO clients."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import socketio

from tradearena.contracts import keys
from tradearena.contracts.pool import MatchPresence
from tradearena.contracts.results import MatchResult
from tradearena.testing.match_client import MatchClient
from tradearena.testing.matchserver import MatchServerProcess
from tradearena.testing.waiting import eventually

PLAYERS = ("alice", "bob")


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(
        tmp_path,
        redis_url,
        "m-test",
        PLAYERS,
        env_extra={
            "TRADEARENA_DURATION_MS": "600000",
            "TRADEARENA_SNAPSHOT_EVERY_ENTRIES": "25",  # restores exercise snapshot + tail
        },
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def players(server: MatchServerProcess) -> AsyncIterator[dict[str, MatchClient]]:
    ps = {name: MatchClient(server, name) for name in PLAYERS}
    yield ps
    for p in ps.values():
        await p.close()


async def both_live(players: dict[str, MatchClient]) -> tuple[MatchClient, MatchClient]:
    """Both players connected and the match live (it starts when everyone is in)."""
    alice, bob = players["alice"], players["bob"]
    await alice.connect()
    await bob.connect()
    await alice.wait_for("phase", lambda d: d["phase"] == "live")
    return alice, bob


@pytest.mark.parametrize(
    ("token_for", "code"),
    [
        ({"player": "alice", "match_id": "m-other"}, "token_wrong_audience"),
        ({"player": "mallory"}, "unknown_player"),
        ({"player": "alice", "ttl_s": -3600}, "token_expired"),
        ({"forged": True}, "token_invalid"),
    ],
)
async def test_bad_match_tokens_are_refused_with_a_reason(
    server: MatchServerProcess, token_for: dict[str, Any], code: str
) -> None:
    if token_for.get("forged"):
        other = MatchServerProcess(server.workdir, server.redis_url, server.match_id, PLAYERS)
        token = other.token("alice")
    else:
        token = server.token(
            token_for["player"], token_for.get("match_id"), token_for.get("ttl_s", 600)
        )
    p = MatchClient(server, "alice")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await p.connect(token)
    assert p.refused is not None
    assert p.refused["data"]["code"] == code
    assert p.refused["message"] == p.refused["data"]["message"]


async def test_players_trade_and_get_fills_ticks_and_state(
    server: MatchServerProcess, players: dict[str, MatchClient]
) -> None:
    alice, bob = await both_live(players)
    tick = await bob.wait_for("tick")
    assert float(tick["price"]) > 0
    ack = await alice.act(
        type="open", client_order_id="a-1", side="long", margin="1000", leverage=10
    )
    assert (ack["ok"], ack["code"]) == (True, "ok")
    fill = await alice.wait_for("fill", lambda d: d["ref"] == "a-1")
    assert fill["reason"] == "open"
    again = await alice.act(
        type="open", client_order_id="a-1", side="long", margin="1000", leverage=10
    )
    assert again == ack  # idempotent over the wire
    cooled = await alice.act(type="close", client_order_id="a-2")
    assert (cooled["ok"], cooled["code"]) == (False, "cooldown")
    bad = await alice.act(
        type="open", client_order_id="a-3", side="sideways", margin="1", leverage=1
    )
    assert (bad["ok"], bad["code"]) == (False, "invalid_action")
    assert "side" in bad["message"]
    state = await alice.sync()
    assert state["position"]["side"] == "long"
    assert state["balance"] == str(10000 - 1000 - float(fill["fee"])).rstrip("0").rstrip(".")
    board = await bob.wait_for("leaderboard")
    assert {row["player"] for row in board["top"]} == set(PLAYERS)
    assert not any(event == "fill" for event, _ in bob.events)  # fills are private


async def test_rate_limit_over_the_wire(
    server: MatchServerProcess, players: dict[str, MatchClient]
) -> None:
    alice, _ = await both_live(players)
    acks = await asyncio.gather(
        *(alice.act(type="set_stops", client_order_id=f"s-{i}") for i in range(25))
    )
    codes = [a["code"] for a in acks]
    assert codes.count("rate_limited") >= 10
    assert set(codes) <= {"no_position", "rate_limited"}


async def test_reconnect_resyncs_full_state(
    server: MatchServerProcess, players: dict[str, MatchClient]
) -> None:
    alice, bob = await both_live(players)
    assert (
        await alice.act(type="open", client_order_id="r-1", side="short", margin="500", leverage=5)
    )["ok"]
    await alice.close()
    status = await bob.wait_for(
        "player", lambda d: d["player"] == "alice" and d["status"] == "disconnected"
    )
    assert status["status"] == "disconnected"
    again = MatchClient(server, "alice")
    await again.connect()
    state = await again.sync()
    assert state["position"]["side"] == "short"
    assert state["reconnects_left"] == 2
    await again.close()


def read_results(redis_url: str) -> list[MatchResult]:
    client = redis.Redis.from_url(redis_url)
    try:
        rows = client.xrange(keys.RESULTS_STREAM)
    finally:
        client.close()
    return [MatchResult.model_validate_json(fields[b"result"]) for _, fields in rows]


async def test_sigterm_settles_publishes_and_exits_zero(
    server: MatchServerProcess, players: dict[str, MatchClient], redis_url: str
) -> None:
    alice, bob = await both_live(players)
    assert (
        await alice.act(type="open", client_order_id="t-1", side="long", margin="1000", leverage=10)
    )["ok"]
    server.signal(signal.SIGTERM)
    end = await bob.wait_for("match_end")
    assert end["phase"] == "finished"
    assert end["reason"] == "shutdown"
    assert server.wait() == 0
    results = read_results(redis_url)
    assert len(results) == 1
    result = results[0]
    assert result.match_id == "m-test"
    assert [f.reason for f in result.fills if f.player == "alice"] == ["open", "settlement"]
    assert {s.player for s in result.standings} == set(PLAYERS)
    lines = [
        json.loads(x)
        for x in redis.Redis.from_url(redis_url).lrange(keys.match_log("m-test"), 0, -1)
    ]
    assert any(e["kind"] == "stop" for e in lines)


async def test_sigkill_mid_match_then_restart_loses_no_acknowledged_action(
    server: MatchServerProcess, redis_url: str
) -> None:
    alice, bob = MatchClient(server, "alice"), MatchClient(server, "bob")
    await alice.connect()
    await bob.connect()
    await alice.wait_for("phase", lambda d: d["phase"] == "live")
    acked: dict[str, dict[str, Any]] = {}
    acked["k-1"] = await alice.act(
        type="open", client_order_id="k-1", side="long", margin="2000", leverage=5
    )
    acked["k-2"] = await alice.act(type="set_stops", client_order_id="k-2", stop_loss="1")
    acked["k-3"] = await bob.act(
        type="open", client_order_id="k-3", side="short", margin="300", leverage=3
    )
    acked["k-4"] = await alice.act(type="close", client_order_id="k-4")  # cooldown
    before = await alice.sync()
    assert redis.Redis.from_url(redis_url).exists(keys.match_snapshot("m-test"))
    server.signal(signal.SIGKILL)
    assert server.wait() == -signal.SIGKILL
    server.start()  # same match id, same Redis: restores from the log
    for p in (alice, bob):
        await p.close()
    alice2, bob2 = MatchClient(server, "alice"), MatchClient(server, "bob")
    await alice2.connect()
    await bob2.connect()
    after = await alice2.sync()
    assert after["phase"] == "live"
    assert after["position"]["qty"] == before["position"]["qty"]
    assert after["position"]["entry"] == before["position"]["entry"]
    assert after["position"]["stop_loss"] == "1"
    assert after["balance"] == before["balance"]
    assert after["reconnects_left"] == 3  # the crash was not the players' fault
    # Every acknowledged action is in the log: re-sending it returns the first answer.
    for coid, first in acked.items():
        who = bob2 if coid == "k-3" else alice2
        again = await who.act(**_resend(coid))
        assert again == first, coid
    assert (await bob2.sync())["position"]["side"] == "short"
    restored = [json.loads(x) for x in server.logs().splitlines() if '"match restored"' in x]
    assert restored
    assert restored[0]["from_snapshot_at"] > 0
    await alice2.close()
    await bob2.close()


def _resend(coid: str) -> dict[str, Any]:
    return {
        "k-1": {"type": "open", "side": "long", "margin": "2000", "leverage": 5},
        "k-2": {"type": "set_stops", "stop_loss": "1"},
        "k-3": {"type": "open", "side": "short", "margin": "300", "leverage": 3},
        "k-4": {"type": "close"},
    }[coid] | {"client_order_id": coid}


async def test_match_runs_to_the_end_publishes_once_and_exits(
    tmp_path: Path, redis_url: str
) -> None:
    proc = MatchServerProcess(
        tmp_path, redis_url, "m-short", PLAYERS, env_extra={"TRADEARENA_DURATION_MS": "3000"}
    )
    proc.start()
    try:
        alice, bob = MatchClient(proc, "alice"), MatchClient(proc, "bob")
        await alice.connect()
        await bob.connect()
        end = await alice.wait_for("match_end")
        assert end["phase"] == "finished"
        assert end["reason"] == "time"
        assert [e for e, _ in alice.events if e == "phase"] == ["phase", "phase", "phase"]
        assert proc.wait() == 0
        results = read_results(redis_url)
        assert [r.match_id for r in results] == ["m-short"]
        assert results[0].ended_at - (results[0].started_at or 0) == 3000
        # A restart after the end publishes nothing new and exits at once.
        proc.start(wait_ready=False)
        assert proc.wait() == 0
        assert len(read_results(redis_url)) == 1
    finally:
        proc.stop()


async def test_health_readiness_status_and_metrics(
    server: MatchServerProcess, players: dict[str, MatchClient]
) -> None:
    alice, bob = await both_live(players)
    assert (await alice.act(type="close", client_order_id="m-1"))["code"] == "no_position"
    await bob.wait_for("tick")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{server.url}/readyz") as resp:
            assert (resp.status, (await resp.json())["ready"]) == (200, True)
        async with http.get(f"{server.admin_url}/status") as resp:
            status = await resp.json()
        async with http.get(f"{server.admin_url}/metrics") as resp:
            metrics = await resp.text()
    assert (status["phase"], status["connected"], status["players"]) == ("live", 2, 2)
    # the status hash carries the players connected and expected (coalesced, 1/s at most)
    client = redis.Redis.from_url(server.redis_url)

    async def presence() -> dict[bytes, bytes] | None:
        fields: dict[bytes, bytes] = client.hgetall(keys.match_status("m-test"))
        return fields if fields.get(MatchPresence.CONNECTED.encode()) == b"2" else None

    fields = await eventually(presence)
    client.close()
    assert fields[b"phase"] == b"Live"
    assert fields[MatchPresence.PLAYERS.encode()] == b"2"
    assert 'tradearena_match_actions_total{code="no_position"} 1.0' in metrics
    assert "tradearena_match_players_connected 2.0" in metrics
    assert 'tradearena_match_phase{phase="live"} 1.0' in metrics
    ticks = re.search(r"tradearena_match_tick_to_emit_seconds_count (\S+)", metrics)
    assert ticks is not None
    assert float(ticks.group(1)) > 0
    assert "tradearena_match_feed_staleness_seconds" in metrics
    assert "tradearena_match_log_append_seconds_count" in metrics
    # the match's records so far are out of the collector's sight (matchserver.heap)
    frozen = re.search(r"^tradearena_match_gc_frozen_objects (\S+)$", metrics, re.MULTILINE)
    assert frozen is not None
    assert float(frozen.group(1)) > 10_000  # at least the imported modules
