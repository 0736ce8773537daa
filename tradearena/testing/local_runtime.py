"""The local match runtimes (process per match, and the pool) configured for tests
(fast synthetic feed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from tradearena.contracts.orchestration import MatchStatus, Orchestrator
from tradearena.contracts.phases import MatchPhase
from tradearena.contracts.serverconfig import TlsFiles
from tradearena.launcher.localpool import LocalPoolConfig, LocalPoolOrchestrator
from tradearena.launcher.localruntime import LocalProcessOrchestrator, LocalRuntimeConfig
from tradearena.orchestration.buffer import BufferPolicy
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
    config = runtime_config(
        workdir,
        redis_url,
        signer,
        max_retries=max_retries,
        tls=tls,
        advertise_host=advertise_host,
    )
    redis = Redis.from_url(redis_url)
    orchestrator = LocalProcessOrchestrator(config, redis)
    try:
        yield orchestrator
    finally:
        await orchestrator.close()
        await redis.aclose()


def runtime_config(
    workdir: Path, redis_url: str, signer: Signer, **overrides: Any
) -> LocalRuntimeConfig:
    """The local runtime's settings for tests: a fast synthetic feed, short lingering."""
    key = workdir / "public.pem"
    key.write_bytes(signer.public_pem())
    settings: dict[str, Any] = {
        "redis_url": redis_url,
        "public_key_file": key,
        "log_dir": workdir / "logs",
        "feed_source": "synthetic",
        "startup_timeout_s": 30,
        "extra_env": {"TRADEARENA_SYNTHETIC_INTERVAL_MS": "100", "TRADEARENA_LINGER_MS": "100"},
        **overrides,
    }
    return LocalRuntimeConfig(**settings)


@asynccontextmanager
async def local_pool(
    workdir: Path,
    redis_url: str,
    signer: Signer,
    policy: BufferPolicy,
    **overrides: Any,
) -> AsyncIterator[LocalPoolOrchestrator]:
    """A local pool of warm servers (opened: its first servers are ready), closed after."""
    config = LocalPoolConfig(
        runtime_config(workdir, redis_url, signer, **overrides),
        policy,
        refresh_s=0.2,
        restart_initial_s=0.1,
    )
    redis = Redis.from_url(redis_url)
    orchestrator = LocalPoolOrchestrator(config, redis)
    try:
        await orchestrator.open()
        yield orchestrator
    finally:
        await orchestrator.close()
        await redis.aclose()


async def phases_until(
    orchestrator: Orchestrator, match_id: str, last: MatchPhase, within: float = 60
) -> list[MatchStatus]:
    """Every status the orchestrator reports for the match, up to `last` (which must come)."""
    seen: list[MatchStatus] = []
    async with asyncio.timeout(within):
        async for status in orchestrator.watch(match_id):
            seen.append(status)
            if status.phase is last:
                break
    assert seen and seen[-1].phase is last, seen
    return seen
