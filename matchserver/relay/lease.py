"""The Redis side of the lease and of the fenced publish: Lua scripts that act only
while the key still holds the caller's token."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from tradearena.contracts import keys
from tradearena.contracts.candles import Candle, CandleInterval, decode_candle, encode_candle
from tradearena.contracts.feed import FeedTick, decode_tick, encode_tick
from tradearena.redisconn import AnyRedis


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Acquired(enum.IntEnum):
    """Falsy only when another replica holds the lease."""

    HELD_BY_ANOTHER = 0
    ACQUIRED = 1  # free and now ours, or already ours
    TAKEN_OVER = 2  # offered by its stopping holder, and now ours


class Offered(enum.IntEnum):
    NO_STANDBY = -1  # nobody tried to acquire lately: release instead
    NOT_OURS = 0
    OFFERED = 1


class Published(enum.Enum):
    OK = "ok"
    DUPLICATE = "duplicate"  # ID not greater than the stream's last: already there or older
    NOT_LEADER = "not_leader"  # the fence: our token no longer holds the lease


# KEYS: lease, handover, standby. ARGV: token, ttl, standby ttl.
# 1: SET NX PX, or a renewal when the key already holds our token (we had considered
# ourselves deposed on a Redis error while the lease stayed ours). 2: taken over, the
# holder having offered it (the handover key holds the holder's token). 0: held by
# another; this standby says it is there, for the holder's next offer.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if current and redis.call('GET', KEYS[2]) == current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
  return 2
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[3])
return 0
"""

# KEYS: lease, handover, standby. ARGV: token, ttl. 1: offered; 0: not our lease;
# -1: no other standby seen lately (the caller releases instead; the mark may be our own,
# from before we were elected).
_OFFER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local standby = redis.call('GET', KEYS[3])
if not standby or standby == ARGV[1] then
  return -1
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease, handover. Our offer goes with our lease.
_RELEASE = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: lease, stream, then the candle streams. ARGV: token, strict, then per key from
# KEYS[2] on: minid, count, count x (id, n, n field/value args). Strict (live): a tick the
# stream refuses (its ID not greater than the last) ends the call before any candle is
# written. Candles are idempotent by open time: one the stream already has is skipped.
# Returns {1, ticks added, candles added per candle key}, {2, err} for a refused strict tick,
# {0, 'not leader'} when the fence holds, {-1, err} for any other error.
_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, 'not leader'}
end
local strict = ARGV[2] == '1'
local i = 3
local added = {}
for k = 2, #KEYS do
  added[k - 1] = 0
end
for k = 2, #KEYS do
  local minid = ARGV[i]
  local count = tonumber(ARGV[i + 1])
  i = i + 2
  for _ = 1, count do
    local id = ARGV[i]
    local n = tonumber(ARGV[i + 1])
    local res = redis.pcall('XADD', KEYS[k], 'MINID', '~', minid, id, unpack(ARGV, i + 2, i + 1 + n))
    i = i + 2 + n
    if type(res) == 'table' and res.err then
      if not string.find(res.err, 'equal or smaller', 1, true) then
        return {-1, res.err}
      end
      if strict and k == 2 then
        return {2, res.err}
      end
    else
      added[k - 1] = added[k - 1] + 1
    end
  end
