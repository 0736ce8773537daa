"""Binding a new Match to a warm pool server, else to a pod of its own (a cold start).

Agones' GameServerAllocation, Packed: the pool controller's view of the servers
(`ServerDirectory`) gives the order (`packing.packed_order`), Redis decides
(`orchestration.allocation`): the binding is a SET NX, the assignment a script that
checks the server's own capacity. A cold start binds the match too, to a value no
pool server can have (`dedicated`), so two replicas never give one Match a pool
server and a pod of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from match_operator.builders import Allocated
from match_operator.servers import ServerDirectory, ServerView
from tradearena import tracing
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.pool import Assignment
from tradearena.orchestration import allocation
from tradearena.orchestration.packing import packed_order
from tradearena.redisconn import AnyRedis

DEDICATED_PREFIX = "pod/"  # a pod name never holds a "/": no pool server id looks like it
MAX_ATTEMPTS = 16  # servers tried per pass (a refusal moves to the next one)


def dedicated(match_id: str) -> str:
    """The binding of a match that runs on a pod of its own."""
    return f"{DEDICATED_PREFIX}{match_id}"


@dataclass(frozen=True, slots=True)
class Cold:
    """A pod of its own, and why."""

    reason: str


def _describe(views: list[ServerView]) -> str:
    pools = sorted({v.pool for v in views})
    free = sum(max(0, v.capacity - v.count) for v in views if v.candidate().allocatable)
    ready = sum(1 for v in views if v.candidate().ready and not v.draining)
    return f"pool {', '.join(pools)}: {len(views)} server(s), {ready} ready, {free} free slot(s)"


async def allocate_match(
    redis: AnyRedis | None,
    directory: ServerDirectory | None,
    namespace: str,
    spec: MatchSpec,
) -> Allocated | Cold:
    """A pool server for a new match, or a cold start (bound as such) with the reason."""
    if redis is None or directory is None:
        return Cold("no server pools" if directory is None else "no Redis to allocate with")
    started = time.monotonic()

    def elapsed_ms() -> float:
        return (time.monotonic() - started) * 1000

    # The assignment carries the current span (`operator.allocate`) of the match's trace.
    assignment = Assignment.of(spec, int(time.time() * 1000), tracing.current_traceparent())
    mid = spec.match_id
    tried: set[str] = set()
    views = directory.candidates(namespace, spec)
    reason = (
        f"no pool serves {spec.mode}/{spec.format}"
        if not views
        else f"no room ({_describe(views)})"
    )
    for _ in range(MAX_ATTEMPTS):
        bound = await allocation.bound_server(redis, mid)
        if bound is not None:  # an earlier pass or another replica bound it: keep that
            if bound.startswith(DEDICATED_PREFIX):
                return Cold("bound to a pod of its own already")
            outcome = await allocation.allocate(redis, bound, assignment)  # idempotent
            if outcome == allocation.ASSIGNED:
                view = directory.server(namespace, bound)
                return Allocated(bound, view, elapsed_ms(), adopted=True)
            continue  # refused and unbound: allocate afresh
        order = [
            c for c in packed_order([v.candidate() for v in views]) if c.server_id not in tried
        ]
        if not order:
            break
        server = order[0].server_id
        tried.add(server)
        outcome = await allocation.allocate(redis, server, assignment)
        if outcome == allocation.ASSIGNED:
            directory.note_allocated(namespace, server, mid)
            return Allocated(server, directory.server(namespace, server), elapsed_ms())
        if outcome in (allocation.FULL, allocation.NOT_ACCEPTING):
            reason = f"every pool server refused (full, draining or not ready; {_describe(views)})"
        # BOUND_ELSEWHERE: the next turn adopts the bound server
    for _ in range(MAX_ATTEMPTS):
        own = await allocation.bind(redis, mid, dedicated(mid))
        if own == dedicated(mid):
            return Cold(reason)
        # Another replica bound a pool server meanwhile: that server, if it takes it.
        if await allocation.allocate(redis, own, assignment) == allocation.ASSIGNED:
            return Allocated(own, directory.server(namespace, own), elapsed_ms(), adopted=True)
    raise RuntimeError(f"match {mid}: no stable binding after {MAX_ATTEMPTS} attempts")
