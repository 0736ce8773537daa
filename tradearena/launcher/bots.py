"""`tradearena bots`: simulated players speaking the real protocols.

Each bot registers (or logs in) over REST, listens on the lobby's Socket.IO
namespace, queues, and when its match is ready connects to the match server's
`/match` namespace and trades like an impatient human (orders with stop-loss
and take-profit, closes, abilities, peeks), sometimes dropping its connection
and coming back. Decisions come from the same scripted player the in-process
simulation uses; the bot keeps its view of the game from the server's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

from matchserver.broadcast import ACK_EVERY
from matchserver.simulate import ScriptedPlayer
from tradearena import tracing
from tradearena.contracts.tracing import NOTIFICATION_FIELD, SERVICE_BOTS, SOCKET_AUTH_FIELD
from tradearena.launcher.dial import DialOptions

_tracer = tracing.tracer("tradearena.launcher.bots")


@dataclass(frozen=True)
class BotOptions:
    url: str
    count: int = 20
    mode: str = "duel"
    format: str = "blitz"
    rounds: int = 1
    prefix: str = "bot"
    seed: int = 1
    think_s: tuple[float, float] = (0.5, 2.0)
    reconnect_probability: float = 0.2
    match_ready_timeout_s: float = 300
    # How match servers are dialed (the url each match_ready names, as given): the CA
    # trusted for wss:// and an optional host map.
    dial: DialOptions = field(default_factory=DialOptions)


@dataclass
class BotStats:
    registered: int = 0
    matches_played: int = 0
    matches_ended: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    tick_latency_ms: list[int] = field(default_factory=list)
    match_ids: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.tick_latency_ms)

        def pct(p: float) -> int | None:
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None

        return {
            "registered": self.registered,
            "matches_played": self.matches_played,
            "matches_ended": self.matches_ended,
            "match_ids": sorted(self.match_ids),
            "actions": dict(self.actions),
            "reconnects": self.reconnects,
            "errors": self.errors[:20],
            "error_count": len(self.errors),
            "tick_latency_p50_ms": pct(0.5),
            "tick_latency_p99_ms": pct(0.99),
        }


class Bot:
    def __init__(
        self, n: int, options: BotOptions, stats: BotStats, http: aiohttp.ClientSession
    ) -> None:
        self.n = n
        self.options = options
        self.stats = stats
        self.http = http
        self.rng = random.Random(options.seed * 100_003 + n)  # noqa: S311 - simulated players
        self.username = f"{options.prefix}-{n}"
        self.password = f"pw-{secrets.token_hex(8)}-{options.prefix}"
        self.token = ""
        self.ready: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.lobby = socketio.AsyncClient(reconnection=True)

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST, honouring 429/503 with Retry-After like a well-behaved client."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        tracing.inject(headers)  # the current round's span, if traced
        for _ in range(30):
            async with self.http.post(
                f"{self.options.url}{path}", json=body, headers=headers
            ) as resp:
                payload = await resp.json(content_type=None) or {}
                if resp.status not in (429, 503):
                    return resp.status, payload
                wait = float(resp.headers.get("Retry-After", "1"))
            await asyncio.sleep(min(30.0, wait) * self.rng.uniform(1.0, 1.5))
        return resp.status, payload

    async def sign_in(self) -> None:
        creds = {"username": self.username, "password": self.password}
        status, body = await self._post("/api/v1/auth/register", creds)
        if status not in (200, 201):
            raise RuntimeError(f"register {self.username}: {status} {body.get('code')}")
        status, body = await self._post("/api/v1/auth/login", creds)
        if status != 200:
            raise RuntimeError(f"login {self.username}: {status} {body.get('code')}")
        self.token = body["access_token"]
        self.stats.registered += 1

        @self.lobby.on("notification", namespace="/lobby")
        async def on_note(note: dict[str, Any]) -> None:
            if note.get("kind") == "match_ready":
                await self.ready.put(note["payload"])

        await self.lobby.connect(
            self.options.url,
            namespaces=["/lobby"],
            transports=["websocket"],
            auth={"token": self.token},
        )

    async def play_rounds(self) -> None:
        for _ in range(self.options.rounds):
            with _tracer.start_as_current_span(
                "bot.round", context=tracing.ROOT, attributes={"player.name": self.username}
            ):
                if not await self.play_round():
                    return

    async def play_round(self) -> bool:
        status, body = await self._post(
            "/api/v1/queue", {"mode": self.options.mode, "format": self.options.format}
        )
        if status not in (200, 201):
            self.stats.errors.append(f"{self.username} queue: {status} {body.get('code')}")
            return False
        ready = await asyncio.wait_for(self.ready.get(), self.options.match_ready_timeout_s)
        await self.play(ready)
        return True

    async def play(self, ready: dict[str, Any]) -> None:
        match_id, url, token = ready["match_id"], ready["url"], ready["token"]
        self.stats.matches_played += 1
        self.stats.match_ids.add(match_id)
        scripted = ScriptedPlayer(self.username, self.rng)
        state: dict[str, Any] = {}
        ended = asyncio.Event()
        started_at: list[int] = []

        def client() -> socketio.AsyncClient:
            sio = socketio.AsyncClient(reconnection=False, http_session=self.options.dial.session)
            acked: list[int] = []  # the last tick seq acknowledged on this connection

            @sio.on("tick", namespace="/match")
            async def on_tick(data: dict[str, Any]) -> None:
                state["official_price"] = data["price"]
                self.stats.tick_latency_ms.append(int(time.time() * 1000) - int(data["at"]))
                # Flow control (docs/matchserver.md): acknowledge about every 4th tick.
                seq = data.get("seq")
                if type(seq) is int and (not acked or seq - acked[0] >= ACK_EVERY):
                    acked[:] = [seq]
                    await sio.emit("tick_ack", {"seq": seq}, namespace="/match")

            @sio.on("fill", namespace="/match")
            async def on_fill(data: dict[str, Any]) -> None:
                state["position"] = data.get("position")
                state["balance"] = data.get("balance")

            @sio.on("charges", namespace="/match")
            async def on_charges(data: dict[str, Any]) -> None:
                state["charges"] = data["charges"]

            @sio.on("phase", namespace="/match")
            async def on_phase(data: dict[str, Any]) -> None:
                state["phase"] = data["phase"]
                if data["phase"] == "live":
                    started_at.append(int(data["at"]))

            @sio.on("match_end", namespace="/match")
            async def on_end(data: dict[str, Any]) -> None:
                ended.set()

            return sio

        async def join() -> socketio.AsyncClient:
            sio = client()
            auth = {"token": token}
            journey = ready.get(NOTIFICATION_FIELD)  # the lobby's trace of this player's journey
            if isinstance(journey, str) and journey:
                auth[SOCKET_AUTH_FIELD] = journey
            await sio.connect(url, namespaces=["/match"], transports=["websocket"], auth=auth)
            reply = await sio.call("sync", {}, namespace="/match", timeout=20)
            state.update(reply["state"])
            if reply["state"]["phase"] in ("finished", "cancelled"):
                ended.set()
            if reply["state"].get("started_at") and not started_at:
                started_at.append(int(reply["state"]["started_at"]))
            return sio

        sio = await join()
        reconnected = False
        try:
            while not ended.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ended.wait(), self.rng.uniform(*self.options.think_s))
                if ended.is_set() or state.get("phase") != "live":
                    continue
                if not reconnected and self.rng.random() < self.options.reconnect_probability / 20:
                    reconnected = True
                    await sio.disconnect()
                    sio = await join()
                    self.stats.reconnects += 1
                    continue
                state["peek_meter"] = _peek_level(started_at)
                action = scripted.action({**state, "charges": state.get("charges", 0)})
                if action is None:
                    continue
                ack = await sio.call("action", action, namespace="/match", timeout=20)
                self.stats.actions[str(ack.get("code"))] += 1
                if action["type"] == "peek":  # used (or not full): the meter starts again
                    started_at[:] = [int(time.time() * 1000)]
            self.stats.matches_ended += 1
        finally:
            await sio.disconnect()

    async def close(self) -> None:
        await self.lobby.disconnect()


def _peek_level(started_at: list[int]) -> int:
    """Peek refills 2 points/s from the start (or the last peek); enough to know 'full'."""
    if not started_at:
        return 0
    return min(100, (int(time.time() * 1000) - started_at[0]) // 500)


async def run_bots(options: BotOptions) -> BotStats:
    """Traced when the OTEL_* environment says so (service `tradearena-bots`): each round
    is a `bot.round` span, the root of the player's journey, sent on to the lobby in the
    `traceparent` header of the queue join."""
    tracing.init_tracing(SERVICE_BOTS)
    stats = BotStats()
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as http:
        bots = [Bot(i, options, stats, http) for i in range(options.count)]

        async def one(bot: Bot) -> None:
            try:
                await bot.sign_in()
                await bot.play_rounds()
            except Exception as exc:  # a bot's failure is a reported result
                stats.errors.append(f"{bot.username}: {type(exc).__name__}: {exc}")
            finally:
                with contextlib.suppress(Exception):
                    await bot.close()

        await asyncio.gather(*(one(b) for b in bots))
    return stats
