"""Pure builders: the match-server pod, the reconcile decision, status patches.

Nothing here does I/O or reads a clock: `decide()` takes the Match, its pod (or
None), the node's address and `now`, and returns what to do. The phase machine is
`tradearena.orchestration.phases`, shared with the local-process runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from match_operator.servers import ServerView
from match_operator.settings import OperatorSettings
from tradearena.contracts import resource
from tradearena.contracts.orchestration import MatchSpec, Scheme
from tradearena.contracts.phases import MatchPhase
from tradearena.contracts.serverconfig import (
    Entry,
    FilePath,
    Secret,
    SecretRef,
    ServerDeployment,
    TlsFiles,
    env_name,
    server_config,
)
from tradearena.contracts.tracing import MATCH_ANNOTATION
from tradearena.orchestration.phases import (
    Decision,
    Event,
    TransitionError,
    server_event,
    transition,
)

CONTAINER = "matchserver"
KEYS_DIR = "/etc/tradearena/keys"
CATALOGUE_DIR = "/etc/tradearena/catalogue"  # the `catalogue` volume (item modes.toml)
CATALOGUE_ITEM = "modes.toml"
TLS_DIR = "/etc/tradearena/tls"  # the `tls` volume: the Secret's tls.crt and tls.key
TLS_ITEMS = ("tls.crt", "tls.key")  # the keys of a kubernetes.io/tls Secret

Obj = dict[str, Any]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------- pod spec
def match_spec(match: Obj) -> MatchSpec:
    """The contract's view of a Match's spec (its name is the match id)."""
    spec = match["spec"]
    return MatchSpec(
        match_id=match["metadata"]["name"],
        mode=spec["mode"],
        format=spec["format"],
        duration_ms=int(spec.get("durationMs") or 0),
        players=tuple(spec["players"]),
        symbol=spec.get("symbol") or MatchSpec.symbol,
        traceparent=(match["metadata"].get("annotations") or {}).get(MATCH_ANNOTATION),
    )


_KEY_FIELDS: dict[str, Literal["jwks_file", "public_key_file"]] = {
    "JWKS_FILE": "jwks_file",
    "PUBLIC_KEY_FILE": "public_key_file",
}


def server_deployment(settings: OperatorSettings) -> ServerDeployment:
    """A pod listens on every address, reads Redis from a Secret and keys from a volume."""
    return ServerDeployment(
        host="0.0.0.0",  # noqa: S104 - players connect from outside
        redis=Secret(settings.redis_secret, settings.redis_secret_key),
        verify_key=f"{KEYS_DIR}/{settings.keys_item}",  # the `keys` volume
        verify_key_kind=_KEY_FIELDS[settings.keys_env],
        feed_source=settings.feed_source,
        log_format="json",
        cors_origins=settings.cors_origins,
        admin_port=settings.admin_port,
        tls=TlsFiles(f"{TLS_DIR}/{TLS_ITEMS[0]}", f"{TLS_DIR}/{TLS_ITEMS[1]}")
        if settings.tls_secret
        else None,
        catalogue=f"{CATALOGUE_DIR}/{CATALOGUE_ITEM}" if settings.catalogue_configmap else None,
    )


def advertised_address(template: str, node_ip: str, node_name: str) -> str:
    """What players are told to connect to (OperatorSettings.address_template)."""
    return template.format(
        node_ip=node_ip,
        node_ip_dashed=node_ip.replace(".", "-").replace(":", "-"),
        node_name=node_name,
    )


def _env_var(entry: Entry) -> Obj:
    name = env_name(entry.field)
    if isinstance(entry, SecretRef):
        return {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": entry.secret, "key": entry.key}},
        }
    if isinstance(entry, FilePath):
        return {"name": name, "value": entry.path}
    return {"name": name, "value": entry.value}


def env_vars(entries: list[Entry], settings: OperatorSettings) -> list[Obj]:
    """A server's configuration as container env, plus the operator's extra_env."""
    env = [_env_var(e) for e in entries]
    env.extend({"name": k, "value": v} for k, v in sorted(settings.extra_env.items()))
    return env


def match_env(match: Obj, settings: OperatorSettings, port: int) -> list[Obj]:
    return env_vars(server_config(match_spec(match), port, server_deployment(settings)), settings)


def owner_reference(match: Obj) -> Obj:
    meta = match["metadata"]
    return {
        "apiVersion": resource.API_VERSION,
        "kind": resource.KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_pod_spec(
    match: Obj, settings: OperatorSettings, host_port: int, restarts_before: int = 0
) -> Obj:
    """The match-server pod: named after the Match (so there is never a second one)."""
    meta = match["metadata"]
    return server_pod_spec(
        name=meta["name"],
        namespace=meta["namespace"],
        labels={
            resource.MATCH_LABEL: meta["name"],
            resource.SAFE_TO_EVICT_LABEL: "false",  # a match runs on it: no eviction
        },
        annotations={resource.RESTARTS_ANNOTATION: str(restarts_before)},
        owner=owner_reference(match),
        env=match_env(match, settings, host_port),
        host_port=host_port,
        settings=settings,
    )


def server_pod_spec(
    *,
    name: str,
    namespace: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    owner: Obj,
    env: list[Obj],
    host_port: int,
    settings: OperatorSettings,
    image: str | None = None,
) -> Obj:
    """A match-server pod (a Match's own, or a pool server): the locked-down container,
    its volumes and probes; `labels` are added to the common ones."""
    deployment = server_deployment(settings)
    http = {"path": "/readyz", "port": "game", "scheme": deployment.scheme.upper()}
    mounts: list[Obj] = [
        {"name": "keys", "mountPath": KEYS_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir
    ]
    volumes: list[Obj] = [
        {"name": "keys", "configMap": {"name": settings.keys_configmap}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    if settings.catalogue_configmap:
        mounts.append({"name": "catalogue", "mountPath": CATALOGUE_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "catalogue",
                "configMap": {
                    "name": settings.catalogue_configmap,
                    "items": [{"key": CATALOGUE_ITEM, "path": CATALOGUE_ITEM}],
                },
            }
        )
    if settings.tls_secret:
        # A whole-directory mount (never subPath): the kubelet swaps the files in place
        # when the Secret is renewed and the server reloads them.
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "tls",
                "secret": {
                    "secretName": settings.tls_secret,
                    "items": [{"key": item, "path": item} for item in TLS_ITEMS],
                    "defaultMode": 0o440,
                },
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                **resource.SERVER_POD_LABELS,
                resource.MANAGED_BY_LABEL: resource.MANAGED_BY,
                **labels,
            },
            "annotations": annotations,
            "ownerReferences": [owner],
        },
        "spec": {
            "serviceAccountName": settings.service_account,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            # A crash restarts the same pod in place; the server restores from Redis.
            "restartPolicy": "OnFailure",
            "terminationGracePeriodSeconds": settings.termination_grace_s,
            "nodeSelector": dict(settings.node_selector),
            "tolerations": [dict(t) for t in settings.tolerations],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": CONTAINER,
                    "image": image or settings.image,
                    "imagePullPolicy": settings.image_pull_policy,
                    "args": ["matchserver"],
                    "ports": [
                        {
                            "name": "game",
                            "containerPort": host_port,
                            "hostPort": host_port,
                            "protocol": "TCP",
                        },
                        # /metrics and /status: inside the cluster only (no host port).
                        {
                            "name": "admin",
                            "containerPort": settings.admin_port,
                            "protocol": "TCP",
                        },
                    ],
                    "env": env,
                    "readinessProbe": {
                        "httpGet": http,
                        "periodSeconds": 2,
                        "failureThreshold": 2,
                    },
                    "livenessProbe": {
                        "httpGet": {**http, "path": "/healthz"},
                        "initialDelaySeconds": 10,
                        "periodSeconds": 10,
                        "failureThreshold": 3,
                    },
                    "resources": {
                        "requests": {
                            "cpu": settings.cpu_request,
                            "memory": settings.memory_request,
                        },
                        "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "runAsNonRoot": True,
                        "privileged": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "volumeMounts": mounts,
                }
            ],
            "volumes": volumes,
        },
    }


_MATCH_META = (
    "name",
    "namespace",
    "uid",
    "generation",
    "resourceVersion",
    "finalizers",
    "deletionTimestamp",
    "creationTimestamp",
)


def slim_match(match: Obj) -> Obj:
    """What the operator keeps of a Match (no managedFields, annotations...)."""
    meta = match.get("metadata") or {}
    return {
        "metadata": {k: meta[k] for k in _MATCH_META if k in meta},
        "spec": match.get("spec") or {},
        "status": match.get("status") or {},
    }


# ---------------------------------------------------------------------------- pod view
_TLS_ENV = env_name("tls_cert_file")


@dataclass(frozen=True, slots=True)
class PodView:
    """What the operator needs from a match-server pod."""

    name: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    ready: bool
    node: str | None
    host_port: int | None
    restarts: int  # container restarts of this pod
    restarts_before: int  # in-place restarts of the match before this pod
    terminating: bool
    created: datetime | None
    exit_code: int | None = None
    uid: str = ""
    resource_version: int = 0
    scheme: Scheme = "http"  # https: the server was given a certificate

    @classmethod
    def of(cls, pod: Obj) -> PodView:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        ports = [
            p.get("hostPort")
            for c in spec.get("containers", [])
            for p in c.get("ports") or []
            if p.get("hostPort")
        ]
        statuses = status.get("containerStatuses") or []
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        exit_code = None
        for cs in statuses:
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated is not None:
                exit_code = terminated.get("exitCode")
        annotations = meta.get("annotations") or {}
        env = {e.get("name") for c in spec.get("containers", []) for e in c.get("env") or []}
        return cls(
            name=meta["name"],
            uid=meta.get("uid", ""),
            phase=status.get("phase") or "Pending",
            ready=conditions.get("Ready") == "True",
            node=spec.get("nodeName"),
            host_port=ports[0] if ports else None,
            restarts=sum(int(cs.get("restartCount") or 0) for cs in statuses),
            restarts_before=int(annotations.get(resource.RESTARTS_ANNOTATION, "0") or 0),
            terminating=meta.get("deletionTimestamp") is not None,
            created=parse_time(meta.get("creationTimestamp")),
            exit_code=exit_code,
            resource_version=int(meta.get("resourceVersion") or 0),
            scheme="https" if _TLS_ENV in env else "http",
        )

    @property
    def done(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


# ---------------------------------------------------------------------------- allocation
WARM = "warm"  # .status.allocation: bound to a running pool server
COLD = "cold"  # .status.allocation: a pod of its own, created for it


@dataclass(frozen=True, slots=True)
class Allocated:
    """This pass bound the match to a pool server (or adopted the server it is bound to)."""

    server: str  # the server's pod name, which is its server id
    view: ServerView | None  # as the pool controller sees it (None: not known to it yet)
    latency_ms: float  # how long the allocation took (directory + Redis)
    adopted: bool = False  # bound earlier (another replica, a pass cut short): kept as is


@dataclass(frozen=True, slots=True)
class PlayerCount:
    """What the match's server reports (its status hash): connected now, expected."""

    connected: int
    expected: int | None = None  # None: not reported; the spec's player count is used


# ---------------------------------------------------------------------------- decisions
@dataclass
class Plan:
    """What one reconcile pass does, in order: pod actions, status, metadata, events."""

    create_pod: int | None = None  # host port of the pod to create
    restarts_before: int = 0
    delete_pod: bool = False
    write_cancel: str | None = None  # reason for keys.match_cancel(<id>)
    status: Obj = field(default_factory=dict)  # merge patch of .status
    add_finalizer: bool = False
    remove_finalizer: bool = False
    delete_match: bool = False
    release_port: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, msg)
    check_pod: bool = False  # the pod is missing from the cache: confirm with a GET
    cancel_on_server: tuple[str, str] | None = None  # (server, reason): through its inbox
    release_server: str | None = None  # a warm attempt given up: unbind, drop its reports
    requeue_after: float | None = None

    def requeue_within(self, seconds: float) -> None:
        if self.requeue_after is None or seconds < self.requeue_after:
            self.requeue_after = seconds

    @property
    def empty(self) -> bool:
        return self == Plan()


