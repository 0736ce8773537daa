"""Matchmaking queues in Redis, safe with any number of lobby replicas matching at once.

Layout (all keys share the hash tag `{q}`, see tradearena.contracts.keys):

* `ta:{q}:tickets:<mode>` hash player -> ticket JSON: one ticket per player per mode.
* `ta:{q}:expiry` zset `mode|player` -> expiry (ms). A ticket lives `ticket_ttl_s`
  after its last heartbeat (join, status, socket activity); expired tickets are
  never claimed and are swept by the matchers.
* `ta:{q}:player:<player>` set of the modes the player waits in (a player may wait
  in several modes at once; the first match found removes all of them).
* `ta:{q}:forming` hash match_id -> the claimed tickets, from the claim until the
  match is Ready (`finish`) or has failed (`requeue`, priority). A replica that
  dies in between leaves the entry behind; `recover_stale` requeues it, so a
  claimed ticket is never lost.
* `ta:{q}:assigned:<player>` the player's last match (JSON, TTL), for `status`.

Casual tickets wait in the slot `casual:<mode>` (ranked ones in `<mode>`), so the
two queues are never planned together. A party ticket (casual only) is held by the
party's leader and names every member: its claim checks, in the same script, that
each member still belongs to the party (`lobby.keys.party_of`, built in the script
from the same `{q}` prefix) and is not assigned
to a match, then assigns them all; its requeue puts it back whole (or drops it if
the party changed meanwhile).

A second join in a mode where the player already waits is **refused** (code
`already_queued`, the existing ticket is returned unchanged): retries are
idempotent and a player never loses their place by re-joining. To change the
format, leave and join again. A join while the player is assigned to a match
(forming or ready, until the lobby sees it over and `release`s it) is refused too
(`already_in_match`), checked in the same script as the ticket is written.

Matching: a matcher reads a mode's tickets (HGETALL), plans with the pure core
(lobby.matchmaking.planner), then claims each proposal with one Lua script that checks
every ticket is still there, unexpired and with the same ticket id, and only
then removes them all and records the forming match; otherwise it changes
nothing. Redis runs a script atomically, so two replicas claiming overlapping
proposals cannot both succeed: no ticket ends in two matches, and a ticket
whose claim failed is still waiting. Claims are pipelined (one round trip per
planning round).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from redis.asyncio.cluster import RedisCluster

from lobby.matchmaking.planner import CASUAL, QUEUES, RANKED, Proposal, SkillWindow, Ticket, plan
from lobby.settings import QueueSettings
from tradearena.contracts import keys
from tradearena.contracts.tracing import TICKET_FIELD
from tradearena.modes import AUTO_FORMAT, Catalogue
from tradearena.redisconn import AnyRedis


class QueueError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def now_ms() -> int:
    return int(time.time() * 1000)


def slot(queue: str, mode: str) -> str:
    """Where a ticket waits: `<mode>` (ranked) or `casual:<mode>`."""
    return mode if queue == RANKED else f"{queue}:{mode}"


def encode_ticket(t: Ticket) -> str:
    doc: dict[str, Any] = {
        "tid": t.ticket_id,
        "player": t.player,
        "mode": t.mode,
        "format": t.format,
        "rating": t.rating,
        "at": t.enqueued_at_ms,
        "prio": t.priority,
    }
    if t.traceparent:
        doc[TICKET_FIELD] = t.traceparent
    if t.queue != RANKED:
        doc["q"] = t.queue
    if t.party:
        doc["party"] = t.party
        doc["members"] = list(t.members)
    return json.dumps(doc, separators=(",", ":"))


def decode_ticket(raw: str | bytes | dict[str, Any]) -> Ticket:
    d = raw if isinstance(raw, dict) else json.loads(raw)
    return Ticket(
        ticket_id=str(d["tid"]),
        player=str(d["player"]),
        mode=str(d["mode"]),
        format=str(d["format"]),
        rating=float(d["rating"]),
        enqueued_at_ms=int(d["at"]),
        priority=bool(d.get("prio", False)),
        traceparent=str(d[TICKET_FIELD]) if d.get(TICKET_FIELD) else None,
        queue=str(d.get("q", RANKED)),
        party=str(d["party"]) if d.get("party") else None,
        members=tuple(str(m) for m in d.get("members", ())),
    )


_JOIN = """
-- KEYS: the slot's tickets, expiry, the player's slots, the player's assignment.
-- ARGV: prefix, slot, player, ticket, expires, now, refuse if assigned ('1' or '0'),
--       party id ('' for a solo ticket), then the party's members.
local p, mode, player = ARGV[1], ARGV[2], ARGV[3]
local member = mode .. '|' .. player
if ARGV[7] == '1' then
  local assigned = redis.call('GET', KEYS[4])
  if assigned then return {2, assigned} end