end
return {1, unpack(added)}
"""

# Retention of the candle streams by default: 1 s candles two days, 1 m candles 30 days.
DEFAULT_CANDLE_RETENTION_MS: Mapping[CandleInterval, int] = {
    CandleInterval.S1: 2 * 86_400_000,
    CandleInterval.M1: 30 * 86_400_000,
}


def _entries(items: Sequence[tuple[str, Mapping[str, str]]], minid: int) -> list[str]:
    args = [f"{max(0, minid)}-0", str(len(items))]
    for entry_id, fields in items:
        args += [entry_id, str(2 * len(fields))]
        for k, v in fields.items():
            args += [k, v]
    return args


@dataclass
class FeedLease:
    """The Redis side of the lease and of the fenced publish (one symbol)."""

    redis: AnyRedis
    symbol: str
    token: str
    ttl_ms: int
    history_ms: int
    candle_retention_ms: Mapping[CandleInterval, int] = field(
        default_factory=lambda: dict(DEFAULT_CANDLE_RETENTION_MS)
    )
    # How long a standby's acquire attempt counts as "a standby is there" (a few
    # attempts' worth): a stopping holder offers its lease only then.
    standby_ttl_ms: int = 500

    def __post_init__(self) -> None:
        self.lease_key = keys.feed_leader(self.symbol)
        self.handover_key = keys.feed_handover(self.symbol)
        self.standby_key = keys.feed_standby(self.symbol)
        self.stream_key = keys.feed_stream(self.symbol)
        self.candle_keys = {i: keys.candles(self.symbol, i) for i in CandleInterval}
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self._offer = self.redis.register_script(_OFFER)
        self._publish = self.redis.register_script(_PUBLISH)

    async def acquire(self) -> Acquired:
        code = await self._acquire(
            keys=[self.lease_key, self.handover_key, self.standby_key],
            args=[self.token, self.ttl_ms, self.standby_ttl_ms],
        )
        return Acquired(int(code))

    async def offer(self) -> Offered:
        """A stopping holder offers the lease to the next standby that tries."""
        code = await self._offer(
            keys=[self.lease_key, self.handover_key, self.standby_key],
            args=[self.token, self.ttl_ms],
        )
        return Offered(int(code))

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[self.lease_key], args=[self.token, self.ttl_ms]))

    async def release(self) -> bool:
        return bool(
            await self._release(keys=[self.lease_key, self.handover_key], args=[self.token])
        )

    async def holder(self) -> str | None:
        value = await self.redis.get(self.lease_key)
        return None if value is None else _text(value)

    async def publish(
        self,
        tick: FeedTick,
        relay: str,
        now: int,
        closed: Sequence[tuple[CandleInterval, Candle]] = (),
    ) -> Published:
        """The tick, and the candles it closed, in one fenced script."""
        return (await self.publish_closing(tick, relay, now, closed))[0]

    async def publish_closing(
        self,
        tick: FeedTick,
        relay: str,
        now: int,
        closed: Sequence[tuple[CandleInterval, Candle]] = (),
    ) -> tuple[Published, dict[CandleInterval, int]]:
        """`publish`, and how many candles of each interval were new (not there already)."""
        code, _, added = await self._write(
            [(tick.stream_id, encode_tick(tick, relay))], closed, now, strict=True
        )
        if code == 2:
            return Published.DUPLICATE, added
        if code == 0:
            return Published.NOT_LEADER, added
        return Published.OK, added

    async def write_history(
        self,
        ticks: Sequence[FeedTick],
        relay: str,
        now: int,
        closed: Sequence[tuple[CandleInterval, Candle]],
    ) -> tuple[Published, int, dict[CandleInterval, int]]:
        """Past ticks and candles (a backfill, a rebuild) in one fenced call; those already
        there are skipped. (outcome, ticks added, candles added per interval)."""
        code, ticks_added, added = await self._write(
            [(t.stream_id, encode_tick(t, relay)) for t in ticks], closed, now, strict=False
        )
        return (Published.NOT_LEADER if code == 0 else Published.OK), ticks_added, added

    async def _write(
        self,
        ticks: Sequence[tuple[str, Mapping[str, str]]],
        closed: Sequence[tuple[CandleInterval, Candle]],
        now: int,
        *,
        strict: bool,
    ) -> tuple[int, int, dict[CandleInterval, int]]:
        args: list[str] = [self.token, "1" if strict else "0"]
        args += _entries(ticks, now - self.history_ms)
        for interval in CandleInterval:
            mine = [(c.stream_id, encode_candle(c)) for i, c in closed if i is interval]
            args += _entries(mine, now - self.candle_retention_ms[interval])
        reply = await self._publish(
            keys=[self.lease_key, self.stream_key, *self.candle_keys.values()], args=args
        )
        code = int(reply[0])
        if code == -1:
            raise ResponseError(_text(reply[1]))
        if code != 1:
            return code, 0, dict.fromkeys(CandleInterval, 0)
        added = {i: int(n) for i, n in zip(CandleInterval, reply[2:], strict=True)}
        return code, int(reply[1]), added

    async def last_tick(self) -> FeedTick | None:
        entries: Any = await self.redis.xrevrange(self.stream_key, count=1)
        if not entries:
            return None
        entry_id, raw = entries[0]
        return decode_tick(self.symbol, entry_id, raw)

    async def last_candle(self, interval: CandleInterval) -> Candle | None:
        entries: Any = await self.redis.xrevrange(self.candle_keys[interval], count=1)
        if not entries:
            return None
        entry_id, raw = entries[0]
        return decode_candle(entry_id, raw)

    async def ticks_since(self, start_ms: int) -> list[FeedTick]:
        """The stream's ticks at or after `start_ms` (at most its ~15 minutes)."""
        entries: Any = await self.redis.xrange(self.stream_key, min=f"{max(0, start_ms)}-0")
        return [decode_tick(self.symbol, i, raw) for i, raw in entries]
