"""The whole Kubernetes path on one machine: control plane, a running node, the chart.

What `make cluster` starts and what the end-to-end tests install, in order:

1. the project's image, built with buildah from the Dockerfile (tradearena.testing.image);
2. the control plane (kube-apiserver, scheduler, controller-manager, etcd), reachable
   from pods at the node's bridge address;
3. a node whose pods really run, from that image (tradearena.testing.node);
4. PostgreSQL and Redis as external endpoints on the bridge address, with passwords,
   the way RDS and ElastiCache sit outside a production cluster;
5. the Secrets and ConfigMap the chart references (database and cache passwords, the
   token-signing key, its JWKS), a throwaway CA with a wildcard certificate for match
   servers (`*.<domain>`) and one for the lobby's ingress host;
6. `helm install` of charts/tradearena with its own values.yaml plus
   examples/external-services.yaml (hosts, ports, image, TLS names set per run);
7. a TLS-terminating stand-in for the ingress controller (tradearena.testing.ingress).

Players reach the lobby at `https://lobby.<domain>` and match servers at
`wss://<node-ip-dashed>.<domain>:<port>`; clients map those names to addresses with a
resolver option of their own (no system file is edited). Command line::

    python -m tradearena.testing.kube_platform up     # runs until Ctrl-C
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradearena.launcher.localservices import LocalPostgres, LocalRedis
from tradearena.testing.helm_chart import CHART
from tradearena.testing.image import BuiltImage, ensure_image
from tradearena.testing.ingress import IngressStandIn
from tradearena.testing.kube import KubeCluster, KubeCommandError, cache_root, create_cluster
from tradearena.testing.node.fixture import RunningNode, prepare_bridge, remove_bridge, start_node
from tradearena.testing.tls import ServerCertificate, ThrowawayCA, dashed
from tradearena.tokens import Signer, generate_private_key_pem

EXTERNAL_SERVICES = CHART / "examples" / "external-services.yaml"
MATCH_TLS_SECRET = "tradearena-match-tls"
LOBBY_TLS_SECRET = "tradearena-lobby-tls"


@dataclass(frozen=True)
class PlatformOptions:
    workdir: Path
    name: str = "ta-e2e"
    namespace: str = "tradearena"
    release: str = "tradearena"
    domain: str = "play.test"
    cidr: str = "10.76.0.0/24"  # node tests use 10.77.x: no overlap while both run
    bridge: str = "ta-e2e0"
    # Service cluster IPs become host addresses on the node: a range of this cluster's own.
    service_cidr: str = "10.95.0.0/24"
    ingress_listen: tuple[str, int] = ("127.0.77.1", 443)
    extra_helm_args: tuple[str, ...] = ()
    catalogue: str = ""  # the chart's `catalogue` value (modes.toml text); "": packaged


@dataclass
class KubePlatform:
    """Start with `start()`, stop with `stop()` (also after a failed start)."""

    options: PlatformOptions
    image: BuiltImage | None = None
    cluster: KubeCluster | None = None
    node: RunningNode | None = None
    redis: LocalRedis | None = None
    postgres: LocalPostgres | None = None
    ca: ThrowawayCA | None = None
    ingress: IngressStandIn | None = None
    timings: dict[str, float] = field(default_factory=dict)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _pg_dir: Path | None = None

    # ---------------------------------------------------------------- addresses
    @property
    def node_ip(self) -> str:
        assert self.node is not None
        return self.node.address

    @property
    def alt_image_tag(self) -> str:
        """A second tag of the same image (an upgrade that changes only the tag)."""
        assert self.image is not None
        return f"{self.image.tag}-b"

    @property
    def lobby_host(self) -> str:
        return f"lobby.{self.options.domain}"

    @property
    def lobby_url(self) -> str:
        port = self.options.ingress_listen[1]
        return f"https://{self.lobby_host}" + ("" if port == 443 else f":{port}")

    @property
    def match_host(self) -> str:
        """The name a match server on this node advertises (the operator's template)."""
        return f"{dashed(self.node_ip)}.{self.options.domain}"

    @property
    def hosts(self) -> dict[str, str]:
        """Name → address, for each client's resolver option."""
        return {self.lobby_host: self.options.ingress_listen[0], self.match_host: self.node_ip}

    def dial_args(self) -> list[str]:
        """The Node clients' options (tests/js/dial.mjs): trust the CA, resolve the names."""
        hosts = ",".join(f"{h}={a}" for h, a in self.hosts.items())
        return ["--ca", str(self.ca_file), "--resolve", hosts]

    def browser_args(self) -> list[str]:
        """Chromium's (tests/js/chromium.mjs): its own resolver map, the CA's key trusted."""
        assert self.ca is not None
        rules = ", ".join(f"MAP {h} {a}" for h, a in self.hosts.items())
        return ["--host-resolver-rules", rules, "--spki", self.ca.spki_sha256]

    @property
    def ca_file(self) -> Path:
        assert self.ca is not None
        return self.ca.cert_file

    @property
    def dsn(self) -> str:
        assert self.postgres is not None
        return self.postgres.dsn

    def _timed(self, what: str, started: float) -> None:
        self.timings[what] = round(time.monotonic() - started, 1)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        o = self.options
        o.workdir.mkdir(parents=True, exist_ok=True)
        t = time.monotonic()
        self.image = ensure_image()
        self._timed("image", t)

        t = time.monotonic()
        # The bridge first: the API server's certificate then lists the node address.
        prepare_bridge(o.bridge, o.cidr)
        self._stack.callback(remove_bridge, o.bridge)  # also when the cluster fails to start
        # Pods reach the API server at the node address (any address: kubectl uses loopback).
        self.cluster = create_cluster(
            o.name,
            workdir=o.workdir / "kwok",
            nodes=0,
            apiserver_address="0.0.0.0",
            service_cidr=o.service_cidr,
        )
        directory = self.image.rootfs.parent
        self.node = self._stack.enter_context(
            start_node(
                self.cluster,
                name=f"{o.name}-node",
                bridge=o.bridge,
                cidr=o.cidr,
                images={
                    self.image.name: directory,
                    f"{self.image.repository}:{self.alt_image_tag}": directory,
                },
                state_dir=o.workdir / "node",
            )
        )
        self._timed("control plane and node", t)

        t = time.monotonic()
        secret = uuid.uuid4().hex
        self.redis = LocalRedis(
            o.workdir / "redis", extra_hosts=(self.node_ip,), password=f"r{secret[:16]}"
        )
        self.redis.start()
        # PostgreSQL runs as `postgres` when we are root: its data in a directory of its
        # own that it can reach (not under a private home), removed on stop.
        self._pg_dir = Path(tempfile.mkdtemp(prefix="ta-pg-"))
        self._pg_dir.chmod(0o755)
        self.postgres = LocalPostgres(
            self._pg_dir,
            extra_hosts=(self.node_ip,),
            remote_cidr=o.cidr,
            password=f"p{secret[16:]}",
        )
        self.postgres.start()
        self._timed("external services", t)

        self.ca = ThrowawayCA.create(o.workdir / "ca")
        self._prerequisites()
        t = time.monotonic()
        self.install()
        self._timed("helm install", t)
        self.ingress = IngressStandIn(
            self.cluster, o.namespace, f"{o.release}-lobby", o.ingress_listen
        )
        self.ingress.start()

    def stop(self) -> None:
        ingress, cluster, redis, postgres = self.ingress, self.cluster, self.redis, self.postgres
        steps: list[tuple[str, Any]] = [
            ("ingress", ingress.stop if ingress else None),
            ("node and its bridge", self._stack.close),
            ("control plane", cluster.delete if cluster else None),
            ("redis", redis.stop if redis else None),
            ("postgres", (lambda: postgres.stop("immediate")) if postgres else None),
            ("postgres data", self._remove_pg_dir),
        ]
        for what, step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception as exc:  # teardown goes on: each part is independent
                print(f"kube_platform: stopping the {what} failed: {exc}", file=sys.stderr)

    def _remove_pg_dir(self) -> None:
        if self._pg_dir is not None:
            shutil.rmtree(self._pg_dir, ignore_errors=True)

    # ---------------------------------------------------------------- chart
    def _secret(self, name: str, items: Mapping[str, str], kind: str = "Opaque") -> None:
        assert self.cluster is not None
        self.cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": kind,
                "metadata": {"name": name, "namespace": self.options.namespace},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in items.items()},
            }
        )

    def _tls_secret(self, name: str, cert: ServerCertificate) -> None:
        self._secret(
            name,
            {"tls.crt": cert.cert_file.read_text(), "tls.key": cert.key_file.read_text()},
            "kubernetes.io/tls",
        )

    def _prerequisites(self) -> None:
        assert self.cluster and self.redis and self.postgres and self.ca
        ns = self.options.namespace
        self.cluster.kubectl("create", "namespace", ns)
        pem = generate_private_key_pem()
        redis_pw = self.redis.password or ""
        self._secret("tradearena-postgresql", {"password": self.postgres.password or ""})
        self._secret(
            "tradearena-redis",
            {
                "password": redis_pw,
                "url": f"redis://:{redis_pw}@{self.node_ip}:{self.redis.port}/0",
            },
        )
        self._secret("tradearena-signing-key", {"private.pem": pem.decode()})
        jwks = Signer.from_pem(pem).verifier().jwks()
        self.cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "tradearena-match-keys", "namespace": ns},
                "data": {"jwks.json": json.dumps(jwks)},
            }
        )
        self._tls_secret(
            MATCH_TLS_SECRET, self.ca.issue([f"*.{self.options.domain}"], "match-servers")
        )
        self._tls_secret(LOBBY_TLS_SECRET, self.ca.issue([self.lobby_host], "lobby"))

    def value_sets(self, **overrides: Any) -> dict[str, Any]:
        """Per-run settings on top of values.yaml and external-services.yaml."""
        assert self.image and self.redis and self.postgres
        o = self.options
        sets: dict[str, Any] = {
            "image.repository": self.image.repository,
            "image.tag": self.image.tag,
            "postgresql.host": self.node_ip,
            "postgresql.port": self.postgres.port,
            "redis.host": self.node_ip,
            "redis.port": self.redis.port,
            # Binance is out of reach here; the relay's synthetic source publishes ticks.
            "feedRelay.source": "synthetic",
            "lobby.ingress": {
                "enabled": True,
                "host": self.lobby_host,
                "tls": [{"secretName": LOBBY_TLS_SECRET, "hosts": [self.lobby_host]}],
            },
            "matchServer.tls.enabled": True,
            "matchServer.tls.secretName": MATCH_TLS_SECRET,
            "matchServer.addressTemplate": "{node_ip_dashed}." + o.domain,
            "catalogue": o.catalogue,
            # Every player of this machine reaches the lobby from one address, as with
            # `tradearena up` (tradearena/launcher/up.py): its per-address limits are
            # raised the same way (per-account limits still apply).
            "lobby.extraEnv": [
                {"name": "TRADEARENA_REGISTER_LIMIT_IP", "value": "100000"},
                {"name": "TRADEARENA_RATE_LIMIT_IP", "value": "1000000"},
            ],
        }
        sets.update(overrides)
        return sets

    def install(self, *, command: str = "install", timeout: str = "8m", **overrides: Any) -> None:
        """`helm install` (or `upgrade`): values.yaml, external-services.yaml, this run's
        addresses (`--set-json`, so no value is reinterpreted by --set's syntax)."""
        assert self.cluster is not None
        o = self.options
        args = [command, o.release, str(CHART), "--namespace", o.namespace]
        args += ["-f", str(EXTERNAL_SERVICES)]
        for key, value in self.value_sets(**overrides).items():
            args += ["--set-json", f"{key}={json.dumps(value)}"]
        args += list(o.extra_helm_args)
        args += ["--wait", "--timeout", timeout]
        try:
            self.cluster.helm(*args, timeout=_seconds(timeout) + 60)
        except KubeCommandError as exc:
            raise RuntimeError(f"helm {command} failed: {exc.stderr}\n{self.diagnose()}") from exc

    def diagnose(self) -> str:
        """What a failure message needs: pods, recent events, the node's and pods' logs."""
        if self.cluster is None:
            return "(no cluster)"
        ns = self.options.namespace
        parts = [
            self.cluster.kubectl("-n", ns, "get", "pods", "-o", "wide", check=False).stdout,
            self.cluster.kubectl(
                "-n", ns, "get", "events", "--sort-by=.lastTimestamp", check=False
            ).stdout[-6000:],
        ]
        if self.node is not None:
            parts.append("--- node log\n" + self.node.log_tail(60))
            pods = self.cluster.kubectl("-n", ns, "get", "pods", "-o", "json", check=False)
            for pod in json.loads(pods.stdout or "{}").get("items", []):
                ready = any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in pod.get("status", {}).get("conditions", [])
                )
                if ready:
                    continue
                for c in pod["spec"]["containers"]:
                    for stream in ("stdout", "stderr"):
                        text = self.node.container_log(pod["metadata"]["uid"], c["name"], stream)
                        tail = "\n".join(text.splitlines()[-15:])
                        parts.append(f"--- {pod['metadata']['name']}/{c['name']} {stream}\n{tail}")
        return "\n".join(parts)

    def helm_test(self) -> str:
        assert self.cluster is not None
        o = self.options
        return self.cluster.helm(
            "test", o.release, "--namespace", o.namespace, "--timeout", "3m", timeout=240
        ).stdout

    def uninstall(self) -> str:
        assert self.cluster is not None
        o = self.options
        try:
            return self.cluster.helm(
                "uninstall",
                o.release,
                "--namespace",
                o.namespace,
                "--wait",
                "--timeout",
                "6m",
                timeout=420,
            ).stdout
        except KubeCommandError as exc:
            raise RuntimeError(f"helm uninstall failed: {exc.stderr}\n{self.diagnose()}") from exc

    def kubectl_json(self, *args: str) -> Any:
        assert self.cluster is not None
        return self.cluster.kubectl_json("-n", self.options.namespace, *args)


