"""`tradearena operator` through the process shell, on the real control plane: with good
settings it serves /healthz, /readyz (once its port allocations are rebuilt) and
/metrics, and stops cleanly on SIGTERM. Its bad-setting case needs no cluster
(tests/integration/test_process_shell.py)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from tradearena.launcher.localservices import free_port
from tradearena.testing.kube import KubeCluster
from tradearena.testing.processes import serves_probes_then_stops

REPO = Path(__file__).resolve().parents[2]


def test_operator_serves_its_probes_and_stops_on_sigterm(
    kube_cluster: KubeCluster, tmp_path: Path
) -> None:
    namespace = f"shell-{uuid.uuid4().hex[:8]}"
    kube_cluster.kubectl("create", "namespace", namespace)
    kube_cluster.kubectl("apply", "-f", str(REPO / "crds"))
    kube_cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/matches.tradearena.io",
        "crd/matchserverpools.tradearena.io",
        "--timeout=60s",
    )
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kube_cluster.kubeconfig),
        "TRADEARENA_OPERATOR_NAMESPACES": namespace,
        "TRADEARENA_OPERATOR_METRICS_HOST": "127.0.0.1",
        "TRADEARENA_OPERATOR_METRICS_PORT": str(port),
        "TRADEARENA_OPERATOR_LOG_FORMAT": "text",
        "TRADEARENA_OPERATOR_STANDALONE": "true",
    }
    try:
        serves_probes_then_stops("operator", env, port, tmp_path / "operator.log")
    finally:
        kube_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
