"""`tradearena feed-relay`: one `SymbolRelay` per symbol, probes on `relay_port`."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import Sequence
from typing import Any

from matchserver.feed.sources import Clock, check_replay_files, wall_ms
from matchserver.relay.leadership import Leadership
from matchserver.relay.lease import FeedLease
from matchserver.relay.metrics import RelayMetrics
from matchserver.relay.publisher import SymbolRelay, history_factory, source_factory
from matchserver.relay.settings import RelaySettings
from tradearena import redisconn
from tradearena.probes import Body, Readiness, probe_app, serving

log = logging.getLogger(__name__)

EXIT_BAD_REPLAY_FILE = 2  # as a bad setting (tradearena.process)


def readiness(
    relays: Sequence[SymbolRelay], replica: str, within_ms: int, clock: Clock = wall_ms
) -> Readiness:
    """Ready when Redis answered within `within_ms` for every symbol and no publisher is
    failing (five failures within a minute, no tick since); reports the roles."""

    async def check() -> tuple[bool, Body]:
        now = clock()
        ready = all(
            r.redis_ok_at is not None and now - r.redis_ok_at <= within_ms and not r.failing
            for r in relays
        )
        body: dict[str, Any] = {
            "ready": ready,
            "replica": replica,
            "symbols": {r.symbol: r.status() for r in relays},
        }
        return ready, body

    return check


async def serve(settings: RelaySettings, stop: asyncio.Event) -> int:
    """Until `stop` (SIGTERM/SIGINT): elect, publish, serve probes; release the leases.

    Replay files are read to their end first: a bad one is one line on stderr naming the
    file, the line and the reason, and exit 2, like a bad setting."""
    if settings.relay_source == "replay":
        try:
            await asyncio.to_thread(
                check_replay_files, settings.relay_replay_files, settings.relay_replay_speed
            )
        except ValueError as exc:
            print(f"feed-relay: replay file {exc}", file=sys.stderr, flush=True)
            return EXIT_BAD_REPLAY_FILE
    replica = settings.replica_id
    token = f"{replica}:{secrets.token_hex(8)}"
    redis = redisconn.connect(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    metrics = RelayMetrics()
    make_source = source_factory(settings)
    history = history_factory(settings)
    relays = [
        SymbolRelay(
            symbol,
            FeedLease(
                redis,
                symbol,
                token,
                settings.relay_lease_ttl_ms,
                settings.relay_history_ms,
                settings.candle_retention_ms,
                standby_ttl_ms=3 * settings.relay_lease_acquire_ms,
            ),
            Leadership(
                settings.relay_lease_ttl_ms,
                settings.relay_lease_renew_ms,
                settings.relay_lease_acquire_ms,
            ),
            make_source,
            metrics,
            replica,
            restart_initial_ms=settings.relay_publisher_backoff_initial_ms,
            restart_max_ms=settings.relay_publisher_backoff_max_ms,
            history=history,
            backfill_1s_ms=settings.relay_backfill_1s_ms,
        )
        for symbol in settings.relay_symbols
    ]
    app = probe_app(
        metrics.registry,
        readiness(relays, replica, settings.relay_lease_ttl_ms),
        health=lambda: {"replica": replica},
    )
    try:
        async with serving(app, settings.relay_host, settings.relay_port):
            log.info(
                "feed relay started",
                extra={
                    "relay": replica,
                    "symbols": list(settings.relay_symbols),
                    "source": settings.relay_source,
                    "port": settings.relay_port,
                },
            )
            await asyncio.gather(*(r.run(stop) for r in relays))
    finally:
        await redis.aclose()
    log.info("feed relay stopped", extra={"relay": replica})
    return 0
