"""The lobby's settings, from `TRADEARENA_*` environment variables, built once.

`LobbySettings` is the one settings object of a lobby process: built at
start-up, passed to `lobby.app.create_app` and read by handlers as
`request.app[SETTINGS]`. Its fields are flat (each one is the environment
variable `TRADEARENA_<FIELD>`); the groups a component needs on its own
(`QueueSettings`, `FormationSettings`, `LeaderboardSettings`,
`PrivateSettings`) are plain frozen
models that `LobbySettings` derives from, so a `LobbySettings` is handed to
`Queues` or `Formation` as is, and tests build a group alone without reading
the environment (their `model_config` is typed as BaseAppSettings' is, so the
classes compose).

The access-token signing key comes from `TRADEARENA_SIGNING_KEY_FILE` (path of
an Ed25519 PKCS#8 PEM) or `TRADEARENA_SIGNING_KEY_PEM` (the PEM itself, e.g.
from a Kubernetes secret). Create one with
`python -c "from tradearena.tokens import generate_private_key_pem as g; print(g().decode())"`;
never commit it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from tradearena.settings import BaseAppSettings
from tradearena.tokens import Signer, Verifier


class QueueSettings(BaseModel):
    """The matchmaking queues: ticket lifetimes, the skill window, the matching pace."""

    model_config = SettingsConfigDict(frozen=True)

    ticket_ttl_s: int = 120
    assignment_ttl_s: int = 3600
    skill_window_initial: float = 3.0
    skill_window_per_s: float = 0.25
    skill_window_max: float = 50.0
    match_interval_ms: int = 250


class FormationSettings(BaseModel):
    """Match formation: how long to wait for a server, token margins, concurrency."""

    model_config = SettingsConfigDict(frozen=True)

    ready_timeout_s: float = Field(default=60.0, gt=0)
    # A match token lives for the match plus this margin (reconnects near the end).
    match_token_margin_s: int = Field(default=900, ge=0)
    # A formation left in `forming` this long (its replica died) is requeued by anyone.
    stale_forming_s: float = Field(default=300.0, gt=0)
    max_concurrent_formations: int = Field(default=200, ge=1)
    symbol: str = "BTCUSDT"
    move_cache_s: float = Field(default=15.0, ge=0)


class PartySettings(BaseModel):
    """Parties: their size, their invitations and the invitation rate per user."""

    model_config = SettingsConfigDict(frozen=True)

    party_max_size: int = Field(default=4, ge=2)
    party_max_invites: int = Field(default=8, ge=1)  # pending invitations per party
    party_invite_ttl_s: int = Field(default=300, ge=1)
    party_invite_limit: int = Field(default=20, ge=1)  # invitations per user per window
    party_invite_window_s: int = Field(default=600, ge=1)


class LeaderboardSettings(BaseModel):
    """Season windows: fixed periods of `season_days` counted from `season_epoch`."""

    model_config = SettingsConfigDict(frozen=True)

    season_epoch: date = date(2026, 1, 1)
    season_days: int = Field(default=120, ge=1)


class PrivateSettings(BaseModel):
    """Private matches by invite code: how long a code lives, how often one may be
    created or joined, how often the countdowns are looked at."""

    model_config = SettingsConfigDict(frozen=True)

    private_code_ttl_s: int = Field(default=900, ge=1)
    private_create_limit: int = Field(default=10, ge=1)  # per user, per window
    private_join_limit: int = Field(default=30, ge=1)  # per user, per window (wrong codes too)
    private_rate_window_s: int = Field(default=60, ge=1)
    private_tick_ms: int = Field(default=500, ge=10)


class LobbySettings(
    BaseAppSettings,
    QueueSettings,
    FormationSettings,
    LeaderboardSettings,
    PartySettings,
    PrivateSettings,
):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    database_url: str = "postgresql://tradearena@127.0.0.1:5432/tradearena"
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=20, ge=1)
    redis_max_connections: int = Field(default=200, ge=1)
    migrate_on_start: bool = False
    # How often the platform watch (lobby.watch) looks at the feed, the results stream,
    # Redis and PostgreSQL for the metrics the alerts use.
    watch_interval_s: float = Field(default=5.0, gt=0)

    signing_key_file: Path | None = None
    signing_key_pem: SecretStr | None = None
    # Key rotation: public keys (PEM) of earlier signing keys, still published in the
    # JWKS and accepted until the tokens they signed have expired. JSON list in the env.
    previous_public_keys_pem: list[str] = Field(default_factory=list)
    access_ttl_s: int = Field(default=900, ge=30)
    refresh_ttl_s: int = Field(default=14 * 86_400, ge=60)
    # A family (one login) cannot be refreshed past this age: log in again.
    refresh_family_max_age_s: int = Field(default=60 * 86_400, ge=60)
    # A refresh token spent this many seconds ago, presented again, gets the same
    # successor (two tabs racing); later it counts as reuse and revokes the family.
    refresh_reuse_grace_s: float = Field(default=5.0, ge=0, le=60)

    # argon2id, OWASP parameters (t=2, m=19 MiB, p=1); hashing runs in a thread pool.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19_456, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    hash_workers: int = Field(default=0, ge=0)  # 0: one per CPU

    # Login throttling: failures counted in a window per (account, IP) pair, per account
    # (from all IPs: high enough that one attacker cannot lock a player out alone) and
    # per IP (one source guessing many accounts).
    login_window_s: int = Field(default=900, ge=1)
    login_max_failures_account_ip: int = Field(default=5, ge=1)
    login_max_failures_account: int = Field(default=30, ge=1)
    login_max_failures_ip: int = Field(default=50, ge=1)
    # Request rate limits (fixed window): per authenticated user, else per IP;
    # registration has its own per-IP budget.
    rate_window_s: int = Field(default=60, ge=1)
    rate_limit_user: int = Field(default=300, ge=1)
    rate_limit_ip: int = Field(default=600, ge=1)
    register_limit_ip: int = Field(default=20, ge=1)
    # Match replays per user per rate window (a replay not in the cache is CPU work).
    replay_limit_user: int = Field(default=30, ge=1)
    register_window_s: int = Field(default=3600, ge=1)
    # Spectator tokens: per user in `rate_window_s`; valid for the match's rest plus margin.
    spectate_limit_user: int = Field(default=30, ge=1)
    spectate_token_margin_s: int = Field(default=300, ge=0)
    # The live match list is built at most this often per replica (clients poll it).
    live_cache_s: float = Field(default=2.0, ge=0)
    # Honour X-Forwarded-For (only behind a proxy that sets it).
    trust_forwarded_for: bool = False

    # Socket.IO: Redis manager for several replicas; allowed browser origins
    # (empty: same origin only).
    socketio_redis: bool = False
    cors_origins: list[str] = Field(default_factory=list)

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # Where matches run: "kubernetes" writes Match resources for the operator (the
    # lobby's ServiceAccount may manage matches in this namespace); "none" only serves
    # (`tradearena up` embeds the lobby with its own local runtime instead).
    orchestrator: Literal["none", "kubernetes"] = "none"
    kubernetes_namespace: str = "default"
    kubeconfig: Path | None = None  # outside a cluster; in a pod the service account is used

    @model_validator(mode="after")
    def _one_key_source(self) -> LobbySettings:
        if self.signing_key_file is not None and self.signing_key_pem is not None:
            raise ValueError(
                "set TRADEARENA_SIGNING_KEY_FILE or TRADEARENA_SIGNING_KEY_PEM, not both"
            )
        return self

    def signer(self) -> Signer:
        if self.signing_key_pem is not None:
            signer = Signer.from_pem(self.signing_key_pem.get_secret_value().encode())
        elif self.signing_key_file is not None:
            signer = Signer.from_file(self.signing_key_file)
        else:
            raise ValueError(
                "no signing key: set TRADEARENA_SIGNING_KEY_FILE or TRADEARENA_SIGNING_KEY_PEM"
            )
        for pem in self.previous_public_keys_pem:
            signer.extra_public.update(Verifier.from_public_pem(pem.encode()).keys)
        return signer
