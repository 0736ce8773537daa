"""A real Kubernetes control plane for tests, from binaries built out of Go modules.

``scripts/build-kube.sh`` (``make kube-tools``) compiles kube-apiserver,
kube-controller-manager, kube-scheduler, kubectl, etcd, kwok, kwokctl and helm into
``~/.cache/tradearena/kube/<k8s-version>/bin``. ``create_cluster`` starts them with
``kwokctl --runtime binary``, every binary given as a local path so nothing is
downloaded, then registers kwok-simulated nodes that carry InternalIP/ExternalIP
addresses and capacity. kwok-controller plays the kubelet: pods scheduled onto those
nodes go Running without any container runtime.

Command line, for humans (``make kwok-cluster`` / ``make kwok-cluster-down``)::

    python -m tradearena.testing.kube up [--name NAME] [--nodes N]
    python -m tradearena.testing.kube down [--name NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
MOD_DIR = REPO / "hack" / "kube"
BUILD_SCRIPT = REPO / "scripts" / "build-kube.sh"

TOOLS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "etcd",
    "kwok",
    "kwokctl",
    "helm",
)

DEV_CLUSTER = "tradearena-dev"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"  # value "fake": kwok plays this node's kubelet
NODE_CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}


class KubeToolsMissingError(RuntimeError):
    """The locally built Kubernetes binaries are not there (run `make kube-tools`)."""


class KubeCommandError(RuntimeError):
    """A kubectl/helm/kwokctl command exited non-zero."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(
            f"{' '.join(argv)} exited {returncode}\n--- stdout\n{stdout[-4000:]}"
            f"\n--- stderr\n{stderr[-4000:]}"
        )


def _module_version(go_mod: Path, module: str) -> str:
    for line in go_mod.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == module and parts[1].startswith("v"):
            return parts[1]
    raise KubeToolsMissingError(f"{module} is not pinned in {go_mod}")


def pinned_versions() -> dict[str, str]:
    """Versions pinned in hack/kube (the single source of truth, as for build-kube.sh)."""
    return {
        "kubernetes": _module_version(MOD_DIR / "go.mod", "k8s.io/kubernetes"),
        "etcd": _module_version(MOD_DIR / "go.mod", "go.etcd.io/etcd/server/v3"),
        "kwok": _module_version(MOD_DIR / "tools" / "go.mod", "sigs.k8s.io/kwok"),
        "helm": _module_version(MOD_DIR / "tools" / "go.mod", "helm.sh/helm/v3"),
    }


def cache_root() -> Path:
    return Path(os.environ.get("TRADEARENA_CACHE", Path.home() / ".cache" / "tradearena"))


def bin_dir() -> Path:
    return cache_root() / "kube" / pinned_versions()["kubernetes"] / "bin"


def require_tools() -> Path:
    """Return the directory with every binary, or fail loudly saying how to build them."""
    directory = bin_dir()
    missing = [t for t in TOOLS if not os.access(directory / t, os.X_OK)]
    if missing:
        raise KubeToolsMissingError(
            f"Kubernetes test binaries missing from {directory}: {', '.join(missing)}.\n"
            f"Build them with `make kube-tools` (runs {BUILD_SCRIPT.relative_to(REPO)}; "
            "`make test` does this itself)."
        )
    return directory


def _run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise KubeCommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


