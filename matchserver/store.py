"""The match's durable state in Redis: header, append-only log, status, result.

Every log entry is written here before the client that caused it is answered;
a restarted server rebuilds the match by replaying this log.
"""

from __future__ import annotations

import json
from typing import Any

from matchserver.engine.log import LogEntry, MatchRecord, dumps
from tradearena.contracts import keys
from tradearena.contracts.phases import ServerPhase
from tradearena.contracts.pool import MatchPresence
from tradearena.contracts.tracing import RESULT_FIELD
from tradearena.redisconn import AnyRedis

_PUBLISH_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX') then
  if ARGV[2] ~= '' then
    redis.call('XADD', KEYS[2], '*', 'result', ARGV[1], ARGV[3], ARGV[2])
  else
    redis.call('XADD', KEYS[2], '*', 'result', ARGV[1])
  end
  return 1
end
return 0
"""


class MatchStore:
    def __init__(self, redis: AnyRedis, match_id: str) -> None:
        self.redis = redis
        self.match_id = match_id
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

    async def append(self, entries: list[LogEntry]) -> None:
        if entries:
            await self.redis.rpush(self._log, *(dumps(e.to_wire()) for e in entries))

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

    async def publish_result(self, result_json: str, traceparent: str | None = None) -> bool:
        """XADD the result exactly once per match, atomically with its marker, so a
        restart after publishing neither loses nor repeats it. The marker sits in the
        stream's slot (`keys.result_published`), so the script is cluster-safe.
        `traceparent`: the match's trace, in the entry's `traceparent` field."""
        done = await self.redis.eval(
            _PUBLISH_ONCE,
            2,
            self._published,
            keys.RESULTS_STREAM,
            result_json,
            traceparent or "",
            RESULT_FIELD,
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
