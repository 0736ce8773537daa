"""Real Redis and PostgreSQL servers for the tests (pytest plugin).

One server of each per test session, started from the Debian binaries on a
free loopback port. `redis_url` gives each test an emptied database.
A missing binary fails the tests loudly: `make test` installs them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tradearena.launcher.localservices import LocalPostgres, LocalRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: LocalRedis) -> str:
    if not redis_server.running:  # a test may have stopped it on purpose
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[LocalPostgres]:
    # Not under pytest's private tmp dir: PostgreSQL runs as its own user when we are root.
    base = Path(tempfile.mkdtemp(prefix="tradearena-pg-"))
    os.chmod(base, 0o755)  # the postgres user must reach its data dir
    server = LocalPostgres(base)
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