def _seconds(duration: str) -> float:
    unit = {"s": 1, "m": 60, "h": 3600}[duration[-1]]
    return float(duration[:-1]) * unit


def dev_workdir() -> Path:
    return cache_root() / "cluster"


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tradearena.testing.kube_platform",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start everything, print the lobby URL, run until Ctrl-C")
    up.add_argument("--workdir", type=Path, default=dev_workdir())
    up.add_argument(
        "--index",
        type=int,
        default=0,
        choices=range(250),
        metavar="N",
        help="addresses of their own for a second installation on this machine (default 0)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make cluster: the node needs root (network namespaces, mounts)", file=sys.stderr)
        return 2
    shutil.rmtree(args.workdir, ignore_errors=True)
    # Addresses of its own, so `make test` can run beside it.
    platform = KubePlatform(
        PlatformOptions(
            workdir=args.workdir,
            name=f"tradearena-dev{args.index or ''}",
            bridge=f"ta-dev{args.index}",
            cidr=f"10.75.{args.index}.0/24",
            service_cidr=f"10.94.{args.index}.0/24",
            ingress_listen=(f"127.0.75.{args.index + 1}", 443),
        )
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        platform.start()
        assert platform.cluster is not None
        browser = platform.browser_args()
        lines = [
            f"lobby:      {platform.lobby_url}/  (a throwaway CA: {platform.ca_file})",
            f"names:      {', '.join(f'{h} -> {a}' for h, a in platform.hosts.items())}",
            "a browser:  chromium --user-data-dir=$(mktemp -d)"
            f" '--host-resolver-rules={browser[1]}'"
            f" --ignore-certificate-errors-spki-list={browser[3]} {platform.lobby_url}/",
            "bots:       node tests/js/platform_bots.mjs --url "
            f"{platform.lobby_url} --count 10 " + " ".join(platform.dial_args()),
            f"kubeconfig: export KUBECONFIG={platform.cluster.kubeconfig}",
            f"tools:      export PATH={platform.cluster.bin_dir}:$PATH",
            "            kubectl -n tradearena get pods,matches",
            f"started in: {json.dumps(platform.timings)} (seconds)",
            "Ctrl-C stops and removes everything.",
        ]
        print("\n".join(lines), flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        platform.stop()
        shutil.rmtree(args.workdir, ignore_errors=True)  # data, CA key, logs
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
