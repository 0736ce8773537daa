"""Thin kopf handlers: feed watch events to the runtime, nothing else.

Matches and their pods are followed with raw event handlers (no kopf progress
annotations are written); the runtime holds the one finalizer it needs. Built
into a fresh `kopf.OperatorRegistry` per process.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import kopf

from match_operator.poolcontroller import PoolController
from match_operator.runtime import Runtime
from tradearena.contracts import resource

log = logging.getLogger(__name__)


def build_registry(runtime: Runtime, pools: PoolController | None = None) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    opts = runtime.settings

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.name = opts.peering
        settings.peering.lifetime = opts.peering_lifetime_s
        settings.peering.mandatory = not opts.standalone
        settings.peering.standalone = opts.standalone
        settings.posting.level = logging.WARNING
        # Exact namespaces and known CRDs only: no cluster-wide list of namespaces or CRDs
        # (least privilege; the CRD is installed before the operator starts).
        settings.scanning.disabled = True
        settings.queueing.idle_timeout = 1.0  # per-object workers exit sooner after a burst
        settings.watching.server_timeout = 600
        settings.watching.client_timeout = 660
        await runtime.rebuild()
        if pools is not None:
            await pools.rebuild()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return kopf.login_with_service_account(**kwargs)
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await runtime.close()

    @kopf.on.event(resource.GROUP, resource.VERSION, resource.PLURAL, registry=registry)
    async def match_event(event: kopf.RawEvent, **_: Any) -> None:
        body: Any = event["object"]
        deleted = event["type"] == "DELETED"
        key = runtime.on_match(body, deleted=deleted)
        if not deleted:
            await runtime.reconcile_logged(key)

    @kopf.on.event(
        "", "v1", "pods", labels={resource.MANAGED_BY_LABEL: resource.MANAGED_BY}, registry=registry
    )
    async def pod_event(event: kopf.RawEvent, **_: Any) -> None:
        body: Any = event["object"]
        deleted = event["type"] == "DELETED"
        if pools is not None and (pool := pools.on_pod(body, deleted=deleted)) is not None:
            if deleted:
                await pools.forget_server_keys(body["metadata"]["name"])
            await pools.reconcile_logged(pool)
            return
        key = runtime.on_pod(body, deleted=deleted)
        if key is not None and key in runtime.matches:
            await runtime.reconcile_logged(key)

    if pools is not None:

        @kopf.on.event(resource.GROUP, resource.VERSION, resource.POOL_PLURAL, registry=registry)
        async def pool_event(event: kopf.RawEvent, **_: Any) -> None:
            body: Any = event["object"]
            deleted = event["type"] == "DELETED"
            key = pools.on_pool(body, deleted=deleted)
            if not deleted:
                await pools.reconcile_logged(key)

        # The pool's rounds (state reads, pod marks, scaling) as a kopf daemon: on the
        # leader only, stopped while paused in favour of another replica.
        @kopf.daemon(
            resource.GROUP,
            resource.VERSION,
            resource.POOL_PLURAL,
            cancellation_backoff=0,
            cancellation_timeout=5,
            registry=registry,
        )
        async def pool_rounds(body: kopf.Body, **_: Any) -> None:
            key = pools.on_pool(dict(body))
            await pools.run_pool(key, body.metadata.uid or "")

        # kopf blocks a daemon's object from deletion with a finalizer until the daemon
        # stops. These rounds need none (they end when their pool is gone), and a pool
        # without a finalizer never hangs when the operator goes first (helm uninstall).
        spawning = registry._spawning
        spawning._handlers = [
            dataclasses.replace(h, requires_finalizer=False) if h.fn is pool_rounds else h
            for h in spawning._handlers
        ]

    return registry
