"""The node's Kubernetes loop: register the Node, keep its Lease and Ready
condition fresh, run the pods bound to it (one `PodWorker` each), and give pods
Services by name (/etc/hosts) and by ClusterIP (userspace forwarders to ready
EndpointSlice endpoints), and serve container logs to the API server (`logs`).

On stop the node stops its pods' containers (grace capped at 5 s), removes every
network namespace, forwarder and the bridge, and deletes its Node object (its Lease
goes with it by owner reference); the pod objects are left to the API server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tradearena.testing.node import logs, network
from tradearena.testing.node.pod import Image, PodWorker
from tradearena.testing.node.proxy import Forwarder

log = logging.getLogger(__name__)

Json = dict[str, Any]
CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
LEASE_SECONDS = 40
RENEW_EVERY = 10.0
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class NodeConfig:
    kubeconfig: Path
    name: str
    bridge: str
    cidr: str
    images: Mapping[str, Path]
    state_dir: Path
    labels: Mapping[str, str] = field(default_factory=dict)
    keep_node: bool = False


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Agent:
    def __init__(self, node_config: NodeConfig) -> None:
        self.config = node_config
        self.prefix = "ta" + network.node_tag(node_config.name)
        self.addresses = network.Addresses(node_config.cidr)
        self.host_ip = self.addresses.gateway
        self.allocatable = dict(CAPACITY)
        self.images = {name: Image.load(name, Path(d)) for name, d in node_config.images.items()}
        self.workers: dict[str, PodWorker] = {}
        self.services: dict[tuple[str, str], Json] = {}
        self.slices: dict[tuple[str, str], Json] = {}
        self.service_forwarders: dict[tuple[str, int], Forwarder] = {}
        self.bridge_service_ips: set[str] = set()
        self.stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._service_sync = asyncio.Event()
        self.apiserver_port = 443
        self.kubelet_port = 0
        self.api: client.ApiClient
        # The generated clients are typed for their models; this node speaks plain
        # JSON dicts (and merge patches), so it holds them untyped.
        self.core: Any

    # --- tasks ----------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed: %r", what, t.exception(), exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def _forever(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` again and again; errors are logged, never fatal."""
        while not self.stopping:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: %s: %s; retrying", what, type(exc).__name__, exc)
                await asyncio.sleep(1)

    # --- run ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        c = self.config
        c.state_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(network.cleanup, self.prefix)
        await asyncio.to_thread(network.ensure_bridge, c.bridge, c.cidr)
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=str(c.kubeconfig), client_configuration=configuration
        )
        self.apiserver_port = urlparse(configuration.host).port or 443
        self._logs, self.kubelet_port = await logs.serve(
            self.host_ip, 0, self._log_dir, c.state_dir / "pki"
        )
        self.api = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api)
        try:
            await self._register()
            log.info(
                "node %s registered address=%s cidr=%s images=%s",
                c.name,
                self.host_ip,
                c.cidr,
                sorted(self.images),
            )
            self.spawn(self._forever("lease", self._lease_loop), "lease")
            self.spawn(self._forever("heartbeat", self._heartbeat_loop), "heartbeat")
            self.spawn(self._forever("pod watch", self._watch_pods), "pod watch")
            self.spawn(self._forever("service watch", self._watch_services), "service watch")
            self.spawn(
                self._forever("endpointslice watch", self._watch_slices), "endpointslice watch"
            )
            self.spawn(self._forever("service sync", self._sync_services_loop), "service sync")
            await stop.wait()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        log.info("node %s stopping", self.config.name)
        self.stopping = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        workers = list(self.workers.values())
        for worker in workers:
            worker.deleting.set()
        await asyncio.gather(*(w.task for w in workers if w.task), return_exceptions=True)
        for forwarder in self.service_forwarders.values():
            await forwarder.close()
        if not self.config.keep_node:
            try:
                await self.core.delete_node(self.config.name)
            except Exception as exc:
                log.warning("deleting node failed: %s", exc)
        await self.api.close()
        await self._logs.cleanup()
        await asyncio.to_thread(network.cleanup, self.prefix, self.config.bridge)
        log.info("node %s stopped", self.config.name)

    def _log_dir(self, namespace: str, pod: str, container: str) -> Path | None:
        for worker in self.workers.values():
            if (worker.namespace, worker.name) == (namespace, pod):
                directory = worker.dir / "containers" / container
                return directory if directory.is_dir() else None
        return None

    # --- Node and Lease -------------------------------------------------------------

    def _conditions(self) -> list[Json]:
        now = _time(_now())
        pressure = [
            ("MemoryPressure", "KubeletHasSufficientMemory"),
            ("DiskPressure", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "KubeletHasSufficientPID"),
        ]
        conditions = [
            {
                "type": t,
                "status": "False",
                "reason": r,
                "message": r,
                "lastHeartbeatTime": now,
                "lastTransitionTime": self._since,
            }
            for t, r in pressure
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "test node is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": self._since,
            }
        )
        return conditions

    async def _register(self) -> None:
        c = self.config
        self._since = _time(_now())
        labels = {
            "kubernetes.io/hostname": c.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "tradearena-node",
            **c.labels,
        }
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": c.name, "labels": labels},
            "spec": {"podCIDR": c.cidr, "podCIDRs": [c.cidr]},
        }
        try:
            await self.core.create_node(node)
        except ApiException as exc:
            if exc.status != 409:
                raise
            await self.core.patch_node(c.name, {"metadata": {"labels": labels}})
        self._node_uid = (await self.core.read_node(c.name)).metadata.uid
        status = {
            "addresses": [
                {"type": "InternalIP", "address": self.host_ip},
                {"type": "ExternalIP", "address": self.host_ip},
                # The API server reaches kubelets (logs) at the first of Hostname,
                # InternalDNS, InternalIP: the host name here is the address, as with
                # a kubelet started with --hostname-override=<its IP>.
                {"type": "Hostname", "address": self.host_ip},
            ],
            "capacity": CAPACITY,
            "allocatable": self.allocatable,
            "conditions": self._conditions(),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "v1.37.1",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "tradearena://0",
                "osImage": "tradearena test node",
                "kernelVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        }
        await self.core.patch_node_status(
            c.name, {"status": status}, _content_type="application/merge-patch+json"
        )
        await self._renew_lease()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            await self.core.patch_node_status(
                self.config.name,
                {"status": {"conditions": self._conditions()}},
                _content_type="application/merge-patch+json",
            )

    async def _renew_lease(self) -> None:
        coordination: Any = client.CoordinationV1Api(self.api)
        name = self.config.name
        spec = {
            "holderIdentity": name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": _micro(_now()),
        }
        try:
            await coordination.patch_namespaced_lease(
                name,
                "kube-node-lease",
                {"spec": spec},
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            owner = {"apiVersion": "v1", "kind": "Node", "name": name, "uid": self._node_uid}
            lease = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": name,
                    "namespace": "kube-node-lease",
                    "ownerReferences": [owner],
                },
                "spec": spec,
            }
            await coordination.create_namespaced_lease("kube-node-lease", lease)

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY)
            await self._renew_lease()

    # --- watches --------------------------------------------------------------------

    async def _list_watch(
        self,
        list_fn: Callable[..., Any],
        on_sync: Callable[[list[Json]], None],
        on_event: Callable[[str, Json], None],
        **kwargs: Any,
    ) -> None:
        listed = await list_fn(_preload_content=False, **kwargs)
        body = await listed.json()
        on_sync(list(body.get("items") or []))
        version = body["metadata"]["resourceVersion"]
        async with watch.Watch() as w:
            async for event in w.stream(
                list_fn, resource_version=version, timeout_seconds=300, **kwargs
            ):
                on_event(event["type"], event["raw_object"])

    async def _watch_pods(self) -> None:
        await self._list_watch(
            self.core.list_pod_for_all_namespaces,
            self._pods_synced,
            self._pod_event,
            field_selector=f"spec.nodeName={self.config.name}",
        )

    def _pods_synced(self, pods: list[Json]) -> None:
        present = {p["metadata"]["uid"] for p in pods}
        for uid, worker in list(self.workers.items()):
            if uid not in present:
                worker.vanished()
        for pod in pods:
            self._pod_event("ADDED", pod)

    def _pod_event(self, kind: str, pod: Json) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if kind == "DELETED":
            if worker:
                worker.vanished()
            return
        if worker:
            worker.update(pod)
            return
        if self.stopping:
            return
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            if pod["metadata"].get("deletionTimestamp"):
                worker = PodWorker(self, pod)
                worker.terminal = pod["status"]["phase"]
                worker.gone = False
                self.spawn(worker._delete_object(), f"delete {worker.key}")
            return
        worker = PodWorker(self, pod)
        self.workers[uid] = worker
        worker.task = self.spawn(self._run_worker(worker), f"pod {worker.key}")

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        finally:
            self.workers.pop(worker.uid, None)

    async def _watch_services(self) -> None:
        def synced(items: list[Json]) -> None:
            self.services = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in items}
            self._service_sync.set()

        def event(kind: str, s: Json) -> None:
            key = (s["metadata"]["namespace"], s["metadata"]["name"])
            if kind == "DELETED":
                self.services.pop(key, None)
            else:
                self.services[key] = s
            self._service_sync.set()

        await self._list_watch(self.core.list_service_for_all_namespaces, synced, event)

    async def _watch_slices(self) -> None:
        discovery = client.DiscoveryV1Api(self.api)

        def synced(items: list[Json]) -> None:
            self.slices = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in items}

        def event(kind: str, s: Json) -> None:
            key = (s["metadata"]["namespace"], s["metadata"]["name"])
            if kind == "DELETED":
                self.slices.pop(key, None)
            else:
                self.slices[key] = s

        await self._list_watch(discovery.list_endpoint_slice_for_all_namespaces, synced, event)

    # --- services -------------------------------------------------------------------

    def service_ips(self) -> dict[tuple[str, str], str]:
        """(namespace, name) -> ClusterIP of every Service that has one."""
        out = {}
        for key, s in self.services.items():
            ip = (s.get("spec") or {}).get("clusterIP")
            if ip and ip != "None":
                out[key] = ip
        return out

    def _endpoint(self, namespace: str, service: str, port_name: str) -> tuple[str, int] | None:
        candidates = []
        for (ns, _), sl in self.slices.items():
            if (
                ns != namespace
                or (sl["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) != service
            ):
                continue
            ports = [
                p
                for p in sl.get("ports") or []
                if (p.get("name") or "") == port_name and p.get("port")
            ]
            for endpoint in sl.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for address in endpoint.get("addresses") or []:
                    candidates += [(address, int(p["port"])) for p in ports]
        return random.choice(candidates) if candidates else None

    async def _sync_services_loop(self) -> None:
        while True:
            await self._service_sync.wait()
            self._service_sync.clear()
            await self._sync_services()
            await asyncio.sleep(0.1)

    async def _sync_services(self) -> None:
        wanted: dict[tuple[str, int], tuple[str, str, str]] = {}
        for (ns, name), s in self.services.items():
            spec = s.get("spec") or {}
            ip = spec.get("clusterIP")
            if not ip or ip == "None" or ":" in ip:
                continue
            for port in spec.get("ports") or []:
                if port.get("protocol", "TCP") == "TCP":
                    wanted[(ip, int(port["port"]))] = (ns, name, port.get("name") or "")
        ips = {ip for ip, _ in wanted}
        self.bridge_service_ips = await asyncio.to_thread(
            network.set_service_addresses, self.config.bridge, ips, self.bridge_service_ips
        )
        for key in list(self.service_forwarders):
            if key not in wanted:
                await self.service_forwarders.pop(key).close()
        for key, (ns, name, port_name) in wanted.items():
            if key in self.service_forwarders:
                continue
            forwarder = Forwarder(
                key[0],
                key[1],
                functools.partial(self._endpoint, ns, name, port_name),
                name=f"service {ns}/{name}:{key[1]}",
            )
            try:
                await forwarder.start()
            except OSError as exc:
                log.warning("service %s/%s %s:%d: cannot listen: %s", ns, name, *key, exc)
                continue
            self.service_forwarders[key] = forwarder
        for worker in self.workers.values():
            worker.refresh_hosts()
