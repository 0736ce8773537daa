"""Private matches in Redis: rooms, joins, the start claim and the countdown schedule.

Keys (`lobby.keys`, all with the queues' hash tag `{q}`):

* `ta:{q}:private:<code>` the room (JSON, `private_rules.Room`), kept `code_ttl_s`
  (and a while after it closes, so its players read why).
* `ta:{q}:private-due` zset code -> when a lobby replica should look at the room
  next (its countdown, else its expiry).
* The players' queue assignment `ta:{q}:assigned:<player>` (state `forming`, with
  `private: <code>`), written when they join: a player in a room cannot queue (the
  queue's join refuses `already_in_match`), and a queued or assigned player cannot
  open or join a room. Leaving, cancelling or expiry delete it; a started room's
  players keep it through formation and the match, released like queued matches'.

Every change is one Lua script over the room, the schedule and the assignments, so
the size is never exceeded, a seat is never given twice and a room is started (or
expired, or cancelled) exactly once, whatever the number of replicas. The start
claim moves the room to `starting` and writes a forming entry
(`ta:{q}:forming`, marked `private`) that the queues' formation path finishes;
a failed formation releases the players instead of queueing them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from typing import Any

from lobby import keys as lobby_keys
from lobby.matchmaking.planner import Proposal, Ticket
from lobby.matchmaking.private_rules import (
    Member,
    PrivateRuleError,
    PrivateSpec,
    Room,
    new_code,
    open_room,
)
from lobby.matchmaking.queues import Claim, encode_ticket, new_match_id, now_ms
from lobby.settings import PrivateSettings, QueueSettings
from tradearena.contracts import keys
from tradearena.redisconn import AnyRedis

CLOSED_KEEP_MS = 3600 * 1000  # a closed or started room stays readable this long

_CREATE = """
-- KEYS: room, due, host's assignment, host's queue modes.
-- ARGV: room JSON, assignment JSON, assignment ttl ms, room ttl ms, start_at, code
if redis.call('EXISTS', KEYS[1]) == 1 then return {'code_taken', ''} end
if redis.call('SCARD', KEYS[4]) > 0 then return {'already_queued', ''} end
local assigned = redis.call('GET', KEYS[3])
if assigned then return {'already_in_match', assigned} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
return {'ok', ARGV[1]}
"""

_JOIN = """
-- KEYS: room, due, the player's assignment, the player's queue modes.
-- ARGV: member JSON, assignment JSON, assignment ttl ms, now, code
local raw = redis.call('GET', KEYS[1])
if not raw then return {'private_not_found', ''} end
local room = cjson.decode(raw)
local me = cjson.decode(ARGV[1])
local joined = room['joined']
if type(joined) ~= 'table' or next(joined) == nil then joined = {} end
for _, m in ipairs(joined) do
  if m['user_id'] == me['user_id'] then return {'again', raw} end