@dataclass(frozen=True)
class Observed:
    match: Obj
    pod: PodView | None
    now: datetime
    node_address: str | None = None
    server_phase: str | None = None  # the server's own report (a ServerPhase, Redis), if known
    pod_confirmed_missing: bool = False
    port: int | None = None  # the port the allocator would give a new pod
    allocated: Allocated | None = None  # this pass bound it to a pool server
    cold_reason: str | None = None  # this pass chose a pod of its own instead, and why
    server: ServerView | None = None  # the bound pool server, as the pool controller sees it
    server_gone: bool = False  # the bound pool server's pod is confirmed gone
    players: PlayerCount | None = None  # the server's report, if read
    players_patched_at: datetime | None = None  # when this operator last wrote the counts


_TIMESTAMP_OF = {
    MatchPhase.CREATING: "createdAt",
    MatchPhase.READY: "readyAt",
    MatchPhase.LIVE: "liveAt",
    MatchPhase.FINISHED: "finishedAt",
    MatchPhase.FAILED: "finishedAt",
    MatchPhase.CANCELLED: "finishedAt",
}


class _Status:
    """The status being built: the current one plus this pass's changes."""

    def __init__(self, current: Obj, plan: Plan, now: datetime, generation: int | None) -> None:
        self.current = current
        self.plan = plan
        self.now = now
        self.phase = MatchPhase(current.get("phase") or MatchPhase.PENDING)
        if generation is not None and current.get("observedGeneration") != generation:
            plan.status["observedGeneration"] = generation

    def get(self, key: str) -> Any:
        return self.plan.status.get(key, self.current.get(key))

    def set(self, key: str, value: Any) -> None:
        if self.current.get(key) != value or key in self.plan.status:
            self.plan.status[key] = value

    def fire(
        self,
        event: Event,
        reason: str | None = None,
        *,
        retries_left: int = 0,
        started: bool = False,
    ) -> Decision | None:
        try:
            decision = transition(self.phase, event, retries_left=retries_left, started=started)
        except TransitionError:
            return None
        if decision.phase is not self.phase:
            self.plan.events.append(
                (
                    "Warning" if decision.phase in (MatchPhase.FAILED,) else "Normal",
                    str(decision.phase),
                    reason or f"{self.phase} -> {decision.phase} ({event})",
                )
            )
            self.phase = decision.phase
            self.set("phase", str(decision.phase))
            stamp = _TIMESTAMP_OF.get(decision.phase)
            if stamp is not None and (stamp == "createdAt" or not self.get(stamp)):
                self.set(stamp, iso(self.now))
        if reason is not None:
            self.set("reason", reason)
        return decision


