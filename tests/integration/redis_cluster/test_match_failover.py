"""A live match survives the loss of its Redis primary: the match server (a real
process, waiting for one replica per commit) on a real Redis Cluster whose primary for
the match's slot is killed mid-match and replaced (the killed node restarted, as a
managed service replaces a failed node). Nothing acknowledged is lost; the match
goes on; its result is published once and its log replays to that result."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from matchserver.engine.replay import verify
from matchserver.handlers import NAMESPACE
from matchserver.store import MatchStore
from tradearena import redisconn
from tradearena.contracts import keys
from tradearena.contracts.results import MatchResult
from tradearena.testing.match_client import MatchClient
from tradearena.testing.matchserver import MatchServerProcess
from tradearena.testing.redis_cluster import LocalRedisCluster

PLAYERS = ("alice", "bob")
MID = "m-failover"
ACK_WITHIN_S = 60  # an action sent during the failover is answered after it


async def act(client: MatchClient, order: str) -> dict[str, Any]:
    ack: dict[str, Any] = await client.sio.call(
        "action",
        {"type": "set_stops", "client_order_id": order},
        namespace=NAMESPACE,
        timeout=ACK_WITHIN_S,
    )
    return ack


async def test_a_killed_primary_loses_no_acknowledged_action(
    tmp_path: Path, redis_cluster: LocalRedisCluster, cluster_url: str
) -> None:
    server = MatchServerProcess(
        tmp_path,
        cluster_url,
        MID,
        PLAYERS,
        env_extra={
            "TRADEARENA_DURATION_MS": "30000",
            "TRADEARENA_REDIS_WAIT_REPLICAS": "1",
            "TRADEARENA_REDIS_WAIT_TIMEOUT_MS": "45000",
        },
    )
    server.start()
    alice, bob = MatchClient(server, "alice"), MatchClient(server, "bob")
    log_key = keys.match_log(MID)
    acked: list[str] = []
    try:
        await alice.connect()
        await bob.connect()
        await alice.wait_for("phase", lambda d: d["phase"] == "live")
        for i in range(5):
            ack = await act(alice, f"before-{i}")
            assert ack["code"] == "no_position", ack
            acked.append(f"before-{i}")

        primary = redis_cluster.primary_for(log_key)
        redis_cluster.kill(primary)
        during = asyncio.create_task(act(bob, "during"))
        await asyncio.to_thread(redis_cluster.wait_failover, log_key, primary)
        # The promoted replica has no replica of its own: nothing is acked meanwhile.
        assert not during.done()
        await asyncio.to_thread(redis_cluster.restart, primary)
        assert (await during)["code"] == "no_position"
        acked.append("during")
        for i in range(3):
            ack = await act(alice, f"after-{i}")
            assert ack["code"] == "no_position", ack
            acked.append(f"after-{i}")

        end = await bob.wait_for("match_end", within=60)
        assert (end["phase"], end["reason"]) == ("finished", "time")
        assert server.wait(30) == 0
    finally:
        await alice.close()
        await bob.close()
        server.stop()

    client = redisconn.connect(cluster_url)
    try:
        rows = await client.lrange(log_key, 0, -1)
        logged = [
            e["data"]["client_order_id"] for e in map(json.loads, rows) if e["kind"] == "action"
        ]
        assert logged == acked  # every acknowledged action, once, in order
        record = await MatchStore(client, MID).load_record()
        assert record is not None
        verification = verify(record)
        assert verification.ok, verification.differences
        results = [
            MatchResult.model_validate_json((fields or {})[b"result"])
            for _, fields in await client.xrange(keys.RESULTS_STREAM) or []
        ]
        assert [r.match_id for r in results] == [MID]  # published once, after the failover
        assert results[0].log_entries == len(rows)
    finally:
        await client.aclose()
