"""charts/tradearena with matchServer.tls and matchServer.addressTemplate: the operator's
settings, cert-manager's Certificate, the values' checks and NOTES.txt's warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from match_operator.settings import OperatorSettings
from tradearena.testing.helm_chart import (
    CHART,
    VALUES_DIR,
    Rendered,
    helm,
    pod_specs,
    render,
    render_notes,
    terraform_values,
    value_args,
)

REL = "tradearena"
NS = "tradearena"
PRODUCTION = VALUES_DIR / "production.yaml"
CERT_MANAGER = {
    "matchServer": {
        "addressTemplate": "{node_ip_dashed}.play.test",
        "tls": {
            "enabled": True,
            "certManager": {
                "enabled": True,
                "issuerRef": {"kind": "Issuer", "name": "dns01"},
                "dnsNames": ["*.play.test"],
            },
        },
    }
}


def _values(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _operator_env(out: Rendered) -> dict[str, str]:
    (container,) = pod_specs(out)[f"{REL}-operator"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _operator_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> OperatorSettings:
    """What the operator reads from the environment the chart gives it."""
    for name, value in env.items():
        if name.startswith("TRADEARENA_OPERATOR_") and "$(" not in value:
            monkeypatch.setenv(name, value)
    return OperatorSettings()


def test_by_default_match_servers_are_plaintext_by_ip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = render([], release=REL, namespace=NS)
    env = _operator_env(out)
    assert env["TRADEARENA_OPERATOR_ADDRESS_TEMPLATE"] == "{node_ip}"
    assert "TRADEARENA_OPERATOR_TLS_SECRET" not in env
    assert not out.of_kind("Certificate")
    settings = _operator_settings(env, monkeypatch)
    assert (settings.address_template, settings.tls_secret) == ("{node_ip}", None)


def test_cert_manager_issues_the_wildcard_the_pods_mount(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = render([_values(tmp_path, CERT_MANAGER)], release=REL, namespace=NS)
    (certificate,) = out.of_kind("Certificate")
    assert certificate["apiVersion"] == "cert-manager.io/v1"
    assert certificate["metadata"]["namespace"] == NS
    spec = certificate["spec"]
    assert spec["secretName"] == f"{REL}-match-server-tls"
    assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "Issuer", "name": "dns01"}
    assert spec["dnsNames"] == ["*.play.test"]
    assert spec["privateKey"]["rotationPolicy"] == "Always"
    env = _operator_env(out)
    assert env["TRADEARENA_OPERATOR_TLS_SECRET"] == spec["secretName"]
    assert env["TRADEARENA_OPERATOR_ADDRESS_TEMPLATE"] == "{node_ip_dashed}.play.test"
    settings = _operator_settings(env, monkeypatch)
    assert settings.tls_secret == f"{REL}-match-server-tls"


def test_an_existing_secret_needs_no_cert_manager(tmp_path: Path) -> None:
    values = {
        "matchServer": {
            "addressTemplate": "{node_name}.nodes.example.com",
            "tls": {"enabled": True, "secretName": "nodes-wildcard"},
        }
    }
    out = render([_values(tmp_path, values)], release=REL, namespace=NS)
    assert not out.of_kind("Certificate")
    assert _operator_env(out)["TRADEARENA_OPERATOR_TLS_SECRET"] == "nodes-wildcard"


@pytest.mark.parametrize("source", ["production", "terraform"])
def test_production_and_terraform_values_turn_wss_on(source: str, tmp_path: Path) -> None:
    values = PRODUCTION if source == "production" else terraform_values(tmp_path / "aws.yaml")
    out = render([values], release=REL, namespace=NS)
    env = _operator_env(out)
    assert env["TRADEARENA_OPERATOR_ADDRESS_TEMPLATE"] == "{node_ip_dashed}.play.example.com"
    assert env["TRADEARENA_OPERATOR_TLS_SECRET"] == f"{REL}-match-server-tls"
    (certificate,) = out.of_kind("Certificate")
    assert certificate["spec"]["dnsNames"] == ["*.play.example.com"]
    # Every advertised name is one label under the certificate's wildcard.
    sample = env["TRADEARENA_OPERATOR_ADDRESS_TEMPLATE"].format(node_ip_dashed="203-0-113-7")
    assert sample.split(".", 1)[1] == certificate["spec"]["dnsNames"][0].removeprefix("*.")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tls": {"enabled": True}}, "name the kubernetes.io/tls Secret"),
        (
            {"tls": {"certManager": {"enabled": True}}},
            "matchServer.tls.certManager.enabled=true needs matchServer.tls.enabled=true",
        ),
        (
            {"tls": {"enabled": True, "certManager": {"enabled": True, "dnsNames": ["*.a.b"]}}},
            "matchServer.tls.certManager.issuerRef.name",
        ),
        (
            {
                "tls": {
                    "enabled": True,
                    "certManager": {"enabled": True, "issuerRef": {"name": "x"}},
                }
            },
            "matchServer.tls.certManager.dnsNames",
        ),
        ({"addressTemplate": "{node}.play.test"}, "at '/matchServer/addressTemplate'"),
        ({"tls": {"enabled": "yes"}}, "at '/matchServer/tls/enabled'"),
        ({"tls": {"cert": "x"}}, "additional properties 'cert' not allowed"),
        (
            {"tls": {"certManager": {"issuerRef": {"kind": "Vault"}}}},
            "at '/matchServer/tls/certManager/issuerRef/kind'",
        ),
    ],
)
def test_bad_tls_values_are_refused(values: dict[str, Any], message: str, tmp_path: Path) -> None:
    path = _values(tmp_path, {"matchServer": values})
    proc = helm("template", REL, str(CHART), *value_args([path]), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_notes_warn_when_match_servers_are_plaintext(tmp_path: Path) -> None:
    plain = render_notes(tmp_path / "plain")
    assert "WARNING: match servers are plaintext" in plain
    assert "ws://{node_ip}:<port>" in plain
    secure = render_notes(tmp_path / "secure", [_values(tmp_path, CERT_MANAGER)])
    assert "WARNING" not in secure
    assert "wss://{node_ip_dashed}.play.test:<port>" in secure
    assert f"{REL}-match-server-tls (kubernetes.io/tls" in secure
    by_ip = {"matchServer": {"tls": {"enabled": True, "secretName": "s"}}}
    (tmp_path / "ip").mkdir()
    warned = render_notes(tmp_path / "by-ip", [_values(tmp_path / "ip", by_ip)])
    assert "advertised by bare IP" in warned


def test_the_values_schema_documents_every_tls_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    ms = schema["properties"]["matchServer"]["properties"]
    assert ms["addressTemplate"]["description"]
    tls = ms["tls"]
    assert tls["additionalProperties"] is False
    assert set(tls["properties"]) == {"enabled", "secretName", "certManager"}
    assert set(tls["properties"]["certManager"]["properties"]) == {
        "enabled",
        "issuerRef",
        "dnsNames",
    }
