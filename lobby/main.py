"""`tradearena lobby`: run the lobby with settings from the environment."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from lobby.app import create_app
from lobby.settings import LobbySettings
from tradearena.telemetry import configure_logging


def promote_admin(username: str, settings: LobbySettings | None = None) -> bool:
    """Give an existing account the admin role (the first admin has no admin to ask)."""
    import psycopg

    settings = settings or LobbySettings()
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "UPDATE users SET role = 'admin', updated_at = now()"
            " WHERE lower(username) = lower(%s) RETURNING id",
            (username,),
        ).fetchone()
    if row is None:
        print(f"lobby: no user named {username!r}", file=sys.stderr)
        return False
    print(f"lobby: {username} ({row[0]}) is now an admin")
    return True


def run(settings: LobbySettings | None = None) -> None:
    settings = settings or LobbySettings()
    configure_logging("lobby", settings.log_level, settings.log_format)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # aiohttp handles SIGTERM/SIGINT: stops accepting, finishes requests, runs cleanups.
    web.run_app(
        _app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        shutdown_timeout=10,
        print=None,
    )


async def _app(settings: LobbySettings) -> web.Application:
    """The app, given the Kubernetes orchestrator (connected first) when matches run there."""
    if settings.orchestrator != "kubernetes":
        return create_app(settings)
    from tradearena.orchestration.kubernetes import KubernetesOrchestrator

    kubeconfig = str(settings.kubeconfig) if settings.kubeconfig else None
    orchestrator = await KubernetesOrchestrator.connect(settings.kubernetes_namespace, kubeconfig)
    app = create_app(settings, orchestrator=orchestrator)

    async def close(app: web.Application) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await orchestrator.close()

    app.cleanup_ctx.insert(0, close)  # closed last, after the matchmaker has stopped
    return app