def _conditions(current: list[Obj], phase: MatchPhase, now: datetime, reason: str) -> list[Obj]:
    wanted = {
        resource.CONDITION_READY: phase.reachable,
        resource.CONDITION_LIVE: phase is MatchPhase.LIVE,
        resource.CONDITION_ENDED: phase.terminal,
    }
    old = {c["type"]: c for c in current}
    out = []
    for ctype, value in wanted.items():
        status = "True" if value else "False"
        prev = old.get(ctype)
        if prev is not None and prev.get("status") == status:
            out.append(prev)
        else:
            out.append(
                {"type": ctype, "status": status, "reason": reason, "lastTransitionTime": iso(now)}
            )
    return out


def decide(obs: Observed, settings: OperatorSettings) -> Plan:
    """Everything one reconcile pass should do for a Match, given what was observed."""
    match, pod, now = obs.match, obs.pod, obs.now
    meta, spec = match["metadata"], match["spec"]
    plan = Plan()
    st = _Status(match.get("status") or {}, plan, now, meta.get("generation"))
    retries = int(st.get("retries") or 0)
    retries_left = max(0, settings.max_retries - retries)
    finalizers = meta.get("finalizers") or []
    deleting = meta.get("deletionTimestamp") is not None
    cancel = bool(spec.get("cancel")) or deleting
    if not st.current.get("phase"):
        st.set("phase", str(MatchPhase.PENDING))

    if not deleting and not st.phase.terminal and resource.FINALIZER not in finalizers:
        plan.add_finalizer = True

    warm = obs.allocated is not None or st.get("allocation") == WARM

    # --- cancel: spec.cancel or the Match being deleted
    if cancel and not st.phase.terminal and warm:
        reason = spec.get("cancelReason") or ("match deleted" if deleting else "cancelled")
        _cancel_warm(obs, st, plan, reason)
    elif cancel and not st.phase.terminal:
        reason = spec.get("cancelReason") or ("match deleted" if deleting else "cancelled")
        if st.phase is not MatchPhase.CANCELLING:
            st.fire(Event.CANCEL, reason)
            if pod is not None and not pod.done:
                plan.write_cancel = reason
        if pod is not None and not pod.terminating and not pod.done:
            plan.delete_pod = True
        elif pod is None or pod.done:
            if pod is None and not obs.pod_confirmed_missing:
                plan.check_pod = True
            else:
                st.fire(Event.STOPPED, reason)

    # --- the normal life of a match: on a pool server, or on a pod of its own
    elif not st.phase.terminal and warm:
        _advance_warm(obs, settings, st, plan, retries, retries_left)
    elif not st.phase.terminal:
        _advance(obs, settings, st, plan, retries, retries_left)

    # --- terminal: free the port, drop the finalizer, TTL
    if st.phase.terminal:
        plan.release_port = True
        if pod is not None and not pod.done and not pod.terminating:
            plan.delete_pod = True  # a failed or cancelled match leaves nothing running
        if resource.FINALIZER in finalizers:
            plan.remove_finalizer = True
        finished = parse_time(st.get("finishedAt"))
        if not deleting and finished is not None and settings.ttl_s >= 0:
            expires = finished + timedelta(seconds=settings.ttl_s)
            if now >= expires:
                plan.delete_match = True
            else:
                plan.requeue_after = (expires - now).total_seconds()

    phase = st.phase
    old_conditions = st.current.get("conditions") or []
    conditions = _conditions(old_conditions, phase, now, str(phase))
    if conditions != old_conditions:
        plan.status["conditions"] = conditions
    _players(obs, settings, st, plan)
    return plan


