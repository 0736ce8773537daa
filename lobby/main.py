"""`tradearena lobby`: run the lobby with settings from the environment."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from lobby.accounts.usernames import canonical_username
from lobby.app import SHUTDOWN_TIMEOUT_S, create_app
from lobby.settings import LobbySettings
from tradearena.process import run_process


def promote_admin(username: str, settings: LobbySettings | None = None) -> bool:
    """Give an existing account the admin role (the first admin has no admin to ask)."""
    import psycopg

    canonical = canonical_username(username)
    if canonical is None:
        print(f"lobby: {username!r} is not a valid username", file=sys.stderr)
        return False
    settings = settings or LobbySettings()
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(
            "UPDATE users SET role = 'admin', updated_at = now()"
            " WHERE username_canonical = %s RETURNING id",
            (canonical,),
        ).fetchone()
    if row is None:
        print(f"lobby: no user named {username!r}", file=sys.stderr)
        return False
    print(f"lobby: {username} ({row[0]}) is now an admin")
    return True


def run() -> int:
    """`tradearena lobby`: settings, logging, loop and signals from the process shell."""
    return run_process("lobby", LobbySettings, serve)


async def serve(settings: LobbySettings, stop: asyncio.Event) -> int:
    """Serve until `stop` (SIGTERM/SIGINT), then stop accepting, finish requests (at most
    10 s) and run the app's cleanups."""
    app = await _app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


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
