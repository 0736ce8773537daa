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

from typing import Any, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
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


def connect(url: str, **kwargs: Any) -> AnyRedis:
    """An asyncio client for `url`; `kwargs` are redis-py client options."""
    if is_cluster_url(url):
        kwargs.setdefault("retry", failover_retry())
        return redis.asyncio.cluster.RedisCluster.from_url(plain_url(url), **kwargs)
    return redis.asyncio.Redis.from_url(plain_url(url), **kwargs)


def connect_sync(url: str, **kwargs: Any) -> AnySyncRedis:
    """A blocking client for `url` (command-line tools, test support)."""
    if is_cluster_url(url):
        kwargs.setdefault("retry", failover_retry())
        return redis.cluster.RedisCluster.from_url(plain_url(url), **kwargs)
    return redis.Redis.from_url(plain_url(url), **kwargs)