def _players(obs: Observed, settings: OperatorSettings, st: _Status, plan: Plan) -> None:
    """Players connected/expected for `kubectl get matches`, coalesced: written with any
    other change, else at most every `players_interval_s` (a connect storm is one write)."""
    report = obs.players
    expected = int(st.get("playersExpected") or len(obs.match["spec"].get("players") or []))
    if report is not None and report.expected:
        expected = report.expected
    connected = report.connected if report is not None else int(st.get("playersConnected") or 0)
    wanted = {
        "playersConnected": connected,
        "playersExpected": expected,
        "playersSummary": f"{connected}/{expected}",
    }
    if all(st.get(k) == v for k, v in wanted.items()):
        return
    last = obs.players_patched_at
    elapsed = None if last is None else (obs.now - last).total_seconds()
    if plan.status or elapsed is None or elapsed >= settings.players_interval_s:
        for k, v in wanted.items():
            st.set(k, v)
    else:
        plan.requeue_within(settings.players_interval_s - elapsed)


def _cancel_warm(obs: Observed, st: _Status, plan: Plan, reason: str) -> None:
    """Cancel a match hosted by a pool server: through the server's inbox; it is over once
    the server reports it settled (or the server is gone)."""
    server = st.get("server")
    if st.phase is not MatchPhase.CANCELLING:
        st.fire(Event.CANCEL, reason)
        if server and not obs.server_gone:
            plan.cancel_on_server = (str(server), reason)
    if server_event(obs.server_phase) is Event.FINISHED:
        st.fire(Event.FINISHED, reason)
    elif obs.server_gone or not server:
        st.fire(Event.STOPPED, reason)


