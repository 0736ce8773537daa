"""`TRADEARENA_*` settings of the results worker."""

from __future__ import annotations

import os
import socket

from pydantic import Field

from tradearena.contracts.archive import DEFAULT_CODEC, Codec
from tradearena.settings import BaseAppSettings


def _default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ResultsWorkerSettings(BaseAppSettings):
    database_url: str = "postgresql://tradearena@127.0.0.1:5432/tradearena"
    results_consumer: str = Field(default_factory=_default_consumer)
    results_batch: int = Field(default=50, ge=1)
    results_block_ms: int = Field(default=1000, ge=1)
    results_claim_idle_ms: int = Field(default=60_000, ge=1)
    results_max_attempts: int = Field(default=5, ge=1)
    results_max_deliveries: int = Field(default=10, ge=1)
    results_backoff_initial_s: float = Field(default=0.1, gt=0)
    results_backoff_max_s: float = Field(default=5.0, gt=0)
    # The dead-letter gauges, also refreshed after every read of the stream.
    results_dead_letter_refresh_s: float = Field(default=5.0, gt=0, le=15)
    results_metrics_port: int = Field(default=9102, ge=0, le=65535)  # 0: no HTTP server
    results_metrics_host: str = "127.0.0.1"
    # The match archive (lobby.results.archive, docs/archive.md): a match's Redis keys
    # expire this long after its archive is committed; the sweep retries what failed.
    results_archive_grace_s: int = Field(default=3600, ge=0)
    results_archive_codec: Codec = DEFAULT_CODEC
    results_archive_sweep_s: float = Field(default=60.0, gt=0)
    results_archive_sweep_window_s: float = Field(default=7 * 24 * 3600, gt=0)
    # Push stored notifications live through the lobby's Socket.IO Redis manager.
    socketio_redis: bool = False
