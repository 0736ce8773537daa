"""The operator's state and reconcile loop: caches, host ports, per-match locks.

Handlers (`handlers.py`) feed it watch events; it decides with the pure
`builders.decide()` and acts through `kube.KubeApi`. One instance per process,
built by `main.run()`; nothing here is module-level.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

from redis.exceptions import RedisError

from match_operator.acks import AckWaiter
from match_operator.allocator import Cold, allocate_match
from match_operator.builders import (
    COLD,
    WARM,
    Allocated,
    Obj,
    Observed,
    Plan,
    PlayerCount,
    PodView,
    advertised_address,
    build_pod_spec,
    decide,
    match_spec,
    parse_time,
    slim_match,
)
from match_operator.kube import ApiException, KubeApi
from match_operator.metrics import OperatorMetrics
from match_operator.ports import PortAllocator, PortsExhaustedError
from match_operator.servers import ServerDirectory, ServerView
from match_operator.settings import OperatorSettings
from tradearena import tracing
from tradearena.contracts import keys, resource
from tradearena.contracts.phases import MatchPhase, ServerPhase
from tradearena.orchestration import allocation
from tradearena.redisconn import AnyRedis

log = logging.getLogger(__name__)
_tracer = tracing.tracer(__name__)

Key = tuple[str, str]  # (namespace, name)
POD_SELECTOR = f"{resource.MANAGED_BY_LABEL}={resource.MANAGED_BY}"
NODE_CACHE_S = 30.0
_FOLLOWED = (MatchPhase.READY, MatchPhase.LIVE)  # phases whose server report is read
# A pool server's match: its reports are all there is (no pod of its own to watch).
_FOLLOWED_WARM = (MatchPhase.CREATING, MatchPhase.READY, MatchPhase.LIVE, MatchPhase.CANCELLING)
_UNSTARTED = frozenset({MatchPhase.PENDING, MatchPhase.CREATING, MatchPhase.READY})  # before Live
_ACKS = (ServerPhase.READY, ServerPhase.LIVE, ServerPhase.FINISHED, ServerPhase.CANCELLED)
_ENDS = (ServerPhase.FINISHED, ServerPhase.CANCELLED)


def _int(value: object) -> int | None:
    try:
        return int(value.decode() if isinstance(value, bytes) else str(value))
    except (TypeError, ValueError):
        return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _rv(obj: Obj | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def node_address(node: Obj) -> str | None:
    """ExternalIP, else InternalIP: where players reach a host port."""
    addresses = {
        a.get("type"): a.get("address") for a in node.get("status", {}).get("addresses", [])
    }
    return addresses.get("ExternalIP") or addresses.get("InternalIP")


class Runtime:
    def __init__(
        self,
        settings: OperatorSettings,
        kube: KubeApi,
        redis: AnyRedis | None = None,
        directory: ServerDirectory | None = None,
    ) -> None:
        """`directory`: the pool servers (None: no pools, every Match gets a pod)."""
        self.settings = settings
        self.kube = kube
        self.redis = redis
        self.directory = directory
        self.acks = (
            AckWaiter(redis, settings.ack_connections, self.reconcile_logged)
            if redis is not None
            else None
        )
        self._players_at: dict[Key, datetime] = {}
        self._seen: dict[Key, float] = {}  # wall clock of the first watch event of a Match
        self.metrics = OperatorMetrics()
        self.ports = PortAllocator(settings.port_min, settings.port_max)
        self.matches: dict[Key, Obj] = {}
        self.pods: dict[Key, PodView] = {}  # slim views: 1,000s of pods stay cheap
        self.phases: dict[Key, str] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._nodes: dict[str, Obj] = {}
        self._nodes_at = 0.0
        self._pool_nodes = 0
        self._due: dict[Key, float] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.started = False
        self.metrics.watch(
            lambda: len(self.ports),
            lambda: self.ports.size * max(self._pool_nodes, 1),
            self._backlog,
            self._oldest_unstarted,
        )

    # ------------------------------------------------------------------ start-up
    async def rebuild(self) -> None:
        """Host ports from the live pods, before any new pod is created (restarts)."""
        for namespace in self.settings.namespaces:
            for pod in await self.kube.list_pods(namespace, POD_SELECTOR):
                view = PodView.of(pod)
                key = (namespace, view.name)
                self.pods[key] = view
                if view.host_port and not view.done:
                    self.ports.register(f"{namespace}/{view.name}", view.host_port)
        await self._refresh_nodes(force=True)
        self.started = True
        log.info(
            "port allocations rebuilt",
            extra={"allocated": len(self.ports), "pool_nodes": self._pool_nodes},
        )

    async def _refresh_nodes(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._nodes_at < NODE_CACHE_S:
            return
        selector = ",".join(f"{k}={v}" for k, v in self.settings.node_selector.items())
        nodes = await self.kube.list_nodes(selector or None)
        self._nodes = {n["metadata"]["name"]: n for n in nodes}
        self._pool_nodes = len(nodes)
        self._nodes_at = time.monotonic()

    async def _address(self, node_name: str | None) -> str | None:
        if node_name is None:
            return None
        node = self._nodes.get(node_name)
        if node is None:
            node = await self.kube.get_node(node_name)
            if node is None:
                return None
            self._nodes[node_name] = node
        ip = node_address(node)
        if ip is None:
            return None
        return advertised_address(self.settings.address_template, ip, node_name)

    # ------------------------------------------------------------------ watch feed
    def on_match(self, body: Obj, deleted: bool = False) -> Key:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if deleted:
            self.matches.pop(key, None)
            self.phases.pop(key, None)
            self.ports.release(f"{key[0]}/{key[1]}")
            self._locks.pop(key, None)
            self._due.pop(key, None)
            self._players_at.pop(key, None)
            self._seen.pop(key, None)
            if self.acks is not None:
                self.acks.forget(key)
            self._count()
        elif _rv(body) >= _rv(self.matches.get(key)):
            self.matches[key] = slim_match(body)
            self._seen.setdefault(key, time.time())
        return key

    def on_pod(self, body: Obj, deleted: bool = False) -> Key | None:
        meta = body["metadata"]
        owner = (meta.get("labels") or {}).get(resource.MATCH_LABEL)
        if owner is None:
            return None
        key = (meta["namespace"], meta["name"])
        known = self.pods.get(key)
        if deleted:
            if known is not None and known.uid == meta.get("uid"):
                self.pods.pop(key, None)
        else:
            view = PodView.of(body)
            if (
                known is None
                or known.uid != view.uid
                or view.resource_version >= known.resource_version
            ):
                self.pods[key] = view
        return (meta["namespace"], owner)

    def server_changed(self, namespace: str, server: str) -> list[Key]:
        """For the pool controller: a pool server changed (not ready, draining, gone):
        the Matches bound to it are looked at on the next timer tick, not the next
        interval. Returns them."""
        bound = [
            key
            for key, match in self.matches.items()
            if key[0] == namespace
            and (match.get("status") or {}).get("allocation") == WARM
            and (match.get("status") or {}).get("server") == server
        ]
        for key in bound:
            self._due[key] = time.monotonic()
        return bound

    def _count(self) -> None:
        self.metrics.set_phases(dict(Counter(self.phases.values())))

    # ------------------------------------------------------------------ timers
    def _schedule(self, key: Key, after: float | None) -> None:
        status = self.matches.get(key, {}).get("status") or {}
        phase = self.phases.get(key) or status.get("phase")
        followed = _FOLLOWED_WARM if status.get("allocation") == WARM else _FOLLOWED
        if self.redis is not None and phase in followed:  # follow the server's phase
            after = min(after or self.settings.timer_interval_s, self.settings.timer_interval_s)
        if after is None:
            self._due.pop(key, None)
        else:
            self._due[key] = time.monotonic() + max(after, 0.05)

    async def run_timers(self) -> None:
        """Startup timeouts, TTLs and the server's own phase, when they fall due."""
        while True:
            await asyncio.sleep(min(1.0, self.settings.timer_interval_s))
            now = time.monotonic()
            for key in [k for k, due in self._due.items() if due <= now]:
                self._due.pop(key, None)
                if key in self.matches:
                    await self.reconcile_logged(key)

    async def close(self) -> None:
        if self.acks is not None:
            await self.acks.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.kube.close()

    async def reconcile_logged(self, key: Key) -> None:
        try:
            after = await self.reconcile(key)
        except Exception as exc:
            log.exception("reconcile failed", extra={"match_id": key[1], "error": repr(exc)})
            after = 5.0  # look again soon
        self._schedule(key, after)

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: Key) -> float | None:
        """One pass for one Match; returns seconds until it wants another look."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            for attempt in range(4):
                try:
                    return await self._reconcile(key)
                except ApiException as exc:
                    if exc.status == 409 and attempt < 3:  # stale: read it again
                        fresh = await self.kube.get_match(*key)
                        if fresh is None:
                            self.on_match(
                                {"metadata": {"namespace": key[0], "name": key[1]}}, deleted=True
                            )
                            return None
                        self.matches[key] = slim_match(fresh)
                        continue
                    self.metrics.reconcile_errors.inc()
                    raise
                except Exception:
                    self.metrics.reconcile_errors.inc()
                    raise
        return None

    async def _server_report(self, match_id: str) -> tuple[str | None, PlayerCount | None]:
        """The server's phase and player counts from the match's status hash."""
        if self.redis is None:
            return None, None
        try:
            phase, connected, expected = await self.redis.hmget(
                keys.match_status(match_id), ["phase", "connected", "players"]
            )
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable", extra={"match_id": match_id, "error": repr(exc)})
            return None, None
        count = _int(connected)
        players = PlayerCount(count, _int(expected)) if count is not None else None
        return _text(phase), players

    async def _bound_server(
        self, namespace: str, name: str | None
    ) -> tuple[ServerView | None, bool]:
        """The pool server as the directory sees it, and whether its pod is gone for good
        (confirmed with a GET: the directory may just not know it yet)."""
        if not name:
            return None, False
        view = self.directory.server(namespace, name) if self.directory is not None else None
        if view is not None:
            return view, False
        return None, await self.kube.get_pod(namespace, name) is None

    async def _reconcile(self, key: Key) -> float | None:
        match = self.matches.get(key)
        if match is None:
            return None
        self.metrics.reconciles.inc()
        namespace, name = key
        owner = f"{namespace}/{name}"
        pod = self.pods.get(key)
        status = match.get("status") or {}
        phase = status.get("phase")
        stopping = bool(match["spec"].get("cancel")) or bool(
            match["metadata"].get("deletionTimestamp")
        )
        new = pod is None and phase in (None, MatchPhase.PENDING) and not stopping
        outcome: Allocated | Cold | None = None
        if new and not status.get("allocation"):
            # Redis is the arbiter: when it fails, so does this pass (retried), no guess.
            spec = match_spec(match)
            with _tracer.start_as_current_span(
                "operator.allocate",
                context=tracing.context_of(spec.traceparent),
                attributes={"match.id": spec.match_id},
            ) as span:
                outcome = await allocate_match(self.redis, self.directory, namespace, spec)
                span.set_attribute("allocation.outcome", type(outcome).__name__.lower())
        elif pod is not None and not status.get("allocation") and not stopping:
            # Another replica (or a pass cut short by a conflict) started it cold: only a
            # cold start creates a pod named after the Match.
            outcome = Cold("its own pod exists")
        warm = isinstance(outcome, Allocated) or status.get("allocation") == WARM
        port = None
        if new and not warm:
            await self._refresh_nodes()
            try:
                port = self.ports.allocate(owner, self._pool_nodes)
            except PortsExhaustedError:
                port = None
        server, gone, node = None, False, pod.node if pod else None
        if isinstance(outcome, Allocated):
            server, node = outcome.view, outcome.view.node if outcome.view else None
        elif warm and not (phase and MatchPhase(phase).terminal):
            server, gone = await self._bound_server(namespace, status.get("server"))
            node = server.node if server is not None else status.get("node")
        server_phase, players = None, None
        if warm or phase in _FOLLOWED:
            server_phase, players = await self._server_report(name)
        observed = Observed(
            match=match,
            pod=pod,
            now=datetime.now(UTC),
            node_address=await self._address(node),
            server_phase=server_phase,
            port=port,
            allocated=outcome if isinstance(outcome, Allocated) else None,
            cold_reason=outcome.reason if isinstance(outcome, Cold) else None,
            server=server,
            server_gone=gone,
            players=players,
            players_patched_at=self._players_at.get(key),
        )
        plan = decide(observed, self.settings)
        if plan.check_pod:
            fresh_pod = await self.kube.get_pod(namespace, name)
            if fresh_pod is not None:
                pod = self.pods[key] = PodView.of(fresh_pod)
            observed = Observed(
                match=match,
                pod=pod,
                now=observed.now,
                node_address=await self._address(pod.node if pod else None),
                server_phase=server_phase,
                port=port,
                pod_confirmed_missing=fresh_pod is None,
                cold_reason=observed.cold_reason,
                players=players,
                players_patched_at=observed.players_patched_at,
            )
            if fresh_pod is None and port is None and not (match.get("status") or {}).get("liveAt"):
                await self._refresh_nodes()
                with contextlib.suppress(PortsExhaustedError):
                    port = self.ports.allocate(owner, self._pool_nodes)
                    observed = replace(observed, port=port)
            plan = decide(observed, self.settings)
        await self._execute(key, match, plan, pod)
        self._follow(key)
        if plan.release_port or (port is not None and plan.create_pod != port):
            self.ports.release(owner)
        if plan.create_pod is not None and plan.create_pod != port:
            self.ports.register(owner, plan.create_pod)  # same port as before (restart)
        return plan.requeue_after

    def _backlog(self) -> int:
        now = time.monotonic()
        return sum(1 for due in self._due.values() if due <= now)

    def _oldest_unstarted(self) -> float:
        ages = [
            self._since_created(key, created)
            for key, match in list(self.matches.items())
            if (
                self.phases.get(key)
                or (match.get("status") or {}).get("phase")
                or MatchPhase.PENDING
            )
            in _UNSTARTED
            and (created := parse_time(match["metadata"].get("creationTimestamp"))) is not None
        ]
        return max(ages, default=0.0)

    def _since_created(self, key: Key, created: datetime) -> float:
        """Seconds from the Match's creation to now. creationTimestamp has whole seconds:
        when this process saw the Match arrive within that second, its arrival is the
        finer mark."""
        start = created.timestamp()
        seen = self._seen.get(key)
        if seen is not None and start <= seen < start + 1.0:
            start = seen
        return max(0.0, time.time() - start)

    def _follow(self, key: Key) -> None:
        """A pool server's match waiting for its report: wake up on it, not on the timer."""
        status = (self.matches.get(key) or {}).get("status") or {}
        if self.acks is None or status.get("allocation") != WARM:
            return
        phase = status.get("phase")
        if phase == MatchPhase.CREATING:
            until: tuple[str, ...] = _ACKS
        elif phase == MatchPhase.CANCELLING:
            until = _ENDS
        else:
            return
        timeout = self.settings.startup_timeout_s + 1
        self.acks.follow(key, key[1], until, timeout)

    async def _post_event(self, match: Obj, event_type: str, reason: str, message: str) -> None:
        try:
            await self.kube.post_event(match, event_type, reason, message)
        except Exception as exc:  # an Event is best effort
            log.warning(
                "event not posted",
                extra={"match_id": match["metadata"]["name"], "error": repr(exc)},
            )

    async def _execute(self, key: Key, match: Obj, plan: Plan, pod: PodView | None) -> None:
        namespace, name = key
        if plan.add_finalizer:
            finalizers = [*(match["metadata"].get("finalizers") or []), resource.FINALIZER]
            match = await self.kube.set_finalizers(
                namespace, name, finalizers, match["metadata"].get("resourceVersion")
            )
            self.matches[key] = match = slim_match(match)
        if plan.release_server is not None and self.redis is not None:
            await self._release(namespace, name, plan.release_server)
        if plan.cancel_on_server is not None and self.redis is not None:
            server, reason = plan.cancel_on_server
            await allocation.request_cancel(self.redis, server, name, reason)
            log.info("cancel sent", extra={"match_id": name, "server": server})
        if plan.write_cancel is not None and self.redis is not None:
            try:
                await self.redis.set(keys.match_cancel(name), plan.write_cancel, ex=24 * 3600)
            except (RedisError, OSError) as exc:
                log.warning(
                    "cancel reason not written", extra={"match_id": name, "error": repr(exc)}
                )
        if plan.delete_pod and pod is not None:
            await self.kube.delete_pod(
                namespace, name, uid=pod.uid or None, grace_s=self.settings.termination_grace_s
            )
        if plan.create_pod is not None:
            spec = build_pod_spec(match, self.settings, plan.create_pod, plan.restarts_before)
            if await self.kube.create_pod(spec):
                self.metrics.pods_created.inc()
                log.info("pod created", extra={"match_id": name, "port": plan.create_pod})
        if plan.status:
            old = match.get("status") or {}
            old_phase = old.get("phase")
            match = await self.kube.patch_match_status(
                namespace, name, plan.status, match["metadata"].get("resourceVersion")
            )
            self.matches[key] = match = slim_match(match)
            if "playersSummary" in plan.status:
                self._players_at[key] = datetime.now(UTC)
            kind = match.get("status", {}).get("allocation")
            if kind in (WARM, COLD) and old.get("allocation") != kind:
                self.metrics.allocations.labels(kind).inc()
                log.info(
                    "allocated",
                    extra={
                        "match_id": name,
                        "allocation": kind,
                        "server": match["status"].get("server"),
                    },
                )
            new_phase = match.get("status", {}).get("phase")
            if new_phase:
                self.phases[key] = new_phase
                self._count()
            if new_phase == MatchPhase.READY and old_phase != MatchPhase.READY:
                created = parse_time(match["metadata"].get("creationTimestamp"))
                ready = parse_time(match["status"].get("readyAt"))
                if created and ready:
                    self.metrics.time_to_ready.observe((ready - created).total_seconds())
                    if kind in (WARM, COLD):
                        seconds = self._since_created(key, created)
                        self.metrics.allocation_latency.labels(kind).observe(seconds)
            if new_phase != old_phase:
                log.info(
                    "match phase",
                    extra={
                        "match_id": name,
                        "phase": new_phase,
                        "reason": match["status"].get("reason"),
                    },
                )
        for event_type, reason, message in plan.events:  # off the critical path
            task = asyncio.create_task(self._post_event(match, event_type, reason, message))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        if plan.remove_finalizer and resource.FINALIZER in (
            match["metadata"].get("finalizers") or []
        ):
            finalizers = [f for f in match["metadata"]["finalizers"] if f != resource.FINALIZER]
            try:
                match = await self.kube.set_finalizers(
                    namespace, name, finalizers, match["metadata"].get("resourceVersion")
                )
                self.matches[key] = match = slim_match(match)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        if plan.delete_match:
            await self.kube.delete_match(namespace, name, match["metadata"]["uid"])

    async def _release(self, namespace: str, match_id: str, server: str) -> None:
        """A pool server given up on (gone, or no acknowledgement): its binding, its record
        of the match and its reports go, so a fresh allocation starts clean."""
        assert self.redis is not None
        await allocation.unbind(self.redis, match_id, server)
        await self.redis.hdel(keys.server_matches(server), match_id)
        await self.redis.delete(keys.match_status(match_id), keys.match_phases(match_id))
        if self.directory is not None:
            self.directory.note_released(namespace, server, match_id)
