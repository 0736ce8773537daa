"""The operator's pure parts: CRD in sync with the catalogue, pod spec, host ports,
reconcile decisions. Milliseconds, no cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from match_operator.builders import (
    Observed,
    PodView,
    build_pod_spec,
    decide,
    iso,
)
from match_operator.crd import build_crd, render
from match_operator.ports import PortAllocator, PortsExhaustedError
from match_operator.settings import GAME_POOL_LABEL, OperatorSettings
from tradearena.contracts import resource
from tradearena.modes import default_catalogue, parse_catalogue
from tradearena.testing.paths import REPO

NOW = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)
SETTINGS = OperatorSettings(
    image="registry.example/tradearena:1.2.3",
    max_retries=2,
    startup_timeout_s=60,
    ttl_s=300,
    cors_origins=("https://play.example.com",),
)


def match(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "m-1",
            "namespace": "games",
            "uid": "uid-1",
            "generation": 1,
            "resourceVersion": "10",
            "finalizers": [resource.FINALIZER],
        },
        "spec": {
            "mode": "duel",
            "format": "blitz",
            "players": ["alice", "bob"],
            "symbol": "BTCUSDT",
            "cancel": False,
            **spec,
        },
        "status": status or {},
    }


def pod(
    phase: str = "Running",
    ready: bool = True,
    restarts: int = 0,
    *,
    exit_code: int | None = None,
    created: datetime = NOW,
    node: str = "n1",
    terminating: bool = False,
    before: int = 0,
) -> PodView:
    return PodView(
        name="m-1",
        phase=phase,
        ready=ready,
        node=node,
        host_port=7005,
        restarts=restarts,
        restarts_before=before,
        terminating=terminating,
        created=created,
        exit_code=exit_code,
        uid="pod-uid",
    )


# ------------------------------------------------------------------------------- CRD
def test_crd_file_is_generated_from_the_catalogue() -> None:
    on_disk = (REPO / "crds" / "match.yaml").read_text()
    assert on_disk == render(), "regenerate: python -m match_operator.crd > crds/match.yaml"
    crd = yaml.safe_load(on_disk)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    catalogue = default_catalogue()
    assert spec["properties"]["mode"]["enum"] == list(catalogue.modes)
    assert spec["properties"]["format"]["enum"] == list(catalogue.formats)
    assert spec["properties"]["players"]["maxItems"] == max(
        m.players.max for m in catalogue.modes.values()
    )
    assert crd["metadata"]["name"] == resource.CRD_NAME
    assert crd["spec"]["names"]["shortNames"] == ["mt"]
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert {"Phase", "Mode", "Players", "Address", "Age"} <= set(columns)


def test_a_new_mode_in_the_catalogue_changes_the_crd() -> None:
    raw = {
        "formats": {"blitz": 3},
        "auto_format": [{"min_move_pct": "0", "format": "blitz"}],
        "rules": {},
        "modes": {},
    }
    base = default_catalogue().model_dump(mode="json")
    rules = base["modes"]["duel"]["rules"]
    raw["modes"] = {
        "trio": {
            "players": {"min": 2, "recommended": 3, "max": 3},
            "countdown_ms": 1000,
            "rules": rules,
        }
    }
    crd = build_crd(parse_catalogue(raw))
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["mode"]["enum"] == ["trio"]
    rule = spec["x-kubernetes-validations"][0]
    assert "'trio': 3" in rule["rule"] and "trio 3" in rule["message"]


# ------------------------------------------------------------------------------- pod spec
def test_pod_spec_is_locked_down_and_carries_the_match() -> None:
    m = match(durationMs=90_000)
    p = build_pod_spec(m, SETTINGS, 7123, restarts_before=2)
    assert p["metadata"]["name"] == "m-1"  # deterministic: never a second pod
    assert p["metadata"]["labels"][resource.MATCH_LABEL] == "m-1"
    assert p["metadata"]["annotations"][resource.RESTARTS_ANNOTATION] == "2"
    owner = p["metadata"]["ownerReferences"][0]
    assert owner["uid"] == "uid-1" and owner["controller"] and owner["kind"] == "Match"
    spec = p["spec"]
    assert spec["restartPolicy"] == "OnFailure"
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == "tradearena-match-server"
    assert spec["terminationGracePeriodSeconds"] >= 60
    assert spec["nodeSelector"] == {GAME_POOL_LABEL: "game"}
    assert spec["tolerations"] == [
        {"key": GAME_POOL_LABEL, "operator": "Equal", "value": "game", "effect": "NoSchedule"}
    ]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = spec["containers"]
    assert c["image"] == "registry.example/tradearena:1.2.3"
    assert c["args"] == ["matchserver"]
    assert c["ports"] == [
        {"name": "game", "containerPort": 7123, "hostPort": 7123, "protocol": "TCP"},
        {"name": "admin", "containerPort": 9100, "protocol": "TCP"},  # no host port
    ]
    # The kubelet probes the game port; /metrics and /status are on the admin port.
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["cpu"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    assert env["TRADEARENA_MATCH_ID"] == "m-1"
    assert env["TRADEARENA_PLAYERS"] == "alice,bob"
    assert env["TRADEARENA_MODE"] == "duel"
    assert env["TRADEARENA_FORMAT"] == "blitz"
    assert env["TRADEARENA_DURATION_MS"] == "90000"
    assert env["TRADEARENA_PORT"] == "7123"
    assert env["TRADEARENA_ADMIN_PORT"] == "9100"
    assert env["TRADEARENA_FEED_SOURCE"] == "relay"
    assert env["TRADEARENA_CORS_ORIGINS"] == '["https://play.example.com"]'  # the lobby's
    assert env["TRADEARENA_JWKS_FILE"].startswith("/etc/tradearena/keys/")
    # Secrets by reference only: no Redis URL in the pod spec itself.
    assert env["TRADEARENA_REDIS_URL"] == {
        "secretKeyRef": {"name": "tradearena-redis", "key": "url"}
    }
    assert "TRADEARENA_DURATION_MS" not in {
        e["name"] for e in build_pod_spec(match(), SETTINGS, 7000)["spec"]["containers"][0]["env"]
    }


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEARENA_OPERATOR_NAMESPACES", "games, ops")
    monkeypatch.setenv("TRADEARENA_OPERATOR_NODE_SELECTOR", '{"pool": "x"}')
    monkeypatch.setenv("TRADEARENA_OPERATOR_PORT_MIN", "9000")
    monkeypatch.setenv("TRADEARENA_OPERATOR_PORT_MAX", "9010")
    s = OperatorSettings()
    assert s.namespaces == ("games", "ops")
    assert s.node_selector == {"pool": "x"}
    assert (s.port_min, s.port_max) == (9000, 9010)
    monkeypatch.setenv("TRADEARENA_OPERATOR_PORT_MIN", "9011")
    with pytest.raises(ValueError, match="port_min"):
        OperatorSettings()
    monkeypatch.setenv("TRADEARENA_OPERATOR_PORT_MIN", "9000")
    monkeypatch.setenv("TRADEARENA_OPERATOR_ADMIN_PORT", "9005")
    with pytest.raises(ValueError, match="admin_port"):
        OperatorSettings()


# ------------------------------------------------------------------------------- ports
def test_ports_fill_every_node_before_running_out() -> None:
    ports = PortAllocator(7000, 7002)
    got = [ports.allocate(f"m{i}", nodes=2) for i in range(6)]
    assert sorted(got) == [7000, 7000, 7001, 7001, 7002, 7002]
    assert got[:3] == [7000, 7001, 7002]  # spread first: one match per port per node
    assert ports.allocate("m0", nodes=2) == got[0]  # idempotent per owner
    with pytest.raises(PortsExhaustedError):
        ports.allocate("m6", nodes=2)
    assert ports.release("m1") == 7001
    assert ports.allocate("m6", nodes=2) == 7001
    assert ports.release("nobody") is None


def test_ports_are_rebuilt_from_live_pods() -> None:
    ports = PortAllocator(7000, 7001)
    ports.register("ns/a", 7000)
    ports.register("ns/a", 7000)  # idempotent
    ports.register("ns/b", 7001)
    assert ports.usage(7000) == 1 and len(ports) == 2
    with pytest.raises(PortsExhaustedError):
        ports.allocate("ns/c", nodes=1)  # one node: both ports taken by the live pods
    assert ports.allocate("ns/c", nodes=2, preferred=7001) == 7001  # a second node has it
    assert ports.usage(7001) == 2


# ------------------------------------------------------------------------------- decisions
def test_a_new_match_gets_its_finalizer_and_a_pod() -> None:
    m = match()
    m["metadata"]["finalizers"] = []
    plan = decide(Observed(m, None, NOW, port=7005), SETTINGS)
    assert plan.add_finalizer
    assert plan.create_pod == 7005
    assert plan.status["phase"] == "Creating"
    assert plan.status["createdAt"] == iso(NOW)
    assert plan.status["port"] == 7005
    assert [e[1] for e in plan.events] == ["Creating"]


def test_no_port_no_pod() -> None:
    plan = decide(Observed(match(), None, NOW, port=None), SETTINGS)
    assert plan.create_pod is None
    assert plan.events[0][1] == "NoHostPort"


def test_ready_pod_makes_the_match_ready_with_the_node_address() -> None:
    m = match({"phase": "Creating", "createdAt": iso(NOW)})
    plan = decide(Observed(m, pod(), NOW, node_address="203.0.113.7"), SETTINGS)
    assert plan.status["phase"] == "Ready"
    assert plan.status["address"] == "203.0.113.7"
    assert plan.status["port"] == 7005
    assert plan.status["node"] == "n1"
    ready = {c["type"]: c["status"] for c in plan.status["conditions"]}
    assert ready == {"Ready": "True", "Live": "False", "Ended": "False"}
    again = match({**m["status"], **plan.status})
    assert decide(Observed(again, pod(), NOW, node_address="203.0.113.7"), SETTINGS).empty


def test_startup_timeout_retries_then_fails() -> None:
    late = NOW + timedelta(seconds=61)
    m = match({"phase": "Creating"})
    plan = decide(Observed(m, pod(ready=False), late), SETTINGS)
    assert plan.status["phase"] == "Pending" and plan.status["retries"] == 1
    assert plan.delete_pod
    waiting = decide(Observed(m, pod(ready=False), NOW + timedelta(seconds=10)), SETTINGS)
    assert waiting.requeue_after == pytest.approx(50)
    spent = match({"phase": "Creating", "retries": 2})
    plan = decide(Observed(spent, pod(ready=False), late), SETTINGS)
    assert plan.status["phase"] == "Failed"
    assert "not Ready within 60s" in plan.status["reason"]
    assert plan.remove_finalizer and plan.release_port


def test_a_crash_before_ready_replaces_the_pod() -> None:
    m = match({"phase": "Creating"})
    plan = decide(Observed(m, pod(ready=False, restarts=1), NOW), SETTINGS)
    assert plan.status["phase"] == "Pending"
    assert plan.delete_pod
    # The failed attempt's pod is cleared before the next one is created.
    old = decide(
        Observed(match({"phase": "Pending", "retries": 1}), pod(phase="Failed", ready=False), NOW),
        SETTINGS,
    )
    assert old.delete_pod and old.create_pod is None and "phase" not in old.status


def test_a_live_match_restarts_in_place() -> None:
    live = match({"phase": "Live", "liveAt": iso(NOW), "port": 7005, "restartCount": 0})
    # The container crashed and the kubelet restarted it (restartPolicy OnFailure).
    plan = decide(Observed(live, pod(restarts=2, before=1), NOW, node_address="a"), SETTINGS)
    assert plan.status["restartCount"] == 3
    assert "phase" not in plan.status
    # The pod vanished: a new one with the same name and port.
    plan = decide(Observed(live, None, NOW, pod_confirmed_missing=True), SETTINGS)
    assert plan.create_pod == 7005 and plan.restarts_before == 1
    assert plan.status["restartCount"] == 1
    # A missing pod is confirmed with a read before anything is done.
    assert decide(Observed(live, None, NOW), SETTINGS).check_pod


def test_server_exit_zero_finishes_the_match_then_ttl_deletes_it() -> None:
    ready = match({"phase": "Ready"})
    plan = decide(Observed(ready, pod(phase="Succeeded", ready=False, exit_code=0), NOW), SETTINGS)
    assert plan.status["phase"] == "Finished" and plan.status["finishedAt"] == iso(NOW)
    assert not plan.delete_pod and plan.remove_finalizer
    done = match({"phase": "Finished", "finishedAt": iso(NOW)})
    assert decide(Observed(done, None, NOW + timedelta(seconds=100)), SETTINGS).requeue_after == 200
    assert decide(Observed(done, None, NOW + timedelta(seconds=300)), SETTINGS).delete_match


def test_cancel_writes_the_reason_and_stops_the_pod() -> None:
    m = match({"phase": "Live", "liveAt": iso(NOW)}, cancel=True, cancelReason="ops said so")
    plan = decide(Observed(m, pod(), NOW), SETTINGS)
    assert plan.status["phase"] == "Cancelling"
    assert plan.write_cancel == "ops said so"
    assert plan.delete_pod
    gone = match({"phase": "Cancelling"}, cancel=True, cancelReason="ops said so")
    plan = decide(Observed(gone, None, NOW, pod_confirmed_missing=True), SETTINGS)
    assert plan.status["phase"] == "Cancelled"
    assert plan.status["reason"] == "ops said so"
    assert plan.remove_finalizer


def test_deleting_a_match_cancels_it_before_the_finalizer_goes() -> None:
    m = match({"phase": "Ready"})
    m["metadata"]["deletionTimestamp"] = iso(NOW)
    plan = decide(Observed(m, pod(), NOW), SETTINGS)
    assert plan.status["phase"] == "Cancelling" and plan.write_cancel == "match deleted"
    assert plan.delete_pod and not plan.remove_finalizer
    terminating = decide(
        Observed(
            match({"phase": "Cancelling"}) | {"metadata": m["metadata"]}, pod(terminating=True), NOW
        ),
        SETTINGS,
    )
    assert not terminating.remove_finalizer and not terminating.delete_pod


def test_the_orchestrator_maps_match_resources_to_the_contract() -> None:
    from tradearena.contracts.orchestration import MatchSpec
    from tradearena.contracts.phases import MatchPhase
    from tradearena.orchestration.kubernetes import match_resource, match_status

    body = match_resource(MatchSpec("m-9", "standard", "quick", 1_500_000, ("a", "b", "c")), "g")
    assert body["metadata"] == {
        "name": "m-9",
        "namespace": "g",
        "labels": {"app.kubernetes.io/part-of": "tradearena"},
    }
    assert body["spec"] == {
        "mode": "standard",
        "format": "quick",
        "players": ["a", "b", "c"],
        "symbol": "BTCUSDT",
        "durationMs": 1_500_000,
    }
    ready = match_status(
        {
            "metadata": {"name": "m-9"},
            "status": {
                "phase": "Ready",
                "address": "203.0.113.9",
                "port": 7100,
                "restartCount": 1,
                "node": "n3",
                "pod": "m-9",
            },
        }
    )
    assert (ready.phase, ready.url, ready.restarts) == (
        MatchPhase.READY,
        "http://203.0.113.9:7100",
        1,
    )
    assert ready.detail == {"pod": "m-9", "node": "n3"}
    over = match_status(
        {
            "metadata": {"name": "m-9"},
            "status": {
                "phase": "Cancelled",
                "address": "203.0.113.9",
                "port": 7100,
                "reason": "ops",
            },
        }
    )
    assert (over.phase, over.address, over.port, over.reason) == (
        MatchPhase.CANCELLED,
        None,
        None,
        "ops",
    )
    assert match_status({"metadata": {"name": "m-9"}}).phase is MatchPhase.PENDING
