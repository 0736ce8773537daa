"""MatchServerPool on the real control plane: the operator process (real RBAC) keeps a
pool's buffer of server pods, grows it as servers are allocated, shrinks it by idle
servers only, rolls a template change over idle servers only, replaces lost pods and
shows each server's state on its pod and the pool's on its status (`kubectl get msp`).

kwok pods run nothing, so the test plays each pool server's Redis side, writing its
state hash and its matches exactly as the server does (the wire protocol of
`tradearena.contracts.pool`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from redis import Redis

from tradearena.contracts import keys, resource
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.pool import Assignment, ServerState
from tradearena.contracts.serverconfig import env_name

from .conftest import OperatorEnv, exited

pytestmark = pytest.mark.k8s

T = TypeVar("T")
POOL = "default"


def eventually(what: Callable[[], T | None], timeout: float = 45, message: str = "") -> T:
    """Poll until `what` returns something truthy (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {message}")
        time.sleep(0.2)


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def create_pool(env: OperatorEnv, name: str = POOL, **spec: Any) -> None:
    body = {
        "apiVersion": resource.API_VERSION,
        "kind": resource.POOL_KIND,
        "metadata": {"name": name, "namespace": env.namespace},
        "spec": spec,
    }
    env.cluster.kubectl("create", "-f", "-", input=json.dumps(body))


def servers(env: OperatorEnv, pool: str = POOL) -> dict[str, dict[str, Any]]:
    """The pool's live server pods by name."""
    items = env.cluster.kubectl_json(
        "get", "pods", "-n", env.namespace, "-l", f"{resource.SERVER_POOL_LABEL}={pool}"
    )["items"]
    return {p["metadata"]["name"]: p for p in items if not p["metadata"].get("deletionTimestamp")}


def pool_status(env: OperatorEnv, pool: str = POOL) -> dict[str, Any]:
    got: dict[str, Any] = env.cluster.kubectl_json(
        "get", resource.POOL_PLURAL, pool, "-n", env.namespace
    ).get("status", {})
    return got


def table(env: OperatorEnv, pool: str = POOL) -> dict[str, str]:
    """`kubectl get msp <pool>`: the apiserver's Table, as column -> cell."""
    out = env.cluster.kubectl("get", "msp", pool, "-n", env.namespace).stdout.splitlines()
    header, row = out[0].replace("IN USE", "IN_USE"), out[1]  # one column, same width
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    ends = [*starts[1:], len(header) + 100]
    return {
        header[a:b].strip().replace("_", " "): row[a:b].strip()
        for a, b in zip(starts, ends, strict=True)
    }


def allocate(redis: Redis, server: str, match_id: str, capacity: int = 1) -> None:
    """What the allocation script records plus the server's own state report."""
    spec = MatchSpec(match_id, "duel", "blitz", 0, ("alice", "bob"))
    redis.hset(keys.server_matches(server), match_id, Assignment.of(spec, 1).to_json())
    report(redis, server, capacity, players=2)


def report(redis: Redis, server: str, capacity: int = 1, players: int = 0) -> None:
    now = int(time.time() * 1000)
    redis.hset(
        keys.server_state(server),
        mapping={
            ServerState.CAPACITY: capacity,
            ServerState.PLAYERS: players,
            ServerState.READY: 1,
            ServerState.DRAINING: 0,
            ServerState.HEARTBEAT_MS: now,
            ServerState.STARTED_MS: now,
        },
    )


def release(redis: Redis, server: str, match_id: str) -> None:
    """The server publishing a result: the match leaves its hash."""
    redis.hdel(keys.server_matches(server), match_id)
    report(redis, server)


def ready_count(env: OperatorEnv, n: int) -> dict[str, dict[str, Any]] | None:
    pods = servers(env)
    ready = [
        p
        for p in pods.values()
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    ]
    return pods if len(pods) == n and len(ready) == n else None


def test_a_pool_keeps_its_buffer_grows_with_allocations_and_shrinks_by_idle_servers(
    op_env: OperatorEnv, redis: Redis
) -> None:
    op_env.start_operator(TRADEARENA_OPERATOR_STANDALONE="true")
    create_pool(op_env, capacity=1, buffer=2, minReplicas=1, maxReplicas=6)
    first = eventually(lambda: ready_count(op_env, 2), message="the buffer of 2")
    for name, pod in first.items():
        assert name.startswith(f"{POOL}-") and len(name) == len(POOL) + 6
        labels = pod["metadata"]["labels"]
        assert labels[resource.ALLOCATED_LABEL] == "false"
        assert labels[resource.SAFE_TO_EVICT_LABEL] == "true"
        (owner,) = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"]) == (resource.POOL_KIND, POOL)
    ports = {p["spec"]["containers"][0]["ports"][0]["hostPort"] for p in first.values()}
    assert len(ports) == 2  # one host port each
    eventually(lambda: pool_status(op_env).get("readyReplicas") == 2, message="status")
    row = table(op_env)
    assert (row["DESIRED"], row["READY"], row["ALLOCATED"], row["IN USE"], row["MODES"]) == (
        "2",
        "2",
        "0",
        "0/2",
        "all",
    )

    # Two servers allocated: the pool grows to keep two idle ones.
    a, b = sorted(first)
    allocate(redis, a, "m-a")
    allocate(redis, b, "m-b")
    grown = eventually(lambda: ready_count(op_env, 4), message="grown to 2 allocated + 2")
    assert set(first) < set(grown)
    eventually(
        lambda: (
            pool_status(op_env).get("allocatedReplicas") == 2
            and pool_status(op_env).get("readyReplicas") == 4
        ),
        message="status shows 2 allocated",
    )
    row = table(op_env)
    assert (row["DESIRED"], row["ALLOCATED"], row["IN USE"]) == ("4", "2", "2/4")

    def marked(name: str, allocated: str, matches: str, players: str) -> bool:
        pod = servers(op_env).get(name)
        if pod is None:
            return False
        meta = pod["metadata"]
        return (
            meta["labels"].get(resource.ALLOCATED_LABEL) == allocated
            and meta["labels"].get(resource.SAFE_TO_EVICT_LABEL)
            == ("false" if allocated == "true" else "true")
            and meta["annotations"].get(resource.MATCHES_ANNOTATION) == matches
            and meta["annotations"].get(resource.PLAYERS_ANNOTATION) == players
        )

    eventually(lambda: marked(a, "true", "1/1", "2"), message="a's pod marked allocated")
    assert marked(b, "true", "1/1", "2")
    selected = op_env.cluster.kubectl(
        "get",
        "pods",
        "-n",
        op_env.namespace,
        "-l",
        f"{resource.SAFE_TO_EVICT_LABEL}=false",
        "-o",
        "name",
    ).stdout.split()
    assert sorted(selected) == sorted([f"pod/{a}", f"pod/{b}"])  # what the PDB protects

    # a's match is over: the pool shrinks to 1 allocated + 2 idle, by an idle server,
    # drained in Redis before its pod went; b (allocated) is never touched.
    release(redis, a, "m-a")
    shrunk = eventually(lambda: ready_count(op_env, 3), message="shrunk to 3")
    assert b in shrunk
    (gone,) = set(grown) - set(shrunk)
    assert gone != b
    eventually(lambda: marked(a, "false", "0/1", "0") if a in shrunk else True, message="a idle")

    # Everything free: back to the buffer of 2 (min 1); b goes only now, as an idle server.
    release(redis, b, "m-b")
    eventually(lambda: ready_count(op_env, 2), message="back to the buffer")
    eventually(
        lambda: (
            pool_status(op_env).get("allocatedReplicas") == 0
            and pool_status(op_env).get("replicas") == 2
        ),
        message="status back to 2",
    )
    metrics = op_env.processes[0].metrics()
    key = f'namespace="{op_env.namespace}",pool="{POOL}"'
    assert metrics[f"tradearena_operator_pool_desired_servers{{{key}}}"] == 2
    assert metrics[f"tradearena_operator_pool_servers_created_total{{{key}}}"] == 4
    assert (
        metrics[f'tradearena_operator_pool_servers_deleted_total{{{key},reason="scale-down"}}'] == 2
    )


def test_allocated_servers_are_kept_above_max_replicas_until_their_matches_end(
    op_env: OperatorEnv, redis: Redis
) -> None:
    op_env.start_operator(TRADEARENA_OPERATOR_STANDALONE="true")
    create_pool(op_env, buffer=0, minReplicas=3, maxReplicas=3)
    pods = eventually(lambda: ready_count(op_env, 3), message="3 servers")
    names = sorted(pods)
    for i, name in enumerate(names):
        allocate(redis, name, f"m-{i}")
    op_env.cluster.kubectl(
        "patch",
        resource.POOL_PLURAL,
        POOL,
        "-n",
        op_env.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"minReplicas":0,"maxReplicas":1}}',
    )
    eventually(lambda: pool_status(op_env).get("replicas") == 1, message="desired 1")
    eventually(lambda: pool_status(op_env).get("allocatedReplicas") == 3, message="3 allocated")
    assert set(servers(op_env)) == set(names)  # every one hosts a match: none goes
    release(redis, names[0], "m-0")
    eventually(lambda: set(servers(op_env)) == set(names[1:]), message="the freed one goes")


