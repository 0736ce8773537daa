"""The one place a Redis client is built: the URL says whether Redis is a cluster.

`redis://` and `rediss://` name one Redis (or a replication group's primary endpoint);
`redis+cluster://` and `rediss+cluster://` name a Redis Cluster through any of its nodes
(ElastiCache's configuration endpoint). The topology travels with the URL, so every
process that is handed a URL (the operator passes it on to match-server pods) connects
the same way without a second setting to keep in step.

A cluster client rides out a failover: connection errors and `CLUSTERDOWN` are retried
with backoff for about `FAILOVER_BUDGET_S`, re-reading the slot map between tries, so a
replica's promotion looks like a slow command rather than an error.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import redis.exceptions
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from tradearena.redisurl import (
    CLUSTER_SCHEMES,
    PLAIN_SCHEMES,
    RedisUrlError,
    is_cluster_url,
    plain_url,
    validate_url,
)

__all__ = [
    "CLUSTER_SCHEMES",
    "PLAIN_SCHEMES",
    "AnyRedis",
    "AnySyncRedis",
    "RedisUrlError",
    "connect",
    "connect_sync",
    "failover_retry",
    "is_cluster",
    "is_cluster_url",
    "plain_url",
    "torn_connection",
    "validate_url",
]

# Long enough for a replica to be promoted (node timeout plus election, a few seconds),
# short enough that a cluster which lost a whole shard surfaces as an error.
FAILOVER_BUDGET_S = 10.0
_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 1.0
_RETRIES = 14  # 0.05, 0.1, ... capped at 1 s: about 10 s in all

AnyRedis: TypeAlias = "redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster"
AnySyncRedis: TypeAlias = "redis.Redis | redis.cluster.RedisCluster"


def is_cluster(client: object) -> bool:
    return isinstance(client, redis.asyncio.cluster.RedisCluster | redis.cluster.RedisCluster)


def failover_retry() -> Retry:
    return Retry(ExponentialWithJitterBackoff(base=_BACKOFF_BASE_S, cap=_BACKOFF_CAP_S), _RETRIES)


# redis-py's cluster clients retry a command that failed on a lost node at once, re-reading
# the slot map each time, without waiting between tries: all of them are spent before
# the replica is promoted. These clients wait between rounds (the same backoff) until
# the failover budget is spent.
_FAILOVER_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.TryAgainError,
)


# What a redis-py connection calls on its writer to send a command.
_SEND_METHODS = frozenset({"write", "writelines"})


def torn_connection(exc: BaseException) -> bool:
    """A command met a connection another task was tearing down.

    After a connection error, redis-py's asyncio cluster client (8.x) disconnects a
    node's idle connections in the background; a command that picks one of them up
    meanwhile finds its writer gone (`None`) and fails with an AttributeError before
    anything reached the server, so it is safe to send again on a fresh connection.
    """
    return (
        isinstance(exc, AttributeError)
        and getattr(exc, "obj", False) is None
        and getattr(exc, "name", None) in _SEND_METHODS
    )


class FailoverCluster(redis.asyncio.cluster.RedisCluster):
    """An asyncio cluster client whose commands ride out a failover."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        backoff = ExponentialWithJitterBackoff(base=_BACKOFF_BASE_S, cap=_BACKOFF_CAP_S)
        deadline = time.monotonic() + FAILOVER_BUDGET_S
        failures = 0
        while True:
            try:
                return await super().execute_command(*args, **kwargs)
            except (*_FAILOVER_ERRORS, AttributeError) as exc:
                if isinstance(exc, AttributeError) and not torn_connection(exc):
                    raise
                failures += 1
                pause = backoff.compute(failures)
                if time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)


class FailoverSyncCluster(redis.cluster.RedisCluster):
    """A blocking cluster client whose commands ride out a failover."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        backoff = ExponentialWithJitterBackoff(base=_BACKOFF_BASE_S, cap=_BACKOFF_CAP_S)
        deadline = time.monotonic() + FAILOVER_BUDGET_S
        failures = 0
        while True:
            try:
                return super().execute_command(*args, **kwargs)  # type: ignore[no-untyped-call]
            except _FAILOVER_ERRORS:
                failures += 1
                pause = backoff.compute(failures)
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)


def connect(url: str, **kwargs: Any) -> AnyRedis:
    """An asyncio client for `url`; `kwargs` are redis-py client options."""
    if is_cluster_url(url):
        kwargs.setdefault("retry", failover_retry())
        return FailoverCluster.from_url(plain_url(url), **kwargs)
    return redis.asyncio.Redis.from_url(plain_url(url), **kwargs)


def connect_sync(url: str, **kwargs: Any) -> AnySyncRedis:
    """A blocking client for `url` (command-line tools, test support)."""
    if is_cluster_url(url):
        kwargs.setdefault("retry", failover_retry())
        return FailoverSyncCluster.from_url(plain_url(url), **kwargs)
    return redis.Redis.from_url(plain_url(url), **kwargs)
