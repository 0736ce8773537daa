"""The chart's operator and the match-server pod it creates run for real on the node.

The chart is installed as in production but for placement: the operator (one replica)
and match servers go to the real node, the lobby, feed relays and results workers to a
kwok node (they need PostgreSQL and more, and are run for real elsewhere). Redis runs
on this machine at the node address, so pods reach it. A Match then becomes Ready
because the real match server in the real pod answers the kubelet's probes, and its
game port is reachable at the node address, as players would dial it.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tradearena.launcher.localservices import find_redis_server
from tradearena.testing.helm_chart import CHART, RELEASE, Installed, create_prerequisites
from tradearena.testing.kube import node_manifest
from tradearena.testing.node import NodeCluster
from tradearena.tokens import Signer, generate_private_key_pem

pytestmark = pytest.mark.k8s

KWOK_NODE = "kwok-0"


@pytest.fixture
def node_redis(node_cluster: NodeCluster, tmp_path: Path) -> Iterator[str]:
    """redis-server on the node address (pods reach the host there); returns its URL."""
    password = uuid.uuid4().hex
    address = node_cluster.node.address
    with socket.socket() as s:
        s.bind((address, 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", address, "--save", "",
         "--appendonly", "no", "--requirepass", password, "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://:{password}@{address}:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        node_cluster.cluster.wait_until("redis up", lambda: _pings(client), timeout=15)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def chart_on_node(
    node_cluster: NodeCluster, namespace: str, node_redis: str, tmp_path: Path
) -> Installed:
    cluster = node_cluster.cluster
    if cluster.kubectl("get", "node", KWOK_NODE, check=False).returncode != 0:
        cluster.apply(node_manifest(KWOK_NODE, 0))
        cluster.kubectl("wait", "--for=condition=Ready", "node", KWOK_NODE, "--timeout=60s")
    create_prerequisites(cluster, namespace)
    password = node_redis.split(":")[2].split("@", maxsplit=1)[0]
    address, port = node_redis.rsplit("@", 1)[1].split("/", maxsplit=1)[0].split(":")
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tradearena-redis", "namespace": namespace},
            "data": {"password": _b64(password), "url": _b64(node_redis)},
        }
    )
    # Match servers verify players' tokens: they need a real public key to start.
    signer = Signer.from_pem(generate_private_key_pem())
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tradearena-match-keys", "namespace": namespace},
            "data": {"jwks.json": json.dumps(signer.verifier().jwks())},
        }
    )
    image = node_cluster.image.name
    real = {"kubernetes.io/hostname": node_cluster.node.name}
    fake = {"kubernetes.io/hostname": KWOK_NODE}
    values: dict[str, Any] = {
        "image": {
            "repository": image.rpartition(":")[0],
            "tag": image.rpartition(":")[2],
            "pullPolicy": "Never",
        },
        "redis": {"host": address, "port": int(port)},
        "operator": {"replicas": 1, "nodeSelector": real},
        "matchServer": {"nodeSelector": real, "feedSource": "synthetic"},
        "feedRelay": {"source": "synthetic", "nodeSelector": fake},
        "lobby": {"autoscaling": {"enabled": False}, "replicas": 1, "nodeSelector": fake},
        "resultsWorker": {"replicas": 1, "nodeSelector": fake},
    }
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    installed = Installed(cluster, namespace, RELEASE)
    try:
        cluster.helm(
            "install", RELEASE, str(CHART), "--namespace", namespace, "-f", str(path),
            "--wait", "--timeout", "180s",
        )  # fmt: skip
    except Exception as exc:
        pods = cluster.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
        raise AssertionError(f"{exc}\n{pods}\n--- node\n{node_cluster.node.log_tail(80)}") from exc
    return installed


def test_operator_on_the_node_makes_a_real_match_server_ready(
    node_cluster: NodeCluster, chart_on_node: Installed
) -> None:
    nc = node_cluster
    cluster, ns = chart_on_node.cluster, chart_on_node.namespace
    (operator,) = cluster.kubectl_json(
        "get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=operator"
    )["items"]
    assert operator["spec"]["nodeName"] == nc.node.name
    assert operator["status"]["phase"] == "Running"
    name = f"m-{uuid.uuid4().hex[:8]}"
    cluster.apply(
        {
            "apiVersion": "tradearena.io/v1alpha1",
            "kind": "Match",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"mode": "duel", "format": "blitz", "players": ["p1", "p2"]},
        }
    )
    proc = cluster.kubectl(
        "wait", "-n", ns, f"match/{name}", "--for=jsonpath={.status.phase}=Ready",
        "--timeout=150s", check=False, timeout=170,
    )  # fmt: skip
    if proc.returncode != 0:
        status = cluster.kubectl_json("get", "match", "-n", ns, name).get("status")
        pods = cluster.kubectl("get", "pods", "-n", ns, "-o", "wide", check=False).stdout
        operator_log = cluster.kubectl("logs", "-n", ns, operator["metadata"]["name"], check=False)
        raise AssertionError(
            f"{proc.stderr}\n{json.dumps(status)}\n{pods}\n--- operator\n"
            f"{operator_log.stdout[-4000:]}\n--- node\n{nc.node.log_tail(60)}"
        )
    status = cluster.kubectl_json("get", "match", "-n", ns, name)["status"]
    pod = cluster.kubectl_json("get", "pod", "-n", ns, status["pod"])
    assert pod["spec"]["nodeName"] == nc.node.name
    assert status["address"] == nc.node.address
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    # Players dial the node address and the Match's port: the real server answers.
    url = f"http://{status['address']}:{status['port']}/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
