"""The operator works with exactly the chart's RBAC: `tradearena operator` runs on this
machine (kwok runs no containers) with a token of the chart's operator ServiceAccount
and the environment of the chart's operator Deployment, and reconciles a Match into a
match-server pod and a Ready Match."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradearena.testing.helm_chart import Installed

pytestmark = pytest.mark.k8s


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _service_account_kubeconfig(chart_install: Installed, path: Path) -> Path:
    """A kubeconfig whose only credential is a bound token of the operator's ServiceAccount."""
    cluster = chart_install.cluster
    token = cluster.kubectl(
        "create",
        "token",
        chart_install.name("operator"),
        "-n",
        chart_install.namespace,
        "--duration=1h",
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    (entry,) = [c for c in admin["clusters"]]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": entry["cluster"]}],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [
            {
                "name": "operator",
                "context": {
                    "cluster": "test",
                    "user": "operator",
                    "namespace": chart_install.namespace,
                },
            }
        ],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def _chart_operator_env(chart_install: Installed) -> dict[str, str]:
    """The plain-value environment of the installed operator Deployment."""
    deployment = chart_install.cluster.kubectl_json(
        "get", "deployment", "-n", chart_install.namespace, chart_install.name("operator")
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["operator"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    # No Redis in this test: the operator's own Redis use is optional.
    env.pop("TRADEARENA_OPERATOR_REDIS_URL")
    return env


@pytest.fixture
def local_operator(chart_install: Installed, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "TRADEARENA_"))}
    env.update(_chart_operator_env(chart_install))
    env.update(
        {
            "KUBECONFIG": str(_service_account_kubeconfig(chart_install, tmp_path / "kubeconfig")),
            "TRADEARENA_OPERATOR_METRICS_HOST": "127.0.0.1",
            "TRADEARENA_OPERATOR_METRICS_PORT": str(_free_port()),
            "TRADEARENA_OPERATOR_LOG_FORMAT": "text",
            "TRADEARENA_OPERATOR_LOG_LEVEL": "INFO",
        }
    )
    log = (tmp_path / "operator.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "tradearena"), "operator"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


def test_operator_with_the_chart_rbac_makes_a_match_ready(
    chart_install: Installed, local_operator: subprocess.Popen[str], tmp_path: Path
) -> None:
    cluster, ns = chart_install.cluster, chart_install.namespace
    name = f"m-{uuid.uuid4().hex[:8]}"
    match: dict[str, Any] = {
        "apiVersion": "tradearena.io/v1alpha1",
        "kind": "Match",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"mode": "duel", "format": "blitz", "players": ["p1", "p2"]},
    }
    cluster.apply(match)
    log_path = tmp_path / "operator.log"
    try:
        proc = cluster.kubectl(
            "wait",
            "-n",
            ns,
            f"match/{name}",
            "--for=jsonpath={.status.phase}=Ready",
            "--timeout=180s",
            check=False,
            timeout=200,
        )
        assert proc.returncode == 0, (
            f"{proc.stderr}\n--- operator log\n{log_path.read_text()[-6000:]}\n"
            + json.dumps(cluster.kubectl_json("get", "match", "-n", ns, name).get("status"))
        )
        status = cluster.kubectl_json("get", "match", "-n", ns, name)["status"]
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions["Ready"] == "True"
        pod = cluster.kubectl_json("get", "pod", "-n", ns, status["pod"])
        owner = pod["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("Match", name)
        # The pod is the chart's match server: its account, no token, the chart's image.
        assert pod["spec"]["serviceAccountName"] == chart_install.name("match-server")
        assert pod["spec"]["automountServiceAccountToken"] is False
        (container,) = pod["spec"]["containers"]
        assert container["image"] == "tradearena:test"
        assert container["args"] == ["matchserver"]
        # The same secure defaults as the chart's own pods.
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        # Redis from the Secret key the chart names, the verification keys from its ConfigMap.
        env = {e["name"]: e for e in container["env"]}
        assert env["TRADEARENA_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": "tradearena-redis",
            "key": "url",
        }
        assert env["TRADEARENA_JWKS_FILE"]["value"].endswith("/jwks.json")
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["keys"]["configMap"]["name"] == "tradearena-match-keys"
        game, admin = container["ports"]
        assert 7000 <= game["hostPort"] <= 8000 and game["hostPort"] == status["port"]
        # /metrics and /status on the chart's admin port, no host port: cluster only.
        assert admin == {"name": "admin", "containerPort": 9100, "protocol": "TCP"}
        assert env["TRADEARENA_ADMIN_PORT"]["value"] == "9100"
        # Browser origins: the lobby's, as the chart gives them to the operator.
        operator = cluster.kubectl_json(
            "get", "deployment", "-n", ns, chart_install.name("operator")
        )
        operator_env = {
            e["name"]: e.get("value")
            for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        origins = operator_env["TRADEARENA_OPERATOR_CORS_ORIGINS"]
        assert json.loads(env["TRADEARENA_CORS_ORIGINS"]["value"]) == json.loads(origins)
        assert pod["spec"]["nodeName"] == status["node"]
        assert status["address"] == cluster.node_external_ips[status["node"]]
        # Only the operator pods match the labels of the chart's match-server policy.
        policy = cluster.kubectl_json(
            "get", "networkpolicy", "-n", ns, chart_install.name("match-server")
        )
        assert (
            policy["spec"]["podSelector"]["matchLabels"].items()
            <= pod["metadata"]["labels"].items()
        )
        # Leader election went through the chart's KopfPeering.
        peering = cluster.kubectl_json(
            "get", "kopfpeering", "-n", ns, chart_install.name("operator")
        )
        assert peering.get("status"), "the operator announced itself in the peering object"
    finally:
        cluster.kubectl(
            "delete",
            "match",
            "-n",
            ns,
            name,
            "--wait=true",
            "--timeout=120s",
            check=False,
            timeout=150,
        )
    assert cluster.kubectl("get", "match", "-n", ns, name, check=False).returncode != 0
    # Nothing the operator works with was refused. kopf also probes, at cluster scope,
    # the CRD list (to notice CRDs appearing) and the namespace list (for namespace
    # patterns); neither RBAC grants them and kopf falls back to discovery and to the
    # one configured namespace, as the log says.
    refused = set(re.findall(r'cannot (\w+) resource \\?"([\w.]+)\\?"', log_path.read_text()))
    optional = {
        (verb, resource)
        for verb in ("list", "watch")
        for resource in ("customresourcedefinitions", "namespaces")
    }
    assert refused <= optional, f"requests refused by the chart's RBAC: {refused - optional}"
    assert local_operator.poll() is None, "the operator is still running"