def _advance_warm(
    obs: Observed,
    settings: OperatorSettings,
    st: _Status,
    plan: Plan,
    retries: int,
    retries_left: int,
) -> None:
    """A match on a pool server: Ready on the server's acknowledgement (its own Ready
    report), then Live and the end from its reports."""
    now = obs.now
    started = st.phase is MatchPhase.LIVE or bool(st.get("liveAt"))
    allocated = obs.allocated
    server = allocated.server if allocated is not None else str(st.get("server") or "")
    view = allocated.view if allocated is not None else obs.server
    if allocated is not None:
        st.set("allocation", WARM)
        st.set("server", server)
        st.set("pod", None)
        pool = f" of pool {view.pool}" if view is not None else ""
        where = f" on {view.node}" if view is not None and view.node else ""
        if view is not None:
            st.set("pool", view.pool)
        st.fire(Event.CREATED, f"allocated to pool server {server}")
        how = "adopted its bound server" if allocated.adopted else "warm"
        plan.events.append(
            (
                "Normal",
                "Allocated",
                f"{how}: pool server {server}{pool}{where} in {allocated.latency_ms:.0f} ms",
            )
        )
    if view is not None:
        if view.node:
            st.set("node", view.node)
        if view.host_port:
            st.set("port", view.host_port)
        st.set("scheme", view.scheme)
    if obs.node_address:
        st.set("address", obs.node_address)

    report = server_event(obs.server_phase)
    if obs.server_gone and report is Event.FINISHED and st.phase is not MatchPhase.CREATING:
        # Its server reported the end and then went (an idle server scaled down or
        # replaced): the match is over, not lost.
        st.fire(Event.FINISHED, f"pool server {server} reported {obs.server_phase}")
        return
    if obs.server_gone:
        reason = f"pool server {server} gone"
        if started:  # its matches went with it: nothing to restart in place
            st.fire(Event.LOST, reason)
            return
        decision = st.fire(Event.FAILED, reason, retries_left=retries_left)
        if decision is not None and decision.retry:
            _retry_warm(st, plan, retries, server, f"{reason}; allocating again")
        return

    if report in (Event.READY, Event.LIVE, Event.FINISHED) and st.phase is MatchPhase.CREATING:
        st.fire(Event.READY, f"pool server {server} acknowledged")
    if report is Event.LIVE and st.phase is MatchPhase.READY:
        st.fire(Event.LIVE, "match started")
    if report is Event.FINISHED and st.phase in (MatchPhase.READY, MatchPhase.LIVE):
        st.fire(Event.FINISHED, f"pool server {server} reported {obs.server_phase}")

    if st.phase is MatchPhase.CREATING:
        born = parse_time(st.get("createdAt")) or now
        deadline = born + timedelta(seconds=settings.startup_timeout_s)
        if now < deadline:
            plan.requeue_within((deadline - now).total_seconds())
            return
        reason = f"pool server {server} did not acknowledge within {settings.startup_timeout_s:g}s"
        decision = st.fire(Event.STARTUP_TIMEOUT, reason, retries_left=retries_left)
        if decision is not None and decision.retry:
            _retry_warm(st, plan, retries, server, f"{reason}; allocating again")


