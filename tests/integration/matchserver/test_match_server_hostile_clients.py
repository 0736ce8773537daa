"""The match server against clients that do what a well-behaved client never does:
real process, real Redis, real Socket.IO clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from tradearena.contracts import keys
from tradearena.testing.match_client import MatchClient
from tradearena.testing.matchserver import MatchServerProcess

PLAYERS = ("alice", "bob")


@pytest.fixture
def server(tmp_path: Path, redis_url: str) -> Iterator[MatchServerProcess]:
    proc = MatchServerProcess(
        tmp_path, redis_url, "m-hostile", PLAYERS, env_extra={"TRADEARENA_DURATION_MS": "600000"}
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def tabs() -> AsyncIterator[list[MatchClient]]:
    opened: list[MatchClient] = []
    yield opened
    for tab in opened:
        await tab.close()


async def open_tab(tabs: list[MatchClient], server: MatchServerProcess, name: str) -> MatchClient:
    tab = MatchClient(server, name)
    tabs.append(tab)
    await tab.connect()
    return tab


def log_kinds(server: MatchServerProcess) -> list[tuple[str, str | None]]:
    client = redis.Redis.from_url(server.redis_url)
    try:
        rows = client.lrange(keys.match_log(server.match_id), 0, -1)
    finally:
        client.close()
    entries = [json.loads(row) for row in rows]
    return [(e["kind"], e.get("player")) for e in entries if e["kind"] != "price"]


async def http_get(url: str) -> tuple[dict[str, Any] | None, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        text = await resp.text()
    return (json.loads(text) if text.startswith("{") else None), text


async def both_live(
    tabs: list[MatchClient], server: MatchServerProcess
) -> tuple[MatchClient, MatchClient]:
    alice = await open_tab(tabs, server, "alice")
    bob = await open_tab(tabs, server, "bob")
    await alice.wait_for("phase", lambda d: d["phase"] == "live")
    await bob.wait_for("phase", lambda d: d["phase"] == "live")
    return alice, bob


async def test_client_events_named_connect_or_disconnect_reach_no_handler(
    server: MatchServerProcess, tabs: list[MatchClient]
) -> None:
    alice, bob = await both_live(tabs, server)
    before = log_kinds(server)
    token = server.token("alice")
    refusals = []
    for _ in range(5):  # a replayed connect with a valid token in the auth position
        refusals.append(await alice.call("connect", {}, {"token": token}))
    refusals.append(await alice.call("connect"))
    refusals.append(await alice.call("disconnect", "client namespace disconnect"))
    refusals.append(await alice.call("connect_error", {"message": "x"}))
    for reply in refusals:
        assert reply["ok"] is False and reply["code"] == "reserved_event", reply
        assert reply["message"]
    # Nothing reached the engine: no log entry, nobody shown disconnected, alice still
    # trades and still gets ticks.
    assert log_kinds(server) == before
    status, _ = await http_get(f"{server.admin_url}/status")
    assert status is not None and status["connected"] == 2
    assert (await alice.call("action", {"type": "close", "client_order_id": "h-1"}))[
        "code"
    ] == "no_position"
    await bob.next_ticks(2)
    await alice.next_ticks(2)
    assert bob.player_events("alice") == []
    _, metrics = await http_get(f"{server.admin_url}/metrics")
    assert 'tradearena_match_event_refusals_total{code="reserved_event"} 8.0' in metrics
    # The real transport events still reach the handlers.
    await alice.close()
    await bob.wait_for("player", lambda d: d["player"] == "alice" and d["status"] != "connected")
    assert bob.player_events("alice") == ["disconnected"]


async def test_events_with_extra_arguments_get_an_answer(
    server: MatchServerProcess, tabs: list[MatchClient]
) -> None:
    alice, _ = await both_live(tabs, server)
    close = {"type": "close", "client_order_id": "x-1"}
    reply = await alice.call("action", close, {"more": 1})
    assert reply == {"ok": False, "code": "invalid_action", "message": reply["message"]}
    assert "one argument" in reply["message"]
    reply = await alice.call("action", close, "x", 3)
    assert (reply["ok"], reply["code"]) == (False, "invalid_action")
    # sync ignores what it does not read
    assert (await alice.call("sync", {}, {"more": 1}))["state"]["phase"] == "live"
    # the refused calls used nothing up: the same client_order_id is still new
    assert (await alice.call("action", close))["code"] == "no_position"
    _, metrics = await http_get(f"{server.admin_url}/metrics")
    assert 'tradearena_match_actions_total{code="invalid_action"} 2.0' in metrics


async def test_a_newer_tab_replaces_the_older_without_using_a_reconnect(
    server: MatchServerProcess, tabs: list[MatchClient]
) -> None:
    first, bob = await both_live(tabs, server)
    opened = await first.call(
        "action",
        {"type": "open", "client_order_id": "t-1", "side": "long", "margin": "500", "leverage": 2},
    )
    assert opened["ok"], opened
    reconnects = (await first.sync())["reconnects_left"]
    older = first
    for _ in range(reconnects + 2):  # more tabs than reconnects allowed
        newer = await open_tab(tabs, server, "alice")
        await older.wait_for("replaced")
        older = newer
    state = await older.sync()
    assert state["reconnects_left"] == reconnects
    assert state["position"] is not None and state["position"]["side"] == "long"
    await bob.next_ticks(2)
    assert bob.player_events("alice") == []
    assert ("disconnect", "alice") not in log_kinds(server)
    # The trade cooldown after the open's fill runs on the server's clock: its ticks say
    # when it is over.
    cooldown_until = int(opened["cooldown_until"])
    await older.until(
        lambda events: any(e == "tick" and int(d["at"]) > cooldown_until for e, d in events)
    )
    closed = await older.call("action", {"type": "close", "client_order_id": "t-2"})
    assert closed["ok"], closed
    _, metrics = await http_get(f"{server.admin_url}/metrics")
    assert "tradearena_match_reconnects_total 0.0" in metrics
    assert "tradearena_match_players_connected 2.0" in metrics
