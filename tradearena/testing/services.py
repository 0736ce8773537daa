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
from tradearena.testing.redis_cluster import LocalRedisCluster
from tradearena.testing.redis_replica import ReplicatedRedis


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
def redis_replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedRedis]:
    """A plain Redis primary with one replica (tests may freeze the replica)."""
    pair = ReplicatedRedis(tmp_path_factory.mktemp("redis-replicated"))
    pair.start()
    try:
        yield pair
    finally:
        pair.stop()


@pytest.fixture
def replicated_url(redis_replicated: ReplicatedRedis) -> str:
    """The primary's URL, emptied, its replica thawed and online."""
    redis_replicated.replica.thaw()
    redis_replicated.wait_synced()
    client = redis.Redis.from_url(redis_replicated.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_replicated.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """Three primaries with a replica each; tests that kill a node leave it restarted."""
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster: LocalRedisCluster) -> str:
    """The cluster's `redis+cluster://` URL, every node running and every primary empty."""
    for node in redis_cluster.nodes:
        if not node.running:  # a test killed it: bring it back as a managed service would
            redis_cluster.restart(node)
    redis_cluster.wait_healthy()
    redis_cluster.flush()
    return redis_cluster.url


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