def test_an_image_change_replaces_idle_servers_only(op_env: OperatorEnv, redis: Redis) -> None:
    op_env.start_operator(TRADEARENA_OPERATOR_STANDALONE="true")
    create_pool(op_env, buffer=1, minReplicas=2, maxReplicas=5)
    old = eventually(lambda: ready_count(op_env, 2), message="2 servers")
    busy, idle = sorted(old)
    allocate(redis, busy, "m-busy")
    old_hash = old[busy]["metadata"]["labels"][resource.TEMPLATE_HASH_LABEL]
    op_env.cluster.kubectl(
        "patch",
        resource.POOL_PLURAL,
        POOL,
        "-n",
        op_env.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"image":"registry.invalid/tradearena:next"}}',
    )

    def rolled() -> dict[str, dict[str, Any]] | None:
        pods = ready_count(op_env, 2)
        return pods if pods is not None and idle not in pods and busy in pods else None

    after = eventually(rolled, message="the idle server replaced, the busy one kept")
    (fresh,) = set(after) - {busy}
    assert after[fresh]["spec"]["containers"][0]["image"] == "registry.invalid/tradearena:next"
    assert after[fresh]["metadata"]["labels"][resource.TEMPLATE_HASH_LABEL] != old_hash
    assert after[busy]["metadata"]["labels"][resource.TEMPLATE_HASH_LABEL] == old_hash
    assert pool_status(op_env)["templateHash"] != old_hash

    release(redis, busy, "m-busy")  # now idle and outdated: replaced too
    final = eventually(
        lambda: (p := ready_count(op_env, 2)) is not None and busy not in p and p,
        message="the formerly busy server replaced once idle",
    )
    images = {p["spec"]["containers"][0]["image"] for p in final.values()}
    assert images == {"registry.invalid/tradearena:next"}


