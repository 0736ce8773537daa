"""A local WebSocket server speaking Binance's combined-stream protocol, for tests.

It serves `/stream?streams=...` and sends frames exactly as Binance does;
each test scripts what it does per connection (trades, silence, pings,
malformed frames, cuts, a shutdown event, refusals).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

T0 = 1_790_000_000_000


def agg_trade(a: int, price: str = "100000.00", symbol: str = "BTCUSDT", t0: int = T0) -> str:
    """Aggregate trade `a`, traded at `t0 + a` ms."""
    data = {
        "e": "aggTrade",
        "E": t0 + a,
        "s": symbol,
        "a": a,
        "p": price,
        "q": "0.01000000",
        "f": a * 10,
        "l": a * 10 + 1,
        "T": t0 + a,
        "m": False,
        "M": True,
    }
    return json.dumps({"stream": f"{symbol.lower()}@aggTrade", "data": data})


def kline(n: int) -> str:
    data = {
        "e": "kline",
        "E": T0 + n * 1000,
        "s": "BTCUSDT",
        "k": {
            "t": T0 + n * 1000,
            "T": T0 + n * 1000 + 999,
            "s": "BTCUSDT",
            "i": "1s",
            "f": 1,
            "L": 2,
            "o": "100000.00",
            "c": "100001.00",
            "h": "100001.00",
            "l": "100000.00",
            "v": "0.1",
            "n": 2,
            "x": True,
            "q": "10000.1",
            "V": "0.05",
            "Q": "5000.05",
            "B": "0",
        },
    }
    return json.dumps({"stream": "btcusdt@kline_1s", "data": data})


@dataclass
class Conn:
    index: int
    query: str
    ws: web.WebSocketResponse
    pongs: list[bytes] = field(default_factory=list)
    pong_event: asyncio.Event = field(default_factory=asyncio.Event)
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)


Script = Callable[[Conn], Awaitable[None]]


@dataclass
class FakeBinance:
    """Serves the combined-stream endpoint; `scripts[i]` drives connection i (the last repeats)."""

    scripts: list[Script]
    refuse_first: int = 0  # answer the first N attempts with HTTP 503
    attempts: int = 0
    conns: list[Conn] = field(default_factory=list)
    new_conn: asyncio.Event = field(default_factory=asyncio.Event)

    async def handler(self, request: web.Request) -> web.StreamResponse:
        self.attempts += 1
        if self.attempts <= self.refuse_first:
            raise web.HTTPServiceUnavailable
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = Conn(len(self.conns), request.query_string, ws)
        self.conns.append(conn)
        self.new_conn.set()
        reader = asyncio.create_task(self._read(conn))
        script = self.scripts[min(conn.index, len(self.scripts) - 1)]
        try:
            await script(conn)
            await reader  # keep the connection until the client leaves
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        return ws

    async def _read(self, conn: Conn) -> None:
        async for msg in conn.ws:
            if msg.type is WSMsgType.PONG:
                conn.pongs.append(msg.data)
                conn.pong_event.set()
        conn.client_closed.set()

    async def connection(self, index: int, within: float = 20) -> Conn:
        async with asyncio.timeout(within):
            while len(self.conns) <= index:
                self.new_conn.clear()
                await self.new_conn.wait()
        return self.conns[index]


@contextlib.asynccontextmanager
async def fake_binance(fake: FakeBinance) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/stream", fake.handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"ws://127.0.0.1:{server.port}"
    finally:
        for conn in fake.conns:
            with contextlib.suppress(Exception):
                await conn.ws.close()
        await server.close()


async def hold(conn: Conn) -> None:
    """Stay connected, silent, until the client leaves."""
    await conn.client_closed.wait()
