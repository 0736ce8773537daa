"""python-socketio's Redis manager for any Redis URL, a Redis Cluster included.

`socketio.AsyncRedisManager` builds its client with `Redis.from_url`, which knows no
cluster. For a `redis+cluster://` URL, `ClusterRedisManager` builds it through
`redisconn.connect` instead; classic PUBLISH/SUBSCRIBE is cluster-wide (a message
published on any node reaches subscribers on every node), so the manager's channel
works unchanged whichever node its subscription lands on.
"""

from __future__ import annotations

import socketio

from tradearena import redisconn


class ClusterRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    name = "aioredis-cluster"

    def _redis_connect(self) -> None:
        self.redis = redisconn.connect(self.redis_url, **self.redis_options)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True


def redis_manager(
    url: str, channel: str, *, write_only: bool = False
) -> socketio.AsyncRedisManager:
    """The manager for `url`: python-socketio's own for one Redis, ours for a cluster."""
    if redisconn.is_cluster_url(url):
        return ClusterRedisManager(url, channel=channel, write_only=write_only)
    return socketio.AsyncRedisManager(url, channel=channel, write_only=write_only)