def test_a_deleted_or_failed_pool_pod_is_replaced(op_env: OperatorEnv) -> None:
    op = op_env.start_operator(TRADEARENA_OPERATOR_STANDALONE="true")
    create_pool(op_env, buffer=2, maxReplicas=4)
    pods = eventually(lambda: ready_count(op_env, 2), message="2 servers")
    victim, failing = sorted(pods)
    op_env.cluster.kubectl("delete", "pod", victim, "-n", op_env.namespace, "--wait=false")
    replaced = eventually(
        lambda: (p := ready_count(op_env, 2)) is not None and victim not in p and p,
        message="the deleted pod replaced",
    )
    assert failing in replaced
    op_env.patch_pod_status(failing, exited(1))
    again = eventually(
        lambda: (p := ready_count(op_env, 2)) is not None and failing not in p and p,
        message="the failed pod replaced",
    )
    assert len(again) == 2
    metrics = op.metrics()
    key = f'namespace="{op_env.namespace}",pool="{POOL}"'
    assert metrics[f'tradearena_operator_pool_servers_deleted_total{{{key},reason="failed"}}'] == 1
    assert metrics[f"tradearena_operator_pool_servers_created_total{{{key}}}"] == 4

    def events() -> list[tuple[str, str]] | None:
        items = op_env.cluster.kubectl_json(
            "get",
            "events",
            "-n",
            op_env.namespace,
            "--field-selector",
            f"involvedObject.kind={resource.POOL_KIND},involvedObject.name={POOL}",
        )["items"]
        got = [(e["reason"], e["message"]) for e in items]
        return got if len(got) >= 5 else None

    posted = eventually(events, message="the pool's Events")  # `kubectl describe msp`
    assert sum(1 for reason, _ in posted if reason == "ServerCreated") == 4
    assert ("ServerDeleted", f"{failing} (failed)") in posted


