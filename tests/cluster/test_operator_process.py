"""`tradearena operator` through the process shell, on the real control plane: with good
settings it serves /healthz, /readyz (once its port allocations are rebuilt) and
/metrics, and stops cleanly on SIGTERM. Its bad-setting case needs no cluster
(tests/integration/test_process_shell.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tradearena.launcher.localservices import free_port
from tradearena.testing.kube import KubeCluster

REPO = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "tradearena")


def status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            code: int = resp.status
            return code
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_operator_serves_its_probes_and_stops_on_sigterm(
    kube_cluster: KubeCluster, tmp_path: Path
) -> None:
    namespace = f"shell-{uuid.uuid4().hex[:8]}"
    kube_cluster.kubectl("create", "namespace", namespace)
    kube_cluster.kubectl("apply", "-f", str(REPO / "crds"))
    kube_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/matches.tradearena.io", "--timeout=60s"
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
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([CLI, "operator"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        pending = {"/healthz", "/readyz", "/metrics"}
        while pending:
            assert proc.poll() is None, f"operator exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{pending} not 200: {log.read_text()[-3000:]}"
            pending = {p for p in pending if status(f"http://127.0.0.1:{port}{p}") != 200}
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        kube_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
