"""A Kubernetes node whose pods really run, for tests (a minimal kubelet).

Pods bound to the node run as real processes: each pod gets a network namespace on
a Linux bridge, each container its own mount namespace over the image's root
filesystem, its volumes, its user; probes, restart policy, status and graceful
deletion follow the kubelet. See ``agent.py`` for the Kubernetes loop, ``pod.py``
for one pod's life, ``podspec.py`` for the pure spec resolution, ``launcher.py``
for how a container process is made.

Typical use, with a control plane from `tradearena.testing.kube`::

    address = prepare_bridge("tanode0", "10.77.0.0/24")   # before the cluster: cert SANs
    cluster = create_cluster(name, workdir=..., nodes=0, apiserver_address="0.0.0.0")
    with start_node(cluster, name="real-0", bridge="tanode0", cidr="10.77.0.0/24",
                    images={image_name: image_dir}, state_dir=tmp) as node:
        ...  # pods with spec.nodeName == node.name (or scheduled there) run

Not done: DNS (Service names come from /etc/hosts, written for the pod's namespace
and kept current), NetworkPolicy (not enforced), UDP hostPorts/Services, resource
limits (not enforced), ConfigMap/Secret volume updates after start (tokens are
refreshed), image pulls (images are directories given on the command line).
"""

from tradearena.testing.node.fixture import (
    NodeCluster,
    NodeImage,
    RunningNode,
    prepare_bridge,
    remove_bridge,
    start_node,
)

__all__ = [
    "NodeCluster",
    "NodeImage",
    "RunningNode",
    "prepare_bridge",
    "remove_bridge",
    "start_node",
]
