"""The local-process runtime with real match-server processes and real Redis."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import socketio

from tradearena.contracts.orchestration import MatchSpec, MatchStatus
from tradearena.contracts.phases import MatchPhase
from tradearena.launcher.localruntime import LocalProcessOrchestrator
from tradearena.testing.local_runtime import local_runtime, phases_until
from tradearena.testing.waiting import eventually
from tradearena.tokens import Signer, generate_private_key_pem

SIGNER = Signer.from_pem(generate_private_key_pem())


@pytest.fixture
async def runtime(tmp_path: Path, redis_url: str) -> AsyncIterator[LocalProcessOrchestrator]:
    async with local_runtime(tmp_path, redis_url, SIGNER, max_retries=1) as orchestrator:
        yield orchestrator


def spec(
    match_id: str, duration_ms: int = 600_000, players: tuple[str, ...] = ("alice",)
) -> MatchSpec:
    return MatchSpec(match_id, "standard", "blitz", duration_ms, players)


async def until_ready(status: MatchStatus) -> None:
    async with asyncio.timeout(30), aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{status.url}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def connect(status: MatchStatus, match_id: str, player: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    assert status.url is not None
    await client.connect(
        status.url,
        namespaces=["/match"],
        transports=["websocket"],
        auth={"token": SIGNER.match_token(match_id, player, 600)},
    )
    return client


async def test_a_match_goes_ready_live_finished(runtime: LocalProcessOrchestrator) -> None:
    await runtime.start(spec("m-local", duration_ms=2000))
    await runtime.start(spec("m-local", duration_ms=2000))  # idempotent: still one server
    seen = await phases_until(runtime, "m-local", MatchPhase.READY)
    assert [s.phase for s in seen] == [MatchPhase.PENDING, MatchPhase.CREATING, MatchPhase.READY]
    ready = seen[-1]
    assert (ready.address, ready.port) == ("127.0.0.1", ready.port)
    # Its metrics and status are on the admin port the runtime gave it, not the players'.
    async with aiohttp.ClientSession() as http:
        async with http.get(ready.detail["admin"] + "/metrics") as resp:
            assert resp.status == 200 and "tradearena_match_phase" in await resp.text()
        async with http.get(f"http://127.0.0.1:{ready.port}/metrics") as resp:
            assert resp.status == 404
    # The admin port is what `up` lists for Prometheus while the server runs.
    assert runtime.metrics_addresses() == [ready.detail["admin"].removeprefix("http://")]
    client = await connect(ready, "m-local", "alice")
    try:
        rest = await phases_until(runtime, "m-local", MatchPhase.FINISHED)
        assert [s.phase for s in rest][-2:] == [MatchPhase.LIVE, MatchPhase.FINISHED]
    finally:
        await client.disconnect()
    assert await runtime.list_active() == []

    async def no_target() -> bool:  # its process ended
        return runtime.metrics_addresses() == []

    await eventually(no_target)


async def test_cancel_settles_as_cancelled(runtime: LocalProcessOrchestrator) -> None:
    await runtime.start(spec("m-cancel"))
    ready = (await phases_until(runtime, "m-cancel", MatchPhase.READY))[-1]
    client = await connect(ready, "m-cancel", "alice")
    try:
        await phases_until(runtime, "m-cancel", MatchPhase.LIVE)
        await runtime.cancel("m-cancel", "admin: test")
        seen = await phases_until(runtime, "m-cancel", MatchPhase.CANCELLED)
        assert MatchPhase.CANCELLING in [s.phase for s in seen]
    finally:
        await client.disconnect()


async def test_a_crash_after_live_restarts_in_place(runtime: LocalProcessOrchestrator) -> None:
    await runtime.start(spec("m-crash"))
    ready = (await phases_until(runtime, "m-crash", MatchPhase.READY))[-1]
    client = await connect(ready, "m-crash", "alice")
    await phases_until(runtime, "m-crash", MatchPhase.LIVE)
    await client.disconnect()
    first = runtime._matches["m-crash"].proc
    assert first is not None
    os.kill(first.pid, signal.SIGKILL)
    status = None
    async with asyncio.timeout(30):
        async for status in runtime.watch("m-crash"):
            if status.restarts == 1:
                break
    assert status is not None
    assert (status.phase, status.port, status.restarts) == (MatchPhase.LIVE, ready.port, 1)
    await until_ready(status)  # players' clients reconnect the same way: retry until up
    again = await connect(status, "m-crash", "alice")  # the same address still serves it
    await again.disconnect()


async def test_a_server_that_cannot_start_is_retried_then_failed(
    runtime: LocalProcessOrchestrator,
) -> None:
    bad = MatchSpec("m-bad", "no-such-mode", "blitz", 60_000, ("alice",))
    await runtime.start(bad)
    seen = await phases_until(runtime, "m-bad", MatchPhase.FAILED)
    phases = [s.phase for s in seen]
    assert phases.count(MatchPhase.CREATING) == 2  # first try plus one retry
    assert seen[-1].reason is not None
    assert "exited with status" in seen[-1].reason
