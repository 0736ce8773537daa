"""Agones SDK over its REST API (the sidecar on localhost:AGONES_SDK_HTTP_PORT).

Ready once the match accepts players, Health on an interval, Shutdown when
the match is over; failures are logged and never stop the match.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

log = logging.getLogger(__name__)


class AgonesSDK:
    def __init__(self, port: int, session: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = session

    async def _post(self, path: str) -> bool:
        try:
            async with self.session.post(
                f"{self.base}{path}", json={}, timeout=aiohttp.ClientTimeout(total=2)
            ) as resp:
                if resp.status != 200:
                    log.warning("agones sdk refused", extra={"path": path, "status": resp.status})
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("agones sdk unreachable", extra={"path": path, "error": str(exc)})
            return False

    async def ready(self) -> bool:
        return await self._post("/ready")

    async def health(self) -> bool:
        return await self._post("/health")

    async def shutdown(self) -> bool:
        return await self._post("/shutdown")

    async def health_loop(self, interval_s: float) -> None:
        while True:
            await self.health()
            await asyncio.sleep(interval_s)