@dataclass
class KubeCluster:
    """A running kwokctl cluster and helpers bound to its kubeconfig."""

    name: str
    workdir: Path
    bin_dir: Path
    node_names: list[str] = field(default_factory=list)
    node_external_ips: dict[str, str] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "clusters" / self.name / "kubeconfig.yaml"

    @property
    def kubectl_path(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def helm_path(self) -> Path:
        return self.bin_dir / "helm"

    def env(self) -> dict[str, str]:
        """Environment for tools and code under test: KUBECONFIG and the built binaries first."""
        env = os.environ.copy()
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        env["KWOK_WORKDIR"] = str(self.workdir)
        return env

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]
        return _run(argv, env=self.env(), input=input, check=check, timeout=timeout)

    def kubectl_json(self, *args: str, timeout: float = 120) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json", timeout=timeout).stdout)

    def apply(self, manifest: str | Mapping[str, Any], *args: str) -> str:
        """`kubectl apply -f -` with a YAML/JSON string or a dict."""
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.kubectl("apply", "-f", "-", *args, input=text).stdout

    def helm(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [str(self.helm_path), f"--kubeconfig={self.kubeconfig}", *args]
        return _run(argv, env=self.env(), timeout=timeout)

    def wait_until(
        self, what: str, predicate: Any, *, timeout: float = 60, interval: float = 0.2
    ) -> Any:
        """Poll `predicate()` until it returns something truthy; fail with `what` on timeout.

        For apiserver state only; prefer `kubectl wait` or a watch where one exists.
        """
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")

    def component_logs(self, tail: int = 40) -> str:
        """Last lines of each component's log, for failure messages."""
        logs = self.workdir / "clusters" / self.name / "logs"
        out = []
        for log in sorted(logs.glob("*.log")) if logs.is_dir() else []:
            lines = log.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def delete(self) -> None:
        _run(
            [str(self.bin_dir / "kwokctl"), "delete", "cluster", "--name", self.name],
            env=self.env(),
            check=False,
            timeout=120,
        )


def node_manifest(name: str, index: int) -> dict[str, Any]:
    """A kwok-managed Node with addresses and capacity.

    Both addresses are loopback ones: nothing in the cluster really listens there, and
    anything that does dial them (a client sent to a match server's address) stays on
    this machine.
    """
    internal_ip = f"127.0.20.{index + 1}"
    external_ip = f"127.0.10.{index + 1}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "type": "kwok",
                "topology.kubernetes.io/zone": f"zone-{chr(ord('a') + index % 3)}",
            },
        },
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": internal_ip},
                {"type": "ExternalIP", "address": external_ip},
                {"type": "Hostname", "address": name},
            ],
            "capacity": NODE_CAPACITY,
            "allocatable": NODE_CAPACITY,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "fake",
                "kubeProxyVersion": "fake",
            },
        },
    }


def _free_port_pair() -> int:
    """A free loopback port whose successor is free too (etcd puts its peer port there)."""
    import socket

    for _ in range(100):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port: int = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("0.0.0.0", port + 1))  # etcd binds its peer port on all addresses
                except OSError:
                    continue
            return port
    raise RuntimeError("no free pair of ports")


