#!/usr/bin/env python3
"""Turn `terraform output -json` of terraform/ into a Helm values file for the TradeArena chart.

    terraform -chdir=terraform/examples/complete output -json \\
        | scripts/tf-outputs-to-values.py > values-aws.yaml
    helm upgrade --install tradearena charts/tradearena -n tradearena -f values-aws.yaml

The values contract (documented in terraform/README.md, "Helm values") is built here and
nowhere else. The file is JSON, which is valid YAML: Helm reads it as any values file, and no
YAML library is needed to write it. No secret is written: passwords stay in Secrets Manager
and the values only name the secrets and the role that External Secrets uses to copy them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REQUIRED_OUTPUTS = (
    "region",
    "cluster_name",
    "kubernetes_namespace",
    "postgresql",
    "redis",
    "secrets_service_account",
    "irsa_role_arns",
    "game_nodes",
    "match_servers",
)

ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
# Names of Kubernetes Secrets and of the key inside them, not credentials.
DEFAULT_POSTGRESQL_SECRET = "tradearena-postgresql"  # noqa: S105
DEFAULT_REDIS_SECRET = "tradearena-redis"  # noqa: S105
PASSWORD_KEY = "password"  # noqa: S105


class OutputsError(ValueError):
    """The Terraform outputs do not satisfy the values contract."""


def _output_values(raw: Any) -> dict[str, Any]:
    """Unwrap `terraform output -json` ({name: {value, type, sensitive}}) into {name: value}."""
    if not isinstance(raw, dict):
        raise OutputsError("terraform output -json must be a JSON object")
    values: dict[str, Any] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise OutputsError(
                f"output {name!r} has no 'value' (is this `terraform output -json`?)"
            )
        values[name] = entry["value"]
    missing = [name for name in REQUIRED_OUTPUTS if name not in values]
    if missing:
        raise OutputsError("missing Terraform outputs: " + ", ".join(missing))
    return values


def _field(obj: Any, path: str, kind: type | tuple[type, ...]) -> Any:
    """Read a dotted path inside the outputs and check its type."""
    current = obj
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            raise OutputsError(f"missing output field {path}")
        current = current[part]
    # bool is an int subclass: never accept it where a number is expected.
    if not isinstance(current, kind) or (kind is int and isinstance(current, bool)):
        raise OutputsError(f"output field {path} has the wrong type: {current!r}")
    if isinstance(current, str) and not current:
        raise OutputsError(f"output field {path} is empty")
    return current


def _match_server_values(ms: dict[str, Any]) -> dict[str, Any]:
    """matchServer.addressTemplate and matchServer.tls: with a domain, wss:// under one
    wildcard certificate that cert-manager issues (DNS-01); without, plaintext by IP."""
    template = _field(ms, "address_template", str)
    if not _field(ms, "tls.enabled", bool):
        return {"addressTemplate": template, "tls": {"enabled": False}}
    domain = _field(ms, "domain", str)
    dns_names = _field(ms, "tls.dns_names", list)
    if not dns_names or not all(isinstance(n, str) and n for n in dns_names):
        raise OutputsError("match_servers.tls.dns_names is empty: nothing to certify")
    if not template.endswith("." + domain):
        raise OutputsError(
            f"match_servers.address_template {template!r} is not a name under {domain!r}"
        )
    return {
        "addressTemplate": template,
        "tls": {
            "enabled": True,
            "certManager": {
                "enabled": True,
                "issuerRef": {
                    "kind": _field(ms, "tls.issuer_kind", str),
                    "name": _field(ms, "tls.issuer_name", str),
                },
                "dnsNames": dns_names,
            },
        },
    }


def build_values(
    raw_outputs: Any,
    *,
    postgresql_secret: str = DEFAULT_POSTGRESQL_SECRET,
    redis_secret: str = DEFAULT_REDIS_SECRET,
) -> dict[str, Any]:
    """Build the Helm values from the parsed JSON of `terraform output -json`."""
    out = _output_values(raw_outputs)

    region = _field(out, "region", str)
    pg_port = _field(out, "postgresql.port", int)
    redis_port = _field(out, "redis.port", int)
    if _field(out, "redis.tls", bool) is not True:
        raise OutputsError("redis.tls must be true: the replication group requires TLS")
    # A Redis Cluster (cluster mode enabled): host is its configuration endpoint and the
    # chart's redis.cluster picks the rediss+cluster:// scheme. Outputs from before the
    # field existed describe a replication group without cluster mode.
    redis_cluster = _field(out, "redis", dict).get("cluster", False)
    if not isinstance(redis_cluster, bool):
        raise OutputsError(f"output field redis.cluster has the wrong type: {redis_cluster!r}")
    # Replicas a match server waits for before it acknowledges (Redis WAIT); outputs from
    # before the field existed: none.
    wait_replicas = _field(out, "redis", dict).get("wait_replicas", 0)
    if not isinstance(wait_replicas, int) or isinstance(wait_replicas, bool) or wait_replicas < 0:
        raise OutputsError(f"output field redis.wait_replicas is invalid: {wait_replicas!r}")

    tolerations = _field(out, "game_nodes.tolerations", list)
    if not tolerations:
        raise OutputsError("game_nodes.tolerations is empty: match servers could not land")
    for toleration in tolerations:
        for key in ("key", "operator", "effect"):
            _field(toleration, key, str)
    node_selector = _field(out, "game_nodes.node_selector", dict)
    if not node_selector:
        raise OutputsError("game_nodes.node_selector is empty")
    port_min = _field(out, "game_nodes.port_range.min", int)
    port_max = _field(out, "game_nodes.port_range.max", int)
    if not 0 < port_min <= port_max < 65536:
        raise OutputsError(f"invalid game port range {port_min}-{port_max}")

    match_servers = _match_server_values(_field(out, "match_servers", dict))

    secrets_sa = _field(out, "secrets_service_account", dict)
    irsa = _field(out, "irsa_role_arns", dict)

    return {
        "global": {
            "cloud": "aws",
            "region": region,
            "clusterName": _field(out, "cluster_name", str),
        },
        "postgresql": {
            "enabled": False,
            "host": _field(out, "postgresql.host", str),
            "port": pg_port,
            "database": _field(out, "postgresql.database", str),
            "username": _field(out, "postgresql.username", str),
            "sslmode": _field(out, "postgresql.sslmode", str),
            "existingSecret": {"name": postgresql_secret, "passwordKey": PASSWORD_KEY},
        },
        "redis": {
            "enabled": False,
            "host": _field(out, "redis.host", str),
            "port": redis_port,
            "tls": True,
            "cluster": redis_cluster,
            "waitReplicas": wait_replicas,
            "existingSecret": {"name": redis_secret, "passwordKey": PASSWORD_KEY},
        },
        "externalSecrets": {
            "enabled": True,
            "refreshInterval": "5m",
            "serviceAccount": {
                "create": True,
                "name": _field(secrets_sa, "name", str),
                "annotations": {ROLE_ANNOTATION: _field(secrets_sa, "role_arn", str)},
            },
            "secretStore": {"provider": "aws", "service": "SecretsManager", "region": region},
            "secrets": [
                {
                    "name": postgresql_secret,
                    "remoteKey": _field(out, "postgresql.master_secret_arn", str),
                    "remoteProperty": PASSWORD_KEY,
                    "targetKey": PASSWORD_KEY,
                },
                {
                    "name": redis_secret,
                    "remoteKey": _field(out, "redis.auth_secret_arn", str),
                    "remoteProperty": PASSWORD_KEY,
                    "targetKey": PASSWORD_KEY,
                },
            ],
        },
        "matchServer": {
            "nodeSelector": {str(k): str(v) for k, v in node_selector.items()},
            "tolerations": tolerations,
            "portRange": {"min": port_min, "max": port_max},
            **match_servers,
        },
        "clusterAddons": {
            "clusterAutoscaler": {
                "autoDiscoveryClusterName": _field(out, "cluster_name", str),
                "serviceAccount": {
                    "annotations": {ROLE_ANNOTATION: _field(irsa, "cluster_autoscaler", str)}
                },
            },
        },
    }


def render(values: dict[str, Any], cluster: str) -> str:
    """Values as JSON-compatible YAML with a header comment."""
    header = (
        f"# Helm values for the TradeArena chart on AWS (stack {cluster}).\n"
        "# Generated by scripts/tf-outputs-to-values.py from `terraform output -json`;\n"
        "# do not edit: re-run after `terraform apply`. Contains no secrets.\n"
    )
    return header + json.dumps(values, indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "input",
        nargs="?",
        default="-",
        help="file with `terraform output -json` (default: standard input)",
    )
    parser.add_argument("-o", "--output", help="values file to write (default: standard output)")
    parser.add_argument("--postgresql-secret", default=DEFAULT_POSTGRESQL_SECRET)
    parser.add_argument("--redis-secret", default=DEFAULT_REDIS_SECRET)
    args = parser.parse_args(argv)

    text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text()
    try:
        raw = json.loads(text)
        values = build_values(
            raw, postgresql_secret=args.postgresql_secret, redis_secret=args.redis_secret
        )
    except (json.JSONDecodeError, OutputsError) as exc:
        print(f"tf-outputs-to-values: {exc}", file=sys.stderr)
        return 2

    rendered = render(values, values["global"]["clusterName"])
    if args.output:
        Path(args.output).write_text(rendered)
    else:
        sys.stdout.write(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
