"""`TRADEARENA_RELAY_*` settings of the feed relay."""

from __future__ import annotations

import os
import socket
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from tradearena.contracts.candles import CandleInterval
from tradearena.settings import BaseAppSettings

DAY_MS = 86_400_000


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

    # A publisher that fails (a broken upstream, a replay file changed under it) restarts
    # after initial x 2^(n-1) ms, n its failures of the last minute; five make it unready.
    relay_publisher_backoff_initial_ms: int = Field(default=500, gt=0)
    relay_publisher_backoff_max_ms: int = Field(default=30_000, gt=0)

    relay_replay_files: Annotated[tuple[Path, ...], NoDecode] = ()
    relay_replay_speed: Decimal = Field(default=Decimal(60), gt=0)

    # Closed candles (`contracts.candles`), trimmed by MINID: what a chart can page back to.
    relay_candles_1s_retention_ms: int = Field(default=2 * DAY_MS, ge=60_000)
    relay_candles_1m_retention_ms: int = Field(default=30 * DAY_MS, ge=3_600_000)
    # A leader that finds no recent tick in the stream (a fresh local run) first writes
    # this much past from its source (synthetic, replay): 1 m candles over all of it, 1 s
    # candles over the last `..._1S_MS`, ticks over the last `relay_history_ms`. 0: off.
    relay_backfill_ms: int = Field(default=0, ge=0, le=7 * DAY_MS)
    relay_backfill_1s_ms: int = Field(default=3_600_000, ge=0, le=2 * DAY_MS)

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
    def candle_retention_ms(self) -> dict[CandleInterval, int]:
        return {
            CandleInterval.S1: self.relay_candles_1s_retention_ms,
            CandleInterval.M1: self.relay_candles_1m_retention_ms,
        }

    @property
    def replica_id(self) -> str:
        return self.relay_id or f"{socket.gethostname()}-{os.getpid()}"
