"""A pool server as a real process: many matches on one port, assigned through Redis."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from redis.asyncio import Redis

from matchserver.engine.replay import verify
from matchserver.store import MatchStore
from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.phases import ServerPhase
from tradearena.contracts.pool import HEARTBEAT_INTERVAL_MS, Assignment, MatchPresence, ServerState
from tradearena.contracts.results import MatchResult
from tradearena.orchestration import allocation
from tradearena.testing.match_client import MatchClient
from tradearena.testing.matchserver import PoolServerProcess, pool_server
from tradearena.testing.pool import assign, wait_accepting, wait_ready
from tradearena.testing.waiting import eventually

SERVER = "pool-a"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def pool(tmp_path: Path, redis_url: str) -> Iterator[PoolServerProcess]:
    proc = pool_server(
        tmp_path,
        redis_url,
        SERVER,
        capacity=4,
        env_extra={"TRADEARENA_SNAPSHOT_EVERY_ENTRIES": "25"},
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def results(redis: Redis) -> list[MatchResult]:
    rows = await redis.xrange(keys.RESULTS_STREAM)
    return [MatchResult.model_validate_json(fields[b"result"]) for _, fields in rows]


async def hosted(redis: Redis) -> set[str]:
    return set(await allocation.hosted(redis, SERVER))


async def state(redis: Redis) -> dict[str, str]:
    raw = await redis.hgetall(keys.server_state(SERVER))
    return {k.decode(): v.decode() for k, v in raw.items()}


async def connect(pool: PoolServerProcess, match_id: str, *players: str) -> list[MatchClient]:
    clients = [MatchClient(pool.seat(match_id), p) for p in players]
    for c in clients:
        await c.connect()
    return clients


async def test_one_port_hosts_three_matches_to_their_end_and_frees_every_slot(
    pool: PoolServerProcess, redis: Redis
) -> None:
    await wait_accepting(redis, SERVER)
    specs = {
        "m-duel": ("duel", ("alice", "bob")),
        "m-three": ("standard", ("carol", "dave", "erin")),
        "m-two": ("standard", ("frank", "grace")),
    }
    for mid, (mode, players) in specs.items():
        await assign(redis, SERVER, mid, players, mode=mode, duration_ms=4000, now_ms=now_ms())
    for mid in specs:
        await wait_ready(redis, mid)
    assert await hosted(redis) == set(specs)
    clients = {mid: await connect(pool, mid, *players) for mid, (_, players) in specs.items()}
    for mid, cs in clients.items():
        await cs[0].wait_for("phase", lambda d: d["phase"] == "live")
        ack = await cs[0].act(
            type="open", client_order_id=f"{mid}-1", side="long", margin="100", leverage=2
        )
        assert ack["ok"], ack

    async def presence() -> bool:
        raw = await redis.hgetall(keys.match_status("m-three"))
        return raw.get(MatchPresence.CONNECTED.encode()) == b"3"

    await eventually(presence)
    status = await redis.hgetall(keys.match_status("m-three"))
    assert status[MatchPresence.PLAYERS.encode()] == b"3"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{pool.url}/readyz") as resp:
            assert resp.status == 200
        async with http.get(f"{pool.admin_url}/status") as resp:
            admin = await resp.json()
        async with http.get(f"{pool.admin_url}/metrics") as resp:
            metrics = await resp.text()
    assert (admin["server_id"], admin["capacity"], admin["hosted"]) == (SERVER, 4, 3)
    assert {m["match_id"]: m["connected"] for m in admin["matches"]} == {
        "m-duel": 2,
        "m-three": 3,
        "m-two": 2,
    }
    assert "tradearena_match_hosted 3.0" in metrics
    assert "tradearena_match_capacity 4.0" in metrics
    assert "tradearena_match_players_connected 7.0" in metrics
    assert 'tradearena_match_phase{phase="live"} 3.0' in metrics
    assert 'tradearena_match_matches_started_total{how="new"} 3.0' in metrics
    assert "tradearena_match_allocation_ack_seconds_count 3.0" in metrics
    assert (await state(redis))[ServerState.PLAYERS] == "7"
    ends = {mid: await cs[-1].wait_for("match_end") for mid, cs in clients.items()}
    assert {e["match_id"] for e in ends.values()} == set(specs)
    assert {e["phase"] for e in ends.values()} == {"finished"}
    # each match saw only its own players
    for mid in clients:
        assert {row["player"] for row in ends[mid]["standings"]} == set(specs[mid][1])

    async def freed() -> bool:
        return not await hosted(redis)

    await eventually(freed)
    published = await results(redis)
    assert sorted(r.match_id for r in published) == sorted(specs)
    for r in published:
        assert [f.ref for f in r.fills if f.reason == "open"] == [f"{r.match_id}-1"]
    s = await state(redis)
    assert (s[ServerState.CAPACITY], s[ServerState.READY], s[ServerState.DRAINING]) == (
        "4",
        "1",
        "0",
    )
    assert abs(int(s[ServerState.HEARTBEAT_MS]) - now_ms()) < 5000
    for cs in clients.values():
        for c in cs:
            await c.close()
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0
    assert len(await results(redis)) == 3  # nothing published twice


async def test_a_token_opens_its_own_match_only_and_an_unknown_match_is_refused(
    pool: PoolServerProcess, redis: Redis
) -> None:
    await wait_accepting(redis, SERVER)
    await assign(redis, SERVER, "m-a", ("alice", "bob"), now_ms=now_ms())
    await assign(redis, SERVER, "m-b", ("alice", "carol"), now_ms=now_ms())
    await wait_ready(redis, "m-a")
    await wait_ready(redis, "m-b")
    # alice's token for m-a opens m-a: her actions land there, never in m-b
    (alice_a,) = await connect(pool, "m-a", "alice")
    bob, carol = MatchClient(pool.seat("m-a"), "bob"), MatchClient(pool.seat("m-b"), "carol")
    await bob.connect()
    await carol.connect()
    await alice_a.wait_for("phase", lambda d: d["phase"] == "live")
    ack = await alice_a.act(
        type="open", client_order_id="x-1", side="long", margin="100", leverage=2
    )
    assert ack["ok"], ack
    state_b = await carol.sync()
    assert state_b["phase"] == "waiting"  # alice never joined m-b
    log_b = [json.loads(x) for x in await redis.lrange(keys.match_log("m-b"), 0, -1)]
    assert not any(e.get("player") == "alice" for e in log_b)
    # a token for m-a whose match claim names m-b does not verify for m-b
    forged = pool.signer._sign(
        {"sub": "alice", "aud": "tradearena-match:m-a", "typ": "match", "mid": "m-b"}, 600, None
    )
    intruder = MatchClient(pool.seat("m-b"), "alice")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await intruder.connect(forged)
    assert intruder.refused["data"]["code"] == "token_wrong_audience"
    # a match this server does not host
    stranger = MatchClient(pool.seat("m-zzz"), "alice")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await stranger.connect()
    assert stranger.refused["data"]["code"] == "unknown_match"
    garbage = MatchClient(pool.seat("m-a"), "alice")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await garbage.connect("not-a-jwt")
    assert garbage.refused["data"]["code"] == "token_malformed"
    for c in (alice_a, bob, carol):
        await c.close()


async def test_kill_9_then_restart_restores_every_hosted_match_and_loses_no_acknowledged_action(
    pool: PoolServerProcess, redis: Redis
) -> None:
    await wait_accepting(redis, SERVER)
    mids = ("m-k1", "m-k2")
    for mid in mids:
        await assign(redis, SERVER, mid, ("alice", "bob"), mode="duel", now_ms=now_ms())
        await wait_ready(redis, mid)
    acked: dict[str, dict[str, Any]] = {}
    before: dict[str, dict[str, Any]] = {}
    for i, mid in enumerate(mids):
        alice, bob = await connect(pool, mid, "alice", "bob")
        await alice.wait_for("phase", lambda d: d["phase"] == "live")
        for n in range(12):  # enough entries for a snapshot plus a tail
            await alice.call("sync", {})
            ack = await bob.act(type="set_stops", client_order_id=f"{mid}-s{n}")
            assert ack["code"] in ("no_position", "rate_limited")
        acked[mid] = await alice.act(
            type="open", client_order_id=f"{mid}-o", side="long", margin=str(500 + i), leverage=3
        )
        assert acked[mid]["ok"], acked[mid]
        before[mid] = await alice.sync()
        await alice.close()
        await bob.close()
    log_lengths = {mid: await redis.llen(keys.match_log(mid)) for mid in mids}
    pool.signal(signal.SIGKILL)
    assert pool.wait() == -signal.SIGKILL
    pool.start()
    restored = [json.loads(x) for x in pool.logs().splitlines() if '"match restored"' in x]
    assert {r["match_id"] for r in restored} == set(mids)
    for i, mid in enumerate(mids):
        await wait_for_hosted(pool, redis, mid)
        alice, bob = await connect(pool, mid, "alice", "bob")
        after = await alice.sync()
        assert after["phase"] == "live"
        assert after["position"]["qty"] == before[mid]["position"]["qty"]
        assert after["balance"] == before[mid]["balance"]
        again = await alice.act(
            type="open", client_order_id=f"{mid}-o", side="long", margin=str(500 + i), leverage=3
        )
        assert again == acked[mid]
        await alice.close()
        await bob.close()
        # the log before the crash is intact, and grew after it
        entries = [json.loads(x) for x in await redis.lrange(keys.match_log(mid), 0, -1)]
        assert len(entries) > log_lengths[mid]
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    pool.signal(signal.SIGTERM)
    assert pool.wait() == 0
    published = await results(redis)
    assert sorted(r.match_id for r in published) == sorted(mids)
    assert not await hosted(redis)
    for mid in mids:
        record = await MatchStore(redis, mid).load_record()
        assert record is not None and verify(record).ok


async def wait_for_hosted(pool: PoolServerProcess, redis: Redis, mid: str) -> None:
    """A restored match is back once the restarted server reports it live again."""

    async def live() -> bool:
        raw = await redis.hget(keys.match_status(mid), "phase")
        return raw == b"Live"

    await eventually(live)


async def test_cancel_through_the_inbox_settles_one_match_and_sigterm_settles_the_rest(
    pool: PoolServerProcess, redis: Redis
) -> None:
    await wait_accepting(redis, SERVER)
    for mid in ("m-c1", "m-c2"):
        await assign(redis, SERVER, mid, ("alice", "bob"), mode="duel", now_ms=now_ms())
        await wait_ready(redis, mid)
    c1 = await connect(pool, "m-c1", "alice", "bob")
    c2 = await connect(pool, "m-c2", "alice", "bob")
    await c1[0].wait_for("phase", lambda d: d["phase"] == "live")
    await c2[0].wait_for("phase", lambda d: d["phase"] == "live")
    await allocation.request_cancel(redis, SERVER, "m-c1", "lobby_cancelled")
    end = await c1[1].wait_for("match_end")
    assert (end["phase"], end["reason"]) == ("cancelled", "lobby_cancelled")

    async def one_left() -> bool:
        return await hosted(redis) == {"m-c2"}

    await eventually(one_left)
    await c2[1].next_ticks(3)  # the neighbour keeps ticking
    assert not any(e == "match_end" for e, _ in c2[1].events)
    pool.signal(signal.SIGTERM)
    end2 = await c2[1].wait_for("match_end")
    assert (end2["phase"], end2["reason"]) == ("finished", "shutdown")
    assert pool.wait() == 0
    s = await state(redis)
    assert s[ServerState.DRAINING] == "1"
    assert not await hosted(redis)
    by_id = {r.match_id: r for r in await results(redis)}
    assert set(by_id) == {"m-c1", "m-c2"}
    assert (by_id["m-c1"].phase, by_id["m-c1"].reason) == ("cancelled", "lobby_cancelled")
    for c in (*c1, *c2):
        await c.close()


async def test_a_cancel_sent_while_the_server_was_down_is_honoured_on_restore(
    pool: PoolServerProcess, redis: Redis
) -> None:
    await wait_accepting(redis, SERVER)
    for mid in ("m-d1", "m-d2"):
        await assign(redis, SERVER, mid, ("alice", "bob"), mode="duel", now_ms=now_ms())
        await wait_ready(redis, mid)
    pool.signal(signal.SIGKILL)
    assert pool.wait() == -signal.SIGKILL
    await allocation.request_cancel(redis, SERVER, "m-d1", "lobby_cancelled")
    pool.start()

    async def only_m_d2() -> bool:
        return await hosted(redis) == {"m-d2"}

    await eventually(only_m_d2)
    (result,) = await results(redis)
    assert (result.match_id, result.phase, result.reason) == (
        "m-d1",
        "cancelled",
        "lobby_cancelled",
    )
    status = await redis.hget(keys.match_status("m-d1"), "phase")
    assert status == str(ServerPhase.CANCELLED).encode()
    # the other match was restored and still takes its players
    alice, bob = await connect(pool, "m-d2", "alice", "bob")
    await alice.wait_for("phase", lambda d: d["phase"] == "live")
    await alice.close()
    await bob.close()


async def test_a_controllers_drain_mark_outlives_the_servers_heartbeats(
    pool: PoolServerProcess, redis: Redis
) -> None:
    """A pool controller marks an idle server draining before deleting it; the server's
    own heartbeats must not clear the mark, or a match could land on a server going away."""
    await wait_accepting(redis, SERVER)
    await redis.hset(keys.server_state(SERVER), ServerState.DRAINING, 1)
    before = int((await state(redis))[ServerState.HEARTBEAT_MS])

    async def two_heartbeats_later() -> bool:
        beat = int((await state(redis))[ServerState.HEARTBEAT_MS])
        return beat >= before + 2 * HEARTBEAT_INTERVAL_MS

    await eventually(two_heartbeats_later, within=15)
    assert (await state(redis))[ServerState.DRAINING] == "1"
    spec = MatchSpec("m-late", "duel", "blitz", 0, ("a", "b"))
    refused = await allocation.allocate(redis, SERVER, Assignment.of(spec, now_ms()))
    assert refused == allocation.NOT_ACCEPTING


async def test_a_match_on_a_warm_server_takes_its_history_at_its_own_times(
    pool: PoolServerProcess, redis: Redis
) -> None:
    """A warm server's feed history reaches a new match before the match's clock first
    runs: each tick is logged at the time it was received, so official prices flow at
    once. Taken after the clock, a history tick would count as received now and the
    official prices would stop for a delay window (the match frozen as stale)."""
    await wait_accepting(redis, SERVER)
    await assign(redis, SERVER, "m-warm", ("alice", "bob"), mode="duel", now_ms=now_ms())
    await wait_ready(redis, "m-warm")
    rows = [json.loads(r) for r in await redis.lrange(keys.match_log("m-warm"), 0, -1)]
    times = [r["at"] for r in rows if r["kind"] == "price"]
    assert len(times) >= 5 and times == sorted(times)
    # Ticks older than the match itself count from its creation (a delay window plus a
    # second ago); none is moved to the moment it was taken in.
    after_creation = times[times.count(times[0]) :]
    assert len(set(after_creation)) == len(after_creation), times
    assert times[-1] - times[0] >= 4000, times  # the duel's delay window
