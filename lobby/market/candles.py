"""`GET /api/v1/symbols/{symbol}/candles`: a symbol's closed candles, never newer than
the official price of any format (`candles_view` decides; this reads Redis).

The candles come from the streams the feed relay writes (`keys.candles`,
`contracts.candles`); see docs/candles.md.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from lobby.http.api import API_PREFIX, Operation, path_of, query_of
from lobby.http.problems import problem
from lobby.http.schemas import Body
from lobby.market import candles_view as view
from lobby.state import API, CANDLE_CAP_MS, CATALOGUE, REDIS, SETTINGS
from tradearena.contracts import keys
from tradearena.contracts.candles import CandleInterval, decode_candle

MAX_MS = 2**53 - 1  # the largest integer a JSON client keeps exact


class CandlesPath(Body):
    symbol: str = Field(pattern=r"^[A-Za-z0-9]{1,20}$", examples=["BTCUSDT"])


class CandlesQuery(Body):
    interval: CandleInterval = CandleInterval.M1
    from_: int | None = Field(default=None, alias="from", ge=0, le=MAX_MS)
    to: int | None = Field(default=None, ge=0, le=MAX_MS)
    limit: int = Field(default=500, ge=1, le=1000)


class Candle(BaseModel):
    """One closed candle: open time (epoch ms), open, high, low, close (exact decimals) and
    the number of ticks."""

    t: int
    o: str
    h: str
    l: str  # noqa: E741 - the wire name
    c: str
    n: int


class CandlePage(BaseModel):
    """Closed candles of a symbol, ascending by open time."""

    symbol: str
    interval: CandleInterval
    candles: list[Candle]
    next_from: int | None = Field(description="pass as `from` for the next page; null: no more")
    until: int = Field(description="the fairness cap used: no candle closes after it (epoch ms)")


async def candles(request: web.Request) -> web.StreamResponse:
    symbol = path_of(request, CandlesPath).symbol.upper()
    query = query_of(request, CandlesQuery)
    if symbol != request.app[SETTINGS].symbol.upper():
        raise problem(404, "unknown_symbol", f"no candles for symbol {symbol!r}")
    if query.from_ is not None and query.to is not None and query.from_ >= query.to:
        raise problem(422, "invalid_range", "`from` must be before `to`")
    now = time.time_ns() // 1_000_000
    win = view.window(
        query.interval, query.from_, query.to, query.limit, now, request.app[CANDLE_CAP_MS]
    )
    redis = request.app[REDIS]
    key = keys.candles(symbol, query.interval)
    raw: Any = []
    if not win.empty:
        if win.start is None:
            newest: Any = await redis.xrevrange(key, max=f"{win.last_open}-0", count=win.limit)
            raw = list(reversed(newest))
        else:
            raw = await redis.xrange(key, min=f"{win.start}-0", count=win.limit + 1)
    found = [decode_candle(i, f) for i, f in raw]
    later = any(c.t > win.last_open for c in found)
    if win.start is not None and not later and len(found) <= win.limit and not win.clamped:
        # a window `to` ends before the cap: is there a stored candle after it?
        later = bool(await redis.xrange(key, min=f"{win.last_open + 1}-0", count=1))
    result = view.page(win, found, later)
    body = CandlePage(
        symbol=symbol,
        interval=query.interval,
        candles=[Candle(**c.wire()) for c in result.candles],
        next_from=result.next_from,
        until=win.until,
    )
    text = body.model_dump_json().encode()
    headers = {"Cache-Control": view.cache_control(result.final)}
    if result.final:
        # Over what cannot change: `until` (the cap of this moment) is left out, and a
        # cached copy with an older `until` is still true.
        tag = view.etag(body.model_dump_json(exclude={"until"}).encode())
        headers["ETag"] = tag
        if view.matches_etag(request.headers.get("If-None-Match"), tag):
            return web.Response(status=304, headers=headers)
    return web.Response(body=text, content_type="application/json", headers=headers)


def add_routes(app: web.Application) -> None:
    app[CANDLE_CAP_MS] = view.fairness_cap_ms(app[CATALOGUE])
    app[API].add(
        app,
        Operation(
            "GET",
            API_PREFIX + "/symbols/{symbol}/candles",
            candles,
            "getCandles",
            "Closed candles of a symbol, never newer than any format's official price",
            "market",
            responses={200: CandlePage, 304: None},
            path_params=CandlesPath,
            query=CandlesQuery,
            errors=(404,),
            description=(
                "Candles with `from <= t < to` (open times, epoch ms) whose close time is at or"
                " before `until` = now - the longest price delay of any format; without"
                " `from`, the newest `limit`. Pages that can no longer change are cached"
                " for a day (with an ETag), the newest for a second."
            ),
        ),
    )