end
local pid = ARGV[8]
if pid ~= '' then
  local raw = redis.call('HGET', p .. 'party:' .. pid, 'members')
  if not raw or #cjson.decode(raw) ~= #ARGV - 8
      or redis.call('HGET', p .. 'party:' .. pid, 'leader') ~= player then
    return {3, 'party_changed'}
  end
  for i = 9, #ARGV do
    if redis.call('GET', p .. 'partyof:' .. ARGV[i]) ~= pid then return {3, 'party_changed'} end
    local assigned = redis.call('GET', p .. 'assigned:' .. ARGV[i])
    if assigned then return {2, assigned} end
  end
end
local cur = redis.call('HGET', KEYS[1], player)
if cur then
  local exp = redis.call('ZSCORE', KEYS[2], member)
  if exp and tonumber(exp) >= tonumber(ARGV[6]) then
    return {0, cur}
  end
end
redis.call('HSET', KEYS[1], player, ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], member)
redis.call('SADD', KEYS[3], mode)
return {1, ARGV[4]}
"""

_JOIN_ASSIGNED = 2  # the join script's answer when the player is assigned to a match
_JOIN_PARTY_CHANGED = 3  # a party ticket whose party changed since it was checked

_LEAVE = """
-- KEYS: expiry, the player's slots (a slot's tickets: prefix .. 'tickets:' .. slot).
-- ARGV: prefix, player, then the slots to leave (none = every slot)
local p, player = ARGV[1], ARGV[2]
local modes
if #ARGV == 2 then
  modes = redis.call('SMEMBERS', KEYS[2])
else
  modes = {unpack(ARGV, 3)}
end
local removed = 0
for _, m in ipairs(modes) do
  removed = removed + redis.call('HDEL', p .. 'tickets:' .. m, player)
  redis.call('ZREM', KEYS[1], m .. '|' .. player)
  redis.call('SREM', KEYS[2], m)
end
return removed
"""

_HEARTBEAT = """
-- KEYS: expiry, the player's modes. ARGV: prefix, player, expires
local player = ARGV[2]
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[3], m .. '|' .. player)
end
return n
"""

_SWEEP = """
-- KEYS: expiry. ARGV: prefix, now, limit. Removes expired tickets; returns how many.
local p = ARGV[1]
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(gone) do
  local sep = string.find(member, '|', 1, true)
  local m, player = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
  redis.call('HDEL', p .. 'tickets:' .. m, player)
  redis.call('SREM', p .. 'player:' .. player, m)
  redis.call('ZREM', KEYS[1], member)
