"""One pod per Match, never two: across an operator killed mid-flight and with two
replicas running at once (kopf peering elects one); plus the lobby's Kubernetes
orchestrator following a Match with a real watch."""

from __future__ import annotations

import asyncio

import pytest

from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.phases import MatchPhase
from tradearena.orchestration.kubernetes import KubernetesOrchestrator

from .conftest import OperatorEnv

pytestmark = pytest.mark.k8s

CREATED = "tradearena_operator_pods_created_total"


def pod_state(env: OperatorEnv) -> dict[str, tuple[str, int, str]]:
    """match -> (pod uid, host port, node) for every live match-server pod."""
    return {
        p["metadata"]["name"]: (
            p["metadata"]["uid"],
            p["spec"]["containers"][0]["ports"][0]["hostPort"],
            p["spec"].get("nodeName", ""),
        )
        for p in env.pods()
        if p["metadata"].get("deletionTimestamp") is None
    }


def test_an_operator_killed_mid_flight_never_doubles_a_pod_and_rebuilds_its_ports(
    op_env: OperatorEnv,
) -> None:
    first = op_env.start_operator()
    for i in range(4):
        op_env.create_match(f"m-r{i}")
    for i in range(4):
        op_env.wait_phase(f"m-r{i}", "Ready")
    before = pod_state(op_env)
    assert len({port for _, port, _ in before.values()}) == 4

    first.kill()  # SIGKILL: no clean-up, its peering record stays behind
    op_env.create_match("m-r4")
    op_env.create_match("m-r5")
    op_env.cluster.kubectl("delete", "pod", "m-r1", "-n", op_env.namespace, "--wait=true")

    second = op_env.start_operator()
    for i in range(6):
        op_env.wait_phase(f"m-r{i}", "Ready", timeout=90)
    after = pod_state(op_env)
    assert sorted(after) == [f"m-r{i}" for i in range(6)]
    for name in ("m-r0", "m-r2", "m-r3"):  # untouched: the very same pods
        assert after[name] == before[name]
    assert after["m-r1"][0] != before["m-r1"][0]  # replaced: it was deleted
    # Allocations were rebuilt from the live pods: no new pod took a port in use.
    assert len({port for _, port, _ in after.values()}) == 6
    assert second.metrics()[CREATED] == 3


def test_two_replicas_elect_one_and_the_other_takes_over(op_env: OperatorEnv) -> None:
    replicas = [op_env.start_operator(), op_env.start_operator()]
    names = [f"m-p{i}" for i in range(6)]
    for name in names:
        op_env.create_match(name)
    for name in names:
        op_env.wait_phase(name, "Ready")
    assert sorted(pod_state(op_env)) == names
    created = [r.metrics()[CREATED] for r in replicas]
    assert sorted(created) == [0, 6], created  # one worked, the other stood by
    leader, standby = (replicas[0], replicas[1]) if created[0] else (replicas[1], replicas[0])
    uids = {name: state[0] for name, state in pod_state(op_env).items()}

    leader.kill()
    op_env.create_match("m-p6")
    op_env.wait_phase("m-p6", "Ready", timeout=90)  # after the leader's lease ran out
    assert standby.metrics()[CREATED] == 1
    after = pod_state(op_env)
    assert {name: after[name][0] for name in names} == uids


async def test_the_kubernetes_orchestrator_watches_a_match_to_ready_and_cancels_it(
    op_env: OperatorEnv,
) -> None:
    op_env.start_operator()
    orchestrator = await KubernetesOrchestrator.connect(
        op_env.namespace, kubeconfig=str(op_env.cluster.kubeconfig)
    )
    try:
        spec = MatchSpec("m-orch", "duel", "blitz", 180_000, ("alice", "bob"))
        await orchestrator.start(spec)
        await orchestrator.start(spec)  # idempotent
        seen = []

        async def until_ready() -> None:
            async for status in orchestrator.watch("m-orch"):
                seen.append(status)
                if status.phase is MatchPhase.READY:
                    return

        await asyncio.wait_for(until_ready(), 60)
        ready = seen[-1]
        node = op_env.match("m-orch")["status"]["node"]
        assert ready.address == op_env.cluster.node_external_ips[node]
        assert ready.port is not None and 7000 <= ready.port <= 8000
        assert ready.url == f"http://{ready.address}:{ready.port}"
        assert [s.phase for s in seen][-1] is MatchPhase.READY
        assert seen[0].phase in (MatchPhase.PENDING, MatchPhase.CREATING, MatchPhase.READY)
        status = await orchestrator.status("m-orch")
        assert status is not None and status.phase is MatchPhase.READY
        assert [s.match_id for s in await orchestrator.list_active()] == ["m-orch"]
        assert await orchestrator.status("m-nothing") is None

        await orchestrator.cancel("m-orch", "formation abandoned")
        phases = [s.phase async for s in orchestrator.watch("m-orch")]
        assert phases[-1] is MatchPhase.CANCELLED
        final = await orchestrator.status("m-orch")
        assert final is not None and final.reason == "formation abandoned"
        assert final.address is None  # nobody is sent to a cancelled match
        assert await orchestrator.list_active() == []
    finally:
        await orchestrator.close()
