"""python-socketio's Redis manager for any Redis URL, a Redis Cluster included.

`socketio.AsyncRedisManager` builds its client with `Redis.from_url`, which knows no
cluster. For a `redis+cluster://` URL, `ClusterRedisManager` builds it through
`redisconn.connect` instead; classic PUBLISH/SUBSCRIBE is cluster-wide (a message
published on any node reaches subscribers on every node), so the manager's channel
works unchanged whichever node its subscription lands on.
"""

from __future__ import annotations

from typing import Any

import socketio
from redis.asyncio.cluster import ClusterPubSub, RedisCluster

from tradearena import redisconn


class _ClusterPubSub(ClusterPubSub):
    """Subscribes on a client that may not have read the slot map yet (the manager
    builds its client in a plain function, where nothing can be awaited)."""

    async def subscribe(self, *args: Any, **kwargs: Any) -> None:
        await self.cluster.initialize()
        await super().subscribe(*args, **kwargs)


class ClusterRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    name = "aioredis-cluster"

    def _redis_connect(self) -> None:
        client = redisconn.connect(self.redis_url, **self.redis_options)
        assert isinstance(client, RedisCluster)
        self.redis = client
        self.pubsub = _ClusterPubSub(client, ignore_subscribe_messages=True)
        self.connected = True


def redis_manager(
    url: str, channel: str, *, write_only: bool = False
) -> socketio.AsyncRedisManager:
    """The manager for `url`: python-socketio's own for one Redis, ours for a cluster."""
    if redisconn.is_cluster_url(url):
        return ClusterRedisManager(url, channel=channel, write_only=write_only)
    return socketio.AsyncRedisManager(url, channel=channel, write_only=write_only)
