"""Formation through the orchestration contract, against real match-server processes
(tests/tradearena.testing/fake_matchserver.py) and real Redis queues."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from lobby.matchmaking.formation import Formation, Matchmaker, move_pct, price_move_pct
from lobby.matchmaking.queues import Queues
from lobby.settings import FormationSettings, QueueSettings
from tradearena.contracts import keys
from tradearena.contracts.feed import FeedTick, encode_tick
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.phases import MatchPhase
from tradearena.modes import default_catalogue
from tradearena.testing.proc_orchestrator import ProcessOrchestrator
from tradearena.tokens import Signer, generate_private_key_pem

CAT = default_catalogue()


class Inbox:
    """Collects what players are told (the notify seam's shape)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def __call__(self, user_id: str, kind: str, payload: dict[str, Any]) -> None:
        self.sent.append((user_id, kind, payload))

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {u: p for u, k, p in self.sent if k == kind}


@pytest.fixture
async def queues(redis_url: str) -> AsyncIterator[Queues]:
    client = aioredis.Redis.from_url(redis_url)
    yield Queues(client, CAT, QueueSettings())
    await client.aclose()


def formation(
    orch: ProcessOrchestrator, queues: Queues, inbox: Inbox, timeout: float = 20
) -> Formation:
    signer = Signer.from_pem(generate_private_key_pem())
    return Formation(orch, queues, signer, inbox, CAT, FormationSettings(ready_timeout_s=timeout))


async def claim_duel(queues: Queues, a: str = "alice", b: str = "bob") -> Any:
    await queues.join(a, "duel", "blitz", 25.0)
    await queues.join(b, "duel", "blitz", 25.0)
    [claim] = await queues.match_round()
    return claim


async def test_ready_match_gives_each_player_a_working_address_and_own_token(
    queues: Queues, orchestrator: ProcessOrchestrator
) -> None:
    inbox = Inbox()
    form = formation(orchestrator, queues, inbox)
    claim = await claim_duel(queues)
    outcome = await form.form(claim)
    assert outcome.state == "ready"
    [spec] = orchestrator.started
    assert spec == MatchSpec(claim.match_id, "duel", "blitz", 180_000, claim.players)
    assert set(inbox.of("match_found")) == {"alice", "bob"}
    ready = inbox.of("match_ready")
    assert set(ready) == {"alice", "bob"}
    verifier = form.signer.verifier()
    for player, payload in ready.items():
        claims = verifier.verify_match(payload["token"], claim.match_id, player)
        assert claims["sub"] == player
    assert ready["alice"]["token"] != ready["bob"]["token"]
    # the address really is the running match server
    async with (
        aiohttp.ClientSession() as http,
        http.get(ready["alice"]["url"] + "/healthz") as resp,
    ):
        assert (await resp.json())["match_id"] == claim.match_id
    status = await queues.status("bob")
    assert status.assignment is not None and status.assignment["state"] == "ready"
    assert status.assignment["port"] == ready["bob"]["port"]
    assert await queues.forming() == {}
    # found before ready, for every player
    kinds = [k for u, k, _ in inbox.sent if u == "alice"]
    assert kinds == ["match_found", "match_ready"]


async def test_a_server_that_dies_before_ready_requeues_players_with_priority(
    queues: Queues, orchestrator: ProcessOrchestrator
) -> None:
    orchestrator.behaviours["carol"] = "fail"
    inbox = Inbox()
    claim = await claim_duel(queues, "carol", "dave")
    outcome = await formation(orchestrator, queues, inbox).form(claim)
    assert outcome.state == "failed" and outcome.requeued == 2
    assert outcome.reason == "exit status 3"
    assert outcome.status is not None and outcome.status.phase is MatchPhase.FAILED
    waiting = await queues.waiting("duel")
    assert {t.player for t in waiting} == {"carol", "dave"}
    assert all(t.priority for t in waiting)
    failed = inbox.of("match_failed")
    assert set(failed) == {"carol", "dave"} and failed["dave"]["requeued"] is True
    assert inbox.of("match_ready") == {}


async def test_a_server_never_ready_is_cancelled_at_the_timeout_and_players_requeued(
    queues: Queues, orchestrator: ProcessOrchestrator
) -> None:
    orchestrator.behaviours["erin"] = "hang"
    inbox = Inbox()
    claim = await claim_duel(queues, "erin", "frank")
    outcome = await formation(orchestrator, queues, inbox, timeout=1.5).form(claim)
    assert outcome.state == "failed" and outcome.reason == "startup_timeout"
    # the hanging process was told to stop: its watch ends Cancelled
    phases = [s.phase async for s in orchestrator.watch(claim.match_id)]
    assert phases[-1] is MatchPhase.CANCELLED
    assert len(await queues.waiting("duel")) == 2


async def test_matchmaker_loop_forms_matches_from_the_queue(
    queues: Queues, orchestrator: ProcessOrchestrator
) -> None:
    inbox = Inbox()

    async def calm() -> Decimal:
        return Decimal("0.1")

    mm = Matchmaker(queues, formation(orchestrator, queues, inbox), move=calm)
    for i in range(6):
        await queues.join(f"s{i}", "standard", "auto", 25.0)
    [claim] = await mm.round()
    assert claim.proposal.format == "marathon"  # calm market: the longest format
    await mm.stop()  # waits for the formations under way
    assert [o.state for o in mm.outcomes] == ["ready"]
    assert len(inbox.of("match_ready")) == 6


async def test_price_move_comes_from_the_feed_stream(queues: Queues) -> None:
    assert move_pct([]) == 0
    assert move_pct([Decimal(100), Decimal(102), Decimal(101)]) == 2
    now = 1_800_000_000_000
    key = keys.feed_stream("BTCUSDT")
    for age_ms, price in ((2 * 3600_000, "50"), (1800_000, "100"), (60_000, "101.5")):
        tick = FeedTick("BTCUSDT", Decimal(price), now - age_ms, now - age_ms, "synthetic", 0)
        await queues.redis.xadd(key, encode_tick(tick, "relay-1"), id=tick.stream_id)
    await queues.redis.xadd(key, {"price": "900"}, id=f"{now - 30_000}-0")  # not a tick: skipped
    # The 2-hour-old tick is outside the window.
    assert await price_move_pct(queues.redis, "BTCUSDT", now) == Decimal("1.5")


async def test_a_formation_taken_back_as_abandoned_cancels_its_server(
    queues: Queues, orchestrator: ProcessOrchestrator
) -> None:
    inbox = Inbox()
    claim = await claim_duel(queues, "gus", "hal")
    # another replica decided this formation was abandoned and requeued its players
    assert await queues.recover_stale(0, now=claim.claimed_at_ms + 1) == [claim.match_id]
    outcome = await formation(orchestrator, queues, inbox).form(claim)
    assert outcome.state == "failed" and outcome.reason == "formation abandoned"
    phases = [s.phase async for s in orchestrator.watch(claim.match_id)]
    assert phases[-1] is MatchPhase.CANCELLED
    assert inbox.of("match_ready") == {}
    assert len(await queues.waiting("duel")) == 2  # requeued once, by the recovery
