"""The Agones example (charts/tradearena/examples/agones-fleet.yaml) runs the pool server
exactly as pool_server_config says, and names the Counter and List the server reports.

Agones is not run here: this checks the manifests, not a cluster."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from tradearena.contracts import agones
from tradearena.contracts.serverconfig import (
    FilePath,
    Secret,
    SecretRef,
    ServerDeployment,
    Value,
    env_name,
    pool_server_config,
)
from tradearena.testing.paths import REPO

EXAMPLE = REPO / "charts" / "tradearena" / "examples" / "agones-fleet.yaml"


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    parsed = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    by_kind = {d["kind"]: d for d in parsed}
    assert len(by_kind) == len(parsed) == 3
    return by_kind


def gameserver_spec(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = docs["Fleet"]["spec"]["template"]["spec"]
    return spec


def container(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = gameserver_spec(docs)["template"]["spec"]["containers"]
    assert only["args"] == ["matchserver"]
    c: dict[str, Any] = only
    return c


def test_the_kinds_and_api_versions_are_agones_own(docs: dict[str, dict[str, Any]]) -> None:
    assert docs["Fleet"]["apiVersion"] == "agones.dev/v1"
    assert docs["GameServerAllocation"]["apiVersion"] == "allocation.agones.dev/v1"
    assert docs["FleetAutoscaler"]["apiVersion"] == "autoscaling.agones.dev/v1"
    assert docs["FleetAutoscaler"]["spec"]["fleetName"] == docs["Fleet"]["metadata"]["name"]


def test_the_env_is_pool_server_config(docs: dict[str, dict[str, Any]]) -> None:
    spec = gameserver_spec(docs)
    c = container(docs)
    env = {e["name"]: e for e in c["env"]}
    capacity = spec["counters"][agones.MATCHES_COUNTER]["capacity"]
    (players_port,) = spec["ports"]
    # The deployment choices the manifest makes, as the operator's own pods make them.
    deployment = ServerDeployment(
        host="0.0.0.0",
        redis=Secret("tradearena-redis", "url"),
        verify_key="/etc/tradearena/keys/jwks.json",
        verify_key_kind="jwks_file",
        feed_source="relay",
        log_format="json",
        cors_origins=("https://play.example.com",),
        admin_port=9100,
    )
    entries = pool_server_config("ignored", capacity, players_port["containerPort"], deployment)
    expected = {env_name(e.field) for e in entries}
    agones_own = {"TRADEARENA_AGONES_HEALTH_INTERVAL_MS"}
    assert set(env) == expected | agones_own
    mounts = [PurePosixPath(m["mountPath"]) for m in c["volumeMounts"]]
    for entry in entries:
        var = env[env_name(entry.field)]
        if isinstance(entry, Value) and entry.field == "server_id":
            # The GameServer's own name: what an allocation's status.gameServerName says.
            assert var["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        elif isinstance(entry, Value):
            assert var["value"] == entry.value, entry.field
        elif isinstance(entry, SecretRef):
            assert var["valueFrom"]["secretKeyRef"] == {"name": entry.secret, "key": entry.key}
        else:
            assert isinstance(entry, FilePath)
            assert var["value"] == entry.path
            assert PurePosixPath(entry.path).parent in mounts, entry.path
    assert "AGONES_SDK_HTTP_PORT" not in env  # Agones sets it
    health_ms = int(env["TRADEARENA_AGONES_HEALTH_INTERVAL_MS"]["value"])
    assert health_ms < spec["health"]["periodSeconds"] * 1000
    assert [p["containerPort"] for p in c["ports"]] == [9100]  # admin: no host port


def test_the_counter_and_list_the_server_reports(docs: dict[str, dict[str, Any]]) -> None:
    spec = gameserver_spec(docs)
    assert set(spec["counters"]) == {agones.MATCHES_COUNTER}
    assert set(spec["lists"]) == {agones.PLAYERS_LIST}
    assert spec["counters"][agones.MATCHES_COUNTER]["count"] == 0
    assert 0 < spec["lists"][agones.PLAYERS_LIST]["capacity"] <= agones.LIST_MAX_CAPACITY
    policy = docs["FleetAutoscaler"]["spec"]["policy"]
    assert policy["type"] == "Counter"
    assert policy["counter"]["key"] == agones.MATCHES_COUNTER
    for priority in docs["Fleet"]["spec"]["priorities"]:
        assert (priority["type"], priority["key"]) == ("Counter", agones.MATCHES_COUNTER)


def test_the_allocation_packs_on_the_matches_counter(docs: dict[str, dict[str, Any]]) -> None:
    fleet = docs["Fleet"]["metadata"]["name"]
    spec = docs["GameServerAllocation"]["spec"]
    states = [s["gameServerState"] for s in spec["selectors"]]
    assert states == ["Allocated", "Ready"]  # fill busy servers before opening an empty one
    for selector in spec["selectors"]:
        assert selector["matchLabels"] == {"agones.dev/fleet": fleet}
        assert selector["counters"] == {agones.MATCHES_COUNTER: {"minAvailable": 1}}
    assert spec["counters"] == {agones.MATCHES_COUNTER: {"action": "Increment", "amount": 1}}
    assert spec["priorities"] == [
        {"type": "Counter", "key": agones.MATCHES_COUNTER, "order": "Ascending"}
    ]
