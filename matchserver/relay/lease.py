"""The Redis side of the lease and of the fenced publish: Lua scripts that act only
while the key still holds the caller's token."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from tradearena.contracts import keys
from tradearena.contracts.feed import FeedTick, decode_tick, encode_tick
from tradearena.redisconn import AnyRedis


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Published(enum.Enum):
    OK = "ok"
    DUPLICATE = "duplicate"  # ID not greater than the stream's last: already there or older
    NOT_LEADER = "not_leader"  # the fence: our token no longer holds the lease


# SET NX PX, or a renewal when the key already holds our token (we had
# considered ourselves deposed on a Redis error while the lease stayed ours).
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: lease, stream. ARGV: token, id, minid, field, value, ...
_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, 'not leader'}
end
local res = redis.pcall('XADD', KEYS[2], 'MINID', '~', ARGV[3], ARGV[2], unpack(ARGV, 4))
if type(res) == 'table' and res.err then
  return {-1, res.err}
end
return {1, res}
"""


@dataclass
class FeedLease:
    """The Redis side of the lease and of the fenced publish (one symbol)."""

    redis: AnyRedis
    symbol: str
    token: str
    ttl_ms: int
    history_ms: int

    def __post_init__(self) -> None:
        self.lease_key = keys.feed_leader(self.symbol)
        self.stream_key = keys.feed_stream(self.symbol)
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self._publish = self.redis.register_script(_PUBLISH)

    async def acquire(self) -> bool:
        return bool(await self._acquire(keys=[self.lease_key], args=[self.token, self.ttl_ms]))

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[self.lease_key], args=[self.token, self.ttl_ms]))

    async def release(self) -> bool:
        return bool(await self._release(keys=[self.lease_key], args=[self.token]))

    async def holder(self) -> str | None:
        value = await self.redis.get(self.lease_key)
        return None if value is None else _text(value)

    async def publish(self, tick: FeedTick, relay: str, now: int) -> Published:
        minid = f"{max(0, now - self.history_ms)}-0"
        args: list[str] = [self.token, tick.stream_id, minid]
        for k, v in encode_tick(tick, relay).items():
            args += [k, v]
        code, detail = await self._publish(keys=[self.lease_key, self.stream_key], args=args)
        if code == 1:
            return Published.OK
        if code == 0:
            return Published.NOT_LEADER
        message = _text(detail)
        if "equal or smaller" in message:
            return Published.DUPLICATE
        raise ResponseError(message)

    async def last_tick(self) -> FeedTick | None:
        entries: Any = await self.redis.xrevrange(self.stream_key, count=1)
        if not entries:
            return None
        entry_id, raw = entries[0]
        return decode_tick(self.symbol, entry_id, raw)