end
if room['state'] == 'cancelled' or room['state'] == 'expired' then return {'private_closed', raw} end
if room['state'] ~= 'open' then return {'private_started', raw} end
if tonumber(ARGV[4]) >= tonumber(room['expires_at']) then return {'private_closed', raw} end
if #joined >= tonumber(room['size']) then return {'private_full', raw} end
if redis.call('SCARD', KEYS[4]) > 0 then return {'already_queued', raw} end
local assigned = redis.call('GET', KEYS[3])
if assigned then return {'already_in_match', assigned} end
joined[#joined + 1] = me
room['joined'] = joined
local out = cjson.encode(room)
redis.call('SET', KEYS[1], out, 'KEEPTTL')
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], room['start_at'], ARGV[5])
return {'ok', out}
"""

_LEAVE = """
-- KEYS: room, the player's assignment. ARGV: user id
local raw = redis.call('GET', KEYS[1])
if not raw then return {'private_not_found', ''} end
local room = cjson.decode(raw)
if room['state'] ~= 'open' then return {'private_started', raw} end
local kept, found = {}, false
local joined = room['joined']
if type(joined) ~= 'table' then joined = {} end
for _, m in ipairs(joined) do
  if m['user_id'] == ARGV[1] then found = true else kept[#kept + 1] = m end
end
if not found then return {'not_joined', raw} end
room['joined'] = kept
local out = cjson.encode(room)
redis.call('SET', KEYS[1], out, 'KEEPTTL')
local assigned = redis.call('GET', KEYS[2])
if assigned and cjson.decode(assigned)['match_id'] == room['match_id'] then
  redis.call('DEL', KEYS[2])
end
return {'ok', out}
"""

_CLOSE = """
-- KEYS: room, due. ARGV: prefix, new state (cancelled | expired), now, keep ms, code.
-- Expiry happens only once the room's time is up; either happens only to an open room.
local p = ARGV[1]
local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('ZREM', KEYS[2], ARGV[5])
  return {'private_not_found', ''}
end
local room = cjson.decode(raw)
if room['state'] ~= 'open' then return {'private_started', raw} end
if ARGV[2] == 'expired' and tonumber(ARGV[3]) < tonumber(room['expires_at']) then
  return {'not_due', raw}
end
local joined = room['joined']
if type(joined) ~= 'table' then joined = {} end
for _, m in ipairs(joined) do
  local akey = p .. 'assigned:' .. m['user_id']
  local assigned = redis.call('GET', akey)
  if assigned and cjson.decode(assigned)['match_id'] == room['match_id'] then
    redis.call('DEL', akey)
  end
end
room['state'] = ARGV[2]
local out = cjson.encode(room)
redis.call('SET', KEYS[1], out, 'PX', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[5])
return {'ok', out}
"""

_START = """
-- KEYS: room, due, forming. ARGV: now, expected joined user ids (comma separated),
-- forming entry JSON, keep ms, code. The room must be open, unexpired, with at least
-- `min` joined, exactly those the caller planned with.
local raw = redis.call('GET', KEYS[1])
if not raw then return {'private_not_found', ''} end
local room = cjson.decode(raw)
if room['state'] == 'cancelled' or room['state'] == 'expired' then return {'private_closed', raw} end
if room['state'] ~= 'open' then return {'private_started', raw} end
if tonumber(ARGV[1]) >= tonumber(room['expires_at']) then return {'private_closed', raw} end
local joined = room['joined']
if type(joined) ~= 'table' then joined = {} end
local ids = {}
for _, m in ipairs(joined) do ids[#ids + 1] = m['user_id'] end
if #ids < tonumber(room['min']) then return {'not_enough_players', raw} end
if table.concat(ids, ',') ~= ARGV[2] then return {'changed', raw} end
room['state'] = 'starting'
local out = cjson.encode(room)
redis.call('SET', KEYS[1], out, 'PX', ARGV[4])
redis.call('HSET', KEYS[3], room['match_id'], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[5])
return {'ok', out}
"""

_MARK = """
-- KEYS: room. ARGV: from state, to state. The formation's outcome.
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local room = cjson.decode(raw)
if room['state'] ~= ARGV[1] then return 0 end
room['state'] = ARGV[2]
redis.call('SET', KEYS[1], cjson.encode(room), 'KEEPTTL')
return 1
"""

_REARM = """
-- KEYS: room, due. ARGV: code. Look again at the countdown once `min` joined, else
-- at the expiry (a join re-arms the countdown itself).
local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
local room = cjson.decode(raw)
if room['state'] ~= 'open' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
local joined = room['joined']
local n = 0
if type(joined) == 'table' then n = #joined end
if n >= tonumber(room['min']) then
  redis.call('ZADD', KEYS[2], room['start_at'], ARGV[1])
else
  redis.call('ZADD', KEYS[2], room['expires_at'], ARGV[1])
end
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _member(m: Member) -> str:
    return json.dumps({"user_id": m.user_id, "username": m.username}, separators=(",", ":"))


def _refusal(code: str, extra: str) -> PrivateRuleError:
    status, message = {
        "private_not_found": (404, "no private match with this code"),
        "private_closed": (410, "this private match is closed"),
        "private_started": (409, "this private match has started"),
        "private_full": (409, "every seat is taken"),
        "not_joined": (409, "not in this private match"),
        "not_enough_players": (409, "not enough players have joined"),
        "already_queued": (409, "leave the matchmaking queues first"),
        "already_in_match": (409, "already in a match or another private match"),
    }.get(code, (409, code))
    more = {"assignment": json.loads(extra)} if code == "already_in_match" and extra else None
    return PrivateRuleError(status, code, message, more)


class PrivateMatches:
    """The Redis side of private matches; one per lobby process."""

    def __init__(
        self, redis: AnyRedis, settings: PrivateSettings, queue_settings: QueueSettings
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.assignment_ttl_ms = queue_settings.assignment_ttl_s * 1000
        self.tasks: set[asyncio.Task[None]] = set()  # formations being watched
        self._create = redis.register_script(_CREATE)
        self._join = redis.register_script(_JOIN)
        self._leave = redis.register_script(_LEAVE)
        self._close = redis.register_script(_CLOSE)
        self._start = redis.register_script(_START)
        self._mark = redis.register_script(_MARK)
        self._rearm = redis.register_script(_REARM)

    def _assignment(self, room: Room, now: int) -> str:
        return json.dumps(
            {
                "match_id": room.match_id,
                "mode": room.mode,
                "format": room.format,
                "state": "forming",
                "private": room.code,
                "at": now,
            },
            separators=(",", ":"),
        )

    @staticmethod
    def _room(raw: bytes | str) -> Room:
        return Room.from_json(json.loads(_text(raw)))

    async def _call(self, script: Any, keys_: list[str], args: list[Any]) -> tuple[str, str]:
        out: list[bytes | str] = await script(keys=keys_, args=args)
        return _text(out[0]), _text(out[1])

    async def create(
        self, spec: PrivateSpec, host: Member, invited: Sequence[Member], now: int | None = None
    ) -> Room:
        now = now_ms() if now is None else now
        for _ in range(5):  # a code already in use: draw another
            room = open_room(
                spec,
                new_code(),
                new_match_id(),
                host,
                invited,
                now,
                self.settings.private_code_ttl_s,
            )
            ttl = room.expires_at_ms - now + CLOSED_KEEP_MS
            code, extra = await self._call(
                self._create,
                [
                    lobby_keys.private_match(room.code),
                    lobby_keys.PRIVATE_DUE,
                    keys.queue_assignment(host.user_id),
                    keys.queue_player(host.user_id),
                ],
                [
                    json.dumps(room.to_json(), separators=(",", ":")),
                    self._assignment(room, now),
                    self.assignment_ttl_ms,
                    ttl,
                    room.start_at_ms,
                    room.code,
                ],
            )
            if code == "ok":
                return room
            if code != "code_taken":
                raise _refusal(code, extra)
        raise PrivateRuleError(503, "private_code_unavailable", "no free code; try again")

    async def get(self, code: str) -> Room | None:
        raw = await self.redis.get(lobby_keys.private_match(code))
        return self._room(raw) if raw else None

    async def join(self, code: str, member: Member, now: int | None = None) -> tuple[Room, bool]:
        """(the room, True if this call gave the seat; False: already in it)."""
        now = now_ms() if now is None else now
        room = await self.get(code)
        if room is None:
            raise _refusal("private_not_found", "")
        result, raw = await self._call(
            self._join,
            [
                lobby_keys.private_match(code),
                lobby_keys.PRIVATE_DUE,
                keys.queue_assignment(member.user_id),
                keys.queue_player(member.user_id),
            ],
            [_member(member), self._assignment(room, now), self.assignment_ttl_ms, now, code],
        )
        if result in ("ok", "again"):
            return self._room(raw), result == "ok"
        raise _refusal(result, raw)

    async def leave(self, code: str, user_id: str) -> Room:
        result, raw = await self._call(
            self._leave,
            [lobby_keys.private_match(code), keys.queue_assignment(user_id)],
            [user_id],
        )
        if result == "ok":
            return self._room(raw)
        raise _refusal(result, raw)

    async def close(self, code: str, state: str, now: int | None = None) -> Room:
        """Cancel (the host) or expire (the schedule) an open room; frees every seat."""
        now = now_ms() if now is None else now
        result, raw = await self._call(
            self._close,
            [lobby_keys.private_match(code), lobby_keys.PRIVATE_DUE],
            [keys.QUEUE_PREFIX, state, now, CLOSED_KEEP_MS, code],
        )
        if result == "ok":
            return self._room(raw)
        raise _refusal(result, raw)

    async def claim_start(self, room: Room, now: int | None = None) -> Claim:
        """Move the room to `starting` and hand its players to formation, atomically:
        exactly one caller (the host, or one replica's countdown) gets the claim."""
        now = now_ms() if now is None else now
        tickets = tuple(
            Ticket(secrets.token_hex(8), m.user_id, room.mode, room.format, 0.0, room.created_at_ms)
            for m in room.joined
        )
        forming = json.dumps(
            {
                "match_id": room.match_id,
                "mode": room.mode,
                "format": room.format,
                "claimed_at": now,
                "private": room.code,
                "tickets": [json.loads(encode_ticket(t)) for t in tickets],
            },
            separators=(",", ":"),
        )
        result, raw = await self._call(
            self._start,
            [lobby_keys.private_match(room.code), lobby_keys.PRIVATE_DUE, keys.QUEUE_FORMING],
            [
                now,
                ",".join(m.user_id for m in room.joined),
                forming,
                self.assignment_ttl_ms,
                room.code,
            ],
        )
        if result != "ok":
            raise _refusal(result, raw)
        proposal = Proposal(room.mode, room.format, tickets, tickets[0], "recommended", 0.0)
        return Claim(room.match_id, proposal, now)

    async def mark(self, code: str, from_state: str, to_state: str) -> bool:
        return bool(
            await self._mark(keys=[lobby_keys.private_match(code)], args=[from_state, to_state])
        )

    async def due(self, now: int | None = None, limit: int = 100) -> list[str]:
        now = now_ms() if now is None else now
        raw: Any = await self.redis.zrangebyscore(lobby_keys.PRIVATE_DUE, "-inf", now, 0, limit)
        return [_text(c) for c in raw]

    async def rearm(self, code: str) -> None:
        await self._rearm(
            keys=[lobby_keys.private_match(code), lobby_keys.PRIVATE_DUE], args=[code]
        )
