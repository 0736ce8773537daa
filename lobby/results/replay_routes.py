"""`GET /api/v1/matches/{match_id}/replay`: a finished match, replayed and verified, as
frames for the replay viewer (`replay_view` documents their form).

A finished match never changes, so the answer is cacheable for good: a strong ETag
(the view's version and the log digest), `Cache-Control: private, max-age=<a year>,
immutable` (private: whether a caller may watch depends on who asks). A revalidation
(`If-None-Match`) costs the permission check only. Built documents are kept, compact
JSON and gzipped, in a small in-process cache (`ReplayCache`, bounded in bytes), so
the replay runs once per replica however many watch, and at most `BUILDS_AT_ONCE`
replays run at a time. Each request counts against the
caller's `replay` budget (`TRADEARENA_REPLAY_LIMIT_USER` per `rate_window_s`) on top
of the API's general limit: a cache miss is CPU work.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from lobby.http.api import Operation, path_of, principal
from lobby.http.problems import too_many
from lobby.http.schemas import MatchPath
from lobby.results import replay, replay_view
from lobby.state import API, DB, LIMITER, REDIS, REPLAY_CACHE, SETTINGS

CACHE_CONTROL = "private, max-age=31536000, immutable"
CACHE_BYTES = 32 << 20  # the built documents one replica keeps (compact JSON + gzip)
# Replays one replica runs at once: each is CPU in a thread and tens of MB while it runs
# (a 30-minute log parsed and replayed); more wait their turn.
BUILDS_AT_ONCE = 2


class ReplayPlayer(BaseModel):
    player: str
    username: str


class ReplayStanding(BaseModel):
    rank: int | None
    player: str
    username: str
    equity: str | None
    realized_pnl: str | None
    fees: str | None
    trades: int
    status: str


class Replay(BaseModel):
    """A finished match replayed from its log and verified against its stored result.

    `frames`: one per second of match time from the start to the end and one at every
    fill, in time order; `{"t": ms since started_at, "p": official price, "b": board
    (player indexes, rank 1 first), "e"/"c"/"pos"/"s": {"<player index>": equity / cash /
    position or null / status}, "f": [[index, reason, side, qty, price, realized_pnl]]}`.
    The first frame has every key; later ones only what changed (see docs/web.md).
    `candles`: the official 1 s candles, `[open time - started_at, o, h, l, c, prices]`."""

    match_id: str
    mode: str
    format: str
    symbol: str
    kind: str
    phase: str
    verified: bool
    view: int
    frame_ms: int
    started_at: int | None
    ended_at: int | None
    final_price: str | None
    log_entries: int | None
    log_digest: str | None
    players: list[ReplayPlayer]
    result: list[ReplayStanding]
    frames: list[dict[str, Any]]
    candles: list[list[Any]]


class ReplayCache:
    """Built replay documents by ETag, least recently used out first, bounded in bytes;
    a document being built is built once however many ask for it meanwhile."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.builds = 0  # documents built (replays run) by this replica
        self._items: OrderedDict[str, tuple[bytes, bytes]] = OrderedDict()
        self._building: dict[str, asyncio.Task[tuple[bytes, bytes]]] = {}
        self._slots = asyncio.Semaphore(BUILDS_AT_ONCE)

    async def get_or_build(
        self, etag: str, build: Callable[[], Awaitable[bytes]]
    ) -> tuple[bytes, bytes]:
        item = self.get(etag)
        if item is not None:
            return item
        task = self._building.get(etag)
        if task is None:
            task = asyncio.create_task(self._build(etag, build))
            self._building[etag] = task
            task.add_done_callback(lambda _: self._building.pop(etag, None))
        return await asyncio.shield(task)  # a caller gone does not cancel the others'

    async def _build(self, etag: str, build: Callable[[], Awaitable[bytes]]) -> tuple[bytes, bytes]:
        async with self._slots:
            body = await build()
        self.builds += 1
        packed = await asyncio.to_thread(gzip.compress, body, 6)
        return self.put(etag, body, packed)

    def get(self, etag: str) -> tuple[bytes, bytes] | None:
        item = self._items.get(etag)
        if item is not None:
            self._items.move_to_end(etag)
        return item

    def put(self, etag: str, body: bytes, packed: bytes) -> tuple[bytes, bytes]:
        item = (body, packed)
        size = len(item[0]) + len(item[1])
        if etag not in self._items and size <= self.max_bytes:
            self._items[etag] = item
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (a, b) = self._items.popitem(last=False)
                self.bytes -= len(a) + len(b)
        return item


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def etag_of(stored: replay.StoredMatch) -> str:
    """The view's version, the match, its log digest and its stored result: what the
    document is made of (a stored result corrected later is a new document)."""
    h = hashlib.sha256(f"{replay_view.VIEW_VERSION}|{stored.match['id']}".encode())
    for key in ("log_digest", "ledger_digest", "phase", "final_price"):
        h.update(f"|{stored.match[key]}".encode())
    for p in stored.players:
        h.update(
            "|{user_id},{rank},{status},{equity},{realized_pnl},{fees},{trades}".format(
                **p
            ).encode()
        )
    return f'"replay-{h.hexdigest()[:40]}"'


def _matches(header: str, etag: str) -> bool:
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in header.split(","))


async def match_replay(request: web.Request) -> web.StreamResponse:
    match_id = path_of(request, MatchPath).match_id
    user_id = principal(request).user_id
    app = request.app
    settings = app[SETTINGS]
    decision = await app[LIMITER].check(
        "replay", f"user:{user_id}", settings.replay_limit_user, settings.rate_window_s
    )
    if not decision.allowed:
        raise too_many("rate_limited", "too many replays; slow down", decision.retry_after_s)
    stored = await replay.stored(app[DB], match_id, user_id)
    etag = etag_of(stored)
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL,
        "Vary": "Authorization, Accept-Encoding",
    }
    if _matches(request.headers.get("If-None-Match", ""), etag):
        return web.Response(status=304, headers=headers)

    async def build() -> bytes:
        doc = await replay.load(app[DB], app[REDIS], stored)
        return await asyncio.to_thread(_encode, doc)

    plain, packed = await app[REPLAY_CACHE].get_or_build(etag, build)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        headers["Content-Encoding"] = "gzip"
        body = packed
    else:
        body = plain
    return web.Response(body=body, content_type="application/json", headers=headers)


def add_routes(app: web.Application) -> None:
    app[REPLAY_CACHE] = ReplayCache()
    app[API].add(
        app,
        Operation(
            "GET",
            "/api/v1/matches/{match_id}/replay",
            match_replay,
            "matchReplay",
            "A finished match replayed from its log, verified, as frames for the viewer",
            "matches",
            responses={200: Replay, 304: None},
            path_params=MatchPath,
            auth="user",
            errors=(404, 409, 410),
            description=(
                "Any signed-in player may watch a ranked or casual match; a private match "
                "only its players, host and invitees (`private_match` 403). "
                "`match_not_found` 404, "
                "`match_not_finished` 409 (no stored result yet), `replay_mismatch` 409 "
                "(the log does not reproduce the stored result), `replay_unavailable` 410 "
                "(the log is no longer kept). Cacheable for good: ETag, If-None-Match."
            ),
        ),
    )
