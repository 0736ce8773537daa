"""Parties in Redis: read, decide with the pure rules (lobby.matchmaking.party_rules),
commit with a version check; any change of membership takes the party's tickets out
of the queues in the same script.

Keys (lobby.keys, under the queues' hash tag `{q}`: the scripts also touch the queues):

* `ta:{q}:party:<id>` hash `leader`, `members` (JSON [{id, name}], leader first),
  `created`, `version` (bumped by every change and invitation);
* `ta:{q}:partyof:<user>` the user's party id;
* `ta:{q}:partyinv:<id>` hash invitee id -> invitation JSON {name, expires, by};
* `ta:{q}:invited:<user>` hash party id -> expiry (ms): the user's invitations.

Expired invitations are dropped when read. A commit whose version no longer matches
changes nothing; the caller reads again and decides again (a few attempts).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter

from lobby import keys as lobby_keys
from lobby.matchmaking import party_rules as rules
from lobby.matchmaking.party_rules import Invite, Member, Party, PartyLimits, PartyRuleError
from lobby.matchmaking.queues import now_ms
from tradearena.contracts import keys
from tradearena.redisconn import AnyRedis

T = TypeVar("T")
ATTEMPTS = 5

# Lua: take a player's tickets out of every queue (a party changed). KEYS[1] is the
# queues' expiry; key names are built from the `{q}` prefix `p` (ARGV[1]).
_UNQUEUE = """
local function unqueue(p, player)
  local pk = p .. 'player:' .. player
  local n = 0
  for _, m in ipairs(redis.call('SMEMBERS', pk)) do
    n = n + redis.call('HDEL', p .. 'tickets:' .. m, player)
    redis.call('ZREM', KEYS[1], m .. '|' .. player)
  end
  redis.call('DEL', pk)
  return n
end
"""

_CREATE = """
-- KEYS: the party, the leader's party-of. ARGV: party id, leader, members JSON, now
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'leader', ARGV[2], 'members', ARGV[3], 'created', ARGV[4],
           'version', 0)
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""

_CHANGE = (
    _UNQUEUE
    + """
-- KEYS: expiry, the party, its invitations.
-- ARGV: 1 prefix, 2 party id, 3 expected version, 4 now,
--       5 new members JSON ('' = the party ends), 6 new leader, 7 joiner ('' = none),
--       8 leavers JSON, 9.. players whose tickets leave the queues.
local p, pid = ARGV[1], ARGV[2]
if redis.call('HGET', KEYS[2], 'version') ~= ARGV[3] then return 'conflict' end
local joiner = ARGV[7]
if joiner ~= '' then
  if redis.call('EXISTS', p .. 'partyof:' .. joiner) == 1 then return 'already_in_party' end
  local inv = redis.call('HGET', KEYS[3], joiner)
  if not inv or tonumber(cjson.decode(inv)['expires']) < tonumber(ARGV[4]) then
    return 'not_invited'
  end
  redis.call('SET', p .. 'partyof:' .. joiner, pid)
  redis.call('HDEL', KEYS[3], joiner)
  redis.call('HDEL', p .. 'invited:' .. joiner, pid)
end
for _, who in ipairs(cjson.decode(ARGV[8])) do
  if redis.call('GET', p .. 'partyof:' .. who) == pid then
    redis.call('DEL', p .. 'partyof:' .. who)
  end
end
if ARGV[5] == '' then
  for _, invitee in ipairs(redis.call('HKEYS', KEYS[3])) do
    redis.call('HDEL', p .. 'invited:' .. invitee, pid)
  end
  redis.call('DEL', KEYS[2], KEYS[3])
else
  redis.call('HSET', KEYS[2], 'members', ARGV[5], 'leader', ARGV[6])
  redis.call('HINCRBY', KEYS[2], 'version', 1)
end
for i = 9, #ARGV do unqueue(p, ARGV[i]) end
return 'ok'
"""
)

