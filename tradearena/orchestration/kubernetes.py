"""The Kubernetes runtime: a `Match` custom resource per match, run by the operator.

start() creates the Match (idempotent: the name is the match id), status() reads
it, watch() follows it with a real watch on that one object, cancel() sets
spec.cancel (the operator stops the pod gracefully; the server settles the match
as cancelled), list_active() lists the Matches not yet over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tradearena.contracts import resource
from tradearena.contracts.orchestration import (
    SCHEMES,
    MatchSpec,
    MatchStatus,
    OrchestratorUnavailableError,
)
from tradearena.contracts.phases import MatchPhase
from tradearena.contracts.tracing import MATCH_ANNOTATION

log = logging.getLogger(__name__)

MERGE = "application/merge-patch+json"


def match_status(obj: dict[str, Any]) -> MatchStatus:
    """The contract's view of a Match resource."""
    status = obj.get("status") or {}
    phase = MatchPhase(status.get("phase") or MatchPhase.PENDING)
    reachable = phase.reachable
    detail = {
        k: str(status[k])
        for k in ("pod", "server", "node", "readyAt", "liveAt", "finishedAt")
        if status.get(k)
    }
    scheme = status.get("scheme") or "http"  # written by operators that know of TLS
    return MatchStatus(
        match_id=obj["metadata"]["name"],
        phase=phase,
        address=status.get("address") if reachable else None,
        port=status.get("port") if reachable else None,
        scheme=scheme if scheme in SCHEMES else "http",
        reason=status.get("reason"),
        restarts=int(status.get("restartCount") or 0),
        detail=detail,
    )


def match_resource(spec: MatchSpec, namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": resource.API_VERSION,
        "kind": resource.KIND,
        "metadata": {
            "name": spec.match_id,
            "namespace": namespace,
            "labels": {resource.PART_OF_LABEL: resource.PART_OF},
        },
        "spec": {
            "mode": spec.mode,
            "format": spec.format,
            "players": list(spec.players),
            "symbol": spec.symbol,
        },
    }
    if spec.duration_ms:
        body["spec"]["durationMs"] = spec.duration_ms
    if spec.traceparent:  # the match's trace goes on in the operator and the server
        body["metadata"]["annotations"] = {MATCH_ANNOTATION: spec.traceparent}
    return body


@contextlib.contextmanager
def _reachable(what: str) -> Iterator[None]:
    """An API server out of reach, overloaded or failing: `OrchestratorUnavailableError`.
    Its answers about the request itself (404, 409, 422...) stay `ApiException`."""
    try:
        yield
    except ApiException as exc:
        if exc.status == 429 or (exc.status or 0) >= 500:
            raise OrchestratorUnavailableError(
                f"{what}: the Kubernetes API answered {exc.status} {exc.reason}"
            ) from exc
        raise
    except (aiohttp.ClientError, OSError) as exc:
        raise OrchestratorUnavailableError(f"{what}: the Kubernetes API: {exc!r}") from exc