def create_cluster(
    name: str,
    *,
    workdir: Path,
    nodes: int = 3,
    timeout: float = 120,
    apiserver_address: str = "127.0.0.1",
    service_cidr: str | None = None,
) -> KubeCluster:
    """Start a cluster from the locally built binaries and wait until its nodes are Ready.

    `apiserver_address` is where kube-apiserver listens: loopback by default; "0.0.0.0"
    lets pods of a real node (`tradearena.testing.node`) reach it at the node address
    (kwokctl puts the host's addresses in the serving certificate, so create that
    node's bridge first). `service_cidr` replaces the API server's default Service
    range (10.0.0.0/24): a real node puts ClusterIPs on the host, so clusters running
    side by side need ranges of their own. The caller owns teardown (`cluster.delete()`); on a failed
    start this deletes it.
    """
    directory = require_tools()
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = KubeCluster(name=name, workdir=workdir, bin_dir=directory)
    env = cluster.env()
    # Every binary is a local path; nothing is fetched. Setting KWOK_KUBE_BINARY_PREFIX
    # too means even a binary kwokctl wanted and we forgot would resolve locally.
    env.update(
        {
            "KWOK_RUNTIME": "binary",
            "KWOK_KUBE_VERSION": pinned_versions()["kubernetes"],
            "KWOK_KUBE_BINARY_PREFIX": str(directory),
            "KWOK_KUBECTL_BINARY": str(directory / "kubectl"),
        }
    )
    argv = [
        str(directory / "kwokctl"),
        "create",
        "cluster",
        "--name",
        name,
        "--runtime",
        "binary",
        "--kube-apiserver-binary",
        str(directory / "kube-apiserver"),
        "--kube-controller-manager-binary",
        str(directory / "kube-controller-manager"),
        "--kube-scheduler-binary",
        str(directory / "kube-scheduler"),
        "--kwok-controller-binary",
        str(directory / "kwok"),
        "--etcd-binary",
        str(directory / "etcd"),
        # RBAC and admission on, as in a real cluster (auth can-i must mean something).
        "--kube-authorization=true",
        "--kube-admission=true",
        # Serve the control plane on loopback only (the API server where asked).
        "--extra-args",
        f"kube-apiserver=bind-address={apiserver_address}",
        "--extra-args",
        "kube-controller-manager=bind-address=127.0.0.1",
        # kwok plays the kubelet only for the nodes registered here as fake ones (the
        # annotation node_manifest sets), never for a real node joining the cluster
        # (tradearena.testing.node); kwokctl's default is to manage every node.
        "--extra-args",
        "kwok-controller=manage-all-nodes=false",
        "--extra-args",
        f"kwok-controller=manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
        "--extra-args",
        "kube-scheduler=bind-address=127.0.0.1",
        # Keep ~/.kube/config untouched; the cluster's own kubeconfig is handed out.
        *(
            [
                "--extra-args",
                f"kube-apiserver=service-cluster-ip-range={service_cidr}",
                "--extra-args",
                f"kube-controller-manager=service-cluster-ip-range={service_cidr}",
            ]
            if service_cidr
            else []
        ),
        "--kubeconfig=",
        # Ports chosen here, not by kwokctl's sequential scan, so that clusters started
        # at the same time on one machine do not race for the same ones.
        "--etcd-port",
        str(_free_port_pair()),
        "--kube-apiserver-port",
        str(_free_port_pair()),
        "--controller-port",
        str(_free_port_pair()),
        "--kube-controller-manager-port",
        str(_free_port_pair()),
        "--kube-scheduler-port",
        str(_free_port_pair()),
        "--quiet-pull",
        "--wait",
        f"{int(timeout)}s",
        "--timeout",
        f"{int(timeout)}s",
    ]
    try:
        _run(argv, env=env, timeout=timeout + 30)
        for i in range(nodes):
            node = f"{name}-node-{i}"
            cluster.apply(node_manifest(node, i))
            cluster.node_names.append(node)
            cluster.node_external_ips[node] = f"127.0.10.{i + 1}"
        if cluster.node_names:
            cluster.kubectl(
                "wait", "--for=condition=Ready", "node", *cluster.node_names, "--timeout=60s"
            )
        # Pods need the "default" ServiceAccount that the controller manager creates.
        cluster.wait_until(
            "the default ServiceAccount",
            lambda: (
                cluster.kubectl("get", "serviceaccount", "default", check=False).returncode == 0
            ),
        )
    except BaseException as exc:
        logs = cluster.component_logs()
        cluster.delete()
        if isinstance(exc, Exception):
            raise RuntimeError(f"cluster {name} failed to start: {exc}\n{logs}") from exc
        raise
    return cluster


def dev_workdir() -> Path:
    return cache_root() / "kwok"


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tradearena.testing.kube", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a dev cluster and print its kubeconfig path")
    up.add_argument("--name", default=DEV_CLUSTER)
    up.add_argument("--nodes", type=int, default=3)
    down = sub.add_parser("down", help="delete the dev cluster")
    down.add_argument("--name", default=DEV_CLUSTER)
    args = parser.parse_args(argv)

    if args.cmd == "up":
        started = time.monotonic()
        cluster = create_cluster(args.name, workdir=dev_workdir(), nodes=args.nodes)
        print(f"cluster {cluster.name} up in {time.monotonic() - started:.1f}s", file=sys.stderr)
        print(f"nodes: {', '.join(cluster.node_names)}", file=sys.stderr)
        print(f"export KUBECONFIG={cluster.kubeconfig}", file=sys.stderr)
        print(f"export PATH={cluster.bin_dir}:$PATH", file=sys.stderr)
        print(cluster.kubeconfig)
        return 0
    directory = require_tools()
    cluster = KubeCluster(name=args.name, workdir=dev_workdir(), bin_dir=directory)
    cluster.delete()
    shutil.rmtree(cluster.workdir / "clusters" / args.name, ignore_errors=True)
    print(f"cluster {args.name} deleted", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