def _retry_warm(st: _Status, plan: Plan, retries: int, server: str, message: str) -> None:
    """Back to Pending with no binding: the next pass allocates afresh."""
    st.set("retries", retries + 1)
    for key in ("allocation", "server", "pool", "node", "address", "scheme", "port"):
        st.set(key, None)
    plan.release_server = server
    plan.events.append(("Warning", "Retrying", message))


def _advance(
    obs: Observed,
    settings: OperatorSettings,
    st: _Status,
    plan: Plan,
    retries: int,
    retries_left: int,
) -> None:
    pod, now = obs.pod, obs.now
    restarts = int(st.get("restartCount") or 0)
    started = st.phase is MatchPhase.LIVE or bool(st.get("liveAt"))

    def fail(event: Event, reason: str) -> None:
        decision = st.fire(event, reason, retries_left=retries_left, started=started)
        if decision is None:
            return
        if decision.retry:
            st.set("retries", retries + 1)
            st.set("address", None)
            st.set("scheme", None)
            st.set("port", None)
            plan.release_port = True
            plan.events.append(("Warning", "Retrying", f"{reason}; a fresh pod replaces it"))
        elif decision.restart_in_place:  # the recreated pod counts the restart
            plan.events.append(("Warning", "Restarting", f"{reason}; restarting in place"))
        if pod is not None and not pod.terminating:
            plan.delete_pod = True  # its name is needed for the next pod

    if pod is not None and st.phase is MatchPhase.PENDING and pod.done:
        if not pod.terminating:
            plan.delete_pod = True  # the pod of a failed attempt: clear the way first
        return

    if obs.cold_reason is not None:
        st.set("allocation", COLD)
        plan.events.append(("Normal", "ColdStart", f"a pod of its own: {obs.cold_reason}"))

    if pod is None:
        if st.phase is MatchPhase.PENDING:
            port = st.get("port") if started else obs.port
            if port is None:
                plan.events.append(("Warning", "NoHostPort", "no free host port; waiting"))
                return
            plan.create_pod = int(port)
            plan.restarts_before = restarts
            st.set("port", int(port))
            st.set("pod", obs.match["metadata"]["name"])
            st.set("server", obs.match["metadata"]["name"])
            st.fire(Event.CREATED, f"pod created with host port {port}")
        elif not obs.pod_confirmed_missing:
            plan.check_pod = True
        elif started:  # a live match whose pod vanished: same match, new pod, same port
            restarts += 1
            st.set("restartCount", restarts)
            plan.create_pod = int(st.get("port") or obs.port or 0) or None
            plan.restarts_before = restarts
            plan.events.append(("Warning", "Restarting", "pod gone while live; recreated"))
        else:
            fail(Event.FAILED, "pod deleted before the match was live")
        return

    if pod.terminating:
        return  # wait for it to go; the next pass recreates if needed

    if pod.restarts_before + pod.restarts > restarts and started:
        st.set("restartCount", pod.restarts_before + pod.restarts)

    if pod.phase == "Succeeded" or (pod.done and pod.exit_code == 0):
        if st.phase in (MatchPhase.PENDING, MatchPhase.CREATING):
            st.fire(Event.READY)
        st.fire(Event.FINISHED, "match server exited 0: results published")
        return
    if pod.phase == "Failed":
        fail(Event.FAILED, f"pod failed (exit {pod.exit_code})")
        return
    if not started and not pod.ready and pod.restarts > 0:
        fail(Event.FAILED, f"match server crashed {pod.restarts} time(s) before Ready")
        return

    if st.phase is MatchPhase.PENDING:
        st.fire(Event.CREATED, "pod exists")
    st.set("pod", pod.name)
    st.set("server", pod.name)
    if pod.host_port:
        st.set("port", pod.host_port)

    scheme = pod.scheme  # what this pod was built to serve, whatever the settings now
    if pod.ready and st.phase is MatchPhase.CREATING and obs.node_address:
        st.set("address", obs.node_address)
        st.set("scheme", scheme)
        st.fire(Event.READY, f"ready at {obs.node_address}:{pod.host_port} on {pod.node}")
    if server_event(obs.server_phase) is Event.LIVE and st.phase is MatchPhase.READY:
        st.fire(Event.LIVE, "match started")
    if st.phase in (MatchPhase.READY, MatchPhase.LIVE) and obs.node_address:
        st.set("address", obs.node_address)
        st.set("scheme", scheme)
        st.set("node", pod.node)  # written with Ready: one status write fewer per match

    if st.phase is MatchPhase.CREATING:
        born = pod.created or now
        deadline = born + timedelta(seconds=settings.startup_timeout_s)
        if now >= deadline:
            fail(Event.STARTUP_TIMEOUT, f"not Ready within {settings.startup_timeout_s:g}s")
        else:
            plan.requeue_after = (deadline - now).total_seconds()
