"""Rate limits and login throttling: pure decisions over Redis counters.

Counters are fixed windows (`INCR` + `PEXPIRE` in one Lua call, so a key never
lives without its expiry); `Retry-After` is the window's remaining time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lobby import keys
from tradearena.redisconn import AnyRedis


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


@dataclass(frozen=True)
class FailureCount:
    failures: int  # failed logins in the current window
    ttl_ms: int  # the window's remaining time
    maximum: int  # failures at which logins are refused


def login_decision(*counts: FailureCount) -> Decision:
    """A login attempt is refused once any failure count reached its maximum; it
    waits for the latest of those windows to end."""
    waits = [c.ttl_ms for c in counts if c.failures >= c.maximum]
    if not waits:
        return Decision(True, min((c.maximum - c.failures for c in counts), default=0), 0.0)
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
    def __init__(self, redis: AnyRedis) -> None:
        self.redis = redis
        self._hit: Any = redis.register_script(_HIT)

    async def hit(self, key: str, window_s: int) -> tuple[int, int]:
        """Count one event; returns (count in window, window's remaining ms)."""
        count, ttl = await self._hit(keys=[key], args=[window_s * 1000])
        return int(count), int(ttl)

    async def check(self, bucket: str, subject: str, limit: int, window_s: int) -> Decision:
        count, ttl = await self.hit(keys.lobby_rate(bucket, subject), window_s)
        return decide(count, limit, ttl)

    async def peek(self, *keys: str) -> list[tuple[int, int]]:
        """(count, remaining ms) of each counter, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.pttl(key)
            raw = await pipe.execute()
        return [(int(raw[i] or 0), max(int(raw[i + 1]), 0)) for i in range(0, len(raw), 2)]
