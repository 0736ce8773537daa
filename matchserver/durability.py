"""Durable writes: a write and a Redis WAIT on one connection, retried across a failover.

Redis replicates asynchronously, so a write acknowledged by a primary that dies before
passing it on is gone. `WAIT n timeout` blocks until `n` replicas acknowledged every
write *of the connection that issues it*; so the write and its WAIT go out together, as
one non-transactional pipeline on one connection: on a plain Redis a connection of the
client's pool, on a Redis Cluster a small client of the slot's current primary (taken
from the cluster client's slot map, which is re-read after a redirection or a connection
error).

The write is a Lua script that is idempotent *and always writes*: a try whose reply was
lost, or whose WAIT fell short, runs again whole (script then WAIT) and changes nothing
the second time, yet still writes (the same value again), so its WAIT covers the first
try too (that precedes it in the primary's replication stream). Tries repeat in short
slices until `timeout_ms` is spent, across a failover (the new primary's replica must
have caught up); then `NotDurableError`.

`policy.replicas == 0`: the script runs once, no WAIT at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tradearena.redisconn import AnyRedis, is_cluster

log = logging.getLogger(__name__)

REDIS_NOT_DURABLE = "redis_not_durable"  # fault: a commit not on enough replicas in time
REDIS_LOG_DIVERGED = "redis_log_diverged"  # fault: the log in Redis is not the one we wrote

# Errors of a primary going away or changing: re-read the topology and try again.
_TRANSIENT: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    MovedError,
    TryAgainError,
    ClusterDownError,
    ReadOnlyError,
    BusyLoadingError,
    MasterDownError,
)


@dataclass(frozen=True)
class WaitPolicy:
    replicas: int = 0
    timeout_ms: int = 10_000
    slice_ms: int = 500  # one WAIT's own timeout: short, so a failover is noticed soon
    retry_pause_s: float = 0.1  # after a connection error, before trying again

    @property
    def enabled(self) -> bool:
        return self.replicas > 0

    def slice_for(self, remaining_s: float) -> int:
        """The next WAIT's timeout (ms): a slice, never past the deadline, never 0
        (WAIT's 0 means forever)."""
        return max(1, min(self.slice_ms, int(remaining_s * 1000)))


class NotDurableError(Exception):
    """A write not acknowledged by enough replicas within the policy's timeout."""

    def __init__(self, wanted: int, seen: int, waited_s: float, landed: bool, error: str) -> None:
        self.wanted = wanted
        self.seen = seen  # replicas the last WAIT counted
        self.waited_s = waited_s
        self.landed = landed  # the write itself succeeded at least once (on some primary)
        self.error = error  # the last connection error, if any
        super().__init__(
            f"{seen} of {wanted} replicas acknowledged the write after {waited_s:.1f} s"
            + (f" (last error: {error})" if error else "")
        )


class LuaScript:
    """A script run by EVALSHA, loaded where it is missing (per node on a cluster)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


class ReplicaWaiter:
    """Runs idempotent scripts and, when the policy asks, WAITs for replicas on the
    same connection. `observe(seconds)` gets every waited write's time; `timed_out()`
    each write given up."""

    def __init__(
        self,
        client: AnyRedis,
        policy: WaitPolicy,
        *,
        observe: Callable[[float], None] | None = None,
        timed_out: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.policy = policy
        self._observe = observe
        self._timed_out = timed_out
        self._nodes: dict[str, redis.asyncio.Redis] = {}

    async def run(
        self,
        script: LuaScript,
        keys: Sequence[str],
        args: Sequence[str | int | bytes],
        *,
        wait: bool = True,
    ) -> Any:
        """The script's reply, once the write is on `policy.replicas` replicas (`wait`
        False, or a policy of 0: at once). Raises `NotDurableError` after the timeout."""
        if not (wait and self.policy.enabled):
            return await self._eval_once(script, keys, args)
        policy = self.policy
        started = time.monotonic()
        deadline = started + policy.timeout_ms / 1000
        seen, landed, error = 0, False, ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited = time.monotonic() - started
                if self._timed_out is not None:
                    self._timed_out()
                raise NotDurableError(policy.replicas, seen, waited, landed, error)
            try:
                client = await self._client_for(keys[0])
                async with client.pipeline(transaction=False) as pipe:
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                    pipe.execute_command("WAIT", policy.replicas, policy.slice_for(remaining))
                    reply, acked = await pipe.execute(raise_on_error=False)
                if isinstance(reply, NoScriptError):
                    await client.script_load(script.source)
                    continue
                if isinstance(reply, Exception):
                    raise reply
                if isinstance(acked, Exception):
                    raise acked
                landed = True
                seen = int(acked)
                if seen >= policy.replicas:
                    if self._observe is not None:
                        self._observe(time.monotonic() - started)
                    return reply
            except _TRANSIENT as exc:
                error = repr(exc)
                await self._forget_topology()
                await asyncio.sleep(
                    min(policy.retry_pause_s, max(0.0, deadline - time.monotonic()))
                )

    async def _eval_once(
        self, script: LuaScript, keys: Sequence[str], args: Sequence[str | int | bytes]
    ) -> Any:
        try:
            return await self.client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.client.eval(script.source, len(keys), *keys, *args)

    async def _client_for(self, key: str) -> redis.asyncio.Redis:
        """The connection source for `key`'s writes: the client itself, or on a cluster
        a client of the slot's primary (as the cluster client's slot map says now)."""
        client = self.client
        if not isinstance(client, RedisCluster):
            return client
        await client.initialize()
        node = client.get_node_from_key(key)
        if node is None:
            raise ClusterDownError(f"no primary for {key!r}")
        found = self._nodes.get(node.name)
        if found is None:
            found = self._nodes[node.name] = _node_client(node)
        return found

    async def _forget_topology(self) -> None:
        """After an error: on a cluster drop the per-node clients and re-read the slot
        map; on a plain Redis drop the idle connections (a failover behind a primary
        endpoint moves its name: new connections find the new primary)."""
        if not is_cluster(self.client):
            plain = self.client
            assert isinstance(plain, redis.asyncio.Redis)
            with contextlib.suppress(RedisError):
                await plain.connection_pool.disconnect(inuse_connections=False)
            return
        nodes, self._nodes = self._nodes, {}
        for node in nodes.values():
            await _close_quietly(node)
        client = self.client
        assert isinstance(client, RedisCluster)
        try:
            await client.nodes_manager.initialize()
        except RedisError as exc:  # no node answers yet: the next try asks again
            log.debug("slot map not refreshed", extra={"error": repr(exc)})

    async def aclose(self) -> None:
        nodes, self._nodes = self._nodes, {}
        for node in nodes.values():
            await _close_quietly(node)


def _node_client(node: ClusterNode) -> redis.asyncio.Redis:
    """A plain client of one cluster node, with the cluster's connection options (TLS,
    credentials, timeouts)."""
    kwargs = dict(node.connection_kwargs)
    kwargs.pop("retry", None)
    pool = redis.asyncio.ConnectionPool(
        connection_class=node.connection_class, max_connections=64, **kwargs
    )
    return redis.asyncio.Redis(connection_pool=pool)


async def _close_quietly(client: redis.asyncio.Redis) -> None:
    with contextlib.suppress(RedisError):
        await client.aclose()


# ------------------------------------------------------------------ readiness


def online_replicas(info: Mapping[str, Any]) -> int:
    """Replicas of a primary that are online, from its parsed INFO replication
    (`slave<N>` entries with `state=online`; a replica still syncing does not count)."""
    count = 0
    for name, value in info.items():
        replica = name.startswith("slave") and name[5:].isdigit()
        if replica and isinstance(value, Mapping) and value.get("state") == "online":
            count += 1
    return count


def fewest_replicas(infos: Sequence[Mapping[str, Any]]) -> int:
    """The fewest online replicas any primary has (0 if none answered)."""
    return min((online_replicas(i) for i in infos), default=0)


class ReplicaCheck:
    """/readyz: does every primary have the replicas commits wait for? Cached for
    `ttl_s` (a probe every few seconds costs one INFO per primary at most)."""

    def __init__(
        self,
        client: AnyRedis,
        wanted: int,
        *,
        ttl_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.wanted = wanted
        self.ttl_s = ttl_s
        self.clock = clock
        self.replicas: int | None = None  # the fewest seen at the last check
        self._checked_at: float | None = None

    async def ok(self) -> bool:
        if self.wanted <= 0:
            return True
        now = self.clock()
        if self._checked_at is None or now - self._checked_at >= self.ttl_s:
            self._checked_at = now
            self.replicas = await self._count()
        return self.replicas is not None and self.replicas >= self.wanted

    async def _count(self) -> int | None:
        try:
            client = self.client
            if isinstance(client, RedisCluster):
                replies = await client.info("replication", target_nodes=RedisCluster.PRIMARIES)
                return fewest_replicas(list(replies.values()))
            return online_replicas(await client.info("replication"))
        except RedisError as exc:
            log.warning("replica check failed", extra={"error": repr(exc)})
            return None
