"""Binding a match to a pool server through Redis, safe under concurrent allocators.

Two steps, each atomic on its own slot (so it holds on a Redis Cluster too):
1. `bind`: SET NX of the match's server (`keys.match_server`): one match is never
   bound to two servers, whichever operator replica or runtime tries first.
2. `assign`: a script on the server's keys refuses a server that is draining, not
   ready or full (its own declared capacity), else records the assignment and wakes
   the server through its inbox stream.
A bound match whose assignment is refused is unbound again (`unbind`, only if still
bound to that server). The server acknowledges by reporting the match Ready on the
match's phase stream; it removes the match from its hash once the result is out.
"""

from __future__ import annotations

from tradearena.contracts import keys
from tradearena.contracts.pool import INBOX_CANCEL_FIELD, INBOX_FIELD, Assignment, ServerState
from tradearena.redisconn import AnyRedis

BINDING_TTL_S = 7 * 24 * 3600

_ASSIGN = f"""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 1 end
local state = redis.call('HMGET', KEYS[3], '{ServerState.CAPACITY}', '{ServerState.READY}',
                         '{ServerState.DRAINING}')
if state[2] ~= '1' or state[3] == '1' then return -1 end
local capacity = tonumber(state[1]) or 0
if redis.call('HLEN', KEYS[1]) >= capacity then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*', '{INBOX_FIELD}', ARGV[1])
return 1
"""

_UNBIND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

ASSIGNED = 1
FULL = 0
NOT_ACCEPTING = -1  # not ready, or draining
BOUND_ELSEWHERE = -2  # the match is bound to another server already


async def bind(redis: AnyRedis, match_id: str, server_id: str) -> str:
    """Bind the match to `server_id` unless it is bound already; returns its server."""
    key = keys.match_server(match_id)
    if await redis.set(key, server_id, nx=True, ex=BINDING_TTL_S):
        return server_id
    bound = await redis.get(key)
    if bound is None:  # expired between the two calls: try once more
        return await bind(redis, match_id, server_id)
    return bound.decode() if isinstance(bound, bytes) else str(bound)


async def bound_server(redis: AnyRedis, match_id: str) -> str | None:
    raw = await redis.get(keys.match_server(match_id))
    return raw.decode() if isinstance(raw, bytes) else raw


async def unbind(redis: AnyRedis, match_id: str, server_id: str) -> bool:
    return bool(await redis.eval(_UNBIND, 1, keys.match_server(match_id), server_id))


async def assign(redis: AnyRedis, server_id: str, assignment: Assignment) -> int:
    """ASSIGNED, FULL or NOT_ACCEPTING (see the module's docstring)."""
    result = await redis.eval(
        _ASSIGN,
        3,
        keys.server_matches(server_id),
        keys.server_inbox(server_id),
        keys.server_state(server_id),
        assignment.match_id,
        assignment.to_json(),
    )
    return int(result)


async def allocate(redis: AnyRedis, server_id: str, assignment: Assignment) -> int:
    """bind + assign; on refusal the binding is undone. ASSIGNED also when the match was
    already bound to and recorded on this server (an allocator retrying)."""
    bound = await bind(redis, assignment.match_id, server_id)
    if bound != server_id:
        return BOUND_ELSEWHERE
    outcome = await assign(redis, server_id, assignment)
    if outcome != ASSIGNED:
        await unbind(redis, assignment.match_id, server_id)
    return outcome


async def hosted(redis: AnyRedis, server_id: str) -> dict[str, Assignment]:
    """The matches a server hosts now (its assignments)."""
    raw = await redis.hgetall(keys.server_matches(server_id))
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): Assignment.from_json(v)
        for k, v in raw.items()
    }


async def request_cancel(redis: AnyRedis, server_id: str, match_id: str, reason: str) -> None:
    """Cancel one hosted match: the reason where the server reads it, then a wake-up."""
    await redis.set(keys.match_cancel(match_id), reason, ex=24 * 3600)
    await redis.xadd(
        keys.server_inbox(server_id),
        {INBOX_CANCEL_FIELD: match_id},
        maxlen=1000,
        approximate=True,
    )
