"""The Redis queues: joins, leaves, expiry, status, formation outcomes, and the
atomic claim under three matcher processes racing over 10,000 tickets."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from lobby.matchmaking.planner import Proposal
from lobby.matchmaking.queues import QueueError, Queues
from lobby.settings import QueueSettings
from tradearena.modes import default_catalogue

CAT = default_catalogue()
HERE = Path(__file__).parent
T0 = 1_800_000_000_000


@pytest.fixture
async def queues(redis_url: str) -> AsyncIterator[Queues]:
    client = aioredis.Redis.from_url(redis_url)
    yield Queues(client, CAT, QueueSettings(ticket_ttl_s=60))
    await client.aclose()


async def test_second_join_is_refused_and_keeps_the_first_ticket(queues: Queues) -> None:
    first = await queues.join("alice", "duel", "blitz", 25.0, now=T0)
    again = await queues.join("alice", "duel", "marathon", 30.0, now=T0 + 5)
    assert first.created and not again.created
    assert again.ticket == first.ticket
    other_mode = await queues.join("alice", "standard", "auto", 25.0, now=T0 + 6)
    assert other_mode.created
    status = await queues.status("alice")
    assert sorted(t.mode for t, _ in status.tickets) == ["duel", "standard"]
    assert status.tickets[0][1] == T0 + 60_000


async def test_unknown_mode_or_format_is_refused(queues: Queues) -> None:
    with pytest.raises(QueueError) as err:
        await queues.join("a", "nope", "blitz", 25.0)
    assert err.value.code == "unknown_mode"
    with pytest.raises(QueueError) as err:
        await queues.join("a", "duel", "forever", 25.0)
    assert err.value.code == "unknown_format"


async def test_leave_and_disconnect_remove_tickets(queues: Queues) -> None:
    await queues.join("a", "duel", "blitz", 25.0, now=T0)
    await queues.join("a", "standard", "blitz", 25.0, now=T0)
    assert await queues.leave("a", "duel") == 1
    assert await queues.leave("a", "duel") == 0
    assert [t.mode for t, _ in (await queues.status("a")).tickets] == ["standard"]
    assert await queues.disconnect("a") == 1
    assert (await queues.status("a")).tickets == []
    assert await queues.waiting("standard") == []


async def test_expired_tickets_are_never_matched_and_heartbeat_keeps_them(queues: Queues) -> None:
    await queues.join("a", "duel", "blitz", 25.0, now=T0)
    await queues.join("b", "duel", "blitz", 25.0, now=T0)
    await queues.join("c", "duel", "blitz", 25.0, now=T0)
    assert await queues.heartbeat("a", now=T0 + 50_000) == 1
    # at T0+70s, b and c expired (60 s TTL); a lives until T0+110s
    claims = await queues.match_round(now=T0 + 70_000)
    assert claims == []
    assert [t.player for t in await queues.waiting("duel")] == ["a"]
    rejoin = await queues.join("b", "duel", "blitz", 25.0, now=T0 + 71_000)
    assert rejoin.created
    [claim] = await queues.match_round(now=T0 + 72_000)
    assert sorted(claim.players) == ["a", "b"]


async def test_a_claim_is_all_or_nothing(queues: Queues) -> None:
    a = (await queues.join("a", "duel", "blitz", 25.0, now=T0)).ticket
    b = (await queues.join("b", "duel", "blitz", 25.0, now=T0)).ticket
    await queues.leave("b")
    prop = Proposal("duel", "blitz", (a, b), a, "recommended", 3.0)
    claims, conflicts = await queues.claim([prop], now=T0 + 1)
    assert claims == [] and conflicts == 1
    assert [t.player for t in await queues.waiting("duel")] == ["a"]  # untouched
    # a ticket replaced by a new join (new ticket id) is not claimable with the old id
    await queues.join("b", "duel", "blitz", 25.0, now=T0 + 2)
    claims, conflicts = await queues.claim([prop], now=T0 + 3)
    assert claims == [] and conflicts == 1


async def test_matched_player_leaves_every_queue_and_failed_formation_requeues_with_priority(
    queues: Queues,
) -> None:
    await queues.join("a", "duel", "blitz", 25.0, now=T0)
    await queues.join("a", "standard", "blitz", 25.0, now=T0)
    await queues.join("b", "duel", "blitz", 25.0, now=T0 + 10)
    [claim] = await queues.match_round(now=T0 + 20)
    assert (await queues.waiting("standard")) == []  # a matched in duel: gone from standard
    status = await queues.status("a")
    assert status.tickets == [] and status.assignment is not None
    assert status.assignment["match_id"] == claim.match_id
    assert claim.match_id in await queues.forming()

    assert await queues.requeue(claim.match_id, now=T0 + 30) == 2
    assert await queues.requeue(claim.match_id, now=T0 + 31) == -1  # exactly once
    back = {t.player: t for t in await queues.waiting("duel")}
    assert set(back) == {"a", "b"}
    assert all(t.priority for t in back.values())
    assert back["a"].enqueued_at_ms == T0  # keeps its place
    assert (await queues.status("a")).assignment is None
    assert await queues.forming() == {}

    [again] = await queues.match_round(now=T0 + 40)
    assert await queues.finish(again.match_id, {"match_id": again.match_id, "state": "ready"})
    assert not await queues.finish(again.match_id)
    assert (await queues.status("b")).assignment == {"match_id": again.match_id, "state": "ready"}


async def test_abandoned_formation_is_recovered(queues: Queues) -> None:
    await queues.join("a", "duel", "blitz", 25.0, now=T0)
    await queues.join("b", "duel", "blitz", 25.0, now=T0)
    [claim] = await queues.match_round(now=T0 + 1)
    assert await queues.recover_stale(60_000, now=T0 + 30_000) == []
    assert await queues.recover_stale(60_000, now=T0 + 90_000) == [claim.match_id]
    assert len(await queues.waiting("duel")) == 2


async def test_three_matcher_processes_never_lose_or_duplicate_a_ticket(
    redis_url: str, tmp_path: Path
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    queues = Queues(client, CAT, QueueSettings(ticket_ttl_s=3600))
    env = dict(os.environ)
    outs = [tmp_path / f"matcher{i}.json" for i in range(3)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-P", str(HERE / "queue_matcher_proc.py"), redis_url, str(out), env=env
        )
        for out in outs
    ]
    rng = random.Random(5)
    joined: dict[str, str] = {}  # ticket id -> player
    try:
        deadline = time.monotonic() + 60
        while int(await client.get("test:matchers:up") or 0) < 3:
            assert time.monotonic() < deadline, "the matcher processes did not start"
            assert all(p.returncode is None for p in procs)
            await asyncio.sleep(0.05)  # poll interval of the condition
        now = int(time.time() * 1000)
        for batch in range(20):  # tickets arrive while the matchers run
            jobs = []
            for i in range(500):
                n = batch * 500 + i
                mode = rng.choice(["duel", "standard", "standard"])
                fmt = rng.choice(["auto", "quick", "sprint"])
                jobs.append(queues.join(f"p{n}", mode, fmt, rng.gauss(25, 6), now=now))
            for start in range(0, len(jobs), 50):
                for result in await asyncio.gather(*jobs[start : start + 50]):
                    assert result.created
                    joined[result.ticket.ticket_id] = result.ticket.player
        assert len(joined) == 10_000
        await client.set("test:matchers:stop", 1)
        for proc in procs:
            assert await asyncio.wait_for(proc.wait(), 120) == 0
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    reports = [json.loads(out.read_text()) for out in outs]
    claimed: list[str] = [t for r in reports for c in r["claims"] for t in c["tickets"]]
    assert len(claimed) == len(set(claimed)), "a ticket was matched twice"
    waiting = {t.ticket_id for mode in ("duel", "standard") for t in await queues.waiting(mode)}
    assert not waiting & set(claimed)
    assert waiting | set(claimed) == set(joined), "a ticket was lost"
    forming = await queues.forming()
    assert set(forming) == {c["match_id"] for r in reports for c in r["claims"]}
    # every claimed match is well formed: players counts within the mode
    for r in reports:
        for c in r["claims"]:
            mode = forming[c["match_id"]]["mode"]
            assert CAT.mode(mode).players.min <= len(c["tickets"]) <= CAT.mode(mode).players.max
    assert len(claimed) > 5_000  # most tickets found a match
    assert sum(1 for r in reports if r["claims"]) >= 2  # the matchers really competed
    assert sum(r["conflicts"] for r in reports) > 0  # ... and overlapping claims were refused
    print(
        f"claimed {len(claimed)}, waiting {len(waiting)}, "
        f"conflicts {[r['conflicts'] for r in reports]}, rounds {[r['rounds'] for r in reports]}"
    )
    await client.aclose()
