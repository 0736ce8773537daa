"""Allocation on the real control plane: new Matches bound to warm pool servers
(Packed), a cold-start pod as the fallback, two active operators racing, cancel
through a server's inbox, players and server in `kubectl get matches`.

kwok pods run nothing: each pool server's side of the Redis protocol (state hash,
inbox, the match's reports) is played by `ScriptedPoolServer`, the wire protocol a
real server speaks. The operator runs as a real process with the pool directory of
`tradearena.testing.pool_directory` (the pods below and their Redis reports).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kubernetes_asyncio import config

from tradearena.contracts import keys
from tradearena.contracts.phases import ServerPhase
from tradearena.contracts.pool import Assignment
from tradearena.testing.pool_server import ScriptedPoolServer, report

from .conftest import OperatorEnv

pytestmark = pytest.mark.k8s

POOL = "duel-blitz"
SERVES = "duel/blitz"
WARM = 'tradearena_operator_allocations_total{outcome="warm"}'
COLD = 'tradearena_operator_allocations_total{outcome="cold"}'
WARM_LATENCY = 'tradearena_operator_allocation_latency_seconds_count{outcome="warm"}'
COLD_LATENCY = 'tradearena_operator_allocation_latency_seconds_count{outcome="cold"}'
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


@pytest.fixture
def servers(op_env: OperatorEnv) -> Iterator[list[ScriptedPoolServer]]:
    """The scripted servers a test starts (stopped after it)."""
    started: list[ScriptedPoolServer] = []
    yield started
    for server in started:
        server.stop()


def pool_server(
    env: OperatorEnv,
    started: list[ScriptedPoolServer],
    name: str,
    capacity: int,
    host_port: int,
    *,
    auto_ack: bool = True,
) -> ScriptedPoolServer:
    env.create_pool_server(name, POOL, host_port, SERVES)
    server = ScriptedPoolServer(env.redis_url, name, capacity, auto_ack=auto_ack).start()
    started.append(server)
    return server


def occupy(env: OperatorEnv, server: str, match_id: str) -> None:
    """A match the server hosts already (assigned before this test's Matches)."""
    r = redis.Redis.from_url(env.redis_url)
    try:
        assignment = Assignment(match_id, "duel", "blitz", 0, ("x", "y"), "BTCUSDT", 0)
        r.hset(keys.server_matches(server), match_id, assignment.to_json())
    finally:
        r.close()


def create_matches(env: OperatorEnv, names: list[str]) -> None:
    """All at once, in one request to the apiserver (a burst)."""
    items = [
        {
            "apiVersion": "tradearena.io/v1alpha1",
            "kind": "Match",
            "metadata": {"name": name, "namespace": env.namespace},
            "spec": {"mode": "duel", "format": "blitz", "players": ["alice", "bob"]},
        }
        for name in names
    ]
    env.cluster.kubectl(
        "create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )


def matches_table(env: OperatorEnv) -> dict[str, Any]:
    """The apiserver's own Table of Matches (what `kubectl get matches` prints)."""

    async def get() -> dict[str, Any]:
        api = await config.new_client_from_config(config_file=str(env.cluster.kubeconfig))
        try:
            response = await api.call_api(
                f"/apis/tradearena.io/v1alpha1/namespaces/{env.namespace}/matches",
                "GET",
                header_params={"Accept": TABLE},
                auth_settings=["BearerToken"],
                _preload_content=False,
            )
            body: dict[str, Any] = json.loads(await response.read())
            return body
        finally:
            await api.close()

    return asyncio.run(get())


def test_a_match_is_bound_to_a_ready_server_and_ready_on_its_acknowledgement(
    op_env: OperatorEnv, servers: list[ScriptedPoolServer]
) -> None:
    server = pool_server(op_env, servers, "pool-a", capacity=4, host_port=7400, auto_ack=False)
    # A slow timer: only the acknowledgement itself can make the Match Ready quickly.
    op = op_env.start_operator(pools=True, TRADEARENA_OPERATOR_TIMER_INTERVAL_S="60")
    op_env.create_match("m-warm")
    op_env.wait_phase("m-warm", "Creating")
    assert list(server.hosted()) == ["m-warm"]
    assert server.hosted()["m-warm"].players == ("alice", "bob")
    assert op_env.pod("m-warm") is None  # no pod of its own

    acked = time.monotonic()
    server.ack("m-warm")
    match = op_env.wait_phase("m-warm", "Ready", timeout=10)
    assert time.monotonic() - acked < 5  # event-driven, not the 60 s timer

    status = match["status"]
    pod = op_env.pod("pool-a")
    assert pod is not None
    node = pod["spec"]["nodeName"]
    assert status["allocation"] == "warm"
    assert status["server"] == "pool-a" and status["pool"] == POOL
    assert status["node"] == node
    assert status["address"] == op_env.cluster.node_external_ips[node]
    assert status["port"] == 7400 and status["scheme"] == "http"
    assert "pod" not in status
    r = redis.Redis.from_url(op_env.redis_url)
    try:
        assert r.get(keys.match_server("m-warm")) == b"pool-a"  # the binding
    finally:
        r.close()
    messages = op_env.event_messages("m-warm")
    assert "pool server pool-a" in messages["Allocated"]
    assert "ColdStart" not in messages
    metrics = op.metrics()
    assert metrics[WARM] == 1 and metrics[COLD] == 0
    assert metrics[WARM_LATENCY] == 1
    assert metrics["tradearena_operator_pods_created_total"] == 0


def test_packed_puts_a_match_on_the_partly_used_server_first(
    op_env: OperatorEnv, servers: list[ScriptedPoolServer]
) -> None:
    idle = pool_server(op_env, servers, "pool-a", capacity=4, host_port=7400)
    used = pool_server(op_env, servers, "pool-b", capacity=4, host_port=7401)
    occupy(op_env, "pool-b", "m-earlier")
    op_env.start_operator(pools=True)
    names = ["m-pack0", "m-pack1", "m-pack2"]
    for name in names:  # one at a time: each sees the previous one counted
        op_env.create_match(name)
        assert op_env.wait_phase(name, "Ready")["status"]["server"] == "pool-b"
    assert sorted(used.hosted()) == ["m-earlier", *names]  # 4 of 4: full
    assert idle.hosted() == {}
    op_env.create_match("m-pack3")  # the partly used one is full: the idle one now
    assert op_env.wait_phase("m-pack3", "Ready")["status"]["server"] == "pool-a"


def test_no_room_or_no_pool_falls_back_to_a_pod_of_its_own(
    op_env: OperatorEnv, servers: list[ScriptedPoolServer]
) -> None:
    full = pool_server(op_env, servers, "pool-a", capacity=1, host_port=7400)
    occupy(op_env, "pool-a", "m-earlier")
    op = op_env.start_operator(pools=True)
    op_env.create_match("m-cold")
    match = op_env.wait_phase("m-cold", "Ready")
    assert match["status"]["allocation"] == "cold"
    assert match["status"]["server"] == "m-cold" == match["status"]["pod"]
    assert op_env.pod("m-cold") is not None
    assert list(full.hosted()) == ["m-earlier"]
    assert "no room" in op_env.event_messages("m-cold")["ColdStart"]

    op_env.create_match("m-sprint", format="sprint")  # no pool serves duel/sprint
    op_env.wait_phase("m-sprint", "Ready")
    assert "no pool serves duel/sprint" in op_env.event_messages("m-sprint")["ColdStart"]
    r = redis.Redis.from_url(op_env.redis_url)
    try:  # bound to its own pod: no replica can put it on a pool server as well
        assert r.get(keys.match_server("m-cold")) == b"pod/m-cold"
    finally:
        r.close()
    metrics = op.metrics()
    assert metrics[COLD] == 2 and metrics[WARM] == 0 and metrics[COLD_LATENCY] == 2


def test_two_active_operators_racing_never_overfill_a_server_nor_double_a_match(
    op_env: OperatorEnv, servers: list[ScriptedPoolServer]
) -> None:
    capacity = 8
    pool = [
        pool_server(op_env, servers, f"pool-{i}", capacity=capacity, host_port=7400 + i)
        for i in range(3)
    ]
    ops = [
        op_env.start_operator(pools=True, TRADEARENA_OPERATOR_STANDALONE="true") for _ in range(2)
    ]
    names = [f"m-race{i:02d}" for i in range(30)]
    create_matches(op_env, names)
    for name in names:
        op_env.wait_phase(name, "Ready", timeout=120)

    hosted = {s.server_id: set(s.hosted()) for s in pool}
    for server, matches in hosted.items():
        assert len(matches) <= capacity, (server, matches)
    placed = [m for matches in hosted.values() for m in matches]
    assert len(placed) == len(set(placed))  # no match on two servers
    r = redis.Redis.from_url(op_env.redis_url)
    try:
        warm = cold = 0
        for name in names:
            status = op_env.match(name)["status"]
            binding = (r.get(keys.match_server(name)) or b"").decode()
            if status["allocation"] == "warm":
                warm += 1
                assert binding == status["server"]
                assert name in hosted[binding]
                assert op_env.pod(name) is None
            else:
                cold += 1
                assert binding == f"pod/{name}"
                assert name not in placed
                assert op_env.pod(name) is not None
    finally:
        r.close()
    assert (warm, cold) == (3 * capacity, 30 - 3 * capacity)  # every slot used, no more
    metrics = [op.metrics() for op in ops]
    assert sum(m[WARM] for m in metrics) == warm  # each allocation recorded once
    assert sum(m[COLD] for m in metrics) == cold


def test_cancel_of_a_pool_bound_match_reaches_the_servers_inbox_and_ends_it(
    op_env: OperatorEnv, servers: list[ScriptedPoolServer]
) -> None:
    server = pool_server(op_env, servers, "pool-a", capacity=4, host_port=7400)
    op_env.start_operator(pools=True)
    op_env.create_match("m-stop")
    op_env.wait_phase("m-stop", "Ready")
    r = redis.Redis.from_url(op_env.redis_url)
    try:
        report(r, "m-stop", ServerPhase.LIVE, connected=2, players=2)
        op_env.wait_phase("m-stop", "Live")
        op_env.cluster.kubectl(
            "patch",
            "match",
            "m-stop",
            "-n",
            op_env.namespace,
            "--type=merge",
            "-p",
            '{"spec":{"cancel":true,"cancelReason":"ops: feed outage"}}',
        )
        done = op_env.wait_phase("m-stop", "Cancelled")
        assert done["status"]["reason"] == "ops: feed outage"
        assert server.cancelled == {"m-stop": "ops: feed outage"}  # read from its inbox
        assert "m-stop" not in server.hosted()  # the slot is free again
        assert "finalizers" not in done["metadata"]
        assert {"Cancelling", "Cancelled"} <= set(op_env.events("m-stop"))

        # Deleting a bound Match: the finalizer goes once the server settled it.
        op_env.create_match("m-del")
        op_env.wait_phase("m-del", "Ready")
        op_env.cluster.kubectl("delete", "match", "m-del", "-n", op_env.namespace, "--timeout=60s")
        assert server.cancelled["m-del"] == "match deleted"
    finally:
        r.close()


def test_the_table_shows_players_connected_and_the_server(
    op_env: OperatorEnv, servers: list[ScriptedPoolServer]
) -> None:
    pool_server(op_env, servers, "pool-a", capacity=4, host_port=7400)
    op_env.start_operator(pools=True)
    op_env.create_match("m-show")
    op_env.wait_phase("m-show", "Ready")
    r = redis.Redis.from_url(op_env.redis_url)
    try:  # the server's coalesced counts, as it rewrites them
        r.hset(keys.match_status("m-show"), mapping={"connected": 1, "players": 2})
    finally:
        r.close()
    op_env.cluster.wait_until(
        "the players count",
        lambda: op_env.match("m-show")["status"].get("playersSummary") == "1/2",
        timeout=30,
    )
    table = matches_table(op_env)
    assert table["kind"] == "Table"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:5] == ["Name", "Phase", "Mode", "Players", "Server"]
    (row,) = table["rows"]
    cells = dict(zip(columns, row["cells"], strict=True))
    assert (cells["Name"], cells["Phase"], cells["Players"], cells["Server"]) == (
        "m-show",
        "Ready",
        "1/2",
        "pool-a",
    )
    assert cells["Port"] == 7400


def test_a_server_gone_before_live_reallocates_and_once_live_fails_the_match(
    op_env: OperatorEnv, servers: list[ScriptedPoolServer]
) -> None:
    first = pool_server(op_env, servers, "pool-a", capacity=1, host_port=7400)
    second = pool_server(op_env, servers, "pool-b", capacity=1, host_port=7401)
    op_env.start_operator(pools=True)
    op_env.create_match("m-lost")
    assert op_env.wait_phase("m-lost", "Ready")["status"]["server"] == "pool-a"
    op_env.cluster.kubectl("delete", "pod", "pool-a", "-n", op_env.namespace, "--wait=true")
    match = op_env.cluster.wait_until(
        "the match on the other server",
        lambda: (
            (m := op_env.match("m-lost"))["status"].get("server") == "pool-b"
            and m["status"]["phase"] == "Ready"
            and m
        ),
        timeout=60,
    )
    assert match["status"]["retries"] == 1
    assert "Retrying" in op_env.events("m-lost")
    assert list(second.hosted()) == ["m-lost"]
    assert first.hosted() == {}  # given up on: its record of the match is gone

    r = redis.Redis.from_url(op_env.redis_url)
    try:
        report(r, "m-lost", ServerPhase.LIVE, connected=2, players=2)
    finally:
        r.close()
    op_env.wait_phase("m-lost", "Live")
    op_env.cluster.kubectl("delete", "pod", "pool-b", "-n", op_env.namespace, "--wait=true")
    failed = op_env.wait_phase("m-lost", "Failed")
    assert failed["status"]["reason"] == "pool server pool-b gone"
    assert "finalizers" not in failed["metadata"]