class KubernetesOrchestrator:
    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.custom: Any = client.CustomObjectsApi(api_client)

    @classmethod
    async def connect(cls, namespace: str, kubeconfig: str | None = None) -> KubernetesOrchestrator:
        configuration = client.Configuration()
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(
                config_file=kubeconfig, client_configuration=configuration
            )
        return cls(client.ApiClient(configuration), namespace)

    async def close(self) -> None:
        await self.api_client.close()

    # ------------------------------------------------------------------ contract
    async def start(self, spec: MatchSpec) -> None:
        try:
            with _reachable("create Match"):
                await self.custom.create_namespaced_custom_object(
                    resource.GROUP,
                    resource.VERSION,
                    self.namespace,
                    resource.PLURAL,
                    match_resource(spec, self.namespace),
                )
        except ApiException as exc:
            if exc.status != 409:  # AlreadyExists: one Match per match id, never two
                raise

    async def _get(self, match_id: str) -> dict[str, Any] | None:
        try:
            with _reachable("read Match"):
                obj: dict[str, Any] = await self.custom.get_namespaced_custom_object(
                    resource.GROUP, resource.VERSION, self.namespace, resource.PLURAL, match_id
                )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    async def status(self, match_id: str) -> MatchStatus | None:
        obj = await self._get(match_id)
        return None if obj is None else match_status(obj)

    async def watch(self, match_id: str) -> AsyncIterator[MatchStatus]:
        """Every change of phase (or address) of one Match, ending after a terminal phase."""
        last: MatchStatus | None = None
        selector = f"metadata.name={match_id}"
        while True:
            listed = await self.custom.list_namespaced_custom_object(
                resource.GROUP,
                resource.VERSION,
                self.namespace,
                resource.PLURAL,
                field_selector=selector,
            )
            items = listed.get("items") or []
            if not items:
                return
            current = match_status(items[0])
            if _changed(last, current):
                last = current
                yield current
            if current.phase.terminal:
                return
            watcher = watch.Watch()
            try:
                async for event in watcher.stream(
                    self.custom.list_namespaced_custom_object,
                    resource.GROUP,
                    resource.VERSION,
                    self.namespace,
                    resource.PLURAL,
                    field_selector=selector,
                    resource_version=listed["metadata"]["resourceVersion"],
                    timeout_seconds=300,
                ):
                    if event["type"] == "DELETED":
                        return
                    if event["type"] not in ("ADDED", "MODIFIED"):
                        continue
                    current = match_status(event["object"])
                    if _changed(last, current):
                        last = current
                        yield current
                    if current.phase.terminal:
                        return
            except ApiException as exc:
                if exc.status != 410:  # expired resourceVersion: list again
                    raise
            finally:
                watcher.stop()
                with contextlib.suppress(Exception):
                    await watcher.close()
            await asyncio.sleep(0)

    async def cancel(self, match_id: str, reason: str) -> None:
        try:
            with _reachable("cancel Match"):
                await self.custom.patch_namespaced_custom_object(
                    resource.GROUP,
                    resource.VERSION,
                    self.namespace,
                    resource.PLURAL,
                    match_id,
                    {"spec": {"cancel": True, "cancelReason": reason[:256]}},
                    _content_type=MERGE,
                )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def list_active(self) -> list[MatchStatus]:
        with _reachable("list Matches"):
            listed = await self.custom.list_namespaced_custom_object(
                resource.GROUP, resource.VERSION, self.namespace, resource.PLURAL
            )
        statuses = [match_status(obj) for obj in listed.get("items") or []]
        return [s for s in statuses if not s.phase.terminal]

    async def drain(self, *, timeout_s: float, poll_s: float = 1.0) -> int:
        """Delete every Match of the namespace and wait until none is left; return how many.

        Deleting (not cancelling) lets the operator stop each pod gracefully, so a live
        match settles and publishes its results before the finalizer goes. Matches that
        appear meanwhile (a lobby still forming) are deleted on the next pass.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        deleted: set[str] = set()
        while True:
            listed = await self.custom.list_namespaced_custom_object(
                resource.GROUP, resource.VERSION, self.namespace, resource.PLURAL
            )
            items = listed.get("items") or []
            if not items:
                return len(deleted)
            for obj in items:
                name = obj["metadata"]["name"]
                if obj["metadata"].get("deletionTimestamp") or name in deleted:
                    continue
                try:
                    await self.custom.delete_namespaced_custom_object(
                        resource.GROUP, resource.VERSION, self.namespace, resource.PLURAL, name
                    )
                except ApiException as exc:
                    if exc.status != 404:
                        raise
                deleted.add(name)
            if asyncio.get_running_loop().time() > deadline:
                left = sorted(o["metadata"]["name"] for o in items)
                raise TimeoutError(f"{len(left)} Match(es) still present: {', '.join(left[:10])}")
            await asyncio.sleep(poll_s)


def _changed(last: MatchStatus | None, current: MatchStatus) -> bool:
    return last is None or (last.phase, last.url, last.restarts) != (
        current.phase,
        current.url,
        current.restarts,
    )
