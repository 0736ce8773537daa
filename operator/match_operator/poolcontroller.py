"""The MatchServerPool controller: caches, the pool reconcile, the servers' state from
Redis and the pods' marks. It is the `servers.ServerDirectory` allocation asks.

Handlers feed it the pools and their pods (the pod watch is the operator's one pod
watch); `run()` reads every pool server's state hash and matches in one Redis pipeline
each `pool_state_interval_s`, reflects each server on its pod (labels and annotations,
patched only when they change) and reconciles every pool with `pools.decide_pool`.
Scaling down drains a server in Redis first (the allocation script then refuses it),
checks it is still empty, and only then deletes its pod.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace

from redis.exceptions import RedisError

from match_operator.kube import ApiException, KubeApi, Obj
from match_operator.metrics import OperatorMetrics
from match_operator.pools import (
    NAME_ALPHABET,
    NAME_SUFFIX_LEN,
    STATE_FIELDS,
    Ledger,
    Member,
    PoolPod,
    PoolSpec,
    ServerReport,
    build_pool_pod_spec,
    decide_pool,
    marks_patch,
    pool_for,
    server_marks,
    server_name,
    server_view,
    template_hash,
)
from match_operator.ports import PortAllocator, PortsExhaustedError
from match_operator.servers import ServerView
from match_operator.settings import OperatorSettings
from tradearena.contracts import keys, resource
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.pool import ServerState
from tradearena.redisconn import AnyRedis

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
POOL_POD_SELECTOR = (
    f"{resource.MANAGED_BY_LABEL}={resource.MANAGED_BY},{resource.SERVER_POOL_LABEL}"
)
NODE_CACHE_S = 30.0
PATCH_CONCURRENCY = 8
REBUILD_ATTEMPTS = 60
RESYNC_S = 60.0  # a pool's pods are listed again this often


def _rv(obj: Obj | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class PoolController:
    def __init__(
        self,
        settings: OperatorSettings,
        kube: KubeApi,
        redis: AnyRedis | None,
        ports: PortAllocator,
        metrics: OperatorMetrics,
        clock: Callable[[], float] = time.monotonic,
        on_server_changed: Callable[[str, str], object] | None = None,
    ) -> None:
        self.settings = settings
        # Told when a server's pod goes away or stops being Ready, so the Matches bound to
        # it are looked at now, not on their next interval (Runtime.server_changed).
        self.on_server_changed = on_server_changed
        self.kube = kube
        self.redis = redis
        self.ports = ports
        self.metrics = metrics
        self.clock = clock
        self.pools: dict[Key, PoolSpec] = {}
        self.status: dict[Key, Obj] = {}  # each pool's status as last seen or written
        self.pods: dict[Key, PoolPod] = {}  # (namespace, pod name)
        self.ledgers: dict[Key, Ledger] = {}
        self.reports: dict[Key, ServerReport] = {}
        self.drain_marked: set[Key] = set()
        # Pools whose pods were listed by their running rounds: only these are reconciled
        # (the rounds run on the leader only, so a paused replica does nothing).
        self.synced: dict[Key, str] = {}  # pool -> the uid its rounds listed pods for
        self._hashes: dict[Key, str] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._nodes = 0
        self._nodes_at = -NODE_CACHE_S
        self.last_read_s = 0.0  # the last state read's duration
        self._background: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ ServerDirectory
    def _view(self, key: Key) -> ServerView:
        pod = self.pods[key]
        ledger = self.ledgers.get(key) or Ledger()
        return server_view(
            pod,
            self.reports.get(key),
            ledger.count,
            key in self.drain_marked,
            now_ms=int(time.time() * 1000),
        )

    def candidates(self, namespace: str, spec: MatchSpec) -> list[ServerView]:
        pools = [p for (ns, _), p in self.pools.items() if ns == namespace]
        pool = pool_for(pools, spec.mode, spec.format)
        if pool is None:
            return []
        return [
            self._view(key)
            for key, pod in self.pods.items()
            if key[0] == namespace and pod.pool == pool.name
        ]

    def server(self, namespace: str, name: str) -> ServerView | None:
        key = (namespace, name)
        return self._view(key) if key in self.pods else None

    def note_allocated(self, namespace: str, name: str, match_id: str) -> None:
        self.ledgers.setdefault((namespace, name), Ledger()).note_allocated(match_id, self.clock())

    def note_released(self, namespace: str, name: str, match_id: str) -> None:
        self.ledgers.setdefault((namespace, name), Ledger()).note_released(match_id, self.clock())

    # ------------------------------------------------------------------ start-up
    async def rebuild(self) -> None:
        """Pools and their pods (host ports too) before any pool server is created."""
        for namespace in self.settings.namespaces:
            for attempt in range(REBUILD_ATTEMPTS):
                try:
                    listed = await self.kube.list_pools(namespace)
                    break
                except ApiException as exc:  # 429 while a fresh CRD's storage starts
                    if exc.status not in (429, 503) or attempt == REBUILD_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(1.0)
            for body in listed:
                self.on_pool(body)
            for pod in await self.kube.list_pods(namespace, POOL_POD_SELECTOR):
                self.on_pod(pod)

    # ------------------------------------------------------------------ watch feed
    def on_pool(self, body: Obj, deleted: bool = False) -> Key:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if deleted:
            self.pools.pop(key, None)
            self.status.pop(key, None)
            self._hashes.pop(key, None)
            self.metrics.forget_pool(*key)
            return key
        try:
            spec = PoolSpec.of(body)
        except (ValueError, TypeError) as exc:  # the CRD's schema refuses these already
            log.warning("pool spec refused", extra={"pool": key[1], "error": repr(exc)})
            return key
        old = self.pools.get(key)
        if old is None or old.uid != spec.uid or spec.generation >= old.generation:
            self.pools[key] = spec
            self._hashes[key] = template_hash(spec, self.settings)
        if (
            old is None
            or old.uid != spec.uid
            or _rv(body) >= int(self.status.get(key, {}).get("_rv", 0))
        ):
            self.status[key] = {**(body.get("status") or {}), "_rv": _rv(body)}
        return key

    def on_pod(self, body: Obj, deleted: bool = False) -> Key | None:
        """A pool server pod's event; returns its pool's key (None: not a pool pod)."""
        meta = body["metadata"]
        pool = (meta.get("labels") or {}).get(resource.SERVER_POOL_LABEL)
        if pool is None:
            return None
        key = (meta["namespace"], meta["name"])
        known = self.pods.get(key)
        if deleted:
            if known is not None and known.uid in ("", meta.get("uid")):
                self._forget(key)
                self._changed(key)
        else:
            view = PoolPod.of(body)
            if known is not None and known.ready and not view.ready:
                self._changed(key)
            if (
                known is None
                or known.uid != view.uid
                or view.resource_version >= known.resource_version
            ):
                self.pods[key] = view
                if view.host_port and not view.done:
                    self.ports.register(f"{key[0]}/{key[1]}", view.host_port)
                elif view.done:
                    self.ports.release(f"{key[0]}/{key[1]}")
        return (meta["namespace"], pool)

    def _changed(self, key: Key) -> None:
        if self.on_server_changed is not None:
            self.on_server_changed(*key)

    def _forget(self, key: Key) -> None:
        self.pods.pop(key, None)
        self.ledgers.pop(key, None)
        self.reports.pop(key, None)
        self.drain_marked.discard(key)
        self.ports.release(f"{key[0]}/{key[1]}")

    # ------------------------------------------------------------------ state from Redis
    def servers_of(self, key: Key) -> list[Key]:
        namespace, pool = key
        return [k for k, pod in self.pods.items() if k[0] == namespace and pod.pool == pool]

    async def read_states(self, servers: list[Key]) -> None:
        """These servers' state hashes and hosted matches, in one pipeline."""
        servers = [k for k in servers if not self.pods[k].done]
        if self.redis is None or not servers:
            return
        started = self.clock()
        pipe = self.redis.pipeline(transaction=False)
        for _, name in servers:
            pipe.hmget(keys.server_state(name), list(STATE_FIELDS))
            pipe.hkeys(keys.server_matches(name))
        try:
            replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("pool server states unread", extra={"error": repr(exc)})
            return
        self.last_read_s = self.clock() - started
        self.metrics.pool_state_read.observe(self.last_read_s)
        for i, key in enumerate(servers):
            report = ServerReport.parse(replies[2 * i], replies[2 * i + 1])
            self.reports[key] = report
            self.ledgers.setdefault(key, Ledger()).report(report.hosted, started)

    async def reflect_on_pods(self, servers: list[Key]) -> int:
        """Each server's state as its pod's labels and annotations; patched on change only."""
        patches: list[tuple[Key, Obj]] = []
        for key in servers:
            pod = self.pods.get(key)
            if pod is None or pod.done or pod.terminating:
                continue
            view = self._view(key)
            report = self.reports.get(key)
            labels, annotations = server_marks(
                view.count, view.capacity, report.players if report else 0
            )
            patch = marks_patch(pod, labels, annotations)
            if patch is not None:
                patches.append((key, patch))
        if not patches:
            return 0
        gate = asyncio.Semaphore(PATCH_CONCURRENCY)

        async def one(key: Key, patch: Obj) -> None:
            async with gate:
                try:
                    fresh = await self.kube.patch_pod(key[0], key[1], patch)
                except ApiException as exc:
                    log.warning("pod marks unpatched", extra={"pod": key[1], "error": repr(exc)})
                    return
            self.metrics.pool_pod_patches.inc()
            if fresh is not None and key in self.pods:
                self.on_pod(fresh)

        await asyncio.gather(*(one(k, p) for k, p in patches))
        return len(patches)

    async def resync(self, key: Key) -> None:
        """The pool's pods as the API has them now (drops pods the watch missed)."""
        namespace, pool = key
        async with self._locks.setdefault(key, asyncio.Lock()):
            listed = await self.kube.list_pods(namespace, f"{POOL_POD_SELECTOR}={pool}")
            names = {pod["metadata"]["name"] for pod in listed}
            for server in self.servers_of(key):
                if server[1] not in names:
                    self._forget(server)
            for pod in listed:
                self.on_pod(pod)
            if (pool_spec := self.pools.get(key)) is not None:
                self.synced[key] = pool_spec.uid

    async def run_pool(self, key: Key, uid: str) -> None:
        """One pool's rounds until it is gone or cancelled (a kopf daemon: it runs on the
        leader only and is stopped while the operator is paused): resync now and then;
        each interval read the servers, mark their pods and reconcile."""
        resynced = -RESYNC_S
        try:
            while (pool := self.pools.get(key)) is not None and pool.uid == uid:
                if self.clock() - resynced >= RESYNC_S:
                    try:
                        await self.resync(key)
                        resynced = self.clock()
                    except Exception as exc:
                        log.warning(
                            "pool resync failed", extra={"pool": key[1], "error": repr(exc)}
                        )
                try:
                    await self.tick(key)
                except Exception as exc:
                    log.exception("pool round failed", extra={"pool": key[1], "error": repr(exc)})
                await asyncio.sleep(self.settings.pool_state_interval_s)
        finally:
            if self.synced.get(key) == uid:  # paused or gone: no reconcile before a resync
                del self.synced[key]

    async def tick(self, key: Key) -> None:
        servers = self.servers_of(key)
        await self.read_states(servers)
        await self.reflect_on_pods(servers)
        await self.reconcile_logged(key)

    # ------------------------------------------------------------------ reconcile
    async def reconcile_logged(self, key: Key) -> None:
        try:
            await self.reconcile(key)
        except Exception as exc:
            self.metrics.reconcile_errors.inc()
            log.exception("pool reconcile failed", extra={"pool": key[1], "error": repr(exc)})

    async def _node_count(self) -> int:
        if self.clock() - self._nodes_at >= NODE_CACHE_S:
            selector = ",".join(f"{k}={v}" for k, v in self.settings.node_selector.items())
            self._nodes = len(await self.kube.list_nodes(selector or None))
            self._nodes_at = self.clock()
        return self._nodes

    def members(self, key: Key) -> list[Member]:
        namespace, pool = key
        out = []
        for pkey, pod in self.pods.items():
            if pkey[0] != namespace or pod.pool != pool:
                continue
            view = self._view(pkey)
            report = self.reports.get(pkey)
            out.append(
                Member(
                    pod=pod,
                    count=view.count,
                    capacity=view.capacity,
                    draining=bool(report and report.draining) and pkey not in self.drain_marked,
                )
            )
        return out

    async def reconcile(self, key: Key) -> None:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            pool = self.pools.get(key)
            if pool is None or self.synced.get(key) != pool.uid:
                return  # its pods are listed first (start-up, taking over as leader)
            current = self._hashes[key]
            plan = decide_pool(pool, current, self.members(key))
            namespace = key[0]
            for name, reason in plan.remove:
                await self._delete(namespace, name, pool.name, reason)
            for name, reason in plan.retire:
                await self.retire(namespace, name, pool.name, reason)
            for _ in range(plan.create):
                if not await self._create(pool, current):
                    break
            self.metrics.set_pool(
                namespace,
                pool.name,
                plan.desired,
                plan.status["readyReplicas"],
                plan.status["allocatedReplicas"],
            )
            known = {k: v for k, v in self.status.get(key, {}).items() if k != "_rv"}
            if any(known.get(k) != v for k, v in plan.status.items()):
                patched = await self.kube.patch_pool_status(namespace, pool.name, plan.status)
                if patched is not None:
                    self.status[key] = {**(patched.get("status") or {}), "_rv": _rv(patched)}

    def _event(self, pool: PoolSpec, event_type: str, reason: str, message: str) -> None:
        """An Event on the pool (`kubectl describe msp`), off the critical path."""

        async def post() -> None:
            involved = {
                "metadata": {"name": pool.name, "namespace": pool.namespace, "uid": pool.uid}
            }
            try:
                await self.kube.post_event(
                    involved, event_type, reason, message, kind=resource.POOL_KIND
                )
            except Exception as exc:  # an Event is best effort
                log.warning("event not posted", extra={"pool": pool.name, "error": repr(exc)})

        task = asyncio.create_task(post())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _create(self, pool: PoolSpec, current: str) -> bool:
        namespace = pool.namespace
        for _ in range(5):  # a taken name: draw another
            suffix = "".join(secrets.choice(NAME_ALPHABET) for _ in range(NAME_SUFFIX_LEN))
            name = server_name(pool.name, suffix)
            if (namespace, name) in self.pods:
                continue
            owner = f"{namespace}/{name}"
            try:
                port = self.ports.allocate(owner, await self._node_count())
            except PortsExhaustedError:
                log.warning("no free host port for a pool server", extra={"pool": pool.name})
                self._event(pool, "Warning", "NoHostPort", "no free host port for a new server")
                return False
            spec = build_pool_pod_spec(pool, self.settings, name, port, current)
            try:
                created = await self.kube.create_pod_object(spec)
            except Exception:
                self.ports.release(owner)
                raise
            if created is None:
                self.ports.release(owner)
                continue
            self.on_pod(created)
            self.metrics.pool_servers_created.labels(namespace, pool.name).inc()
            log.info("pool server created", extra={"pool": pool.name, "pod": name, "port": port})
            self._event(pool, "Normal", "ServerCreated", f"{name} (host port {port})")
            return True
        return False

    async def _delete(self, namespace: str, name: str, pool: str, reason: str) -> None:
        pod = self.pods.get((namespace, name))
        await self.kube.delete_pod(
            namespace,
            name,
            uid=pod.uid if pod and pod.uid else None,
            grace_s=self.settings.termination_grace_s,
        )
        if pod is not None:  # gone for the next pass already; the watch confirms it
            self.pods[(namespace, name)] = replace(pod, terminating=True)
        self.metrics.pool_servers_deleted.labels(namespace, pool, reason).inc()
        log.info("pool server deleted", extra={"pool": pool, "pod": name, "reason": reason})
        spec = self.pools.get((namespace, pool))
        if spec is not None:
            self._event(spec, "Normal", "ServerDeleted", f"{name} ({reason})")

    async def retire(self, namespace: str, name: str, pool: str, reason: str) -> bool:
        """Drain an idle server, make sure it stayed idle, then delete its pod. False: a
        match was allocated to it meanwhile (it is told to accept matches again)."""
        key = (namespace, name)
        if self.redis is not None:
            state = keys.server_state(name)
            try:
                await self.redis.hset(state, ServerState.DRAINING, "1")
                self.drain_marked.add(key)
                hosted = int(await self.redis.hlen(keys.server_matches(name)))
                if hosted:
                    await self.redis.hset(state, ServerState.DRAINING, "0")
                    self.drain_marked.discard(key)
                    log.info("pool server kept: allocated meanwhile", extra={"pod": name})
                    return False
            except (RedisError, OSError) as exc:
                log.warning("pool server not drained", extra={"pod": name, "error": repr(exc)})
                return False
        await self._delete(namespace, name, pool, reason)
        return True

    async def forget_server_keys(self, name: str) -> None:
        """A deleted server's state and inbox, once it hosts nothing."""
        if self.redis is None:
            return
        try:
            if not await self.redis.hlen(keys.server_matches(name)):
                await self.redis.delete(keys.server_state(name), keys.server_inbox(name))
        except (RedisError, OSError) as exc:
            log.warning("server keys kept", extra={"pod": name, "error": repr(exc)})
