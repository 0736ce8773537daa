"""Binance spot WebSocket market streams as a `PriceSource`.

Protocol (spot "WebSocket Streams"): one combined-stream connection,
`/stream?streams=btcusdt@aggTrade/btcusdt@kline_1s`, every frame wrapped as
`{"stream": name, "data": payload}`. Prices come from `aggTrade` (identity:
trade time `T` and aggregate trade id `a`, the same in every process that
sees the trade); `kline_1s` arrives every second even when nobody trades, so
silence really means a dead connection.

Rules honoured: the server pings every 20 s and wants a pong within a minute
(we answer each ping with its payload, through a 5 messages/s budget, since
pongs count as incoming messages on Binance's side); a connection lives at
most 24 h (we reconnect before, at `max_connection_age_ms`); at most 1024
streams per connection; at most 300 connection attempts per 5 minutes per IP
(a local sliding-window limiter). Reconnects back off exponentially with full
jitter; a circuit breaker stops hammering after repeated failures; silence
longer than `stale_after_ms` is reported stale and forces a reconnect.
Malformed frames are counted and skipped, never fatal.

Everything that decides (parsing, backoff, breaker, limiters) is plain code
tested in milliseconds; `BinanceSource.ticks` is the I/O edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import random
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp

from matchserver.feed.archive import to_millis
from matchserver.feed.sources import Clock, FeedTick, SourceStats, wall_ms

log = logging.getLogger(__name__)

MAX_STREAMS_PER_CONNECTION = 1024
MAX_INCOMING_MESSAGES_PER_S = 5  # client -> server, pongs included
MAX_ATTEMPTS = 300
ATTEMPT_WINDOW_MS = 5 * 60 * 1000
CONNECTION_LIFETIME_MS = 24 * 3600 * 1000
DEFAULT_BASE_URL = "wss://stream.binance.com:9443"


class MalformedFrameError(ValueError):
    """A frame that is not a Binance stream message we understand."""


# --------------------------------------------------------------------- parsing
@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A message proving the connection is alive that carries no new trade (a kline)."""

    stream: str
    event_ms: int


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    event_ms: int


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed message we do not use (e.g. a request's reply)."""

    reason: str


Message = FeedTick | Heartbeat | ServerShutdown | Ignored


def stream_names(symbol: str, streams: Sequence[str] = ("aggTrade", "kline_1s")) -> list[str]:
    return [f"{symbol.lower()}@{s}" for s in streams]


def combined_url(base_url: str, streams: Sequence[str]) -> str:
    if not streams:
        raise ValueError("at least one stream")
    if len(streams) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"{len(streams)} streams: Binance allows {MAX_STREAMS_PER_CONNECTION}")
    if any(s.split("@")[0] != s.split("@")[0].lower() for s in streams):
        raise ValueError("symbols in Binance stream names are lowercase")
    return f"{base_url.rstrip('/')}/stream?streams={'/'.join(streams)}"


