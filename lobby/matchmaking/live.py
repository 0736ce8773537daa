"""Live matches and spectator tokens: the reading side (`live_view` decides).

    live list:  Orchestrator.list_active -> for each Ready/Live match, from Redis its
                header (`keys.match_meta`), status hash (`keys.match_status`) and, on
                a pool server, its assignment (format, symbol) -> `match_options`
                (private matches are left out) -> usernames (PostgreSQL)
    spectate:   the same for one match, fresh (never cached), then a spectator token
                (`Signer.spectator_token`) for the match's server

The list is rebuilt at most every `live_cache_s` per replica (`LiveBoard`), however
many clients poll it; a build runs once at a time and every waiting caller gets it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from lobby import match_options
from lobby.match_options import MatchKind
from lobby.matchmaking import live_view as view
from lobby.state import (
    CATALOGUE,
    DB,
    LIVE_BOARD,
    ORCHESTRATOR,
    REDIS,
    SETTINGS,
    SIGNER,
    SPECTATE_METRICS,
)
from tradearena.contracts import keys
from tradearena.contracts.orchestration import MatchStatus
from tradearena.contracts.phases import MatchPhase
from tradearena.redisconn import AnyRedis

log = logging.getLogger("lobby.matchmaking.live")

# A server is asked for its view only once it can be reached.
REACHABLE = (MatchPhase.READY, MatchPhase.LIVE)


class SpectateMetrics:
    """On the lobby's /metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.tokens = Counter(
            "lobby_spectate_tokens_total",
            "Spectator token requests by outcome (issued, or the problem code)",
            ["outcome"],
            registry=registry,
        )
        self.live_matches = Gauge(
            "lobby_live_matches",
            "Matches in the public live list when it was last built",
            registry=registry,
        )
        self.live_builds = Counter(
            "lobby_live_list_builds_total",
            "Times the live list was read from the orchestrator, Redis and PostgreSQL",
            registry=registry,
        )


class SpectateRefusedError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _json(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


async def read_sightings(
    redis: AnyRedis, statuses: Mapping[str, MatchStatus | None]
) -> list[view.Sighting]:
    """What Redis holds about each match (two round trips, whatever their number)."""
    ids = list(statuses)
    if not ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for match_id in ids:
            pipe.get(keys.match_meta(match_id))
            pipe.hgetall(keys.match_status(match_id))
            pipe.get(keys.match_server(match_id))
        raw = await pipe.execute()
    bound = {ids[i // 3]: _text(raw[i + 2]) for i in range(0, len(raw), 3) if raw[i + 2]}
    assignments: dict[str, dict[str, Any] | None] = {}
    if bound:
        async with redis.pipeline(transaction=False) as pipe:
            for match_id, server_id in bound.items():
                pipe.hget(keys.server_matches(server_id), match_id)
            found = await pipe.execute()
        assignments = {m: _json(a) for m, a in zip(bound, found, strict=True)}
    out = []
    for n, match_id in enumerate(ids):
        header, server = raw[3 * n], raw[3 * n + 1] or {}
        out.append(
            view.Sighting(
                match_id=match_id,
                status=statuses[match_id],
                header=_json(header),
                server={_text(k): _text(v) for k, v in server.items()},
                assignment=assignments.get(match_id),
            )
        )
    return out


async def usernames(db: asyncpg.Pool, user_ids: Iterable[str]) -> dict[str, str]:
    ids = []
    for user_id in dict.fromkeys(user_ids):
        try:
            ids.append(uuid.UUID(user_id))
        except ValueError:
            continue  # not an account of this lobby (a bot's or a test's name)
    if not ids:
        return {}
    rows = await db.fetch("SELECT id, username FROM users WHERE id = ANY($1::uuid[])", ids)
    return {str(r["id"]): str(r["username"]) for r in rows}


@dataclass
class LiveSnapshot:
    matches: list[view.Live] = field(default_factory=list)
    private: Collection[str] = frozenset()
    usernames: dict[str, str] = field(default_factory=dict)
    built_at: float = float("-inf")  # monotonic seconds


class LiveBoard:
    """The live matches as this replica last read them (at most `ttl_s` old)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.snapshot = LiveSnapshot()
        self._lock = asyncio.Lock()

    async def get(self, app: web.Application) -> LiveSnapshot:
        if time.monotonic() - self.snapshot.built_at < self.ttl_s:
            return self.snapshot
        async with self._lock:  # one build at a time; the others take its result
            if time.monotonic() - self.snapshot.built_at >= self.ttl_s:
                self.snapshot = await build(app)
            return self.snapshot


async def build(app: web.Application) -> LiveSnapshot:
    started = time.monotonic()
    statuses = await app[ORCHESTRATOR].list_active()
    reachable = {s.match_id: s for s in statuses if s.phase in REACHABLE}
    sightings = await read_sightings(app[REDIS], reachable)
    catalogue, symbol = app[CATALOGUE], app[SETTINGS].symbol
    lives = [m for s in sightings if (m := view.live(s, catalogue, symbol)) is not None]
    kinds = await match_options.kinds(app[DB], [m.match_id for m in lives])
    private = frozenset(i for i, k in kinds.items() if k is MatchKind.PRIVATE)
    public_players = [p for m in lives if m.match_id not in private for p in m.players]
    names = await usernames(app[DB], public_players)
    metrics = app[SPECTATE_METRICS]
    metrics.live_builds.inc()
    metrics.live_matches.set(len(lives) - len(private))
    return LiveSnapshot(lives, private, names, started)


async def live_page(app: web.Application, mode: str | None, limit: int) -> view.LivePage:
    snap = await app[LIVE_BOARD].get(app)
    return view.listing(snap.matches, snap.private, snap.usernames, mode, limit)


async def grant(app: web.Application, match_id: str, user_id: str) -> view.SpectateGrant:
    """A spectator token for `user_id` on a live match; `SpectateRefusedError(code)` if not."""
    status = await app[ORCHESTRATOR].status(match_id)
    [sighting] = await read_sightings(app[REDIS], {match_id: status})
    db = app[DB]
    guests = await match_options.guests(db, match_id)
    recorded = False
    if not view.known(sighting):
        recorded = bool(await db.fetchval("SELECT true FROM matches WHERE id = $1", match_id))
    code = view.refusal(sighting, guests, user_id, recorded)
    if code is not None:
        raise SpectateRefusedError(code)
    live = view.live(sighting, app[CATALOGUE], app[SETTINGS].symbol)
    assert live is not None and live.url is not None  # refusal() checked both
    ttl_s = view.token_ttl_s(
        live.end_at,
        int(time.time() * 1000),
        live.spectating.delay_ms,
        app[SETTINGS].spectate_token_margin_s,
    )
    token = app[SIGNER].spectator_token(match_id, user_id, ttl_s)
    names = await usernames(db, live.players)
    return view.SpectateGrant(
        match_id=match_id,
        url=live.url,
        token=token,
        delay_ms=live.spectating.delay_ms,
        players=view.player_names(live.players, names),
    )
