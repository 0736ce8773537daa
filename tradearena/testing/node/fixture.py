"""Starting and stopping a test node next to a control plane (see the package doc)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tradearena.testing.kube import KubeCluster
from tradearena.testing.node.network import cleanup, delete_bridge, ensure_bridge, node_tag


def prepare_bridge(bridge: str, cidr: str) -> str:
    """Create the node's bridge now (before `create_cluster`, so that the API server
    certificate lists the node address); returns that address."""
    return ensure_bridge(bridge, cidr)


def remove_bridge(bridge: str) -> None:
    """Undo `prepare_bridge` (a stopped node removes its bridge itself)."""
    delete_bridge(bridge)


@dataclass
class RunningNode:
    name: str
    address: str
    cidr: str
    process: subprocess.Popen[bytes]
    log_path: Path
    state_dir: Path

    def container_log(self, pod_uid: str, container: str, stream: str = "stdout") -> str:
        """What a container wrote (kept while its pod object exists)."""
        path = self.state_dir / "pods" / pod_uid / "containers" / container / f"{stream}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _node_ready(cluster: KubeCluster, name: str) -> bool:
    proc = cluster.kubectl("get", "node", name, "-o", "json", check=False)
    if proc.returncode != 0:
        return False
    node = json.loads(proc.stdout)
    ready = any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in node.get("status", {}).get("conditions") or []
    )
    taints = [
        t
        for t in node.get("spec", {}).get("taints") or []
        if t["key"].startswith("node.kubernetes.io/")
    ]
    return ready and not taints


@contextlib.contextmanager
def start_node(
    cluster: KubeCluster,
    *,
    name: str,
    bridge: str,
    cidr: str,
    images: Mapping[str, Path],
    state_dir: Path,
    labels: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Iterator[RunningNode]:
    """Run the node process for `cluster`; yields once its Node is Ready and untainted.
    On exit stops it (SIGTERM; it cleans its namespaces, bridge and Node)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "node.log"
    argv = [
        sys.executable,
        "-m",
        "tradearena.testing.node",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--name",
        name,
        "--bridge",
        bridge,
        "--cidr",
        cidr,
        "--state-dir",
        str(state_dir),
    ]
    for image, directory in images.items():
        argv += ["--image", f"{image}={directory}"]
    for key, value in (labels or {}).items():
        argv += ["--label", f"{key}={value}"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    node = RunningNode(name, ensure_bridge(bridge, cidr), cidr, process, log_path, state_dir)
    try:
        deadline = time.monotonic() + timeout
        while not _node_ready(cluster, name):
            if process.poll() is not None:
                raise RuntimeError(f"node {name} exited {process.returncode}:\n{node.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {name} not Ready after {timeout}s:\n{node.log_tail()}")
            time.sleep(0.2)
        yield node
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        cleanup("ta" + node_tag(name), bridge)


@dataclass(frozen=True)
class NodeImage:
    """An image the node runs: its name in pod specs and its directory
    (``rootfs/`` + ``config.json``)."""

    name: str
    directory: Path


@dataclass
class NodeCluster:
    """A control plane with one real node, as the node tests' fixture hands it out."""

    cluster: KubeCluster
    node: RunningNode
    image: NodeImage
