"""A node killed outright (SIGKILL: no cleanup) leaves its pods' processes and
namespaces behind; the next node process of that name removes them and runs the
pods it is given afresh."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from tradearena.testing.node import NodeCluster, network, start_node

pytestmark = pytest.mark.k8s

NAME = "real-restart"
# Pods here do not call the API server (its certificate names the session node's address).
CIDR = f"10.76.{os.getpid() % 250}.0/24"


def _pod(nc: NodeCluster, namespace: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "survivor", "namespace": namespace},
        "spec": {
            "nodeName": NAME,
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "main",
                    "image": nc.image.name,
                    "command": ["python3", "-c", "import time\nwhile True: time.sleep(60)"],
                }
            ],
        },
    }


def _running_pid(nc: NodeCluster, namespace: str, other_than: int = 0) -> int:
    def pid() -> int | None:
        pod = nc.cluster.kubectl_json("get", "pod", "survivor", "-n", namespace)
        statuses = pod.get("status", {}).get("containerStatuses") or []
        if not statuses or "running" not in statuses[0]["state"]:
            return None
        found = int(statuses[0]["containerID"].rsplit("/", 1)[1])
        return found if found != other_than and Path(f"/proc/{found}").exists() else None

    result: int = nc.cluster.wait_until("the pod running", pid, timeout=30)
    return result


def test_killed_node_leftovers_are_cleaned_by_the_next_run(
    node_cluster: NodeCluster, namespace: str, tmp_path: Path
) -> None:
    nc = node_cluster
    bridge = f"tar{uuid.uuid4().hex[:6]}"
    images = {nc.image.name: nc.image.directory}
    prefix = "ta" + network.node_tag(NAME)
    with start_node(
        nc.cluster, name=NAME, bridge=bridge, cidr=CIDR, images=images, state_dir=tmp_path / "a"
    ) as first:
        nc.cluster.apply(_pod(nc, namespace))
        old_pid = _running_pid(nc, namespace)
        [old_netns] = network.node_netns(prefix)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        assert Path(f"/proc/{old_pid}").exists()  # nothing cleaned up yet
        # The context manager's exit cleans up after a dead node too; the leftovers
        # are recreated by the second run's own cleanup check below.
        with start_node(
            nc.cluster,
            name=NAME,
            bridge=bridge,
            cidr=CIDR,
            images=images,
            state_dir=tmp_path / "b",
        ):
            new_pid = _running_pid(nc, namespace, other_than=old_pid)
            deadline = time.monotonic() + 5
            while Path(f"/proc/{old_pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not Path(f"/proc/{old_pid}").exists()
            assert Path(f"/proc/{new_pid}").exists()
            assert network.node_netns(prefix) == [old_netns]  # same pod, fresh namespace
            nc.cluster.kubectl("delete", "pod", "survivor", "-n", namespace, "--timeout=30s")
            assert network.node_netns(prefix) == []
    assert network.node_netns(prefix) == []
    assert not Path(f"/sys/class/net/{bridge}").exists()
