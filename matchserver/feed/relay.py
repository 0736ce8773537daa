"""The feed relay: one upstream per symbol, fanned out to every match server through Redis.

Several replicas run; per symbol, the one holding a Redis lease publishes.

Leader election: the lease is `SET feed_leader NX PX ttl` with a random
token per process; the holder renews it every `renew_ms` (a few times per
TTL) and releases it on SIGTERM, both through Lua scripts that act only if
the key still holds the caller's token. Followers retry `SET NX` every
`acquire_ms`, so a crashed leader is replaced within about one TTL, a
stopped one within `acquire_ms`.

No duplicates, even in split brain: every publish is one Lua script that
checks the lease token and XADDs with an explicit stream ID derived from the
tick itself (`event_ms-seq`: Binance trade time and aggregate trade id, the
synthetic grid slot, the replay position). A deposed leader that does not
know it yet is refused by the token check; an ID not greater than the
stream's last one (the same tick twice, or an older one) is refused by Redis
itself. Both refusals are counted, never published.

Followers are cold: connected to nothing upstream. The product holds one
upstream connection per symbol (Binance counts connection attempts per IP),
and a new leader resumes from the stream's last tick (synthetic: its price
and slot; replay: its archive time), so the stream continues smoothly; the
price of cold standby is that ticks during a failover (about one TTL) are
not published: the gap is bounded by the TTL.

The stream is trimmed by ID (`MINID ~ now - history_ms`): what is kept is
measured in time, whatever the tick rate, so a (re)starting match server
always finds its delay window (`RelaySource` reads it, then blocks for new
ticks).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import secrets
import signal
import socket
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from matchserver.feed.binance import Backoff, BinanceConfig, BinanceSource
from matchserver.feed.sources import (
    Clock,
    FeedTick,
    PriceSource,
    ReplaySource,
    SourceStats,
    SyntheticSource,
    wall_ms,
)
from tradearena.contracts import keys
from tradearena.settings import BaseAppSettings

log = logging.getLogger(__name__)


class RelaySettings(BaseAppSettings):
    """`TRADEARENA_RELAY_*`: prefixed so they never collide with a match server's settings."""

    relay_symbols: Annotated[tuple[str, ...], NoDecode, Field(min_length=1)] = ("BTCUSDT",)
    relay_source: Literal["synthetic", "binance", "replay"] = "synthetic"
    relay_id: str = ""  # default: hostname-pid
    relay_host: str = "0.0.0.0"  # noqa: S104 - probes and Prometheus reach it from outside
    relay_port: int = Field(default=9101, ge=0, le=65535)

    relay_lease_ttl_ms: int = Field(default=1500, ge=100)
    relay_lease_renew_ms: int = Field(default=400, ge=10)
    relay_lease_acquire_ms: int = Field(default=150, ge=10)
    relay_history_ms: int = Field(default=15 * 60 * 1000, ge=10 * 60 * 1000)

    relay_synthetic_seed: int = 1
    relay_synthetic_interval_ms: int = Field(default=250, gt=0)
    relay_synthetic_start_price: Decimal = Field(default=Decimal("100000"), gt=0)

    relay_binance_url: str = "wss://stream.binance.com:9443"
    relay_binance_stale_after_ms: int = Field(default=5000, gt=0)
    relay_binance_max_connection_age_ms: int = Field(
        default=23 * 3600 * 1000 + 50 * 60 * 1000, gt=0, le=24 * 3600 * 1000
    )

    relay_replay_files: Annotated[tuple[Path, ...], NoDecode] = ()
    relay_replay_speed: Decimal = Field(default=Decimal(60), gt=0)

    @field_validator("relay_symbols", "relay_replay_files", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("relay_symbols")
    @classmethod
    def _upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(s.upper() for s in value)

    @model_validator(mode="after")
    def _check(self) -> RelaySettings:
        if self.relay_lease_renew_ms * 3 > self.relay_lease_ttl_ms:
            raise ValueError("relay_lease_renew_ms must be at most a third of the lease TTL")
        if self.relay_source == "replay" and not self.relay_replay_files:
            raise ValueError("the replay source needs TRADEARENA_RELAY_REPLAY_FILES")
        return self

    @property
    def replica_id(self) -> str:
        return self.relay_id or f"{socket.gethostname()}-{os.getpid()}"


# --------------------------------------------------------------------- lease decisions
class Change(enum.Enum):
    NONE = "none"
    ELECTED = "elected"
    DEPOSED = "deposed"


@dataclass
class Leadership:
    """What this replica believes, from the outcome of its lease calls (pure).

    Validity is counted from when the call was *sent*, minus a safety margin,
    so a replica stops considering itself leader before Redis can hand the
    lease to another, even if its renewals silently stop arriving.
    """

    ttl_ms: int
    renew_ms: int
    acquire_ms: int
    leader: bool = False
    valid_until: int = 0

    @property
    def margin_ms(self) -> int:
        return self.renew_ms // 2

    def check_interval_ms(self) -> int:
        return self.renew_ms if self.leader else self.acquire_ms

    def on_result(self, held: bool, sent_at: int) -> Change:
        """After an acquire (SET NX) or renew (token check) call: did we hold the lease?"""
        if held:
            self.valid_until = sent_at + self.ttl_ms - self.margin_ms
            if not self.leader:
                self.leader = True
                return Change.ELECTED
            return Change.NONE
        return self._lose()

    def on_error(self, now: int) -> Change:
        """Redis unreachable: stay leader only while the last grant is surely still valid."""
        if self.leader and now >= self.valid_until:
            return self._lose()
        return Change.NONE

    def lost(self) -> Change:
        """A fenced publish found the lease gone."""
        return self._lose()

    def is_leader(self, now: int) -> bool:
        return self.leader and now < self.valid_until

    def _lose(self) -> Change:
        was, self.leader, self.valid_until = self.leader, False, 0
        return Change.DEPOSED if was else Change.NONE


class Published(enum.Enum):
    OK = "ok"
    DUPLICATE = "duplicate"  # ID not greater than the stream's last: already there or older
    NOT_LEADER = "not_leader"  # the fence: our token no longer holds the lease


# SET NX PX, or a renewal when the key already holds our token (we had
# considered ourselves deposed on a Redis error while the lease stayed ours).
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: lease, stream. ARGV: token, id, minid, field, value, ...
_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, 'not leader'}
end
local res = redis.pcall('XADD', KEYS[2], 'MINID', '~', ARGV[3], ARGV[2], unpack(ARGV, 4))
if type(res) == 'table' and res.err then
  return {-1, res.err}
