"""A real `helm install` of charts/tradearena into the session's test control plane.

kwok plays the kubelet: pods are scheduled onto the kwok nodes and become Running and
Ready without any container running, so the install proves what the apiserver, the
scheduler, admission and RBAC decide; the processes themselves are exercised elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tradearena.testing.helm_chart import (
    CHART,
    RELEASE,
    VALUES_DIR,
    Installed,
    create_prerequisites,
)
from tradearena.testing.kube import KubeCluster


@pytest.fixture(scope="session")
def chart_install(kube_cluster: KubeCluster) -> Iterator[Installed]:
    namespace = f"chart-{uuid.uuid4().hex[:8]}"
    kube_cluster.kubectl("create", "namespace", namespace)
    create_prerequisites(kube_cluster, namespace)
    installed = Installed(kube_cluster, namespace, RELEASE)
    try:
        kube_cluster.helm(
            "install",
            RELEASE,
            str(CHART),
            "--namespace",
            namespace,
            "-f",
            str(VALUES_DIR / "kwok-install.yaml"),
            "--wait",
            "--timeout",
            "5m",
            timeout=360,
        )
        yield installed
    finally:
        kube_cluster.helm("uninstall", RELEASE, "--namespace", namespace, "--wait=false")
        kube_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
