"""The local-process match runtime configured for tests (fast synthetic feed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis

from tradearena.contracts.serverconfig import TlsFiles
from tradearena.launcher.localruntime import LocalProcessOrchestrator, LocalRuntimeConfig
from tradearena.tokens import Signer


@asynccontextmanager
async def local_runtime(
    workdir: Path,
    redis_url: str,
    signer: Signer,
    max_retries: int = 1,
    *,
    tls: TlsFiles | None = None,
    advertise_host: str = "127.0.0.1",
) -> AsyncIterator[LocalProcessOrchestrator]:
    """`tls`: every server serves wss:// and is advertised as https://`advertise_host`."""
    key = workdir / "public.pem"
    key.write_bytes(signer.public_pem())
    config = LocalRuntimeConfig(
        redis_url=redis_url,
        public_key_file=key,
        log_dir=workdir / "logs",
        feed_source="synthetic",
        startup_timeout_s=30,
        max_retries=max_retries,
        tls=tls,
        advertise_host=advertise_host,
        extra_env={"TRADEARENA_SYNTHETIC_INTERVAL_MS": "100", "TRADEARENA_LINGER_MS": "100"},
    )
    redis = Redis.from_url(redis_url)
    orchestrator = LocalProcessOrchestrator(config, redis)
    try:
        yield orchestrator
    finally:
        await orchestrator.close()
        await redis.aclose()
