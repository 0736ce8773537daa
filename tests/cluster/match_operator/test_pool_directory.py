"""The pool controller in process, against the real control plane (the operator's own
RBAC) and a real Redis: what allocation asks of it (`ServerDirectory`), and the
drain-then-check that keeps scale-down from removing a server allocated meanwhile."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client, config
from redis.asyncio import Redis

from match_operator.kube import KubeApi
from match_operator.metrics import OperatorMetrics
from match_operator.poolcontroller import PoolController
from match_operator.ports import PortAllocator
from match_operator.servers import ServerDirectory
from match_operator.settings import OperatorSettings
from tradearena.contracts import keys, resource
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.pool import Assignment, ServerState
from tradearena.orchestration import allocation

from .conftest import OperatorEnv

pytestmark = pytest.mark.k8s

SPEC = MatchSpec("m-1", "duel", "blitz", 0, ("alice", "bob"))


@pytest.fixture
async def controller(op_env: OperatorEnv, redis_url: str) -> AsyncIterator[PoolController]:
    configuration = client.Configuration()
    await config.load_kube_config(  # the operator's account
        config_file=str(op_env.kubeconfig), client_configuration=configuration
    )
    kube = KubeApi(client.ApiClient(configuration))
    redis = Redis.from_url(redis_url)
    settings = OperatorSettings(
        namespaces=(op_env.namespace,), image="registry.invalid/tradearena:test", standalone=True
    )
    ctl = PoolController(settings, kube, redis, PortAllocator(7000, 7999), OperatorMetrics())
    try:
        yield ctl
    finally:
        await redis.aclose()
        await kube.close()


def create_pool(env: OperatorEnv, name: str, **spec: object) -> None:
    body = {
        "apiVersion": resource.API_VERSION,
        "kind": resource.POOL_KIND,
        "metadata": {"name": name, "namespace": env.namespace},
        "spec": spec,
    }
    env.cluster.kubectl("create", "-f", "-", input=json.dumps(body))


async def report_ready(redis: Redis, server: str, capacity: int = 1) -> None:
    now = int(time.time() * 1000)
    await redis.hset(
        keys.server_state(server),
        mapping={
            ServerState.CAPACITY: capacity,
            ServerState.PLAYERS: 0,
            ServerState.READY: 1,
            ServerState.DRAINING: 0,
            ServerState.HEARTBEAT_MS: now,
            ServerState.STARTED_MS: now,
        },
    )


async def test_the_directory_counts_allocations_at_once_and_a_drained_server_is_refused(
    op_env: OperatorEnv, controller: PoolController
) -> None:
    ctl = controller
    directory: ServerDirectory = ctl  # the seam allocation uses
    ns = op_env.namespace
    assert ctl.redis is not None
    redis = ctl.redis
    create_pool(op_env, "default", buffer=1, maxReplicas=3)
    create_pool(op_env, "rapid", formats=["marathon"], buffer=0, maxReplicas=1)
    await ctl.rebuild()
    key = (ns, "default")
    await ctl.tick(key)
    assert ctl.servers_of(key) == []  # nothing before its pods are listed (as leader)
    await ctl.resync(key)
    await ctl.tick(key)
    [server] = [name for _, name in ctl.servers_of(key)]
    assert op_env.pod(server) is not None

    # The most specific pool serving a match; none: a cold start.
    [view] = directory.candidates(ns, SPEC)
    assert (view.name, view.pool, view.capacity, view.count, view.draining) == (
        server,
        "default",
        1,
        0,
        False,
    )
    assert view.host_port is not None and 7000 <= view.host_port <= 7999
    assert directory.candidates(ns, MatchSpec("m-r", "duel", "marathon", 0, ("a", "b"))) == []
    assert directory.candidates("elsewhere", SPEC) == []
    assert directory.server(ns, "no-such-server") is None

    # An allocation counts at once, and keeps counting until a read begun after it.
    await report_ready(redis, server)
    assert await allocation.allocate(redis, server, Assignment.of(SPEC, 1)) == allocation.ASSIGNED
    directory.note_allocated(ns, server, SPEC.match_id)
    view = directory.server(ns, server)
    assert view is not None and view.count == 1 and not view.candidate().allocatable
    await ctl.tick(key)  # reads it from Redis now; wants allocated 1 + buffer 1
    view = directory.server(ns, server)
    assert view is not None and view.count == 1
    assert len(ctl.servers_of(key)) == 2
    pod = op_env.pod(server)
    assert pod is not None
    assert pod["metadata"]["labels"][resource.ALLOCATED_LABEL] == "true"
    assert pod["metadata"]["annotations"][resource.MATCHES_ANNOTATION] == "1/1"

    # Scale-down races an allocation: the server is drained, found busy, and kept.
    assert not await ctl.retire(ns, server, "default", "scale-down")
    assert await redis.hget(keys.server_state(server), ServerState.DRAINING) == b"0"
    assert op_env.pod(server)["metadata"].get("deletionTimestamp") is None  # type: ignore[index]

    # Released: the count drops at once; once idle it drains for good and goes.
    await redis.hdel(keys.server_matches(server), SPEC.match_id)
    directory.note_released(ns, server, SPEC.match_id)
    view = directory.server(ns, server)
    assert view is not None and view.count == 0
    assert await ctl.retire(ns, server, "default", "scale-down")
    assert await redis.hget(keys.server_state(server), ServerState.DRAINING) == b"1"
    refused = await allocation.allocate(redis, server, Assignment.of(SPEC, 2))
    assert refused == allocation.NOT_ACCEPTING  # the allocation script sees the drain
    gone = op_env.pod(server)
    assert gone is None or gone["metadata"].get("deletionTimestamp") is not None
    view = directory.server(ns, server)
    assert view is not None and view.draining and not view.candidate().allocatable
