"""MatchServerPool, pure: the pool's spec, its buffer policy, the scale decision, the pool
server pod and what a server's report says (no I/O, no clock: times are arguments).

The model is Agones' Fleet with a FleetAutoscaler buffer policy: a pool keeps
`allocated + buffer` servers (a percentage buffer keeps that share of the total idle),
clamped to [minReplicas, maxReplicas]. A server is *allocated* while it hosts a match
(its `keys.server_matches` hash is not empty). Only idle servers are ever removed: on
scale-down, on a template change (image, capacity or the operator's pod settings) and
when they drained themselves; an allocated server stays until its matches are over.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from match_operator.builders import (
    env_vars,
    parse_time,
    server_deployment,
    server_pod_spec,
)
from match_operator.servers import ServerView
from match_operator.settings import OperatorSettings
from tradearena.contracts import resource
from tradearena.contracts.orchestration import Scheme
from tradearena.contracts.pool import HEARTBEAT_INTERVAL_MS, ServerState
from tradearena.contracts.serverconfig import env_name, pool_server_config
from tradearena.orchestration.packing import Candidate, node_load

Obj = dict[str, Any]

# Kubernetes' own alphabet for generated name suffixes (no vowels: no words).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NAME_SUFFIX_LEN = 5
ALL = "all"  # what a pool without modes/formats serves

# Why a pool server pod is deleted (the `reason` of the deleted-servers counter).
SCALE_DOWN = "scale-down"
OUTDATED = "outdated"  # built from an older template
FAILED = "failed"  # the pod ended (Failed, or exited for good)
DRAINED = "drained"  # the server drained itself and hosts nothing


# ---------------------------------------------------------------------------- spec
@dataclass(frozen=True, slots=True)
class Buffer:
    """FleetAutoscaler's bufferSize: a count of idle servers, or a percentage of all."""

    count: int = 0
    percent: int | None = None

    @classmethod
    def parse(cls, raw: int | str | None) -> Buffer:
        if raw is None:
            return cls()
        if isinstance(raw, int):
            if raw < 0:
                raise ValueError("buffer must not be negative")
            return cls(count=raw)
        text = str(raw).strip()
        if text.endswith("%"):
            percent = int(text[:-1])
            if not 1 <= percent <= 99:
                raise ValueError("a buffer percentage is between 1% and 99%")
            return cls(percent=percent)
        return cls.parse(int(text))

    def wanted(self, allocated: int) -> int:
        """Servers wanted for `allocated` busy ones, before min/max (as Agones computes)."""
        if self.percent is not None:
            return math.ceil(allocated * 100 / (100 - self.percent))
        return allocated + self.count

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else str(self.count)


@dataclass(frozen=True, slots=True)
class PoolSpec:
    name: str
    namespace: str
    uid: str
    generation: int = 0
    capacity: int = 1  # matches per server
    buffer: Buffer = Buffer(1)
    min_replicas: int = 0
    max_replicas: int = 10
    modes: tuple[str, ...] = ()  # empty: every mode
    formats: tuple[str, ...] = ()  # empty: every format
    image: str | None = None  # None: the operator's image
    deleting: bool = False

    @classmethod
    def of(cls, body: Obj) -> PoolSpec:
        meta, spec = body["metadata"], body.get("spec") or {}
        low = int(spec.get("minReplicas") or 0)
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            capacity=max(1, int(spec.get("capacity") or 1)),
            buffer=Buffer.parse(spec.get("buffer", 1)),
            min_replicas=low,
            max_replicas=max(low, int(spec.get("maxReplicas", 10))),
            modes=tuple(spec.get("modes") or ()),
            formats=tuple(spec.get("formats") or ()),
            image=spec.get("image") or None,
            deleting=meta.get("deletionTimestamp") is not None,
        )

    def serves(self, mode: str, format_: str) -> bool:
        return (not self.modes or mode in self.modes) and (
            not self.formats or format_ in self.formats
        )

    @property
    def specificity(self) -> int:
        """2: names modes and formats, 1: one of them, 0: serves everything."""
        return bool(self.modes) + bool(self.formats)

    @property
    def serves_text(self) -> str:
        """For the MODES column: `duel,race`, `duel/blitz`, `*/blitz` or `all`."""
        if not self.modes and not self.formats:
            return ALL
        modes = ",".join(self.modes) or "*"
        return f"{modes}/{','.join(self.formats)}" if self.formats else modes

    def desired(self, allocated: int) -> int:
        return min(self.max_replicas, max(self.min_replicas, self.buffer.wanted(allocated)))