_INVITE = """
-- KEYS: the party, its invitations, the invitee's party-of, the invitee's invitations.
-- ARGV: party id, expected version, invitee id, invitation JSON, expires
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[2] then return 'conflict' end
if redis.call('EXISTS', KEYS[3]) == 1 then return 'already_in_party' end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[5])
redis.call('PEXPIREAT', KEYS[4], ARGV[5])  -- the newest invitation expires last
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 'ok'
"""

_UNQUEUE_PARTY = (
    _UNQUEUE
    + """
-- KEYS: expiry. ARGV: prefix, then the players. Returns the tickets removed.
local n = 0
for i = 2, #ARGV do n = n + unqueue(ARGV[1], ARGV[i]) end
return n
"""
)


class PartyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.formed = Counter(
            "lobby_parties_formed_total", "Parties that got their second member", registry=r
        )
        self.invites = Counter(
            "lobby_party_invites_total",
            "Party invitations by outcome (sent, accepted, declined, revoked, expired, refused)",
            ["outcome"],
            registry=r,
        )


def new_party_id() -> str:
    return "p-" + secrets.token_hex(8)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _members_json(members: tuple[Member, ...]) -> str:
    return json.dumps([{"id": m.user_id, "name": m.username} for m in members])


@dataclass(frozen=True)
class Invitation:
    """An invitation as its invitee sees it."""

    party_id: str
    leader: str  # username
    members: tuple[str, ...]  # usernames
    expires_at_ms: int


