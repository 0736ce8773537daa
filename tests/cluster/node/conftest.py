"""A control plane plus one real node (tradearena.testing.node) whose pods run.

Pods run the project's own image (`tradearena.testing.image.ensure_image`, built by
scripts/build-image.sh on a cache miss); the tests read the user, environment and files
they expect from the image itself, so any image directory (``rootfs/`` +
``config.json``) with python3 would do.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tradearena.testing.image import ensure_image
from tradearena.testing.kube import create_cluster
from tradearena.testing.node import (
    NodeCluster,
    NodeImage,
    prepare_bridge,
    remove_bridge,
    start_node,
)

# One /24 per test session, so that sessions running side by side on one machine do
# not route each other's pod addresses.
CIDR = f"10.77.{os.getpid() % 250}.0/24"
# Likewise for Services: the node puts their ClusterIPs on this machine.
SERVICE_CIDR = f"10.96.{os.getpid() % 250}.0/24"


@pytest.fixture(scope="package")
def node_image() -> NodeImage:
    image = ensure_image()
    return NodeImage(image.name, image.rootfs.parent)


@pytest.fixture(scope="package")
def node_cluster(
    tmp_path_factory: pytest.TempPathFactory, node_image: NodeImage
) -> Iterator[NodeCluster]:
    if os.geteuid() != 0:
        pytest.fail("the real node needs root (network namespaces, mounts, chroot)")
    bridge = f"tan{os.getpid() % 100000}"
    prepare_bridge(bridge, CIDR)  # before the cluster: its certificate names this address
    try:
        cluster = create_cluster(
            f"tradearena-node-{os.getpid()}",
            workdir=tmp_path_factory.mktemp("kwok"),
            nodes=0,
            apiserver_address="0.0.0.0",
            service_cidr=SERVICE_CIDR,
        )
    except BaseException:
        remove_bridge(bridge)
        raise
    try:
        with start_node(
            cluster,
            name="real-0",
            bridge=bridge,
            cidr=CIDR,
            images={node_image.name: node_image.directory},
            state_dir=tmp_path_factory.mktemp("node"),
        ) as node:
            yield NodeCluster(cluster, node, node_image)
    finally:
        cluster.delete()
        remove_bridge(bridge)


@pytest.fixture
def namespace(node_cluster: NodeCluster) -> Iterator[str]:
    name = f"node-{uuid.uuid4().hex[:8]}"
    node_cluster.cluster.kubectl("create", "namespace", name)
    node_cluster.cluster.wait_until(
        "the default ServiceAccount",
        lambda: (
            node_cluster.cluster.kubectl(
                "get", "serviceaccount", "default", "-n", name, check=False
            ).returncode
            == 0
        ),
    )
    try:
        yield name
    finally:
        node_cluster.cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
