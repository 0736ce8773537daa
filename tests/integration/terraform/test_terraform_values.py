"""scripts/tf-outputs-to-values.py: `terraform output -json` in, Helm values out, against
a recorded outputs fixture shaped like the real command's output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tradearena.testing.paths import REPO

SCRIPT = REPO / "scripts" / "tf-outputs-to-values.py"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "terraform-outputs.json"
ROLE = "eks.amazonaws.com/role-arn"


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _parse(text: str) -> dict[str, Any]:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    values: dict[str, Any] = json.loads(body)
    return values


def _outputs() -> dict[str, Any]:
    outputs: dict[str, Any] = json.loads(FIXTURE.read_text())
    return outputs


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    result = _run(str(FIXTURE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Helm values for the TradeArena chart on AWS")
    return _parse(result.stdout)


def test_postgresql_values_point_at_rds_and_its_secret(values: dict[str, Any]) -> None:
    pg = values["postgresql"]
    assert pg == {
        "enabled": False,
        "host": "tradearena-postgres.c9akciq32.eu-west-1.rds.amazonaws.com",
        "port": 5432,
        "database": "tradearena",
        "username": "tradearena",
        "sslmode": "require",
        "existingSecret": {"name": "tradearena-postgresql", "passwordKey": "password"},
    }


def test_redis_values_require_tls_and_name_the_auth_secret(values: dict[str, Any]) -> None:
    redis = values["redis"]
    assert redis["host"] == "master.tradearena-redis.abc123.euw1.cache.amazonaws.com"
    assert redis["port"] == 6379
    assert redis["tls"] is True
    assert redis["enabled"] is False
    assert redis["existingSecret"] == {"name": "tradearena-redis", "passwordKey": "password"}


def test_a_replication_group_is_not_a_cluster(values: dict[str, Any]) -> None:
    assert values["redis"]["cluster"] is False


def test_a_redis_cluster_is_reached_through_its_configuration_endpoint() -> None:
    outputs = _outputs()
    endpoint = "clustercfg.tradearena-redis.abc123.euw1.cache.amazonaws.com"
    outputs["redis"]["value"].update(
        host=endpoint,
        configuration_endpoint=endpoint,
        reader_host="",
        cluster=True,
        url_scheme="rediss+cluster",
    )
    result = _run(stdin=json.dumps(outputs))
    assert result.returncode == 0, result.stderr
    redis = _parse(result.stdout)["redis"]
    assert (redis["host"], redis["cluster"], redis["tls"]) == (endpoint, True, True)


def test_match_servers_wait_for_the_replicas_terraform_says(values: dict[str, Any]) -> None:
    assert values["redis"]["waitReplicas"] == 1


def test_outputs_without_wait_replicas_wait_for_none_and_bad_ones_are_rejected() -> None:
    outputs = _outputs()
    del outputs["redis"]["value"]["wait_replicas"]
    result = _run(stdin=json.dumps(outputs))
    assert result.returncode == 0, result.stderr
    assert _parse(result.stdout)["redis"]["waitReplicas"] == 0
    outputs["redis"]["value"]["wait_replicas"] = -1
    result = _run(stdin=json.dumps(outputs))
    assert result.returncode == 2
    assert "redis.wait_replicas is invalid" in result.stderr


def test_outputs_without_the_cluster_field_describe_a_replication_group() -> None:
    outputs = _outputs()
    del outputs["redis"]["value"]["cluster"]
    result = _run(stdin=json.dumps(outputs))
    assert result.returncode == 0, result.stderr
    assert _parse(result.stdout)["redis"]["cluster"] is False


def test_a_cluster_flag_that_is_not_a_boolean_is_rejected() -> None:
    outputs = _outputs()
    outputs["redis"]["value"]["cluster"] = "true"
    result = _run(stdin=json.dumps(outputs))
    assert result.returncode == 2
    assert "redis.cluster has the wrong type" in result.stderr


def test_external_secrets_copy_both_passwords_with_the_irsa_role(values: dict[str, Any]) -> None:
    es = values["externalSecrets"]
    assert es["enabled"] is True
    assert es["serviceAccount"]["name"] == "tradearena-secrets"
    assert es["serviceAccount"]["annotations"] == {
        ROLE: "arn:aws:iam::111122223333:role/tradearena-secrets"
    }
    assert es["secretStore"] == {
        "provider": "aws",
        "service": "SecretsManager",
        "region": "eu-west-1",
    }
    by_name = {s["name"]: s for s in es["secrets"]}
    assert set(by_name) == {
        values["postgresql"]["existingSecret"]["name"],
        values["redis"]["existingSecret"]["name"],
    }
    assert by_name["tradearena-postgresql"]["remoteKey"].startswith(
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds!db-"
    )
    assert by_name["tradearena-redis"]["remoteKey"].endswith(
        "redis-auth-20261122094501234500000001-xY9zQw"
    )
    for secret in es["secrets"]:
        assert secret["remoteProperty"] == "password" == secret["targetKey"]


def test_match_servers_land_on_game_nodes_in_the_port_range(values: dict[str, Any]) -> None:
    ms = values["matchServer"]
    assert ms["nodeSelector"] == {"tradearena.io/pool": "game"}
    assert ms["tolerations"] == [
        {"effect": "NoSchedule", "key": "tradearena.io/pool", "operator": "Equal", "value": "game"}
    ]
    assert ms["portRange"] == {"min": 7000, "max": 8000}


def test_a_domain_turns_on_wss_under_one_wildcard_certificate(values: dict[str, Any]) -> None:
    ms = values["matchServer"]
    assert ms["addressTemplate"] == "{node_ip_dashed}.play.example.com"
    assert ms["tls"] == {
        "enabled": True,
        "certManager": {
            "enabled": True,
            "issuerRef": {"kind": "ClusterIssuer", "name": "letsencrypt-dns01"},
            "dnsNames": ["*.play.example.com"],
        },
    }


def test_no_domain_keeps_match_servers_plaintext_by_ip() -> None:
    outputs = _outputs()
    ms = outputs["match_servers"]["value"]
    ms.update(domain="", address_template="{node_ip}")
    ms["tls"].update(enabled=False, dns_names=[])
    result = _run(stdin=json.dumps(outputs))
    assert result.returncode == 0, result.stderr
    values = _parse(result.stdout)["matchServer"]
    assert (values["addressTemplate"], values["tls"]) == ("{node_ip}", {"enabled": False})


def test_an_address_outside_the_certified_domain_is_rejected() -> None:
    outputs = _outputs()
    outputs["match_servers"]["value"]["address_template"] = "{node_ip_dashed}.other.example"
    result = _run(stdin=json.dumps(outputs))
    assert result.returncode == 2
    assert "is not a name under 'play.example.com'" in result.stderr


def test_addon_roles_and_globals(values: dict[str, Any]) -> None:
    assert values["global"] == {"cloud": "aws", "region": "eu-west-1", "clusterName": "tradearena"}
    ca = values["clusterAddons"]["clusterAutoscaler"]
    assert ca["autoDiscoveryClusterName"] == "tradearena"
    assert ca["serviceAccount"]["annotations"][ROLE].endswith(":role/tradearena-cluster-autoscaler")


def test_values_hold_no_secret_material(values: dict[str, Any]) -> None:
    text = json.dumps(values)
    assert "LS0tLS1CRUdJTi" not in text  # not even the (public) cluster CA is needed
    # Every value named like a credential is a reference (key or secret name), never a secret.
    assert values["postgresql"]["existingSecret"]["passwordKey"] == "password"
    assert "auth_token" not in text and "master_password" not in text


def test_output_is_valid_yaml(checkov: Path, tmp_path: Path) -> None:
    # The checkov virtualenv ships PyYAML: parse with a real YAML parser, as Helm would.
    target = tmp_path / "values-aws.yaml"
    result = _run(str(FIXTURE), "--output", str(target))
    assert result.returncode == 0, result.stderr
    python = checkov.parent / "python"
    loaded = subprocess.run(
        [
            str(python),
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(loaded.stdout) == _parse(target.read_text())


def test_reads_standard_input_like_a_pipe_from_terraform() -> None:
    result = _run(stdin=FIXTURE.read_text())
    assert result.returncode == 0, result.stderr
    assert _parse(result.stdout)["redis"]["tls"] is True


def test_secret_names_can_be_overridden() -> None:
    result = _run(str(FIXTURE), "--postgresql-secret", "pg-prod", "--redis-secret", "redis-prod")
    assert result.returncode == 0, result.stderr
    values = _parse(result.stdout)
    assert values["postgresql"]["existingSecret"]["name"] == "pg-prod"
    assert [s["name"] for s in values["externalSecrets"]["secrets"]] == ["pg-prod", "redis-prod"]


@pytest.mark.parametrize(
    "missing", ["postgresql", "redis", "game_nodes", "secrets_service_account", "match_servers"]
)
def test_missing_output_is_an_error(missing: str) -> None:
    outputs = _outputs()
    del outputs[missing]
    result = _run(stdin=json.dumps(outputs))
    assert result.returncode == 2
    assert f"missing Terraform outputs: {missing}" in result.stderr
    assert result.stdout == ""


def test_redis_without_tls_is_rejected() -> None:
    outputs = _outputs()
    outputs["redis"]["value"]["tls"] = False
    result = _run(stdin=json.dumps(outputs))
    assert result.returncode == 2
    assert "redis.tls must be true" in result.stderr


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("postgresql", "port"), "5432"),
        (("game_nodes", "port_range", "min"), True),
        (("postgresql", "host"), ""),
        (("game_nodes", "tolerations"), []),
    ],
)
def test_malformed_fields_are_rejected(path: tuple[str, ...], bad: Any) -> None:
    outputs = _outputs()
    target = outputs[path[0]]["value"]
    for part in path[1:-1]:
        target = target[part]
    target[path[-1]] = bad
    result = _run(stdin=json.dumps(outputs))
    assert result.returncode == 2, result.stdout
    assert "tf-outputs-to-values:" in result.stderr


def test_not_terraform_output_json_is_rejected() -> None:
    result = _run(stdin=json.dumps({"region": "eu-west-1"}))
    assert result.returncode == 2
    assert "has no 'value'" in result.stderr