end
return {1, res}
"""


def tick_fields(tick: FeedTick, relay: str) -> dict[str, str]:
    fields = {
        "price": str(tick.price),
        "event_ms": str(tick.event_ms),
        "recv_ms": str(tick.recv_ms),
        "seq": str(tick.seq),
        "source": tick.source,
        "relay": relay,
    }
    if tick.source_ms is not None:
        fields["source_ms"] = str(tick.source_ms)
    return fields


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def tick_from_entry(symbol: str, entry_id: Any, raw: Any) -> FeedTick:
    """A stream entry back into a tick (its identity is the entry ID)."""
    fields = {_text(k): _text(v) for k, v in raw.items()}
    ms, seq = _text(entry_id).split("-")
    source_ms = fields.get("source_ms")
    return FeedTick(
        symbol=symbol,
        price=Decimal(fields["price"]),
        event_ms=int(ms),
        recv_ms=int(fields["recv_ms"]),
        source=fields.get("source", "relay"),
        seq=int(seq),
        source_ms=int(source_ms) if source_ms is not None else None,
    )


@dataclass
class FeedLease:
    """The Redis side of the lease and of the fenced publish (one symbol)."""

    redis: Redis
    symbol: str
    token: str
    ttl_ms: int
    history_ms: int

    def __post_init__(self) -> None:
        self.lease_key = keys.feed_leader(self.symbol)
        self.stream_key = keys.feed_stream(self.symbol)
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self._publish = self.redis.register_script(_PUBLISH)

    async def acquire(self) -> bool:
        return bool(await self._acquire(keys=[self.lease_key], args=[self.token, self.ttl_ms]))

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[self.lease_key], args=[self.token, self.ttl_ms]))

    async def release(self) -> bool:
        return bool(await self._release(keys=[self.lease_key], args=[self.token]))

    async def holder(self) -> str | None:
        value = await self.redis.get(self.lease_key)
        return None if value is None else _text(value)

    async def publish(self, tick: FeedTick, relay: str, now: int) -> Published:
        minid = f"{max(0, now - self.history_ms)}-0"
        args: list[str] = [self.token, tick.stream_id, minid]
        for k, v in tick_fields(tick, relay).items():
            args += [k, v]
        code, detail = await self._publish(keys=[self.lease_key, self.stream_key], args=args)
        if code == 1:
            return Published.OK
        if code == 0:
            return Published.NOT_LEADER
        message = _text(detail)
        if "equal or smaller" in message:
            return Published.DUPLICATE
        raise ResponseError(message)

    async def last_tick(self) -> FeedTick | None:
        entries = await self.redis.xrevrange(self.stream_key, count=1)
        if not entries:
            return None
        entry_id, raw = entries[0]
        return tick_from_entry(self.symbol, entry_id, raw)


# --------------------------------------------------------------------- metrics
@dataclass
class RelayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.published = Counter(
            "tradearena_feed_ticks_published", "Ticks XADDed to the feed stream", ["symbol"],
            registry=r,
        )  # fmt: skip
        self.duplicates = Counter(
            "tradearena_feed_duplicates_refused",
            "Ticks refused because their stream ID was not greater than the last one",
            ["symbol"],
            registry=r,
        )
        self.fenced = Counter(
            "tradearena_feed_fenced_refused",
            "Publishes refused because this replica no longer held the lease",
            ["symbol"],
            registry=r,
        )
        self.publish_errors = Counter(
            "tradearena_feed_publish_errors", "Publishes that failed (Redis)", ["symbol"],
            registry=r,
        )  # fmt: skip
        self.leader = Gauge(
            "tradearena_feed_leader", "1 while this replica leads the symbol", ["symbol"],
            registry=r,
        )  # fmt: skip
        self.leader_changes = Counter(
            "tradearena_feed_leader_changes", "Times this replica was elected or deposed",
            ["symbol", "change"], registry=r,
        )  # fmt: skip
        self.reconnects = Counter(
            "tradearena_feed_upstream_reconnects", "Upstream reconnections", ["symbol"],
            registry=r,
        )  # fmt: skip
        self.malformed = Counter(
            "tradearena_feed_upstream_malformed", "Malformed upstream messages skipped",
            ["symbol"], registry=r,
        )  # fmt: skip
        self.staleness = Gauge(
            "tradearena_feed_staleness_seconds",
            "Seconds since the last tick: from upstream when leading, in the stream otherwise",
            ["symbol"],
            registry=r,
        )


# --------------------------------------------------------------------- the relay
SourceFactory = Callable[[str, FeedTick | None], PriceSource]


def source_factory(settings: RelaySettings, clock: Clock = wall_ms) -> SourceFactory:
    """Builds the upstream of a symbol for a new leader, resuming after the stream's last tick."""

    def make(symbol: str, resume: FeedTick | None) -> PriceSource:
        if settings.relay_source == "synthetic":
            return SyntheticSource(
                symbol,
                seed=settings.relay_synthetic_seed,
                interval_ms=settings.relay_synthetic_interval_ms,
                start_price=settings.relay_synthetic_start_price,
                resume_from=resume if resume is not None and resume.source == "synthetic" else None,
                clock=clock,
            )
        if settings.relay_source == "replay":
            after = resume.source_ms if resume is not None and resume.source == "replay" else None
            return ReplaySource(
                symbol,
                settings.relay_replay_files,
                speed=settings.relay_replay_speed,
                resume_after_source_ms=after,
                clock=clock,
            )
        config = BinanceConfig(
            base_url=settings.relay_binance_url,
            stale_after_ms=settings.relay_binance_stale_after_ms,
            max_connection_age_ms=settings.relay_binance_max_connection_age_ms,
        )
        return BinanceSource(symbol, config, clock=clock)

    return make