def pool_for(pools: Sequence[PoolSpec], mode: str, format_: str) -> PoolSpec | None:
    """The pool a match goes to: the most specific one serving it, then by name."""
    serving = [p for p in pools if not p.deleting and p.serves(mode, format_)]
    if not serving:
        return None
    return min(serving, key=lambda p: (-p.specificity, p.name))


# ---------------------------------------------------------------------------- pods
def server_name(pool: str, suffix: str) -> str:
    return f"{pool}-{suffix}"


def pool_owner_reference(pool: PoolSpec) -> Obj:
    return {
        "apiVersion": resource.API_VERSION,
        "kind": resource.POOL_KIND,
        "name": pool.name,
        "uid": pool.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def server_marks(count: int, capacity: int, players: int) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations a pool server pod carries for its state."""
    allocated = count > 0
    labels = {
        resource.ALLOCATED_LABEL: "true" if allocated else "false",
        resource.SAFE_TO_EVICT_LABEL: "false" if allocated else "true",
    }
    annotations = {
        resource.MATCHES_ANNOTATION: f"{count}/{capacity}",
        resource.PLAYERS_ANNOTATION: str(players),
        resource.AUTOSCALER_SAFE_TO_EVICT: "false" if allocated else "true",
    }
    return labels, annotations


MARK_LABELS = (resource.ALLOCATED_LABEL, resource.SAFE_TO_EVICT_LABEL)
MARK_ANNOTATIONS = (
    resource.MATCHES_ANNOTATION,
    resource.PLAYERS_ANNOTATION,
    resource.AUTOSCALER_SAFE_TO_EVICT,
)


def _pod(pool: PoolSpec, settings: OperatorSettings, name: str, host_port: int, th: str) -> Obj:
    labels, annotations = server_marks(0, pool.capacity, 0)
    return server_pod_spec(
        name=name,
        namespace=pool.namespace,
        labels={
            resource.SERVER_POOL_LABEL: pool.name,
            resource.TEMPLATE_HASH_LABEL: th,
            **labels,
        },
        annotations={resource.CAPACITY_ANNOTATION: str(pool.capacity), **annotations},
        owner=pool_owner_reference(pool),
        env=env_vars(
            pool_server_config(name, pool.capacity, host_port, server_deployment(settings)),
            settings,
        ),
        host_port=host_port,
        settings=settings,
        image=pool.image,
    )


def template_hash(pool: PoolSpec, settings: OperatorSettings) -> str:
    """What a pool server pod is built from (its spec, but for its name and port):
    a change means new servers (idle ones are replaced, as a Deployment's pod-template-hash)."""
    spec = _pod(pool, settings, "", 0, "")["spec"]
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def build_pool_pod_spec(
    pool: PoolSpec, settings: OperatorSettings, name: str, host_port: int, th: str | None = None
) -> Obj:
    """A pool server pod: `tradearena matchserver` with a server id (its pod name) and a
    capacity, a host port, owned by the pool; a crash restarts it in place (OnFailure),
    and the restarted server restores its matches from Redis."""
    return _pod(pool, settings, name, host_port, th or template_hash(pool, settings))


_TLS_ENV = env_name("tls_cert_file")


@dataclass(frozen=True, slots=True)
class PoolPod:
    """What the pool controller keeps of a pool server pod."""

    name: str
    namespace: str
    pool: str
    uid: str = ""
    phase: str = "Pending"
    ready: bool = False
    node: str | None = None
    host_port: int | None = None
    terminating: bool = False
    template_hash: str = ""
    capacity: int = 1
    created: datetime | None = None
    resource_version: int = 0
    scheme: Scheme = "http"
    marks: tuple[tuple[str, str], ...] = ()  # its current MARK_LABELS + MARK_ANNOTATIONS

    @classmethod
    def of(cls, pod: Obj) -> PoolPod:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        ports = [
            p.get("hostPort")
            for c in spec.get("containers", [])
            for p in c.get("ports") or []
            if p.get("hostPort")
        ]
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        env = {e.get("name") for c in spec.get("containers", []) for e in c.get("env") or []}
        marks = tuple((k, labels[k]) for k in MARK_LABELS if k in labels) + tuple(
            (k, annotations[k]) for k in MARK_ANNOTATIONS if k in annotations
        )
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            pool=labels.get(resource.SERVER_POOL_LABEL, ""),
            uid=meta.get("uid", ""),
            phase=status.get("phase") or "Pending",
            ready=conditions.get("Ready") == "True",
            node=spec.get("nodeName"),
            host_port=ports[0] if ports else None,
            terminating=meta.get("deletionTimestamp") is not None,
            template_hash=labels.get(resource.TEMPLATE_HASH_LABEL, ""),
            capacity=max(1, int(annotations.get(resource.CAPACITY_ANNOTATION) or 1)),
            created=parse_time(meta.get("creationTimestamp")),
            resource_version=int(meta.get("resourceVersion") or 0),
            scheme="https" if _TLS_ENV in env else "http",
            marks=marks,
        )

    @property
    def done(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


def marks_patch(
    pod: PoolPod, labels: Mapping[str, str], annotations: Mapping[str, str]
) -> Obj | None:
    """The merge patch bringing the pod's marks to these; None when they are already so."""
    current = dict(pod.marks)
    changed_labels = {k: v for k, v in labels.items() if current.get(k) != v}
    changed_annotations = {k: v for k, v in annotations.items() if current.get(k) != v}
    if not changed_labels and not changed_annotations:
        return None
    meta: Obj = {}
    if changed_labels:
        meta["labels"] = changed_labels
    if changed_annotations:
        meta["annotations"] = changed_annotations
    return {"metadata": meta}


# ---------------------------------------------------------------------------- reports
def _text(raw: object) -> str | None:
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _int(raw: object) -> int | None:
    text = _text(raw)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# A server whose last report is older than this is not offered for allocation.
STALE_AFTER_MS = 3 * HEARTBEAT_INTERVAL_MS

# The state hash fields read each round, in this order.
STATE_FIELDS = (
    ServerState.CAPACITY,
    ServerState.PLAYERS,
    ServerState.READY,
    ServerState.DRAINING,
    ServerState.HEARTBEAT_MS,
)


@dataclass(frozen=True, slots=True)
class ServerReport:
    """A pool server's state hash (`keys.server_state`) and the matches it hosts."""

    hosted: frozenset[str] = frozenset()
    capacity: int | None = None  # None: it has not reported yet
    players: int = 0
    ready: bool = False
    draining: bool = False
    heartbeat_ms: int | None = None

    @classmethod
    def parse(cls, state: Sequence[object], hosted: Sequence[object]) -> ServerReport:
        """From HMGET STATE_FIELDS and HKEYS of its matches."""
        capacity, players, ready, draining, heartbeat = (list(state) + [None] * 5)[:5]
        return cls(
            hosted=frozenset(t for t in map(_text, hosted) if t),
            capacity=_int(capacity),
            players=_int(players) or 0,
            ready=_text(ready) == "1",
            draining=_text(draining) == "1",
            heartbeat_ms=_int(heartbeat),
        )


@dataclass
class Ledger:
    """What a server hosts: its last report, plus allocations and releases noted since
    (an allocation counts at once, before the server's next report shows it)."""

    hosted: frozenset[str] = frozenset()
    added: dict[str, float] = field(default_factory=dict)  # match id -> when noted
    removed: dict[str, float] = field(default_factory=dict)

    def report(self, hosted: frozenset[str], read_started: float) -> None:
        """A read that started at `read_started` sees every note made before it."""
        self.hosted = hosted
        self.added = {m: t for m, t in self.added.items() if t >= read_started}
        self.removed = {m: t for m, t in self.removed.items() if t >= read_started}

    def note_allocated(self, match_id: str, now: float) -> None:
        self.removed.pop(match_id, None)
        self.added[match_id] = now

    def note_released(self, match_id: str, now: float) -> None:
        self.added.pop(match_id, None)
        self.removed[match_id] = now

    @property
    def matches(self) -> frozenset[str]:
        return (self.hosted | frozenset(self.added)) - frozenset(self.removed)

    @property
    def count(self) -> int:
        return len(self.matches)


def server_view(
    pod: PoolPod,
    report: ServerReport | None,
    count: int,
    drain_marked: bool = False,
    now_ms: int | None = None,
) -> ServerView:
    """`pod_ready`: its pod is Ready and its server says it accepts matches, with a
    heartbeat no older than STALE_AFTER_MS (at `now_ms`, when given)."""
    report = report or ServerReport()
    stale = (
        now_ms is not None
        and report.heartbeat_ms is not None
        and now_ms - report.heartbeat_ms > STALE_AFTER_MS
    )
    return ServerView(
        name=pod.name,
        namespace=pod.namespace,
        pool=pod.pool,
        uid=pod.uid,
        node=pod.node,
        host_port=pod.host_port,
        scheme=pod.scheme,
        pod_ready=pod.ready and report.ready and not stale and not pod.terminating and not pod.done,
        capacity=report.capacity if report.capacity is not None else pod.capacity,
        count=count,
        draining=drain_marked or report.draining or pod.terminating,
        template_hash=pod.template_hash,
    )


# ---------------------------------------------------------------------------- decision
@dataclass(frozen=True, slots=True)
class Member:
    """One pod of the pool as the decision sees it."""

    pod: PoolPod
    count: int = 0  # matches it hosts
    capacity: int = 1
    draining: bool = False  # the server reports draining (it is stopping on its own)

    @property
    def live(self) -> bool:
        return not self.pod.terminating and not self.pod.done


@dataclass
class PoolPlan:
    desired: int
    create: int = 0
    remove: list[tuple[str, str]] = field(default_factory=list)  # (pod, reason): delete now
    retire: list[tuple[str, str]] = field(default_factory=list)  # (pod, reason): drain, delete
    status: Obj = field(default_factory=dict)


def _scale_down_order(idle: Sequence[Member], everyone: Sequence[Member]) -> list[Member]:
    """Not-ready servers first, then those on the least loaded nodes (so nodes empty
    out, as Agones' Packed scale-down), then the newest."""
    load = node_load(
        Candidate(m.pod.name, m.pod.node or "", m.capacity, m.count) for m in everyone if m.live
    )
    return sorted(
        idle,
        key=lambda m: (
            m.pod.ready,
            load[m.pod.node or ""],
            -(m.pod.created.timestamp() if m.pod.created else math.inf),
            m.pod.name,
        ),
    )


def decide_pool(pool: PoolSpec, current_hash: str, members: Sequence[Member]) -> PoolPlan:
    """What one pass does for a pool: servers to create, to delete, and its status."""
    live = [m for m in members if m.live]
    allocated = [m for m in live if m.count > 0]
    idle = [m for m in live if m.count == 0]
    drained = [m for m in idle if m.draining]
    idle_current = [m for m in idle if not m.draining and m.pod.template_hash == current_hash]
    outdated = [m for m in idle if not m.draining and m.pod.template_hash != current_hash]
    desired = pool.desired(len(allocated))
    plan = PoolPlan(desired=desired)
    plan.remove = [(m.pod.name, FAILED) for m in members if m.pod.done and not m.pod.terminating]
    plan.retire = [(m.pod.name, DRAINED) for m in drained]
    if not pool.deleting:
        have = len(allocated) + len(idle_current)
        plan.create = max(0, desired - have)
        excess = max(0, have - desired)
        leaving = _scale_down_order(idle_current, live)[:excess]
        plan.retire.extend((m.pod.name, SCALE_DOWN) for m in leaving)
        # Outdated idle servers go once the current ones cover the buffer (surge first:
        # an image that never gets Ready leaves the old servers serving).
        staying = {m.pod.name for m in leaving}
        ready_idle = sum(1 for m in idle_current if m.pod.ready and m.pod.name not in staying)
        if ready_idle >= desired - len(allocated):
            plan.retire.extend((m.pod.name, OUTDATED) for m in outdated)
    matches = sum(m.count for m in live)
    capacity = sum(m.capacity for m in live)
    plan.status = {
        "replicas": desired,
        "currentReplicas": len(live),
        "readyReplicas": sum(1 for m in live if m.pod.ready),
        "allocatedReplicas": len(allocated),
        "matches": matches,
        "capacity": capacity,
        "inUse": f"{matches}/{capacity}",
        "serves": pool.serves_text,
        "templateHash": current_hash,
        "observedGeneration": pool.generation,
    }
    return plan
