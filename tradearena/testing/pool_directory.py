"""A `ServerDirectory` for tests of allocation: pool server pods that a test creates
(labelled `POOL_LABEL=<pool>`, annotated with the `mode/format`s they serve) and what
their servers report in Redis (state hash, hosted matches), read as the pool
controller would. Run the operator with it: `python -m tradearena.testing.pool_directory`
(the settings of `tradearena operator`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from redis.asyncio import Redis

from match_operator.kube import KubeApi
from match_operator.main import serve
from match_operator.servers import ServerView
from match_operator.settings import OperatorSettings
from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.pool import ServerState
from tradearena.process import run_process

POOL_LABEL = "tradearena.io/test-pool"
SERVES_ANNOTATION = "tradearena.io/test-serves"  # "duel/blitz,duel/rapid"
REFRESH_S = 0.2


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


class PodPoolDirectory:
    """Pool servers from their pods and their Redis reports, refreshed every REFRESH_S;
    allocations noted in between count at once."""

    def __init__(self, kube: KubeApi, redis: Redis, namespaces: tuple[str, ...]) -> None:
        self.kube = kube
        self.redis = redis
        self.namespaces = namespaces
        self._servers: dict[tuple[str, str], tuple[ServerView, frozenset[str]]] = {}
        self._hosted: dict[tuple[str, str], set[str]] = {}
        self._noted: dict[tuple[str, str], set[str]] = {}

    async def refresh(self) -> None:
        servers: dict[tuple[str, str], tuple[ServerView, frozenset[str]]] = {}
        hosted: dict[tuple[str, str], set[str]] = {}
        for namespace in self.namespaces:
            for pod in await self.kube.list_pods(namespace, POOL_LABEL):
                meta, spec = pod["metadata"], pod.get("spec") or {}
                if meta.get("deletionTimestamp"):
                    continue
                name = meta["name"]
                ports = [
                    p["hostPort"]
                    for c in spec.get("containers", [])
                    for p in c.get("ports") or []
                    if p.get("hostPort")
                ]
                conditions = {
                    c.get("type"): c.get("status")
                    for c in (pod.get("status") or {}).get("conditions") or []
                }
                capacity, ready, draining = await self.redis.hmget(
                    keys.server_state(name),
                    [ServerState.CAPACITY, ServerState.READY, ServerState.DRAINING],
                )
                matches = {
                    _text(k) or "" for k in await self.redis.hkeys(keys.server_matches(name))
                }
                key = (namespace, name)
                hosted[key] = matches
                serves = (meta.get("annotations") or {}).get(SERVES_ANNOTATION, "")
                view = ServerView(
                    name=name,
                    namespace=namespace,
                    pool=meta["labels"][POOL_LABEL],
                    uid=meta.get("uid", ""),
                    node=spec.get("nodeName"),
                    host_port=ports[0] if ports else None,
                    scheme="http",
                    pod_ready=conditions.get("Ready") == "True" and _text(ready) == "1",
                    capacity=int(_text(capacity) or 0),
                    count=len(matches),
                    draining=_text(draining) == "1",
                )
                servers[key] = (view, frozenset(s for s in serves.split(",") if s))
        self._servers, self._hosted = servers, hosted
        for key, noted in self._noted.items():
            noted.difference_update(hosted.get(key, set()))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            with contextlib.suppress(Exception):
                await self.refresh()

    def _view(self, key: tuple[str, str]) -> ServerView | None:
        got = self._servers.get(key)
        if got is None:
            return None
        view = got[0]
        count = len(self._hosted.get(key, set()) | self._noted.get(key, set()))
        return ServerView(
            name=view.name,
            namespace=view.namespace,
            pool=view.pool,
            uid=view.uid,
            node=view.node,
            host_port=view.host_port,
            scheme=view.scheme,
            pod_ready=view.pod_ready,
            capacity=view.capacity,
            count=count,
            draining=view.draining,
        )

    # ------------------------------------------------------------------ ServerDirectory
    def candidates(self, namespace: str, spec: MatchSpec) -> list[ServerView]:
        wanted = f"{spec.mode}/{spec.format}"
        return [
            view
            for key, (_, serves) in self._servers.items()
            if key[0] == namespace and wanted in serves and (view := self._view(key))
        ]

    def server(self, namespace: str, name: str) -> ServerView | None:
        return self._view((namespace, name))

    def note_allocated(self, namespace: str, name: str, match_id: str) -> None:
        self._noted.setdefault((namespace, name), set()).add(match_id)

    def note_released(self, namespace: str, name: str, match_id: str) -> None:
        self._noted.get((namespace, name), set()).discard(match_id)


async def serve_with_pools(settings: OperatorSettings, stop: asyncio.Event) -> int:
    kube = await KubeApi.connect()
    redis = Redis.from_url(settings.redis_url or "redis://127.0.0.1:6379/0")
    directory = PodPoolDirectory(kube, redis, settings.namespaces)
    await directory.refresh()
    refresher = asyncio.create_task(directory.run(), name="pool-directory")
    try:
        return await serve(settings, stop, directory)
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await redis.aclose()
        await kube.close()


def main() -> int:
    return run_process("operator", OperatorSettings, serve_with_pools)


if __name__ == "__main__":
    sys.exit(main())