class _Deposed(Exception):  # noqa: N818 - control flow
    pass


@dataclass
class SymbolRelay:
    """Elects, and while leading, pumps one symbol's upstream into its stream."""

    symbol: str
    lease: FeedLease
    leadership: Leadership
    make_source: SourceFactory
    metrics: RelayMetrics
    replica: str
    clock: Clock = wall_ms
    redis_ok_at: int | None = None
    _publisher: asyncio.Task[None] | None = None
    _source_stats: SourceStats | None = None
    _seen_reconnects: int = 0
    _seen_malformed: int = 0
    _stream_last_ms: int | None = None
    _exhausted: bool = False

    def __post_init__(self) -> None:
        m, symbol = self.metrics, self.symbol
        for metric in (m.published, m.duplicates, m.fenced, m.publish_errors, m.reconnects,
                       m.malformed, m.staleness):  # fmt: skip
            metric.labels(symbol)  # every series exists (at 0) from the start
        m.leader.labels(symbol).set(0)

    def status(self) -> dict[str, Any]:
        return {"leader": self.leadership.is_leader(self.clock()), "staleness_s": self._staleness()}

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self._check()
                self._refresh_metrics()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.leadership.check_interval_ms() / 1000)
        finally:
            await self._stop_publishing()
            if self.leadership.leader:
                with contextlib.suppress(RedisError, OSError):
                    await self.lease.release()
                    log.info("lease released", extra={"symbol": self.symbol})
            self.leadership.leader = False
            self.metrics.leader.labels(self.symbol).set(0)

    async def _check(self) -> None:
        task = self._publisher
        if task is not None and task.done():
            self._publisher = None
            error = None if task.cancelled() else task.exception()
            if isinstance(error, _Deposed):
                self._apply(self.leadership.lost())
            elif error is not None:
                log.error("publisher failed", exc_info=error)
            elif not task.cancelled():
                self._exhausted = True  # a replay that reached its end: nothing to restart
        sent = self.clock()
        try:
            if self.leadership.leader:
                held = await self.lease.renew()
            else:
                held = await self.lease.acquire()
                last = await self.lease.last_tick()
                self._stream_last_ms = None if last is None else last.event_ms
            self.redis_ok_at = self.clock()
            change = self.leadership.on_result(held, sent)
        except (RedisError, OSError) as exc:
            log.warning("lease call failed", extra={"symbol": self.symbol, "error": repr(exc)})
            change = self.leadership.on_error(self.clock())
        self._apply(change)
        if self.leadership.leader and self._publisher is None and not self._exhausted:
            self._publisher = asyncio.create_task(self._publish(), name=f"publish-{self.symbol}")

    def _apply(self, change: Change) -> None:
        if change is Change.NONE:
            return
        self._exhausted = False
        self.metrics.leader_changes.labels(self.symbol, change.value).inc()
        self.metrics.leader.labels(self.symbol).set(1 if change is Change.ELECTED else 0)
        log.info(
            "leader " + change.value,
            extra={"symbol": self.symbol, "relay": self.replica},
        )
        if change is Change.DEPOSED and self._publisher is not None:
            self._publisher.cancel()

    async def _stop_publishing(self) -> None:
        task, self._publisher = self._publisher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _publish(self) -> None:
        resume = await self.lease.last_tick()
        source = self.make_source(self.symbol, resume)
        self._source_stats, self._seen_reconnects, self._seen_malformed = source.stats, 0, 0
        log.info(
            "upstream starting",
            extra={"symbol": self.symbol, "source": source.name, "resume": _id(resume)},
        )
        async with contextlib.aclosing(source.ticks()) as ticks:
            async for tick in ticks:
                try:
                    outcome = await self.lease.publish(tick, self.replica, self.clock())
                except (RedisError, OSError) as exc:
                    self.metrics.publish_errors.labels(self.symbol).inc()
                    log.warning("publish failed", extra={"symbol": self.symbol, "error": repr(exc)})
                    continue
                if outcome is Published.OK:
                    self.metrics.published.labels(self.symbol).inc()
                elif outcome is Published.DUPLICATE:
                    self.metrics.duplicates.labels(self.symbol).inc()
                else:
                    self.metrics.fenced.labels(self.symbol).inc()
                    raise _Deposed
        log.warning("upstream ended", extra={"symbol": self.symbol})

    def _staleness(self) -> float:
        now = self.clock()
        stats = self._source_stats
        if self.leadership.leader and stats is not None and stats.last_tick_recv_ms is not None:
            return max(0, now - stats.last_tick_recv_ms) / 1000
        if not self.leadership.leader and self._stream_last_ms is not None:
            return max(0, now - self._stream_last_ms) / 1000
        return 0.0

    def _refresh_metrics(self) -> None:
        m, s = self.metrics, self._source_stats
        m.staleness.labels(self.symbol).set(self._staleness())
        if s is not None:
            m.reconnects.labels(self.symbol).inc(s.reconnects - self._seen_reconnects)
            m.malformed.labels(self.symbol).inc(s.malformed - self._seen_malformed)
            self._seen_reconnects, self._seen_malformed = s.reconnects, s.malformed