def _field(data: dict[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    # bool is an int subclass in Python, not in JSON: `true` is no trade id.
    ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if not ok:
        raise MalformedFrameError(f"field {name!r} missing or not {kind.__name__}")
    return value


def _price(text: Any, name: str) -> Decimal:
    if not isinstance(text, str):
        raise MalformedFrameError(f"field {name!r} is not a decimal string")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise MalformedFrameError(f"field {name!r} is not a number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise MalformedFrameError(f"field {name!r} must be a positive price: {text!r}")
    return value


def parse_message(raw: str | bytes, recv_ms: int) -> Message:
    """One combined-stream frame. Raises MalformedFrameError on anything unexpected."""
    try:
        frame = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedFrameError(f"not JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise MalformedFrameError("frame is not an object")
    if "id" in frame and "result" in frame:
        return Ignored("reply")
    if "stream" not in frame:
        if frame.get("e") == "serverShutdown":  # sent unwrapped, outside any stream
            return ServerShutdown(to_millis(_field(frame, "E", int)))
        raise MalformedFrameError("no 'stream' in frame")
    stream = _field(frame, "stream", str)
    data = frame.get("data")
    if not isinstance(data, dict):
        raise MalformedFrameError("'data' is not an object")
    event = data.get("e")
    if event == "aggTrade":
        return FeedTick(
            symbol=_field(data, "s", str),
            price=_price(data.get("p"), "p"),
            event_ms=to_millis(_field(data, "T", int)),
            recv_ms=recv_ms,
            source="binance",
            seq=_field(data, "a", int),
        )
    if event == "kline":
        k = data.get("k")
        if not isinstance(k, dict):
            raise MalformedFrameError("kline without 'k' object")
        _price(k.get("c"), "k.c")
        _field(k, "x", bool)
        return Heartbeat(stream, to_millis(_field(data, "E", int)))
    if event == "serverShutdown":
        return ServerShutdown(to_millis(_field(data, "E", int)))
    if isinstance(event, str):
        return Ignored(f"event {event}")
    raise MalformedFrameError("payload without event type 'e'")


# --------------------------------------------------------------------- decisions
@dataclass
class Backoff:
    """Exponential backoff with full jitter: delay in [0, min(cap, base x 2^n)]."""

    base_ms: int = 500
    cap_ms: int = 30_000
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay_ms(self) -> int:
        ceiling = min(self.cap_ms, self.base_ms * (2 ** min(self.failures, 30)))
        self.failures += 1
        return int(self.rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.failures = 0


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """After `threshold` consecutive failures, refuse attempts for `open_ms`, then try once.

    A failure in the half-open trial reopens it for twice as long (capped),
    a success closes it and resets the cool-off.
    """

    threshold: int = 5
    open_ms: int = 30_000
    max_open_ms: int = 300_000
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: int = 0
    current_open_ms: int = 0

    def allow(self, now: int) -> bool:
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.current_open_ms:
            self.state = BreakerState.HALF_OPEN
        return self.state is not BreakerState.OPEN

    def retry_at(self) -> int:
        return self.opened_at + self.current_open_ms

    def success(self) -> None:
        self.state, self.failures, self.current_open_ms = BreakerState.CLOSED, 0, 0

    def failure(self, now: int) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN:
            self._open(now, min(self.max_open_ms, max(self.open_ms, self.current_open_ms * 2)))
        elif self.failures >= self.threshold:
            self._open(now, self.open_ms)

    def _open(self, now: int, duration: int) -> None:
        self.state, self.opened_at, self.current_open_ms = BreakerState.OPEN, now, duration


@dataclass
class SlidingWindowLimiter:
    """At most `limit` events per `window_ms` (connection attempts: 300 per 5 min)."""

    limit: int = MAX_ATTEMPTS
    window_ms: int = ATTEMPT_WINDOW_MS
    _events: deque[int] = field(default_factory=deque)

    def _expire(self, now: int) -> None:
        while self._events and self._events[0] <= now - self.window_ms:
            self._events.popleft()

    def wait_ms(self, now: int) -> int:
        """0 if an event may happen now, else how long until one may."""
        self._expire(now)
        if len(self._events) < self.limit:
            return 0
        return self._events[0] + self.window_ms - now

    def record(self, now: int) -> None:
        self._events.append(now)


@dataclass
class TokenBucket:
    """Outgoing message budget: `rate` per second, bursts up to `rate`."""

    rate: int = MAX_INCOMING_MESSAGES_PER_S
    tokens: float = float(MAX_INCOMING_MESSAGES_PER_S)
    updated_ms: int | None = None

    def allow(self, now: int) -> bool:
        if self.updated_ms is not None:
            elapsed = max(0, now - self.updated_ms) / 1000
            self.tokens = min(float(self.rate), self.tokens + elapsed * self.rate)
        self.updated_ms = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# --------------------------------------------------------------------- the client
@dataclass
class BinanceConfig:
    base_url: str = DEFAULT_BASE_URL
    streams: tuple[str, ...] = ("aggTrade", "kline_1s")
    stale_after_ms: int = 5000
    max_connection_age_ms: int = CONNECTION_LIFETIME_MS - 10 * 60 * 1000  # 23 h 50 min
    connect_timeout_ms: int = 10_000
    backoff_base_ms: int = 500
    backoff_cap_ms: int = 30_000
    breaker_threshold: int = 5
    breaker_open_ms: int = 30_000
    attempts_per_window: int = MAX_ATTEMPTS
    attempt_window_ms: int = ATTEMPT_WINDOW_MS


class _Reconnect(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, reason: str, *, failure: bool, immediate: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.failure, self.immediate = reason, failure, immediate


@dataclass
class BinanceSource:
    """Live trades of one symbol; reconnects forever until the consumer stops iterating."""

    symbol: str
    config: BinanceConfig = field(default_factory=BinanceConfig)
    clock: Clock = wall_ms
    rng: random.Random = field(default_factory=random.Random)
    on_event: Callable[[str], None] | None = None  # "reconnect", "stale", "malformed"
    name: str = "binance"
    stats: SourceStats = field(default_factory=SourceStats)
    connections: int = 0
    pongs_sent: int = 0
    pings_unanswered: int = 0

    def __post_init__(self) -> None:
        cfg = self.config
        self.url = combined_url(cfg.base_url, stream_names(self.symbol, cfg.streams))
        self.backoff = Backoff(cfg.backoff_base_ms, cfg.backoff_cap_ms, self.rng)
        self.breaker = CircuitBreaker(cfg.breaker_threshold, cfg.breaker_open_ms)
        self.attempts = SlidingWindowLimiter(cfg.attempts_per_window, cfg.attempt_window_ms)
        self.outgoing = TokenBucket()
        self._last_key: tuple[int, int] | None = None

    def _note(self, what: str) -> None:
        if self.on_event is not None:
            self.on_event(what)

    async def _gate(self) -> None:
        """Wait until the breaker and the attempt limiter both allow a connection attempt."""
        while True:
            now = self.clock()
            if not self.breaker.allow(now):
                self.stats.breaker_open = True
                await asyncio.sleep(max(1, self.breaker.retry_at() - now) / 1000)
                continue
            self.stats.breaker_open = False
            wait = self.attempts.wait_ms(now)
            if wait == 0:
                self.attempts.record(now)
                return
            log.warning("binance connection attempts exhausted", extra={"wait_ms": wait})
            await asyncio.sleep(wait / 1000)

    async def ticks(self) -> AsyncGenerator[FeedTick, None]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.config.connect_timeout_ms)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            first = True
            while True:
                if not first:
                    self.stats.reconnects += 1
                    self._note("reconnect")
                first = False
                await self._gate()
                try:
                    async for tick in self._connection(session):
                        yield tick
                except _Reconnect as why:
                    delay = 0 if why.immediate else self.backoff.next_delay_ms()
                    if why.failure:
                        self.breaker.failure(self.clock())
                    log.info(
                        "binance reconnect",
                        extra={"symbol": self.symbol, "reason": why.reason, "delay_ms": delay},
                    )
                    if delay:
                        await asyncio.sleep(delay / 1000)
                finally:
                    self.stats.connected = False

    async def _connection(self, session: aiohttp.ClientSession) -> AsyncGenerator[FeedTick, None]:
        cfg = self.config
        try:
            ws = await session.ws_connect(
                self.url,
                autoping=False,  # we answer pings ourselves, within the outgoing budget
                heartbeat=None,
                max_msg_size=1 << 20,
                timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _Reconnect(f"connect failed: {exc!r}", failure=True) from None
        self.connections += 1
        self.stats.connected = True
        opened = self.clock()
        last_data = opened
        got_data = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                stack.push_async_callback(ws.close)
                while True:
                    now = self.clock()
                    age_deadline = opened + cfg.max_connection_age_ms
                    stale_deadline = last_data + cfg.stale_after_ms
                    if now >= age_deadline:
                        raise _Reconnect("max connection age", failure=False, immediate=True)
                    if now >= stale_deadline:
                        self.stats.stale = True
                        self.stats.stale_events += 1
                        self._note("stale")
                        raise _Reconnect("stale: no data", failure=not got_data)
                    wait = min(age_deadline, stale_deadline) - now
                    try:
                        msg = await ws.receive(timeout=wait / 1000)
                    except TimeoutError:
                        continue
                    if msg.type is aiohttp.WSMsgType.PING:
                        if self.outgoing.allow(self.clock()):
                            await ws.pong(msg.data)
                            self.pongs_sent += 1
                        else:
                            self.pings_unanswered += 1
                        continue
                    if msg.type in (aiohttp.WSMsgType.PONG,):
                        continue
                    if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        raise _Reconnect(f"closed ({msg.type.name})", failure=not got_data)
                    recv = self.clock()
                    try:
                        parsed = parse_message(msg.data, recv)
                    except MalformedFrameError as exc:
                        self.stats.malformed += 1
                        self._note("malformed")
                        log.warning("binance malformed frame", extra={"error": str(exc)})
                        continue
                    if isinstance(parsed, ServerShutdown):
                        raise _Reconnect("server shutdown", failure=False, immediate=True)
                    if isinstance(parsed, Ignored):
                        continue
                    last_data = recv
                    self.stats.stale = False
                    if not got_data:
                        got_data = True
                        self.backoff.reset()
                        self.breaker.success()
                    if isinstance(parsed, FeedTick):
                        if parsed.symbol.upper() != self.symbol.upper():
                            continue
                        if self._last_key is not None and parsed.key() <= self._last_key:
                            continue  # seen already (e.g. across a reconnect)
                        self._last_key = parsed.key()
                        self.stats.last_tick_recv_ms = recv
                        yield parsed
        except (aiohttp.ClientError, OSError) as exc:
            raise _Reconnect(f"connection error: {exc!r}", failure=not got_data) from None
