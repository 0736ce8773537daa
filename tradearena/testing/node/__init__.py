"""A Kubernetes node whose pods really run, for tests (a minimal kubelet).

Pods bound to the node run as real processes: each pod gets a network namespace on
a Linux bridge (the bridge carries the node address, pods get the next addresses of
the CIDR), each container its own mount and UTS namespaces over the image's root
filesystem (an overlay with a per-container upper layer, read-only when asked), its
volumes and its user. Probes, restart policy, status, `kubectl logs` and graceful
deletion follow the kubelet. Modules: ``agent`` (the Kubernetes loop: Node, Lease,
watches, Services), ``pod`` (one pod's life), ``podspec`` and ``status`` (pure
resolution of specs and status), ``launcher`` (what becomes the container process),
``container``, ``network``, ``proxy``, ``probes``, ``logs``; ``fixture`` starts it.

Typical use, with a control plane from `tradearena.testing.kube` (as root)::

    prepare_bridge("tanode0", "10.77.0.0/24")   # before the cluster: its cert SANs
    cluster = create_cluster(name, workdir=..., nodes=0, apiserver_address="0.0.0.0")
    with start_node(cluster, name="real-0", bridge="tanode0", cidr="10.77.0.0/24",
                    images={image.name: image.rootfs.parent}, state_dir=tmp) as node:
        ...  # pods with spec.nodeName == node.name, or scheduled there, run

or from a shell: ``python -m tradearena.testing.node --help``.

On stop the node deletes its Node object (its Lease goes with it) and removes every
namespace, process, forwarder and its bridge; pod objects are left to the API server.

Not done: DNS (Service names come from /etc/hosts, kept current: the bare name for
the pod's namespace, ``name.ns[.svc[.cluster.local]]`` for every namespace), the
``FOO_SERVICE_HOST`` link variables (only KUBERNETES_SERVICE_*), NetworkPolicy (not
enforced), UDP hostPorts and Services, NodePorts, hostNetwork pods, resource limits
(not enforced), seccomp and capability sets (a non-root user has none anyway),
ConfigMap/Secret volume updates after start (projected tokens are refreshed),
``kubectl exec``/``port-forward``, image pulls (images are directories given on the
command line; an unknown one waits as ErrImagePull/ImagePullBackOff).
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