class Parties:
    """The Redis side of parties; one per process."""

    def __init__(
        self, redis: AnyRedis, limits: PartyLimits, metrics: PartyMetrics | None = None
    ) -> None:
        self.redis = redis
        self.limits = limits
        self.metrics = metrics or PartyMetrics()
        self._create = redis.register_script(_CREATE)
        self._change = redis.register_script(_CHANGE)
        self._invite = redis.register_script(_INVITE)
        self._unqueue = redis.register_script(_UNQUEUE_PARTY)

    # -- reading ---------------------------------------------------------------

    async def party_id_of(self, user_id: str) -> str | None:
        raw = await self.redis.get(lobby_keys.party_of(user_id))
        return _text(raw) if raw else None

    async def get(self, party_id: str, now: int | None = None) -> Party | None:
        """The party with its live invitations (expired ones are dropped here)."""
        now = now_ms() if now is None else now
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(lobby_keys.party(party_id))
            pipe.hgetall(lobby_keys.party_invites(party_id))
            raw, raw_invites = await pipe.execute()
        if not raw:
            return None
        doc = {_text(k): _text(v) for k, v in raw.items()}
        invites: list[Invite] = []
        expired: list[Invite] = []
        for k, v in raw_invites.items():
            d = json.loads(v)
            invite = Invite(_text(k), str(d["name"]), int(d["expires"]), str(d.get("by", "")))
            (invites if invite.live(now) else expired).append(invite)
        if expired:
            dropped = await self._drop_invites(party_id, [i.user_id for i in expired])
            self.metrics.invites.labels("expired").inc(dropped)
        members = tuple(Member(str(m["id"]), str(m["name"])) for m in json.loads(doc["members"]))
        return Party(
            party_id,
            doc["leader"],
            members,
            int(doc["created"]),
            int(doc["version"]),
            tuple(sorted(invites, key=lambda i: i.expires_at_ms)),
        )

    async def of(self, user_id: str, now: int | None = None) -> Party | None:
        party_id = await self.party_id_of(user_id)
        return await self.get(party_id, now) if party_id else None

    async def invitations(self, user_id: str, now: int | None = None) -> list[Invitation]:
        """The user's live invitations, newest last."""
        now = now_ms() if now is None else now
        raw = await self.redis.hgetall(lobby_keys.party_invited(user_id))
        out = []
        for k in raw:
            party_id = _text(k)
            party = await self.get(party_id, now)
            invite = party.invite_for(user_id, now) if party else None
            if party is None or invite is None:
                await self.redis.hdel(lobby_keys.party_invited(user_id), party_id)
                continue
            leader = next(m.username for m in party.members if m.user_id == party.leader)
            names = tuple(m.username for m in party.members)
            out.append(Invitation(party_id, leader, names, invite.expires_at_ms))
        return sorted(out, key=lambda i: i.expires_at_ms)

    async def _drop_invites(self, party_id: str, user_ids: list[str]) -> int:
        """Forget expired invitations; how many were still there (concurrent readers
        count each once)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for uid in user_ids:
                pipe.hdel(lobby_keys.party_invites(party_id), uid)
                pipe.hdel(lobby_keys.party_invited(uid), party_id)
            done = await pipe.execute()
        return sum(int(n) for n in done[::2])

    # -- changing --------------------------------------------------------------

    async def _retry(self, attempt: Callable[[], Awaitable[T | None]]) -> T:
        for _ in range(ATTEMPTS):
            result = await attempt()
            if result is not None:
                return result
        raise PartyRuleError(409, "party_busy", "the party is changing; try again")

    async def _party(self, party_id: str, now: int) -> Party:
        party = await self.get(party_id, now)
        if party is None:
            raise PartyRuleError(404, "party_not_found", "no such party")
        return party

    async def create(self, leader: Member, now: int | None = None) -> Party:
        now = now_ms() if now is None else now
        party_id = new_party_id()
        party = Party(party_id, leader.user_id, (leader,), now)
        ok = await self._create(
            keys=[lobby_keys.party(party_id), lobby_keys.party_of(leader.user_id)],
            args=[
                party_id,
                leader.user_id,
                _members_json(party.members),
                now,
            ],
        )
        if not int(ok):
            raise PartyRuleError(409, "already_in_party", "leave your party first")
        return party

    async def invite(
        self, party_id: str, by: str, invitee: Member, now: int | None = None
    ) -> tuple[Party, Invite]:
        now = now_ms() if now is None else now

        async def attempt() -> tuple[Party, Invite] | None:
            party = await self._party(party_id, now)
            in_party = await self.party_id_of(invitee.user_id) is not None
            invite = rules.check_invite(party, by, invitee, in_party, now, self.limits)
            doc = {
                "name": invite.username,
                "expires": invite.expires_at_ms,
                "by": invite.invited_by,
            }
            result = _text(
                await self._invite(
                    keys=[
                        lobby_keys.party(party_id),
                        lobby_keys.party_invites(party_id),
                        lobby_keys.party_of(invitee.user_id),
                        lobby_keys.party_invited(invitee.user_id),
                    ],
                    args=[
                        party_id,
                        party.version,
                        invitee.user_id,
                        json.dumps(doc),
                        invite.expires_at_ms,
                    ],
                )
            )
            if result == "already_in_party":
                raise PartyRuleError(409, result, f"{invitee.username} is in another party")
            if result != "ok":
                return None
            return party, invite

        try:
            out = await self._retry(attempt)
        except PartyRuleError:
            self.metrics.invites.labels("refused").inc()
            raise
        self.metrics.invites.labels("sent").inc()
        return out

    async def _commit(
        self,
        before: Party,
        after: Party | None,
        *,
        joiner: str = "",
        leavers: tuple[str, ...] = (),
        now: int,
    ) -> str:
        everyone = dict.fromkeys((*before.member_ids, *((joiner,) if joiner else ())))
        return _text(
            await self._change(
                keys=[
                    keys.QUEUE_EXPIRY,
                    lobby_keys.party(before.party_id),
                    lobby_keys.party_invites(before.party_id),
                ],
                args=[
                    keys.QUEUE_PREFIX,
                    before.party_id,
                    before.version,
                    now,
                    _members_json(after.members) if after else "",
                    after.leader if after else "",
                    joiner,
                    json.dumps(list(leavers)),
                    *everyone,
                ],
            )
        )

    async def join(self, party_id: str, user: Member, now: int | None = None) -> Party:
        """Accept an invitation: the user joins; the party's tickets leave the queues."""
        now = now_ms() if now is None else now

        async def attempt() -> Party | None:
            party = await self._party_or_invite_gone(party_id, user.user_id, now)
            in_party = await self.party_id_of(user.user_id) is not None
            after = rules.joined(party, user, in_party, now, self.limits)
            result = await self._commit(party, after, joiner=user.user_id, now=now)
            if result == "already_in_party":
                raise PartyRuleError(409, result, "leave your party first")
            if result == "not_invited":
                raise PartyRuleError(410, "invite_expired", "the invitation has expired")
            if result != "ok":
                return None
            if party.size == 1:
                self.metrics.formed.inc()
            return after

        party = await self._retry(attempt)
        self.metrics.invites.labels("accepted").inc()
        return party

    async def _party_or_invite_gone(self, party_id: str, user_id: str, now: int) -> Party:
        """The party; an invitee whose invitation expired learns that (not "no party")."""
        raw = await self.redis.hget(lobby_keys.party_invites(party_id), user_id)
        party = await self._party(party_id, now)
        if raw is not None and party.invite_for(user_id, now) is None and not party.has(user_id):
            expired = Invite(user_id, "", int(json.loads(raw)["expires"]))
            return Party(
                party.party_id,
                party.leader,
                party.members,
                party.created_at_ms,
                party.version,
                (*party.invites, expired),
            )
        return party

    async def uninvite(self, party_id: str, by: str, user_id: str, now: int | None = None) -> bool:
        """Decline (by the invitee) or revoke (by the leader) an invitation."""
        now = now_ms() if now is None else now
        party = await self._party(party_id, now)
        if by not in (user_id, party.leader):
            raise PartyRuleError(403, "not_party_leader", "only the party's leader may revoke")
        gone = await self.redis.hdel(lobby_keys.party_invites(party_id), user_id)
        await self.redis.hdel(lobby_keys.party_invited(user_id), party_id)
        if gone:
            self.metrics.invites.labels("declined" if by == user_id else "revoked").inc()
        return bool(gone)

    async def remove(
        self, party_id: str, user_id: str, by: str, now: int | None = None
    ) -> Party | None:
        """Leave (by == user_id) or kick (by the leader). None: the party is over."""
        now = now_ms() if now is None else now

        async def attempt() -> tuple[Party | None] | None:
            party = await self._party(party_id, now)
            after = rules.without(party, user_id, by)
            result = await self._commit(party, after, leavers=(user_id,), now=now)
            return (after,) if result == "ok" else None

        (after,) = await self._retry(attempt)
        return after

    async def disband(self, party_id: str, by: str, now: int | None = None) -> Party:
        """The leader ends the party; returns it as it was."""
        now = now_ms() if now is None else now

        async def attempt() -> Party | None:
            party = await self._party(party_id, now)
            rules.check_disband(party, by)
            result = await self._commit(party, None, leavers=party.member_ids, now=now)
            return party if result == "ok" else None

        return await self._retry(attempt)

    async def unqueue(self, user_id: str) -> int:
        """Take the user's party's tickets out of the queues (a member went away)."""
        party = await self.of(user_id)
        if party is None or party.size < 2:
            return 0
        return int(
            await self._unqueue(
                keys=[keys.QUEUE_EXPIRY],
                args=[keys.QUEUE_PREFIX, *party.member_ids],
            )
        )


def party_doc(party: Party, now: int) -> dict[str, Any]:
    """The party's wire form (members and pending invitations)."""
    return {
        "party_id": party.party_id,
        "leader": party.leader,
        "members": [
            {"user_id": m.user_id, "username": m.username, "leader": m.user_id == party.leader}
            for m in party.members
        ],
        "invites": [
            {"username": i.username, "expires_at_ms": i.expires_at_ms} for i in party.pending(now)
        ],
        "created_at_ms": party.created_at_ms,
    }
