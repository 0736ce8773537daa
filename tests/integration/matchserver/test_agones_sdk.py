"""The Agones SDK client against the sidecar's REST gateway (the stand-in of
tradearena.testing.agones), and a match server reporting its lifecycle to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from prometheus_client import CollectorRegistry

from matchserver.agones import (
    ALLOCATED,
    READY,
    AgonesError,
    AgonesSDK,
    AgonesUnavailableError,
    counter_of,
    list_of,
    state_of,
)
from tradearena.testing.agones import SDK_PREFIX, AgonesSidecar
from tradearena.testing.matchserver import MatchServerProcess
from tradearena.testing.waiting import eventually


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def sidecar() -> AsyncIterator[AgonesSidecar]:
    async with AgonesSidecar(
        "pool-7f2k", counters={"matches": (0, 4)}, lists={"players": 2}
    ) as fake:
        yield fake


def sdk_for(
    sidecar: AgonesSidecar, session: aiohttp.ClientSession
) -> tuple[AgonesSDK, CollectorRegistry]:
    registry = CollectorRegistry()
    sdk = AgonesSDK(sidecar.port, session, registry=registry, retry_initial_s=0.05, retry_max_s=0.2)
    return sdk, registry


def calls(registry: CollectorRegistry, call: str, outcome: str) -> float:
    value = registry.get_sample_value(
        "tradearena_agones_sdk_calls_total", {"call": call, "outcome": outcome}
    )
    return value or 0.0


async def next_where(
    updates: AsyncIterator[dict[str, Any]], check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async def seek() -> dict[str, Any]:
        async for gs in updates:
            if check(gs):
                return gs
        raise AssertionError("watch ended")

    return await asyncio.wait_for(seek(), 10)


async def test_ready_waits_for_a_sidecar_that_starts_late(
    session: aiohttp.ClientSession,
) -> None:
    late = AgonesSidecar()
    sdk, registry = sdk_for(late, session)
    ready = asyncio.create_task(sdk.ready())
    try:
        # Refused at least twice before anything listens: ready() keeps trying.
        await eventually(lambda: _true(calls(registry, "ready", "unavailable") >= 2))
        assert not ready.done()
        assert late.calls == []
        await late.start()
        assert await asyncio.wait_for(ready, 10) is True
        assert late.state == READY
        assert late.paths() == ["/ready"]
        assert late.bodies("/ready") == [{}]
        assert calls(registry, "ready", "ok") == 1
    finally:
        ready.cancel()
        await late.stop()


async def test_ready_gives_up_when_told_and_reports_never_raise(
    session: aiohttp.ClientSession,
) -> None:
    absent = AgonesSidecar()  # never started: nothing answers
    sdk, registry = sdk_for(absent, session)
    try:
        assert await sdk.ready(within_s=0.3) is False
        assert calls(registry, "ready", "unavailable") >= 2
        assert await sdk.health() is False
        assert await sdk.update_counter("matches", count=1) is False
        assert await sdk.list_add("players", "m-1/alice") is False
        assert await sdk.shutdown() is False
        with pytest.raises(AgonesUnavailableError):
            await sdk.game_server()
        with pytest.raises(AgonesUnavailableError):
            await sdk.get_counter("matches")
    finally:
        await absent.stop()


async def test_lifecycle_and_metadata_reach_the_sidecar_in_its_wire_shapes(
    sidecar: AgonesSidecar, session: aiohttp.ClientSession
) -> None:
    sdk, _ = sdk_for(sidecar, session)
    assert state_of(await sdk.game_server()) == "Scheduled"
    assert await sdk.ready()
    assert await sdk.health()
    assert sidecar.health_pings == 1
    assert await sdk.reserve(30)
    assert sidecar.state == "Reserved"
    assert sidecar.bodies("/reserve") == [{"seconds": "30"}]
    assert await sdk.allocate()
    assert sidecar.state == ALLOCATED
    assert await sdk.set_label("pool", "eu-1")
    assert await sdk.set_annotation("matches", "m-1,m-2")
    assert sidecar.bodies("/metadata/label") == [{"key": "pool", "value": "eu-1"}]
    gs = await sdk.game_server()
    assert gs["object_meta"]["name"] == "pool-7f2k"
    assert gs["object_meta"]["labels"] == {f"{SDK_PREFIX}pool": "eu-1"}
    assert gs["object_meta"]["annotations"] == {f"{SDK_PREFIX}matches": "m-1,m-2"}
    assert state_of(gs) == ALLOCATED
    assert await sdk.shutdown()
    assert sidecar.state == "Shutdown"
    assert [c.method for c in sidecar.calls if c.path.startswith("/metadata")] == ["PUT", "PUT"]


async def test_a_reservation_runs_out_back_to_ready(
    sidecar: AgonesSidecar, session: aiohttp.ClientSession
) -> None:
    sdk, _ = sdk_for(sidecar, session)
    assert await sdk.ready()
    assert await sdk.reserve(1)
    assert sidecar.state == "Reserved"
    await sidecar.until(lambda: sidecar.state == READY, within=5)


async def test_counters_round_trip(sidecar: AgonesSidecar, session: aiohttp.ClientSession) -> None:
    sdk, registry = sdk_for(sidecar, session)
    assert await sdk.get_counter("matches") == {"name": "matches", "count": 0, "capacity": 4}
    assert await sdk.update_counter("matches", count=3, capacity=8)
    assert sidecar.bodies("/v1beta1/counters/matches", "PATCH") == [{"count": "3", "capacity": "8"}]
    assert await sdk.get_counter("matches") == {"name": "matches", "count": 3, "capacity": 8}
    assert await sdk.update_counter("matches", count_diff=-2)
    assert sidecar.calls[-1].body == {"countDiff": "-2"}
    assert (await sdk.get_counter("matches"))["count"] == 1
    # Out of range: refused by the sidecar, logged and counted, the Counter unchanged.
    assert await sdk.update_counter("matches", count=9) is False
    assert await sdk.update_counter("matches", capacity=0, count=1) is False
    assert calls(registry, "update_counter", "refused") == 2
    gs = await sdk.game_server()
    assert counter_of(gs["status"]["counters"]["matches"], "matches") == {
        "name": "matches",
        "count": 1,
        "capacity": 8,
    }
    assert await sdk.update_counter("rooms", count=1) is False  # not declared
    with pytest.raises(AgonesError) as refused:
        await sdk.get_counter("rooms")
    assert refused.value.status == 500
    assert "counter not found" in refused.value.message
    with pytest.raises(ValueError, match="update_counter needs"):
        await sdk.update_counter("matches")


async def test_lists_round_trip(sidecar: AgonesSidecar, session: aiohttp.ClientSession) -> None:
    sdk, registry = sdk_for(sidecar, session)
    assert await sdk.list_add("players", "m-1/alice")
    assert sidecar.bodies("/v1beta1/lists/players:addValue") == [{"value": "m-1/alice"}]
    assert await sdk.list_add("players", "m-1/bob")
    # Already there is the wanted state; a full List refuses.
    assert await sdk.list_add("players", "m-1/alice")
    assert await sdk.list_add("players", "m-2/carol") is False
    assert calls(registry, "list_add", "refused") == 2  # both were refused on the wire
    assert await sdk.update_list("players", capacity=3)
    assert sidecar.bodies("/v1beta1/lists/players", "PATCH") == [{"capacity": "3"}]
    assert await sdk.list_add("players", "m-2/carol")
    assert await sdk.list_remove("players", "m-1/alice")
    assert sidecar.bodies("/v1beta1/lists/players:removeValue") == [{"value": "m-1/alice"}]
    assert await sdk.list_remove("players", "m-1/alice")  # not there: fine
    assert await sdk.get_list("players") == {
        "name": "players",
        "capacity": 3,
        "values": ["m-1/bob", "m-2/carol"],
    }
    gs = await sdk.game_server()
    assert list_of(gs["status"]["lists"]["players"], "players")["values"] == [
        "m-1/bob",
        "m-2/carol",
    ]
    assert await sdk.update_list("players", capacity=1001) is False
    assert await sdk.list_add("rooms", "x") is False  # not declared
    with pytest.raises(ValueError, match="update_list needs"):
        await sdk.update_list("players")


async def test_watch_sees_an_allocation_and_reconnects_after_a_drop(
    sidecar: AgonesSidecar, session: aiohttp.ClientSession
) -> None:
    sdk, registry = sdk_for(sidecar, session)
    updates = sdk.watch()
    try:
        first = await next_where(updates, lambda gs: True)
        assert state_of(first) == "Scheduled"  # the current GameServer comes first
        assert await sdk.ready()
        await next_where(updates, lambda gs: state_of(gs) == READY)
        # A GameServerAllocation picks this server: Allocated, one more match counted.
        sidecar.allocate_by_allocation(
            counters={"matches": 1}, list_values={"players": ["m-9/alice"]}
        )
        allocated = await next_where(updates, lambda gs: state_of(gs) == ALLOCATED)
        assert allocated["status"]["counters"]["matches"] == {"count": "1", "capacity": "4"}
        assert allocated["status"]["lists"]["players"]["values"] == ["m-9/alice"]

        sidecar.drop_watches()
        again = await next_where(updates, lambda gs: True)  # reconnected: current one first
        assert state_of(again) == ALLOCATED
        reconnects = registry.get_sample_value("tradearena_agones_sdk_watch_reconnects_total")
        assert reconnects == 1
        assert sidecar.paths().count("/watch/gameserver") == 2
        assert await sdk.set_label("match", "m-9")
        labelled = await next_where(
            updates, lambda gs: f"{SDK_PREFIX}match" in gs["object_meta"]["labels"]
        )
        assert labelled["object_meta"]["labels"][f"{SDK_PREFIX}match"] == "m-9"
    finally:
        await updates.aclose()  # type: ignore[attr-defined]


async def test_match_server_reports_to_the_agones_sdk(
    tmp_path: Path, redis_url: str, sidecar: AgonesSidecar
) -> None:
    server = MatchServerProcess(
        tmp_path,
        redis_url,
        "m-agones",
        ("alice",),
        env_extra={
            "AGONES_SDK_HTTP_PORT": str(sidecar.port),
            "TRADEARENA_AGONES_HEALTH_INTERVAL_MS": "200",
            "TRADEARENA_DURATION_MS": "2000",
        },
    )
    server.start(wait_ready=False)
    try:
        await sidecar.wait_for("/ready")
        await sidecar.wait_for("/health")
        assert sidecar.paths()[0] == "/ready"
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(
            server.url,
            namespaces=["/match"],
            transports=["websocket"],
            auth={"token": server.token("alice")},
        )
        await sidecar.wait_for("/shutdown")
        assert sidecar.paths()[-1] == "/shutdown"
        assert sidecar.state == "Shutdown"
        assert sidecar.health_pings >= 2
        await client.disconnect()
        assert await asyncio.to_thread(server.wait) == 0
    finally:
        server.stop()


async def _true(value: bool) -> bool:
    return value
