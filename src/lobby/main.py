"""`tradearena lobby`: run the lobby with settings from the environment."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from tradearena.telemetry import configure_logging

from .app import create_app
from .settings import LobbySettings


def run(settings: LobbySettings | None = None) -> None:
    settings = settings or LobbySettings()
    configure_logging("lobby", settings.log_level, settings.log_format)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    # aiohttp handles SIGTERM/SIGINT: stops accepting, finishes requests, runs cleanups.
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        shutdown_timeout=10,
        print=None,
    )
