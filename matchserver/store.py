"""The match's durable state in Redis: header, append-only log, status, result.

Every log entry is written here before the client that caused it is answered;
a restarted server rebuilds the match by replaying this log.
"""

from __future__ import annotations

import json
from typing import Any

from matchserver.durability import LuaScript, ReplicaWaiter, WaitPolicy
from matchserver.engine.log import LogEntry, MatchRecord, dumps
from tradearena.contracts import keys
from tradearena.contracts.phases import ServerPhase
from tradearena.contracts.pool import MatchPresence
from tradearena.contracts.spectate import STATUS_SPECTATORS
from tradearena.contracts.tracing import RESULT_FIELD
from tradearena.redisconn import AnyRedis

# Exactly once: the marker and the XADD together. Published already: the marker is
# written again (same value), so a WAIT after it covers the first publication too.
_PUBLISH_ONCE = LuaScript("""
if redis.call('SET', KEYS[1], '1', 'NX') then
  if ARGV[2] ~= '' then
    redis.call('XADD', KEYS[2], '*', 'result', ARGV[1], ARGV[3], ARGV[2])
  else
    redis.call('XADD', KEYS[2], '*', 'result', ARGV[1])
  end
  return 1
end
redis.call('SET', KEYS[1], '1')
return 0
""")

# Append ARGV[2..] to the log if it holds exactly ARGV[1] entries (our idea of it):
# {APPENDED, new length}. If it holds those plus exactly these (an earlier try landed
# and its reply was lost): {ALREADY, length}, after rewriting the last entry with
# itself (a write, so a WAIT after it covers the earlier try). Anything else (the log
# lost entries in a failover, or someone else wrote): {DIVERGED, length}, untouched.
_APPEND_IF_LENGTH = LuaScript("""
local expected = tonumber(ARGV[1])
local n = #ARGV - 1
local len = redis.call('LLEN', KEYS[1])
if len == expected then
  for i = 2, #ARGV, 1000 do
    redis.call('RPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  return {1, len + n}
end
if len == expected + n then
  local tail = redis.call('LRANGE', KEYS[1], expected, -1)
  for i = 1, n do
    if tail[i] ~= ARGV[i + 1] then
      return {0, len}
    end
  end
  redis.call('LSET', KEYS[1], -1, ARGV[#ARGV])
  return {2, len}
end
return {0, len}
""")
APPENDED, ALREADY, DIVERGED = 1, 2, 0


class LogDivergedError(Exception):
    """The log in Redis is not the one this process wrote (entries lost in a failover,
    or another writer): appending to it blindly would corrupt the match."""

    def __init__(self, match_id: str, expected: int, found: int) -> None:
        self.expected = expected
        self.found = found
        super().__init__(f"match {match_id}: log holds {found} entries, expected {expected}")


class MatchStore:
    def __init__(self, redis: AnyRedis, match_id: str, waiter: ReplicaWaiter | None = None) -> None:
        self.redis = redis
        self.match_id = match_id
        self.waiter = waiter or ReplicaWaiter(redis, WaitPolicy())
        self.wait = True  # False once the match faulted for durability: settle at once
        self._log = keys.match_log(match_id)
        self._meta = keys.match_meta(match_id)
        self._status = keys.match_status(match_id)
        self._phases = keys.match_phases(match_id)
        self._published = keys.result_published(match_id)
        self._cancel = keys.match_cancel(match_id)

    async def claim_header(self, header: dict[str, Any]) -> dict[str, Any]:
        """Store the header unless one exists; the stored one always wins (restart)."""
        await self.redis.set(self._meta, dumps(header), nx=True)
        raw = await self.redis.get(self._meta)
        assert raw is not None
        stored: dict[str, Any] = json.loads(raw)
        return stored

    async def load_log(self) -> list[LogEntry]:
        rows = await self.redis.lrange(self._log, 0, -1)
        return [LogEntry.from_wire(json.loads(row)) for row in rows]

    async def save_snapshot(self, snapshot_json: str) -> None:
        await self.redis.set(keys.match_snapshot(self.match_id), snapshot_json)

    async def load_snapshot(self) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.match_snapshot(self.match_id))
        if raw is None:
            return None
        try:
            snap = json.loads(raw)
        except ValueError:
            return None
        return snap if isinstance(snap, dict) else None

    async def append(self, entries: list[LogEntry], expected: int) -> int:
        """Append `entries` to a log of `expected` entries; the new length, once the
        waiter's policy is met (`NotDurableError` if not in time). A retry of an append that
        landed changes nothing; a log of any other length raises `LogDivergedError`."""
        if not entries:
            return expected
        rows = [dumps(e.to_wire()) for e in entries]
        reply = await self.waiter.run(
            _APPEND_IF_LENGTH, [self._log], [expected, *rows], wait=self.wait
        )
        outcome, length = int(reply[0]), int(reply[1])
        if outcome == DIVERGED:
            raise LogDivergedError(self.match_id, expected, length)
        return length

    async def set_status(self, phase: ServerPhase, **fields: str | int) -> None:
        """Current status (a hash) plus a stream of changes that runtimes can watch."""
        data: dict[Any, Any] = {"phase": str(phase), **fields}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._status, mapping=data)
            pipe.xadd(self._phases, data, maxlen=1000, approximate=True)
            await pipe.execute()

    async def set_presence(self, connected: int, players: int) -> None:
        """Players connected now and expected (no phase change: the stream is untouched)."""
        mapping = {MatchPresence.CONNECTED: connected, MatchPresence.PLAYERS: players}
        await self.redis.hset(self._status, mapping=mapping)  # type: ignore[arg-type]

    async def set_spectators(self, count: int) -> None:
        """Spectators connected now (the lobby lists it with the live matches)."""
        await self.redis.hset(self._status, STATUS_SPECTATORS, count)

    async def publish_result(self, result_json: str, traceparent: str | None = None) -> bool:
        """XADD the result exactly once per match, atomically with its marker, so a
        restart after publishing neither loses nor repeats it. The marker sits in the
        stream's slot (`keys.result_published`), so the script is cluster-safe.
        `traceparent`: the match's trace, in the entry's `traceparent` field."""
        done = await self.waiter.run(
            _PUBLISH_ONCE,
            [self._published, keys.RESULTS_STREAM],
            [result_json, traceparent or "", RESULT_FIELD],
            wait=self.wait,
        )
        return bool(done)

    async def save_summary(self, summary_json: str) -> None:
        """The engine's own result, which `tradearena replay --match-id` verifies against."""
        await self.redis.set(keys.match_result(self.match_id), summary_json)

    async def load_record(self) -> MatchRecord | None:
        """Header, log and recorded result: everything a replay needs, read from Redis."""
        raw_header = await self.redis.get(self._meta)
        if raw_header is None:
            return None
        raw_result = await self.redis.get(keys.match_result(self.match_id))
        result = json.loads(raw_result) if raw_result is not None else None
        return MatchRecord(json.loads(raw_header), await self.load_log(), result)

    async def result_published(self) -> bool:
        return bool(await self.redis.exists(self._published))

    async def cancel_reason(self) -> str | None:
        raw = await self.redis.get(self._cancel)
        return raw.decode() if isinstance(raw, bytes) else raw
