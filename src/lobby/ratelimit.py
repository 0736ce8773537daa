"""Rate limits and login throttling: pure decisions over Redis counters.

Counters are fixed windows (`INCR` + `PEXPIRE` in one Lua call, so a key never
lives without its expiry); `Retry-After` is the window's remaining time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from lobby import redis_keys as keys


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after_s: float  # 0 when allowed


def decide(count: int, limit: int, ttl_ms: int) -> Decision:
    """`count` includes this request; allowed while it is within `limit`."""
    if count <= limit:
        return Decision(True, limit - count, 0.0)
    return Decision(False, 0, max(ttl_ms, 1) / 1000)


def login_decision(
    account_failures: int,
    account_ttl_ms: int,
    ip_failures: int,
    ip_ttl_ms: int,
    max_account: int,
    max_ip: int,
) -> Decision:
    """A login attempt is refused once either failure count reached its maximum; it
    waits for the later of the two windows to end."""
    waits = []
    if account_failures >= max_account:
        waits.append(account_ttl_ms)
    if ip_failures >= max_ip:
        waits.append(ip_ttl_ms)
    if not waits:
        return Decision(True, min(max_account - account_failures, max_ip - ip_failures), 0.0)
    return Decision(False, 0, max(*waits, 1) / 1000)


_HIT = """
local c = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {c, ttl}
"""


class Limiter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._hit: Any = redis.register_script(_HIT)

    async def hit(self, key: str, window_s: int) -> tuple[int, int]:
        """Count one event; returns (count in window, window's remaining ms)."""
        count, ttl = await self._hit(keys=[key], args=[window_s * 1000])
        return int(count), int(ttl)

    async def check(self, bucket: str, subject: str, limit: int, window_s: int) -> Decision:
        count, ttl = await self.hit(keys.lobby_rate(bucket, subject), window_s)
        return decide(count, limit, ttl)

    async def peek(self, key: str) -> tuple[int, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            raw, ttl = await pipe.execute()
        return int(raw or 0), max(int(ttl), 0)