end
return #gone
"""

_CLAIM = """
-- KEYS: expiry, forming.
-- ARGV: prefix, now, match_id, forming (JSON), assignment (JSON), assignment ttl ms,
--       then (slot, player, ticket id) for every ticket of the match.
-- A party ticket claims every member: each must still be in the party and unassigned.
local p, now = ARGV[1], tonumber(ARGV[2])
local missing = {}
local players = {}
for i = 7, #ARGV, 3 do
  local mode, player, tid = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local raw = redis.call('HGET', p .. 'tickets:' .. mode, player)
  local ok = false
  if raw then
    local t = cjson.decode(raw)
    if t['tid'] == tid then
      local exp = redis.call('ZSCORE', KEYS[1], mode .. '|' .. player)
      ok = exp ~= false and tonumber(exp) >= now
    end
    if ok and t['party'] then
      for _, m in ipairs(t['members']) do
        if redis.call('GET', p .. 'partyof:' .. m) ~= t['party']
            or redis.call('EXISTS', p .. 'assigned:' .. m) == 1 then
          ok = false
        end
        players[#players + 1] = m
      end
    else
      players[#players + 1] = player
    end
  end
  if not ok then missing[#missing + 1] = player end
end
if #missing > 0 then return {0, missing} end
for _, player in ipairs(players) do
  local pk = p .. 'player:' .. player
  for _, m in ipairs(redis.call('SMEMBERS', pk)) do
    redis.call('HDEL', p .. 'tickets:' .. m, player)
    redis.call('ZREM', KEYS[1], m .. '|' .. player)
  end
  redis.call('DEL', pk)
  redis.call('SET', p .. 'assigned:' .. player, ARGV[5], 'PX', ARGV[6])
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return {1, {}}
"""

_FINISH = """
-- KEYS: forming.
-- ARGV: prefix, match_id, assignment (JSON or ''), assignment ttl ms. 1 if it was forming.
local p = ARGV[1]
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if not raw then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  for _, t in ipairs(cjson.decode(raw)['tickets']) do
    for _, player in ipairs(t['members'] or {t['player']}) do
      redis.call('SET', p .. 'assigned:' .. player, ARGV[3], 'PX', ARGV[4])
    end
  end
end
return 1
"""

_REQUEUE = """
-- KEYS: forming, expiry.
-- ARGV: prefix, match_id, expires. Puts the tickets of a forming match back with
-- priority, keeping their original enqueue time; exactly once (the entry is removed).
-- A party ticket goes back whole, unless its party changed meanwhile. A private
-- match's players (entry field `private`) only lose the assignment and its room is
-- cancelled (-2).
local p = ARGV[1]
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if not raw then return -1 end
redis.call('HDEL', KEYS[1], ARGV[2])
local n = 0
local entry = cjson.decode(raw)
for _, t in ipairs(entry['tickets']) do
  local player, mode = t['player'], t['mode']
  if t['q'] then mode = t['q'] .. ':' .. mode end
  local intact = true
  for _, m in ipairs(t['members'] or {player}) do
    local akey = p .. 'assigned:' .. m
    local assigned = redis.call('GET', akey)
    if assigned and cjson.decode(assigned)['match_id'] == ARGV[2] then
      redis.call('DEL', akey)
    end
    if t['party'] and redis.call('GET', p .. 'partyof:' .. m) ~= t['party'] then
      intact = false
    end
  end
  if intact and not entry['private']
      and redis.call('HEXISTS', p .. 'tickets:' .. mode, player) == 0 then
    t['prio'] = true
    redis.call('HSET', p .. 'tickets:' .. mode, player, cjson.encode(t))
    redis.call('ZADD', KEYS[2], ARGV[3], mode .. '|' .. player)
    redis.call('SADD', p .. 'player:' .. player, mode)
    n = n + 1
  end
end
if entry['private'] then
  -- Its room (lobby.keys.private_match) says the start is over.
  local room = redis.call('GET', p .. 'private:' .. entry['private'])
  if room then
    local r = cjson.decode(room)
    if r['state'] == 'starting' then
      r['state'] = 'cancelled'
      redis.call('SET', p .. 'private:' .. entry['private'], cjson.encode(r), 'KEEPTTL')
    end
  end
  return -2
end
return n
"""


_RELEASE = """
-- KEYS: the player's assignment. ARGV: prefix, player, match_id. Deletes the
-- assignment only if it names that match.
local akey = KEYS[1]
local assigned = redis.call('GET', akey)
if assigned and cjson.decode(assigned)['match_id'] == ARGV[3] then
  return redis.call('DEL', akey)
end
return 0
"""


@dataclass(frozen=True)
class JoinResult:
    ticket: Ticket
    created: bool  # False: refused, the player already waits in this mode (or is assigned)
    assignment: dict[str, Any] | None = None  # refused: the match the player is assigned to


@dataclass(frozen=True)
class Claim:
    match_id: str
    proposal: Proposal
    claimed_at_ms: int

    @property
    def players(self) -> tuple[str, ...]:
        return self.proposal.players


@dataclass(frozen=True)
class QueueStatus:
    player: str
    tickets: list[tuple[Ticket, int]]  # (ticket, expires_at_ms)
    assignment: dict[str, Any] | None


@dataclass
class RoundStats:
    proposals: int = 0
    claimed: int = 0
    conflicts: int = 0
    swept: int = 0


def new_match_id() -> str:
    return "m-" + secrets.token_hex(8)


class Queues:
    """The Redis side of matchmaking; one instance per process, shared by handlers."""

    def __init__(
        self,
        redis: AnyRedis,
        catalogue: Catalogue,
        settings: QueueSettings,
    ) -> None:
        self.redis = redis
        self.catalogue = catalogue
        self.settings = settings
        self._window = SkillWindow(
            settings.skill_window_initial, settings.skill_window_per_s, settings.skill_window_max
        )
        self._join = redis.register_script(_JOIN)
        self._leave = redis.register_script(_LEAVE)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._sweep = redis.register_script(_SWEEP)
        self._claim = redis.register_script(_CLAIM)
        self._finish = redis.register_script(_FINISH)
        self._requeue = redis.register_script(_REQUEUE)
        self._release = redis.register_script(_RELEASE)

    def _expires(self, now: int) -> int:
        return now + self.settings.ticket_ttl_s * 1000

    # -- players ---------------------------------------------------------------

    async def join(
        self,
        player: str,
        mode: str,
        fmt: str,
        rating: float,
        now: int | None = None,
        *,
        refuse_if_assigned: bool = False,
        traceparent: str | None = None,
        queue: str = RANKED,
        party: str | None = None,
        members: Sequence[str] = (),
    ) -> JoinResult:
        """A new ticket, or the refusal: already waiting in the mode (the ticket), or,
        with `refuse_if_assigned`, already assigned to a match (atomically with the
        claims, so a claim cannot slip in between the check and the ticket).
        `traceparent`: the player's journey trace, kept on the ticket. `party` and
        `members` (leader first, the caller): a casual ticket for the whole party,
        refused (`party_changed`) unless the party has exactly these members."""
        if queue not in QUEUES:
            raise QueueError("unknown_queue", f"unknown queue {queue!r}")
        if party is not None and queue != CASUAL:
            raise QueueError("party_ranked", "a party queues only into casual matches")
        if mode not in self.catalogue.modes:
            raise QueueError("unknown_mode", f"unknown mode {mode!r}")
        if fmt != AUTO_FORMAT and fmt not in self.catalogue.formats:
            raise QueueError("unknown_format", f"unknown format {fmt!r}")
        now = now_ms() if now is None else now
        ticket = Ticket(
            secrets.token_hex(8),
            player,
            mode,
            fmt,
            float(rating),
            now,
            traceparent=traceparent,
            queue=queue,
            party=party,
            members=tuple(members) if party else (),
        )
        where = slot(queue, mode)
        expires = self._expires(now)
        refuse = "1" if refuse_if_assigned or party else "0"
        created, raw = await self._join(
            keys=[
                keys.queue_tickets(where),
                keys.QUEUE_EXPIRY,
                keys.queue_player(player),
                keys.queue_assignment(player),
            ],
            args=[
                keys.QUEUE_PREFIX,
                where,
                player,
                encode_ticket(ticket),
                expires,
                now,
                refuse,
                party or "",
                *ticket.members,
            ],
        )
        if int(created) == _JOIN_PARTY_CHANGED:
            raise QueueError("party_changed", "the party changed; queue again")
        if int(created) == _JOIN_ASSIGNED:
            return JoinResult(ticket, False, json.loads(raw))
        return JoinResult(decode_ticket(raw), bool(created))

    async def assignment(self, player: str) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.queue_assignment(player))
        return json.loads(raw) if raw else None

    async def release(self, player: str, match_id: str) -> bool:
        """Forget the player's assignment if it still names this match (which is over)."""
        return bool(
            await self._release(
                keys=[keys.queue_assignment(player)], args=[keys.QUEUE_PREFIX, player, match_id]
            )
        )

    async def leave(self, player: str, mode: str | None = None) -> int:
        """Remove the player's tickets in one mode, both queues (or in every mode);
        returns how many."""
        slots = [slot(q, mode) for q in QUEUES] if mode else []
        return int(
            await self._leave(
                keys=[keys.QUEUE_EXPIRY, keys.queue_player(player)],
                args=[keys.QUEUE_PREFIX, player, *slots],
            )
        )

    async def disconnect(self, player: str) -> int:
        """The player's last connection went away: they stop waiting everywhere."""
        return await self.leave(player)

    async def heartbeat(self, player: str, now: int | None = None) -> int:
        now = now_ms() if now is None else now
        return int(
            await self._heartbeat(
                keys=[keys.QUEUE_EXPIRY, keys.queue_player(player)],
                args=[keys.QUEUE_PREFIX, player, self._expires(now)],
            )
        )

    async def status(self, player: str) -> QueueStatus:
        modes = sorted(_text(m) for m in await self.redis.smembers(keys.queue_player(player)))
        async with self.redis.pipeline(transaction=False) as pipe:
            for m in modes:
                pipe.hget(keys.queue_tickets(m), player)
                pipe.zscore(keys.QUEUE_EXPIRY, f"{m}|{player}")
            pipe.get(keys.queue_assignment(player))
            out = await pipe.execute()
        tickets = []
        for i in range(len(modes)):
            raw, exp = out[2 * i], out[2 * i + 1]
            if raw is not None and exp is not None:
                tickets.append((decode_ticket(raw), int(exp)))
        assigned = out[-1]
        return QueueStatus(player, tickets, json.loads(assigned) if assigned else None)

    # -- matching --------------------------------------------------------------

    async def waiting(self, mode: str) -> list[Ticket]:
        """The tickets of one slot (a ranked mode, or `casual:<mode>`)."""
        raw = await self.redis.hgetall(keys.queue_tickets(mode))
        return [decode_ticket(v) for v in raw.values()]

    async def sweep(self, now: int | None = None, limit: int = 10_000) -> int:
        now = now_ms() if now is None else now
        return int(
            await self._sweep(keys=[keys.QUEUE_EXPIRY], args=[keys.QUEUE_PREFIX, now, limit])
        )

    async def claim(
        self, proposals: Sequence[Proposal], now: int | None = None
    ) -> tuple[list[Claim], int]:
        """Claim proposals atomically, each on its own; returns (claims, conflicts)."""
        if not proposals:
            return [], 0
        now = now_ms() if now is None else now
        ttl = self.settings.assignment_ttl_s * 1000
        ids = [new_match_id() for _ in proposals]
        calls: list[list[Any]] = []
        for match_id, prop in zip(ids, proposals, strict=True):
            forming = json.dumps(
                {
                    "match_id": match_id,
                    "mode": prop.mode,
                    "format": prop.format,
                    "claimed_at": now,
                    "tickets": [json.loads(encode_ticket(t)) for t in prop.tickets],
                },
                separators=(",", ":"),
            )
            assignment = json.dumps(
                {
                    "match_id": match_id,
                    "mode": prop.mode,
                    "format": prop.format,
                    "queue": prop.queue,
                    "state": "forming",
                    "at": now,
                },
                separators=(",", ":"),
            )
            args: list[Any] = [
                keys.QUEUE_PREFIX,
                now,
                match_id,
                forming,
                assignment,
                ttl,
            ]
            for t in prop.tickets:
                args += [slot(t.queue, t.mode), t.player, t.ticket_id]
            calls.append(args)
        claim_keys = [keys.QUEUE_EXPIRY, keys.QUEUE_FORMING]
        results: list[Any]
        redis = self.redis
        if isinstance(redis, RedisCluster):
            # A cluster pipeline does not load scripts: concurrent calls, all on the
            # `{q}` shard, each still atomic on its own.
            results = list(
                await asyncio.gather(*(self._claim(keys=claim_keys, args=a) for a in calls))
            )
        else:
            async with redis.pipeline(transaction=False) as pipe:
                for args in calls:
                    await self._claim(keys=claim_keys, args=args, client=pipe)
                results = await pipe.execute()
        claims: list[Claim] = []
        conflicts = 0
        for match_id, prop, (ok, _missing) in zip(ids, proposals, results, strict=True):
            if ok:
                claims.append(Claim(match_id, prop, now))
            else:
                conflicts += 1
        return claims, conflicts

    async def match_round(
        self,
        move_pct: Decimal = Decimal(0),
        now: int | None = None,
        modes: Iterable[str] | None = None,
        stats: RoundStats | None = None,
    ) -> list[Claim]:
        """One planning round over every mode: sweep, read, plan, claim."""
        now = now_ms() if now is None else now
        stats = stats if stats is not None else RoundStats()
        stats.swept += await self.sweep(now)
        claims: list[Claim] = []
        for mode in modes or self.catalogue.modes:
            tickets = [t for q in QUEUES for t in await self.waiting(slot(q, mode))]
            if not tickets:
                continue
            planned = plan(self.catalogue, tickets, now, move_pct, self._window)
            got, conflicts = await self.claim(planned.proposals, now)
            stats.proposals += len(planned.proposals)
            stats.claimed += len(got)
            stats.conflicts += conflicts
            claims.extend(got)
        return claims

    # -- formation outcome -----------------------------------------------------

    async def finish(self, match_id: str, assignment: dict[str, Any] | None = None) -> bool:
        """The match is Ready: forget the forming entry, update the players' assignment."""
        ttl = self.settings.assignment_ttl_s * 1000
        raw = json.dumps(assignment, separators=(",", ":")) if assignment else ""
        return bool(
            await self._finish(
                keys=[keys.QUEUE_FORMING], args=[keys.QUEUE_PREFIX, match_id, raw, ttl]
            )
        )

    async def requeue(self, match_id: str, now: int | None = None) -> int:
        """Formation failed: its players wait again with priority. -1 if already done;
        -2 for a private match, whose players are only released (not queued)."""
        now = now_ms() if now is None else now
        return int(
            await self._requeue(
                keys=[keys.QUEUE_FORMING, keys.QUEUE_EXPIRY],
                args=[
                    keys.QUEUE_PREFIX,
                    match_id,
                    self._expires(now),
                ],
            )
        )

    async def forming(self) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(keys.QUEUE_FORMING)
        return {_text(k): json.loads(v) for k, v in raw.items()}

    async def recover_stale(self, older_than_ms: int, now: int | None = None) -> list[str]:
        """Requeue matches whose formation was abandoned (the forming replica died)."""
        now = now_ms() if now is None else now
        out = []
        for match_id, entry in (await self.forming()).items():
            stale = now - int(entry["claimed_at"]) > older_than_ms
            if stale and await self.requeue(match_id, now) != -1:
                out.append(match_id)
        return out
