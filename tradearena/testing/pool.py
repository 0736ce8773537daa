"""Assigning matches to a pool server in tests, the way an allocator does."""

from __future__ import annotations

from redis.asyncio import Redis

from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.phases import ServerPhase
from tradearena.contracts.pool import Assignment, ServerState
from tradearena.orchestration import allocation
from tradearena.testing.waiting import eventually


async def assign(
    redis: Redis,
    server_id: str,
    match_id: str,
    players: tuple[str, ...],
    *,
    mode: str = "standard",
    duration_ms: int = 600_000,
    now_ms: int,
) -> Assignment:
    """allocate() one match to the server; it must be ASSIGNED."""
    spec = MatchSpec(match_id, mode, "blitz", duration_ms, players)
    assignment = Assignment.of(spec, now_ms)
    outcome = await allocation.allocate(redis, server_id, assignment)
    assert outcome == allocation.ASSIGNED, outcome
    return assignment


async def server_phase(redis: Redis, match_id: str) -> str | None:
    raw = await redis.hget(keys.match_status(match_id), "phase")
    return raw.decode() if isinstance(raw, bytes) else raw


async def wait_ready(redis: Redis, match_id: str, within: float = 20) -> None:
    """The server's acknowledgement: the match's own Ready on its status."""

    async def ready() -> bool:
        return await server_phase(redis, match_id) == str(ServerPhase.READY)

    await eventually(ready, within)


async def wait_accepting(redis: Redis, server_id: str, within: float = 30) -> None:
    async def accepting() -> bool:
        return await redis.hget(keys.server_state(server_id), ServerState.READY) == b"1"

    await eventually(accepting, within)
