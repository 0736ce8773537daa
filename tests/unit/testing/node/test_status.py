"""The node's pure pod status: phase by the kubelet's rules, conditions."""

from __future__ import annotations

import datetime as dt

import pytest

from tradearena.testing.node.status import ContainerState, phase, pod_status

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _c(state: str, code: int = 0, *, ready: bool = False, crashed: bool = False) -> ContainerState:
    c = ContainerState("c", "img", state=state, exit_code=code, ready=ready)
    if crashed:
        c.last_terminated = {"exitCode": 1}
    return c


@pytest.mark.parametrize(
    ("policy", "init", "main", "expected"),
    [
        ("Always", [], [_c("waiting")], "Pending"),
        ("Always", [], [_c("running")], "Running"),
        ("Always", [_c("running")], [_c("waiting")], "Pending"),
        ("Never", [_c("terminated", 1)], [_c("waiting")], "Failed"),
        ("OnFailure", [_c("terminated", 1)], [_c("waiting")], "Pending"),
        ("Always", [], [_c("terminated", 0)], "Running"),
        ("OnFailure", [], [_c("terminated", 0)], "Succeeded"),
        ("Never", [], [_c("terminated", 0), _c("terminated", 2)], "Failed"),
        ("OnFailure", [], [_c("terminated", 2)], "Running"),
        ("Always", [], [_c("waiting", crashed=True)], "Running"),  # crash-loop back-off
    ],
)
def test_phase(
    policy: str, init: list[ContainerState], main: list[ContainerState], expected: str
) -> None:
    assert phase(policy, init, main) == expected


def test_ready_only_when_every_container_is_ready_and_transitions_keep_their_time() -> None:
    args = {
        "restart_policy": "Always",
        "init": [],
        "pod_ip": "10.77.0.2",
        "host_ip": "10.77.0.1",
        "start_time": NOW,
    }
    first = pod_status(
        main=[_c("running", ready=True), _c("running")], previous_conditions=[], now=NOW, **args
    )
    conditions = {c["type"]: c for c in first["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["PodScheduled"]["status"] == "True"
    later = NOW + dt.timedelta(seconds=5)
    second = pod_status(
        main=[_c("running", ready=True), _c("running", ready=True)],
        previous_conditions=first["conditions"],
        now=later,
        **args,
    )
    conditions2 = {c["type"]: c for c in second["conditions"]}
    assert conditions2["Ready"]["status"] == "True"
    assert conditions2["Ready"]["lastTransitionTime"] == "2026-01-01T00:00:05Z"
    assert conditions2["Initialized"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert second["podIP"] == "10.77.0.2"
    assert second["podIPs"] == [{"ip": "10.77.0.2"}]


def test_container_state_json() -> None:
    c = ContainerState("c", "img", state="waiting", reason="CrashLoopBackOff", restart_count=2)
    c.last_terminated = {"exitCode": 3, "reason": "Error"}
    out = c.to_json()
    assert out["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert out["lastState"] == {"terminated": {"exitCode": 3, "reason": "Error"}}
    assert out["restartCount"] == 2