def test_a_pool_serving_some_modes_says_so_and_the_apiserver_refuses_bad_pools(
    op_env: OperatorEnv,
) -> None:
    op_env.start_operator(TRADEARENA_OPERATOR_STANDALONE="true")
    create_pool(op_env, "duels", modes=["duel"], formats=["blitz"], buffer="50%", minReplicas=1)
    eventually(lambda: ready_count_of(op_env, "duels", 1), message="min 1 with a % buffer")
    eventually(lambda: table(op_env, "duels").get("MODES") == "duel/blitz", message="MODES")
    for bad in (
        {"modes": ["nonsense"]},
        {"buffer": "100%"},
        {"buffer": -1},
        {"minReplicas": 3, "maxReplicas": 2},
        {"capacity": 0},
    ):
        res = op_env.cluster.kubectl(
            "create",
            "-f",
            "-",
            input=json.dumps(
                {
                    "apiVersion": resource.API_VERSION,
                    "kind": resource.POOL_KIND,
                    "metadata": {"name": "bad", "namespace": op_env.namespace},
                    "spec": bad,
                }
            ),
            check=False,
        )
        assert res.returncode != 0, bad


def ready_count_of(env: OperatorEnv, pool: str, n: int) -> bool:
    return len(servers(env, pool)) == n


def test_two_replicas_keep_one_buffer_and_the_standby_takes_over(op_env: OperatorEnv) -> None:
    replicas = [op_env.start_operator(), op_env.start_operator()]
    create_pool(op_env, buffer=2, maxReplicas=4)
    first = eventually(lambda: ready_count(op_env, 2), message="the buffer of 2")
    key = f'tradearena_operator_pool_servers_created_total{{namespace="{op_env.namespace}",pool="{POOL}"}}'
    created = [r.metrics().get(key, 0) for r in replicas]
    assert sorted(created) == [0, 2], created  # one worked, the other stood by
    leader, standby = (replicas[0], replicas[1]) if created[0] else (replicas[1], replicas[0])
    pool = op_env.cluster.kubectl_json("get", resource.POOL_PLURAL, POOL, "-n", op_env.namespace)
    assert not pool["metadata"].get("finalizers")  # nothing holds a pool once the operator is gone

    leader.kill()
    victim = sorted(first)[0]
    op_env.cluster.kubectl("delete", "pod", victim, "-n", op_env.namespace, "--wait=false")
    eventually(
        lambda: (p := ready_count(op_env, 2)) is not None and victim not in p,
        timeout=90,  # after the leader's lease ran out
        message="the standby replaced the pod",
    )
    assert standby.metrics().get(key, 0) == 1


def test_a_deleted_pool_takes_its_servers_along_even_with_the_operator_gone(
    op_env: OperatorEnv,
) -> None:
    op = op_env.start_operator(TRADEARENA_OPERATOR_STANDALONE="true")
    create_pool(op_env, buffer=2, maxReplicas=2)
    eventually(lambda: ready_count(op_env, 2), message="2 servers")
    assert op.stop() == 0
    op_env.cluster.kubectl(
        "delete", resource.POOL_PLURAL, POOL, "-n", op_env.namespace, "--timeout=30s"
    )  # no finalizer waits for an operator
    eventually(lambda: not servers(op_env), message="the servers garbage-collected")


def test_a_server_hosting_several_matches_shows_its_share_of_the_capacity(
    op_env: OperatorEnv, redis: Redis
) -> None:
    op_env.start_operator(TRADEARENA_OPERATOR_STANDALONE="true")
    create_pool(op_env, capacity=4, buffer=1, minReplicas=1, maxReplicas=3)
    [server] = eventually(lambda: ready_count(op_env, 1), message="1 server")
    env = {
        e["name"]: e.get("value") for e in servers(op_env)[server]["spec"]["containers"][0]["env"]
    }
    assert env[env_name("server_id")] == server and env[env_name("capacity")] == "4"
    allocate(redis, server, "m-1", capacity=4)
    allocate(redis, server, "m-2", capacity=4)
    eventually(lambda: ready_count(op_env, 2), message="one more idle server")
    eventually(lambda: table(op_env)["IN USE"] == "2/8", message="IN USE 2/8")
    pod = servers(op_env)[server]["metadata"]
    assert pod["annotations"][resource.MATCHES_ANNOTATION] == "2/4"
    assert pod["annotations"][resource.PLAYERS_ANNOTATION] == "2"
    assert pod["annotations"][resource.AUTOSCALER_SAFE_TO_EVICT] == "false"
    assert pod["labels"][resource.ALLOCATED_LABEL] == "true"
