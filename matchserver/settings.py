"""Match-server settings: a dedicated server (one match, described entirely here) or a
pool server (`server_id` and `capacity`: matches are assigned to it through Redis,
`tradearena.contracts.pool`). Exactly one of the two must be given."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from tradearena.settings import BaseAppSettings

Origin = Annotated[str, Field(pattern=r"^https?://[^/\s]+$")]


MatchId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]


class MatchServerSettings(BaseAppSettings):
    # A dedicated server: its one match.
    match_id: MatchId | None = None
    players: Annotated[tuple[str, ...], NoDecode] = ()
    # A pool server: its identity (the keys `ta:server:{srv:<id>}:*`) and how many matches
    # it hosts at once (declared in its state hash; the allocator never exceeds it).
    server_id: MatchId | None = None
    capacity: int | None = Field(default=None, ge=1, le=10_000)
    mode: str = "standard"
    format: str = "blitz"
    duration_ms: int | None = Field(default=None, gt=0)  # overrides the format's length
    symbol: str = "BTCUSDT"
    # A dedicated server's match trace (W3C traceparent, from its runtime); None: untraced.
    traceparent: str | None = Field(default=None, max_length=128)

    host: str = "0.0.0.0"  # noqa: S104 - a match server is reached by players from outside
    port: int = Field(default=7000, ge=0, le=65535)
    # The browser origins that may connect: the lobby's (its web client), as a JSON list
    # of `scheme://host[:port]`. A request with any other Origin is refused; clients
    # that send none (bots, native clients) are not browsers and connect.
    cors_origins: tuple[Origin, ...] = ()
    # /metrics and /status (and the probes again) for the operator and Prometheus only:
    # a port of their own, never the players'. None: not served.
    admin_port: int | None = Field(default=None, ge=0, le=65535)

    # TLS on the players' port (wss:// and https://): a PEM certificate chain and its key,
    # both or neither. The files are watched and reloaded when they change (a Secret
    # volume swaps them); the admin port stays plaintext (in-cluster only).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_reload_interval_s: float = Field(default=5, gt=0)

    # Token verification: a public key (PEM file) or a JWKS document (file).
    public_key_file: Path | None = None
    jwks_file: Path | None = None

    feed_source: Literal["relay", "synthetic"] = "relay"
    synthetic_seed: int = 1
    synthetic_interval_ms: int = Field(default=1000, gt=0)

    join_timeout_ms: int = Field(default=60_000, ge=0)  # start without the missing after this
    clock_interval_ms: int = Field(default=50, gt=0)
    leaderboard_interval_ms: int = Field(default=1000, gt=0)
    leaderboard_size: int = Field(default=20, gt=0)
    snapshot_every_entries: int = Field(default=5000, gt=0)  # bounds replay on restart
    linger_ms: int = Field(default=1000, ge=0)  # let clients read match_end before exiting
    # Flow control (docs/matchserver.md): a client this many ticks behind its last
    # tick_ack gets only the newest tick and leaderboard (at least twice the ack interval,
    # 4); one that stays behind this long is disconnected.
    tick_ack_window: int = Field(default=8, ge=8)
    stuck_client_ms: int = Field(default=10_000, gt=0)
    # Isolation: one engine call (an action, a price, a clock step) that takes more CPU
    # than this settles its match (cancelled, `engine_overrun`); 0: no limit.
    engine_budget_ms: int = Field(default=250, ge=0)

    # Durability (docs/operations.md): every commit (log entries before their acks and
    # broadcasts, the result after its publication) waits until this many replicas have
    # it (Redis WAIT); 0: no waiting. A commit still unreplicated after the timeout
    # faults its match (`redis_not_durable`).
    redis_wait_replicas: int = Field(default=0, ge=0, le=16)
    redis_wait_timeout_ms: int = Field(default=10_000, gt=0, le=600_000)

    # Spectators (docs/matchserver.md, "Spectators"): at most this many in the process
    # (over every hosted match), and none taken nor sent frames while the event loop
    # runs this late (players keep priority).
    max_spectators: int = Field(
        default=5000,
        ge=0,
        validation_alias=AliasChoices("TRADEARENA_MATCH_MAX_SPECTATORS", "max_spectators"),
    )
    spectator_lag_limit_ms: int = Field(default=250, gt=0)

    agones_sdk_port: int | None = Field(
        default=None,
        validation_alias=AliasChoices("AGONES_SDK_HTTP_PORT", "TRADEARENA_AGONES_SDK_PORT"),
    )
    agones_health_interval_ms: int = Field(default=5000, gt=0)

    @model_validator(mode="after")
    def _one_role(self) -> MatchServerSettings:
        pool = self.server_id is not None or self.capacity is not None
        if pool:
            if self.server_id is None or self.capacity is None:
                raise ValueError("a pool server needs both server_id and capacity")
            if self.match_id is not None or self.players:
                raise ValueError(
                    "a pool server (server_id, capacity) takes no match_id or players:"
                    " its matches are assigned through Redis"
                )
        elif self.match_id is None or not self.players:
            raise ValueError(
                "set match_id and players (a dedicated server), or server_id and capacity"
                " (a pool server)"
            )
        return self

    @property
    def pooled(self) -> bool:
        return self.server_id is not None

    @model_validator(mode="after")
    def _ports(self) -> MatchServerSettings:
        if self.admin_port is not None and self.admin_port == self.port != 0:
            raise ValueError("admin_port must differ from port (the players' port)")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both tls_cert_file and tls_key_file, or neither")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @field_validator("players", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value
