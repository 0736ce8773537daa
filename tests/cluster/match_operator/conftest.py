"""Fixtures for the operator on the real control plane.

Every namespace gets the CRDs, the RBAC of deploy/operator/rbac.yaml and a
kubeconfig holding a token of the operator's ServiceAccount: the operator under
test runs as a real subprocess (`tradearena operator`) with exactly the rights the
manifests give it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradearena.launcher.localservices import free_port
from tradearena.testing.kube import KubeCluster
from tradearena.testing.paths import REPO
from tradearena.testing.pool_directory import POOL_LABEL, SERVES_ANNOTATION

TRADEARENA = Path(sys.executable).parent / "tradearena"


def operator_kubeconfig(cluster: KubeCluster, namespace: str, path: Path) -> Path:
    """A kubeconfig for the operator's ServiceAccount (a real token, real RBAC)."""
    token = cluster.kubectl(
        "create", "token", "tradearena-operator", "-n", namespace, "--duration=2h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    cluster_entry = admin["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster_entry["cluster"]}],
                "users": [{"name": "operator", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "op",
                        "context": {"cluster": "c", "user": "operator", "namespace": namespace},
                    }
                ],
                "current-context": "op",
            }
        )
    )
    return path


@dataclass
class OperatorProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_port: int

    def metrics(self) -> dict[str, float]:
        """Prometheus text, as {series: value}."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                out[series] = float(value)
        return out

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=2
            ) as r:
                return bool(r.status == 200 and json.loads(r.read())["rebuilt"])
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class OperatorEnv:
    cluster: KubeCluster
    namespace: str
    kubeconfig: Path
    workdir: Path
    redis_url: str
    processes: list[OperatorProcess] = field(default_factory=list)

    def start_operator(self, *, pools: bool = False, **env: str) -> OperatorProcess:
        """`tradearena operator`; with `pools`, the same operator allocating to the pool
        servers of `tradearena.testing.pool_directory` (pods the test creates)."""
        port = free_port()
        log = self.workdir / f"operator-{len(self.processes)}.log"
        full = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "TRADEARENA_OPERATOR_NAMESPACES": self.namespace,
            "TRADEARENA_OPERATOR_METRICS_HOST": "127.0.0.1",
            "TRADEARENA_OPERATOR_METRICS_PORT": str(port),
            "TRADEARENA_OPERATOR_LOG_FORMAT": "text",
            "TRADEARENA_OPERATOR_IMAGE": "registry.invalid/tradearena:test",
            "TRADEARENA_OPERATOR_REDIS_URL": self.redis_url,
            "TRADEARENA_OPERATOR_PEERING_LIFETIME_S": "6",
            "TRADEARENA_OPERATOR_TIMER_INTERVAL_S": "1",
            "TRADEARENA_OPERATOR_STARTUP_TIMEOUT_S": "60",
            "TRADEARENA_OPERATOR_TTL_S": "3600",
            **env,
        }
        with log.open("ab") as out:
            command = (
                [sys.executable, "-m", "tradearena.testing.pool_directory"]
                if pools
                else [str(TRADEARENA), "operator"]
            )
            proc = subprocess.Popen(command, env=full, stdout=out, stderr=subprocess.STDOUT)
        op = OperatorProcess(proc, log, port)
        self.processes.append(op)
        deadline = time.monotonic() + 60
        while not op.healthy():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"operator did not start:\n{op.tail()}")
            time.sleep(0.2)
        return op

    def create_match(self, name: str, **spec: Any) -> None:
        body = {
            "apiVersion": "tradearena.io/v1alpha1",
            "kind": "Match",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"mode": "duel", "format": "blitz", "players": ["alice", "bob"], **spec},
        }
        self.cluster.kubectl("create", "-f", "-", input=json.dumps(body))

    def wait_phase(self, name: str, phase: str, timeout: int = 60) -> dict[str, Any]:
        self.cluster.kubectl(
            "wait",
            f"--for=jsonpath={{.status.phase}}={phase}",
            f"match/{name}",
            "-n",
            self.namespace,
            f"--timeout={timeout}s",
            timeout=timeout + 30,
        )
        return self.match(name)

    def match(self, name: str) -> dict[str, Any]:
        got: dict[str, Any] = self.cluster.kubectl_json("get", "match", name, "-n", self.namespace)
        return got

    def pod(self, name: str) -> dict[str, Any] | None:
        res = self.cluster.kubectl(
            "get", "pod", name, "-n", self.namespace, "-o", "json", check=False
        )
        return json.loads(res.stdout) if res.returncode == 0 else None

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.cluster.kubectl_json(
            "get",
            "pods",
            "-n",
            self.namespace,
            "-l",
            "app.kubernetes.io/managed-by=tradearena-operator",
        )["items"]
        return items

    def patch_pod_status(self, name: str, status: dict[str, Any]) -> None:
        self.cluster.kubectl(
            "patch",
            "pod",
            name,
            "-n",
            self.namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )

    def create_pool_server(self, name: str, pool: str, host_port: int, serves: str) -> None:
        """A pool server's pod (it runs nothing: kwok marks it Running and Ready)."""
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {POOL_LABEL: pool},
                "annotations": {SERVES_ANNOTATION: serves},
            },
            "spec": {
                "nodeSelector": {"tradearena.io/pool": "game"},
                "containers": [
                    {
                        "name": "matchserver",
                        "image": "registry.invalid/tradearena:test",
                        "ports": [
                            {"name": "game", "containerPort": host_port, "hostPort": host_port}
                        ],
                    }
                ],
            },
        }
        self.cluster.kubectl("create", "-f", "-", input=json.dumps(body))
        self.cluster.kubectl(
            "wait", "--for=condition=Ready", f"pod/{name}", "-n", self.namespace, "--timeout=60s"
        )

    def event_messages(self, name: str) -> dict[str, str]:
        items = self.cluster.kubectl_json(
            "get",
            "events",
            "-n",
            self.namespace,
            "--field-selector",
            f"involvedObject.kind=Match,involvedObject.name={name}",
        )["items"]
        return {e["reason"]: e["message"] for e in items}

    def events(self, name: str) -> list[str]:
        items = self.cluster.kubectl_json(
            "get",
            "events",
            "-n",
            self.namespace,
            "--field-selector",
            f"involvedObject.kind=Match,involvedObject.name={name}",
        )["items"]
        return [e["reason"] for e in items]


