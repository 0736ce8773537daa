"""Lobby fixtures: a freshly migrated PostgreSQL database per test, the app on a real port.

The session migrates one template database once; each test gets a copy
(`CREATE DATABASE ... TEMPLATE`, tens of milliseconds) so tests never see
each other's rows. `lobby_dsn` is the copy's URL.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from psycopg import sql

from lobby.app import create_app
from lobby.migrate import apply_migrations
from lobby.settings import LobbySettings
from tradearena.contracts.orchestration import Orchestrator
from tradearena.launcher.localservices import LocalPostgres
from tradearena.testing.lobby import test_settings
from tradearena.tokens import generate_private_key_pem

TEMPLATE_DB = "lobby_template"
_counter = itertools.count(1)


def dsn_for(server: LocalPostgres, database: str) -> str:
    return urlunsplit(urlsplit(server.dsn)._replace(path=f"/{database}"))


def _admin(server: LocalPostgres) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server.dsn, autocommit=True)


@pytest.fixture(scope="session")
def lobby_template(postgres_server: LocalPostgres) -> str:
    with _admin(postgres_server) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    apply_migrations(dsn_for(postgres_server, TEMPLATE_DB))
    return TEMPLATE_DB


@pytest.fixture
def lobby_dsn(postgres_server: LocalPostgres, lobby_template: str) -> Iterator[str]:
    if not postgres_server.running:  # a test may have stopped it on purpose
        postgres_server.start()
    name = f"lobby_t{next(_counter)}"
    with _admin(postgres_server) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(lobby_template)
            )
        )
    yield dsn_for(postgres_server, name)
    if postgres_server.running:
        with _admin(postgres_server) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def empty_dsn(postgres_server: LocalPostgres) -> Iterator[str]:
    """An empty database (no migrations applied)."""
    name = f"lobby_empty{next(_counter)}"
    with _admin(postgres_server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield dsn_for(postgres_server, name)
    with _admin(postgres_server) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# ---- The lobby app on a real port (aiohttp TestServer), with cheap argon2 settings. ----


@pytest.fixture(scope="session")
def signing_key_pem() -> str:
    return generate_private_key_pem().decode()


@pytest.fixture
def lobby_settings(lobby_dsn: str, redis_url: str, signing_key_pem: str) -> LobbySettings:
    return test_settings(lobby_dsn, redis_url, signing_key_pem)


@pytest.fixture
def lobby_client_factory(
    lobby_settings: LobbySettings,
) -> Callable[
    ..., contextlib.AbstractAsyncContextManager[TestClient[web.Request, web.Application]]
]:
    """`async with lobby_client_factory(rate_limit_ip=5) as client:` (settings overrides;
    `orchestrator=` runs matches there, as `create_app` does)."""

    @contextlib.asynccontextmanager
    async def make(
        *, orchestrator: Orchestrator | None = None, **overrides: Any
    ) -> AsyncIterator[TestClient[web.Request, web.Application]]:
        settings = lobby_settings.model_copy(update=overrides)
        app = create_app(settings, orchestrator=orchestrator)
        async with TestClient(TestServer(app)) as client:
            yield client

    return make


@pytest.fixture
async def lobby_client(
    lobby_settings: LobbySettings,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(create_app(lobby_settings))) as client:
        yield client
