"""The operator's only conversation with the Kubernetes API (kubernetes_asyncio).

Everything returns plain dicts in the API's own camelCase form; errors other than
the expected ones (NotFound, AlreadyExists, Conflict) propagate as ApiException.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from tradearena.contracts import resource

Obj = dict[str, Any]
MERGE = "application/merge-patch+json"

__all__ = ["ApiException", "KubeApi"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubeApi:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        # Plain dicts in and out: the typed models would cost a conversion per call.
        self.core: Any = client.CoreV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.instance = f"{socket.gethostname()}-{os.getpid()}"

    @classmethod
    async def connect(cls) -> KubeApi:
        """In-cluster credentials in a pod, else the kubeconfig (KUBECONFIG or ~/.kube)."""
        configuration = client.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        return cls(client.ApiClient(configuration))

    async def close(self) -> None:
        await self.api_client.close()

    def _plain(self, obj: Any) -> Obj:
        data: Obj = self.api_client.sanitize_for_serialization(obj)
        return data

    @staticmethod
    async def _json(response: Any, ok: tuple[int, ...] = ()) -> Obj | None:
        """The body of a raw response; None for an accepted error status, else raise."""
        raw = await response.read()
        response.release()
        if response.status in ok:
            return None
        if response.status >= 400:
            raise ApiException(status=response.status, reason=raw.decode(errors="replace"))
        data: Obj = json.loads(raw)
        return data

    # ------------------------------------------------------------------ matches
    async def get_match(self, namespace: str, name: str) -> Obj | None:
        try:
            got: Obj = await self.custom.get_namespaced_custom_object(
                resource.GROUP, resource.VERSION, namespace, resource.PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return got

    async def patch_match_status(
        self, namespace: str, name: str, status: Obj, resource_version: str | None
    ) -> Obj:
        body: Obj = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        patched: Obj = await self.custom.patch_namespaced_custom_object_status(
            resource.GROUP,
            resource.VERSION,
            namespace,
            resource.PLURAL,
            name,
            body,
            _content_type=MERGE,
        )
        return patched

    async def set_finalizers(
        self, namespace: str, name: str, finalizers: list[str], resource_version: str | None
    ) -> Obj:
        meta: Obj = {"finalizers": finalizers or None}
        if resource_version:
            meta["resourceVersion"] = resource_version
        patched: Obj = await self.custom.patch_namespaced_custom_object(
            resource.GROUP,
            resource.VERSION,
            namespace,
            resource.PLURAL,
            name,
            {"metadata": meta},
            _content_type=MERGE,
        )
        return patched

    async def delete_match(self, namespace: str, name: str, uid: str) -> None:
        try:
            await self.custom.delete_namespaced_custom_object(
                resource.GROUP,
                resource.VERSION,
                namespace,
                resource.PLURAL,
                name,
                body={"preconditions": {"uid": uid}},
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # ------------------------------------------------------------------ pods
    async def get_pod(self, namespace: str, name: str) -> Obj | None:
        try:
            response = await self.core.read_namespaced_pod(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return await self._json(response, ok=(404,))

    async def create_pod(self, pod: Obj) -> bool:
        """Create the pod; False when it already exists (a pod with that name is the one)."""
        try:
            response = await self.core.create_namespaced_pod(
                pod["metadata"]["namespace"], pod, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return await self._json(response, ok=(409,)) is not None

    async def delete_pod(
        self, namespace: str, name: str, uid: str | None = None, grace_s: int | None = None
    ) -> None:
        body: Obj = {}
        if uid:
            body["preconditions"] = {"uid": uid}
        if grace_s is not None:
            body["gracePeriodSeconds"] = grace_s
        try:
            response = await self.core.delete_namespaced_pod(
                name, namespace, body=body, _preload_content=False
            )
            await self._json(response, ok=(404, 409))
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    async def list_pods(self, namespace: str, label_selector: str) -> list[Obj]:
        response = await self.core.list_namespaced_pod(
            namespace, label_selector=label_selector, _preload_content=False
        )
        items: list[Obj] = (await self._json(response) or {})["items"]
        return items

    async def create_pod_object(self, pod: Obj) -> Obj | None:
        """Create the pod and return it as created; None when the name is taken."""
        try:
            response = await self.core.create_namespaced_pod(
                pod["metadata"]["namespace"], pod, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise
        return await self._json(response, ok=(409,))

    async def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj | None:
        """A merge patch (labels, annotations); None when the pod is gone."""
        try:
            response = await self.core.patch_namespaced_pod(
                name, namespace, patch, _content_type=MERGE, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return await self._json(response, ok=(404,))

    # ------------------------------------------------------------------ pools
    async def list_pools(self, namespace: str) -> list[Obj]:
        listed: Obj = await self.custom.list_namespaced_custom_object(
            resource.GROUP, resource.VERSION, namespace, resource.POOL_PLURAL
        )
        items: list[Obj] = listed["items"]
        return items

    async def patch_pool_status(self, namespace: str, name: str, status: Obj) -> Obj | None:
        """None when the pool is gone."""
        try:
            patched: Obj = await self.custom.patch_namespaced_custom_object_status(
                resource.GROUP,
                resource.VERSION,
                namespace,
                resource.POOL_PLURAL,
                name,
                {"status": status},
                _content_type=MERGE,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return patched

    # ------------------------------------------------------------------ nodes
    async def list_nodes(self, label_selector: str | None = None) -> list[Obj]:
        response = await self.core.list_node(
            label_selector=label_selector or "", _preload_content=False
        )
        items: list[Obj] = (await self._json(response) or {})["items"]
        return items

    async def get_node(self, name: str) -> Obj | None:
        try:
            response = await self.core.read_node(name, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return await self._json(response, ok=(404,))

    # ------------------------------------------------------------------ events
    async def post_event(
        self, match: Obj, event_type: str, reason: str, message: str, kind: str = resource.KIND
    ) -> None:
        """An Event on a Match (or on another kind of ours: `kind`)."""
        meta = match["metadata"]
        now = _now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": resource.API_VERSION,
                "kind": kind,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "tradearena-operator"},
            "reportingComponent": resource.REPORTING_COMPONENT,
            "reportingInstance": self.instance[:128],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        response = await self.core.create_namespaced_event(
            meta["namespace"], body, _preload_content=False
        )
        await self._json(response)
