"""The operator's TLS switch and address template: pod spec, status, settings. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from match_operator.builders import (
    TLS_DIR,
    Observed,
    PodView,
    advertised_address,
    build_pod_spec,
    decide,
    iso,
)
from match_operator.settings import OperatorSettings
from matchserver.settings import MatchServerSettings
from tradearena.contracts import resource
from tradearena.orchestration.kubernetes import match_status

NOW = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)
PLAIN = OperatorSettings(image="registry.example/tradearena:1.2.3")
TLS = OperatorSettings(
    image="registry.example/tradearena:1.2.3",
    tls_secret="match-server-tls",
    address_template="{node_ip_dashed}.play.example.com",
)


def match(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "m-1",
            "namespace": "games",
            "uid": "uid-1",
            "generation": 1,
            "finalizers": [resource.FINALIZER],
        },
        "spec": {"mode": "duel", "format": "blitz", "players": ["alice", "bob"]},
        "status": status or {},
    }


def container(settings: OperatorSettings) -> dict[str, Any]:
    (c,) = build_pod_spec(match(), settings, 7123)["spec"]["containers"]
    return c


@pytest.mark.parametrize(
    ("template", "address"),
    [
        ("{node_ip}", "203.0.113.7"),  # the default: today's bare IP
        ("{node_ip_dashed}.play.example.com", "203-0-113-7.play.example.com"),
        ("{node_name}.nodes.example.com", "ip-10-0-1-5.nodes.example.com"),
    ],
)
def test_the_template_makes_the_address(template: str, address: str) -> None:
    assert advertised_address(template, "203.0.113.7", "ip-10-0-1-5") == address
    OperatorSettings(address_template=template)  # a valid setting


def test_the_default_template_is_the_node_ip() -> None:
    assert advertised_address(PLAIN.address_template, "198.51.100.1", "n") == "198.51.100.1"


@pytest.mark.parametrize("template", ["{node}.x", "{0}.x", "{node_ip", "  "])
def test_a_template_with_an_unknown_placeholder_is_a_bad_setting(template: str) -> None:
    with pytest.raises(ValueError, match="address_template"):
        OperatorSettings(address_template=template)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEARENA_OPERATOR_TLS_SECRET", "wild")
    monkeypatch.setenv("TRADEARENA_OPERATOR_ADDRESS_TEMPLATE", "{node_ip_dashed}.p.example")
    s = OperatorSettings()
    assert (s.tls_secret, s.address_template) == ("wild", "{node_ip_dashed}.p.example")


def test_without_tls_the_pod_is_plaintext() -> None:
    c = container(PLAIN)
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert c["livenessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert not any(e["name"].startswith("TRADEARENA_TLS_") for e in c["env"])
    assert "tls" not in {m["name"] for m in c["volumeMounts"]}


def test_with_tls_the_pod_mounts_the_secret_and_probes_over_https() -> None:
    pod = build_pod_spec(match(), TLS, 7123)
    (c,) = pod["spec"]["containers"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "game", "scheme": "HTTPS"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "game", "scheme": "HTTPS"}
    mount = next(m for m in c["volumeMounts"] if m["name"] == "tls")
    assert mount == {"name": "tls", "mountPath": TLS_DIR, "readOnly": True}
    assert "subPath" not in mount  # a subPath mount would never see a renewal
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "tls")
    assert volume["secret"]["secretName"] == "match-server-tls"
    assert volume["secret"]["items"] == [
        {"key": "tls.crt", "path": "tls.crt"},
        {"key": "tls.key", "path": "tls.key"},
    ]
    env = {e["name"]: e["value"] for e in c["env"] if "value" in e}
    assert env["TRADEARENA_TLS_CERT_FILE"] == f"{TLS_DIR}/tls.crt"
    assert env["TRADEARENA_TLS_KEY_FILE"] == f"{TLS_DIR}/tls.key"
    # What the server reads back from that environment.
    read = MatchServerSettings(
        match_id="m-1",
        players=("alice",),
        tls_cert_file=env["TRADEARENA_TLS_CERT_FILE"],
        tls_key_file=env["TRADEARENA_TLS_KEY_FILE"],
    )
    assert read.tls


def pod_view(settings: OperatorSettings) -> PodView:
    body = build_pod_spec(match(), settings, 7005)
    body["spec"]["nodeName"] = "n1"
    body["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    return PodView.of(body)


@pytest.mark.parametrize(("settings", "scheme"), [(PLAIN, "http"), (TLS, "https")])
def test_a_ready_match_advertises_the_scheme_its_pod_serves(
    settings: OperatorSettings, scheme: str
) -> None:
    address = advertised_address(settings.address_template, "203.0.113.7", "n1")
    m = match({"phase": "Creating", "createdAt": iso(NOW)})
    plan = decide(Observed(m, pod_view(settings), NOW, node_address=address), settings)
    assert plan.status["phase"] == "Ready"
    assert (plan.status["scheme"], plan.status["address"]) == (scheme, address)
    status = match_status({"metadata": {"name": "m-1"}, "status": {**m["status"], **plan.status}})
    assert status.url == f"{scheme}://{address}:7005"


def test_the_pod_not_the_settings_decides_the_scheme() -> None:
    """A pod built before TLS was switched on still serves plaintext: say so."""
    m = match({"phase": "Creating", "createdAt": iso(NOW)})
    plan = decide(Observed(m, pod_view(PLAIN), NOW, node_address="203.0.113.7"), TLS)
    assert plan.status["scheme"] == "http"


def test_a_status_without_a_scheme_is_plaintext() -> None:
    """Matches written by an operator before the scheme existed."""
    old = {"phase": "Ready", "address": "203.0.113.9", "port": 7100}
    assert match_status({"metadata": {"name": "m"}, "status": old}).url == (
        "http://203.0.113.9:7100"
    )