def _id(tick: FeedTick | None) -> str | None:
    return None if tick is None else tick.stream_id


# --------------------------------------------------------------------- the process
RELAYS: web.AppKey[list[SymbolRelay]] = web.AppKey("relays")
REPLICA = web.AppKey("replica", str)
METRICS = web.AppKey("metrics", RelayMetrics)
READY_WITHIN_MS = web.AppKey("ready_within_ms", int)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "replica": request.app[REPLICA]})


async def _readyz(request: web.Request) -> web.Response:
    """Ready when Redis answered recently; reports the role per symbol."""
    relays = request.app[RELAYS]
    now = wall_ms()
    within = request.app[READY_WITHIN_MS]
    ready = all(r.redis_ok_at is not None and now - r.redis_ok_at <= within for r in relays)
    body = {
        "ready": ready,
        "replica": request.app[REPLICA],
        "symbols": {r.symbol: r.status() for r in relays},
    }
    return web.json_response(body, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    data = generate_latest(request.app[METRICS].registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(
    relays: list[SymbolRelay], metrics: RelayMetrics, replica: str, ttl_ms: int
) -> web.Application:
    app = web.Application()
    app[RELAYS], app[METRICS], app[REPLICA], app[READY_WITHIN_MS] = relays, metrics, replica, ttl_ms
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app


async def serve(settings: RelaySettings, stop: asyncio.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or `stop`): elect, publish, serve health; release on exit."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    replica = settings.replica_id
    token = f"{replica}:{secrets.token_hex(8)}"
    redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    metrics = RelayMetrics()
    make_source = source_factory(settings)
    relays = [
        SymbolRelay(
            symbol,
            FeedLease(redis, symbol, token, settings.relay_lease_ttl_ms, settings.relay_history_ms),
            Leadership(
                settings.relay_lease_ttl_ms,
                settings.relay_lease_renew_ms,
                settings.relay_lease_acquire_ms,
            ),
            make_source,
            metrics,
            replica,
        )
        for symbol in settings.relay_symbols
    ]
    app = create_app(relays, metrics, replica, settings.relay_lease_ttl_ms)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.relay_host, settings.relay_port)
    await site.start()
    log.info(
        "feed relay started",
        extra={
            "relay": replica,
            "symbols": list(settings.relay_symbols),
            "source": settings.relay_source,
            "port": settings.relay_port,
        },
    )
    try:
        await asyncio.gather(*(r.run(stop) for r in relays))
    finally:
        await runner.cleanup()
        await redis.aclose()
    log.info("feed relay stopped", extra={"relay": replica})
    return 0


# --------------------------------------------------------------------- the consumer
@dataclass
class RelaySource:
    """A match server's feed: the last `history_ms` of the stream, then new ticks as they come.

    History first is what lets a (re)started match server rebuild its delay
    window at once. `recv_ms` is the relay's receive time, capped by our clock
    and never going back, so every match server sees the same timeline. A
    Redis outage is retried with backoff and continues from the last entry
    read: nothing still in the stream is missed.
    """

    redis: Redis
    symbol: str
    history_ms: int
    clock: Clock = wall_ms
    block_ms: int = 1000
    backoff: Backoff = field(default_factory=lambda: Backoff(base_ms=100, cap_ms=5000))
    name: str = "relay"
    stats: SourceStats = field(default_factory=SourceStats)

    async def ticks(self) -> AsyncGenerator[FeedTick, None]:
        key = keys.feed_stream(self.symbol)
        last_id = f"{max(0, self.clock() - self.history_ms)}-0"
        last_recv = 0
        history = True
        while True:
            try:
                entries: Any
                if history:
                    entries = await self.redis.xrange(key, min=last_id, max="+")
                    history = False
                else:
                    reply: Any = await self.redis.xread(
                        {key: last_id}, block=self.block_ms, count=500
                    )
                    entries = reply[0][1] if reply else []
                self.stats.connected = True
                self.backoff.reset()
            except (RedisError, OSError) as exc:
                self.stats.connected = False
                self.stats.reconnects += 1
                delay = self.backoff.next_delay_ms()
                log.warning("relay read failed", extra={"error": repr(exc), "delay_ms": delay})
                await asyncio.sleep(delay / 1000)
                continue
            for entry_id, raw in entries:
                last_id = _text(entry_id)
                try:
                    tick = tick_from_entry(self.symbol, entry_id, raw)
                except (KeyError, ValueError, ArithmeticError):
                    self.stats.malformed += 1
                    continue
                last_recv = max(last_recv, min(tick.recv_ms, self.clock()))
                self.stats.last_tick_recv_ms = last_recv
                yield FeedTick(
                    tick.symbol, tick.price, tick.event_ms, last_recv, tick.source, tick.seq,
                    tick.source_ms,
                )  # fmt: skip
