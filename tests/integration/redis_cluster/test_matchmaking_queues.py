"""The lobby's matchmaking queues on a real Redis Cluster: every script runs on the
`{q}` shard (declared keys), claims race from two lobby clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio.cluster import RedisCluster

from lobby.matchmaking.parties import Parties
from lobby.matchmaking.party_rules import Member, PartyLimits
from lobby.matchmaking.planner import CASUAL
from lobby.matchmaking.queues import Queues
from lobby.settings import QueueSettings
from tradearena import redisconn
from tradearena.contracts import keys
from tradearena.modes import default_catalogue
from tradearena.testing.redis_cluster import LocalRedisCluster

CAT = default_catalogue()
T0 = 1_800_000_000_000


@pytest.fixture
async def two_lobbies(cluster_url: str) -> AsyncIterator[tuple[Queues, Queues]]:
    clients = [redisconn.connect(cluster_url) for _ in range(2)]
    settings = QueueSettings(ticket_ttl_s=60)
    try:
        yield Queues(clients[0], CAT, settings), Queues(clients[1], CAT, settings)
    finally:
        for c in clients:
            await c.aclose()


async def test_join_claim_finish_requeue_and_release(
    two_lobbies: tuple[Queues, Queues], rc: RedisCluster, redis_cluster: LocalRedisCluster
) -> None:
    a, b = two_lobbies
    # The queue shard is not the only one: the scripts must be routed, not sent anywhere.
    assert len({n.address for n in redis_cluster.nodes if n.running}) == 6
    players = [f"p{i}" for i in range(8)]
    for p in players:
        joined = await a.join(p, "duel", "blitz", 25.0, now=T0)
        assert joined.created
    again = await b.join("p0", "duel", "marathon", 30.0, now=T0 + 1)
    assert not again.created and again.ticket.format == "blitz"
    assert await a.heartbeat("p0", now=T0 + 2) == 1
    status = await b.status("p0")
    assert [t.mode for t, _ in status.tickets] == ["duel"]

    # Two lobbies plan and claim at once: no ticket ends in two matches.
    claims_a, claims_b = await asyncio.gather(
        a.match_round(now=T0 + 10), b.match_round(now=T0 + 10)
    )
    claims = claims_a + claims_b
    claimed = [p for c in claims for p in c.players]
    assert len(claimed) == len(set(claimed)) == len(players)
    assert await a.waiting("duel") == []
    forming = await a.forming()
    assert set(forming) == {c.match_id for c in claims}

    done, failed = claims[0], claims[1]
    assert await a.finish(done.match_id, {"match_id": done.match_id, "state": "ready"})
    assert (await b.assignment(done.players[0]) or {})["state"] == "ready"
    assert await b.requeue(failed.match_id, now=T0 + 20) == len(failed.players)
    assert await a.requeue(failed.match_id, now=T0 + 20) == -1  # exactly once
    back = {t.player: t for t in await a.waiting("duel")}
    assert set(back) == set(failed.players) and all(t.priority for t in back.values())

    assert await a.release(done.players[0], done.match_id)
    assert await a.assignment(done.players[0]) is None
    assert await a.leave(failed.players[0]) == 1
    assert await a.sweep(now=T0 + 10 * 60_000) == len(failed.players) - 1  # expired
    assert await rc.zcard(keys.QUEUE_EXPIRY) == 0


async def test_a_party_is_formed_queued_claimed_and_changed_on_the_queue_shard(
    two_lobbies: tuple[Queues, Queues],
) -> None:
    a, b = two_lobbies
    parties = Parties(a.redis, PartyLimits())
    leader, friend = Member("u-l", "lead"), Member("u-f", "pal")
    party = await parties.create(leader)
    await parties.invite(party.party_id, leader.user_id, friend)
    await parties.join(party.party_id, friend)
    members = (leader.user_id, friend.user_id)
    joined = await a.join(
        leader.user_id,
        "standard",
        "blitz",
        25.0,
        now=T0,
        queue=CASUAL,
        party=party.party_id,
        members=members,
    )
    assert joined.created
    for i in range(4):
        await b.join(f"c{i}", "standard", "blitz", 25.0, now=T0, queue=CASUAL)
    [claim] = await b.match_round(now=T0 + 1)
    assert set(claim.players) == {*members, "c0", "c1", "c2", "c3"}
    assert (await a.assignment(friend.user_id))["match_id"] == claim.match_id  # type: ignore[index]
    assert await a.requeue(claim.match_id, now=T0 + 2) == 5
    await parties.remove(party.party_id, friend.user_id, friend.user_id)
    assert [t for t in await a.waiting("casual:standard") if t.party] == []
