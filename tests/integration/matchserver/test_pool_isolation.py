"""Isolation inside one match-server process (in-process, so one runner can be made to fail):
a match whose handling raises and one whose engine call overruns its budget are each
settled alone; their neighbour keeps ticking, and every log replay-verifies."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import web
from redis.asyncio import Redis

from matchserver.app import HOST, METRICS, create_app
from matchserver.engine.events import Event
from matchserver.engine.replay import verify
from matchserver.host import MatchHost
from matchserver.metrics import MatchMetrics
from matchserver.runner import ENGINE_OVERRUN, SERVER_ERROR
from matchserver.settings import MatchServerSettings
from matchserver.store import MatchStore
from tradearena.contracts import keys
from tradearena.contracts.results import MatchResult
from tradearena.launcher.localservices import free_port
from tradearena.orchestration import allocation
from tradearena.testing.match_client import MatchClient
from tradearena.testing.pool import assign, wait_accepting, wait_ready
from tradearena.testing.waiting import eventually
from tradearena.tokens import Signer, generate_private_key_pem

SERVER = "pool-iso"
BUDGET_MS = 100


@dataclass
class InProcessPool:
    host: MatchHost
    metrics: MatchMetrics
    signer: Signer
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Seat:
    pool: InProcessPool
    match_id: str

    @property
    def url(self) -> str:
        return self.pool.url

    def token(self, player: str) -> str:
        return self.pool.signer.match_token(self.match_id, player, 600)


@pytest.fixture
async def pool(tmp_path: Path, redis_url: str) -> AsyncIterator[InProcessPool]:
    signer = Signer.from_pem(generate_private_key_pem())
    key = tmp_path / "public.pem"
    key.write_bytes(signer.public_pem())
    settings = MatchServerSettings(
        server_id=SERVER,
        capacity=4,
        redis_url=redis_url,
        host="127.0.0.1",
        port=free_port(),
        public_key_file=key,
        feed_source="synthetic",
        synthetic_interval_ms=100,
        linger_ms=200,
        engine_budget_ms=BUDGET_MS,
    )
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    try:
        yield InProcessPool(app[HOST], app[METRICS], signer, settings.port)
    finally:
        await app[HOST].drain()
        await runner.cleanup()
        gc.unfreeze()  # the host froze this test process's heap (matchserver.heap)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def burn_cpu(ms: float) -> None:
    started = time.thread_time()
    while (time.thread_time() - started) * 1000 < ms:
        pass


async def test_a_failing_and_an_overrunning_match_are_settled_alone(
    pool: InProcessPool,
    redis: Redis,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mids = ("m-fail", "m-slow", "m-ok")
    await wait_accepting(redis, SERVER)
    for mid in mids:
        await assign(redis, SERVER, mid, ("alice", "bob"), mode="duel", now_ms=now_ms())
        await wait_ready(redis, mid)
    clients: dict[str, list[MatchClient]] = {}
    for mid in mids:
        clients[mid] = [MatchClient(Seat(pool, mid), p) for p in ("alice", "bob")]
        for c in clients[mid]:
            await c.connect()
        await clients[mid][0].wait_for("phase", lambda d: d["phase"] == "live")
        ack = await clients[mid][0].act(
            type="open", client_order_id=f"{mid}-1", side="long", margin="100", leverage=2
        )
        assert ack["ok"], ack

    # m-fail: its clock step raises; m-slow: each price costs more CPU than the budget
    def broken(now: int) -> list[Event]:
        raise RuntimeError("injected failure")

    slow = pool.host.matches["m-slow"].runner.match
    real_feed = slow.feed

    def heavy(price: Decimal, now: int, ref: str | None = None) -> list[Event]:
        burn_cpu(BUDGET_MS * 1.5)
        return real_feed(price, now, ref)

    caplog.set_level(logging.ERROR, logger="matchserver.runner")
    monkeypatch.setattr(pool.host.matches["m-fail"].runner.match, "advance", broken)
    monkeypatch.setattr(slow, "feed", heavy)

    end_fail = await clients["m-fail"][1].wait_for("match_end")
    end_slow = await clients["m-slow"][1].wait_for("match_end")
    assert (end_fail["phase"], end_fail["reason"]) == ("cancelled", SERVER_ERROR)
    assert (end_slow["phase"], end_slow["reason"]) == ("cancelled", ENGINE_OVERRUN)
    faulted = {r.__dict__.get("match_id"): r.__dict__.get("fault") for r in caplog.records}
    assert faulted == {"m-fail": SERVER_ERROR, "m-slow": ENGINE_OVERRUN}

    async def only_the_neighbour_left() -> bool:
        return set(await allocation.hosted(redis, SERVER)) == {"m-ok"}

    await eventually(only_the_neighbour_left)
    # the neighbour is untouched: it keeps ticking and trading
    ok_alice = clients["m-ok"][0]
    await ok_alice.next_ticks(5)
    assert (await ok_alice.act(type="set_stops", client_order_id="ok-2", stop_loss="1"))["ok"]
    assert not any(e == "match_end" for e, _ in ok_alice.events)
    sample = pool.metrics.registry.get_sample_value
    assert sample("tradearena_match_faults_total", {"fault": SERVER_ERROR}) == 1
    assert sample("tradearena_match_faults_total", {"fault": ENGINE_OVERRUN}) == 1
    assert sample("tradearena_match_matches_ended_total", {"outcome": "failed"}) == 2
    assert sample("tradearena_match_hosted", {}) == 1

    ok_match = weakref.ref(pool.host.matches["m-ok"].runner.match)
    gc.disable()  # from here only reference counting frees anything
    await pool.host.drain()  # settles m-ok as a shutdown
    rows = await redis.xrange(keys.RESULTS_STREAM)
    results = {
        r.match_id: r for r in (MatchResult.model_validate_json(f[b"result"]) for _, f in rows)
    }
    assert len(rows) == 3
    assert (results["m-fail"].phase, results["m-fail"].reason) == ("cancelled", SERVER_ERROR)
    assert (results["m-slow"].phase, results["m-slow"].reason) == ("cancelled", ENGINE_OVERRUN)
    assert (results["m-ok"].phase, results["m-ok"].reason) == ("finished", "shutdown")
    for mid in mids:
        record = await MatchStore(redis, mid).load_record()
        assert record is not None
        verification = verify(record)
        assert verification.ok, (mid, verification.differences)
    for cs in clients.values():
        for c in cs:
            await c.close()

    # A match that left leaves no reference cycle: it is freed by reference counting, so
    # nothing of it stays behind in the frozen generation (matchserver.heap).
    async def freed() -> bool:
        return ok_match() is None

    try:
        await eventually(freed, within=5)
    finally:
        gc.enable()


async def test_a_dedicated_server_settles_its_faulted_match_and_is_done(
    tmp_path: Path, redis_url: str, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = Signer.from_pem(generate_private_key_pem())
    key = tmp_path / "public.pem"
    key.write_bytes(signer.public_pem())
    settings = MatchServerSettings(
        match_id="m-solo",
        players=("alice", "bob"),
        redis_url=redis_url,
        host="127.0.0.1",
        port=free_port(),
        public_key_file=key,
        feed_source="synthetic",
        synthetic_interval_ms=100,
        linger_ms=0,
    )
    app = create_app(settings)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        host = app[HOST]
        solo = host.matches["m-solo"].runner
        await asyncio.wait_for(solo.ready.wait(), 20)

        def broken(now: int) -> list[Event]:
            raise RuntimeError("injected failure")

        monkeypatch.setattr(solo.match, "advance", broken)
        await asyncio.wait_for(host.done.wait(), 20)  # what ends a dedicated server
        (row,) = await redis.xrange(keys.RESULTS_STREAM)
        result = MatchResult.model_validate_json(row[1][b"result"])
        assert (result.match_id, result.phase, result.reason) == (
            "m-solo",
            "cancelled",
            SERVER_ERROR,
        )
    finally:
        await runner.cleanup()
        gc.unfreeze()