def exited(code: int) -> dict[str, Any]:
    """A pod status as the kubelet reports a container that exited with `code`."""
    return {
        "phase": "Succeeded" if code == 0 else "Failed",
        "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [
            {
                "name": "matchserver",
                "ready": False,
                "restartCount": 0,
                "image": "x",
                "imageID": "",
                "state": {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Completed" if code == 0 else "Error",
                    }
                },
            }
        ],
    }


def prepare_namespace(cluster: KubeCluster, workdir: Path) -> tuple[str, Path]:
    namespace = f"op-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("apply", "-f", str(REPO / "crds"))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/matches.tradearena.io",
        "crd/matchserverpools.tradearena.io",
        "crd/kopfpeerings.kopf.dev",
        "--timeout=60s",
    )
    rbac = (REPO / "deploy" / "operator" / "rbac.yaml").read_text()
    cluster.apply(
        rbac.replace("namespace: tradearena", f"namespace: {namespace}").replace(
            "name: tradearena-operator-nodes", f"name: {namespace}-nodes"
        )
    )
    # The game pool of the Terraform contract (the label only: a taint would keep the
    # other tests' pods off these shared nodes; the pods carry the toleration anyway).
    cluster.kubectl("label", "node", *cluster.node_names, "tradearena.io/pool=game", "--overwrite")
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "tradearena-redis",
        "-n",
        namespace,
        "--from-literal=url=redis://redis.invalid:6379/0",
    )
    cluster.kubectl(
        "create",
        "configmap",
        "tradearena-match-keys",
        "-n",
        namespace,
        "--from-literal=jwks.json={}",
    )
    kubeconfig = operator_kubeconfig(cluster, namespace, workdir / f"{namespace}.kubeconfig")
    return namespace, kubeconfig


@pytest.fixture
def op_env(kube_cluster: KubeCluster, redis_url: str, tmp_path: Path) -> Iterator[OperatorEnv]:
    """A fresh namespace with CRDs, RBAC and the operator's kubeconfig; no operator yet."""
    namespace, kubeconfig = prepare_namespace(kube_cluster, tmp_path)
    env = OperatorEnv(kube_cluster, namespace, kubeconfig, tmp_path, redis_url)
    try:
        yield env
    finally:
        logs = [p.tail() for p in env.processes]
        for op in env.processes:
            op.stop()
        names = kube_cluster.kubectl(
            "get", "matches", "-n", namespace, "-o", "name", check=False
        ).stdout.split()
        for name in names:  # no operator left to release them
            kube_cluster.kubectl(
                "patch",
                name,
                "-n",
                namespace,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
        kube_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        if logs:
            print("\n".join(logs))
