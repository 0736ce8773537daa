"""Root fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tradearena.testing.kube import KubeCluster, create_cluster

pytest_plugins = [
    "tradearena.testing.services",
    "tradearena.testing.platform",
    "tradearena.testing.lobbydb",
    "tradearena.testing.tracing_backend",
]


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """One real control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)
    per test session, with three kwok nodes. Fails, never skips, if the binaries are
    missing: `make test` builds them (`make kube-tools`)."""
    cluster = create_cluster(
        f"tradearena-test-{os.getpid()}",
        workdir=tmp_path_factory.mktemp("kwok"),
        nodes=3,
    )
    try:
        yield cluster
    finally:
        cluster.delete()
