"""Operator settings, from TRADEARENA_OPERATOR_* environment variables (built once)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tradearena import redisurl
from tradearena.contracts import resource

GAME_POOL_LABEL = resource.POOL_LABEL


# The placeholders of address_template, each with a sample value for validation.
ADDRESS_PLACEHOLDERS = ("node_ip", "node_ip_dashed", "node_name")
_ADDRESS_PROBE = {"node_ip": "192.0.2.1", "node_ip_dashed": "192-0-2-1", "node_name": "node-1"}


def _game_tolerations() -> list[dict[str, str]]:
    return [{"key": GAME_POOL_LABEL, "operator": "Equal", "value": "game", "effect": "NoSchedule"}]


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRADEARENA_OPERATOR_", extra="ignore", frozen=True
    )

    namespaces: Annotated[tuple[str, ...], NoDecode] = ("default",)  # comma list
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    # Match-server pods
    image: str = "tradearena:latest"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    service_account: str = "tradearena-match-server"  # bound to no Role at all
    port_min: int = Field(default=7000, ge=1, le=65535)
    port_max: int = Field(default=8000, ge=1, le=65535)
    node_selector: dict[str, str] = Field(default_factory=lambda: {GAME_POOL_LABEL: "game"})
    tolerations: list[dict[str, Any]] = Field(default_factory=_game_tolerations)
    cpu_request: str = "250m"
    memory_request: str = "256Mi"
    cpu_limit: str = "1"
    memory_limit: str = "512Mi"
    termination_grace_s: int = Field(default=90, ge=1)  # settle and publish results
    feed_source: Literal["relay", "synthetic"] = "relay"
    redis_secret: str = "tradearena-redis"  # noqa: S105 - the name of the Secret holding the Redis URL for match pods
    redis_secret_key: str = "url"  # noqa: S105 - a key name, not a secret
    keys_configmap: str = "tradearena-match-keys"  # public key / JWKS the pods verify with
    keys_item: str = "jwks.json"
    keys_env: Literal["JWKS_FILE", "PUBLIC_KEY_FILE"] = "JWKS_FILE"
    extra_env: dict[str, str] = Field(default_factory=dict)
    # A ConfigMap with the mode catalogue (item modes.toml) the lobby reads, mounted
    # into every match pod so both sides play by the same rules; None: the packaged one.
    catalogue_configmap: str | None = None
    # The browser origins that may connect to match servers (JSON list): the lobby's.
    cors_origins: tuple[str, ...] = ()
    # The container port (no host port) of the pods' /metrics and /status, which the
    # chart's NetworkPolicy opens to Prometheus and the operator only.
    admin_port: int = Field(default=9100, ge=1, le=65535)

    # What players are told to connect to, from the node a pod runs on. Placeholders:
    # {node_ip} (ExternalIP, else InternalIP), {node_ip_dashed} (1-2-3-4) and
    # {node_name}; e.g. "{node_ip_dashed}.play.example.com" for a name that a wildcard
    # certificate covers. The default advertises the bare IP.
    address_template: str = "{node_ip}"
    # TLS for the players' port: the name of a Secret (type kubernetes.io/tls, in the
    # Match's namespace) holding tls.crt/tls.key for the advertised names. Set: pods
    # mount it, serve wss:// and probes use HTTPS, and Matches advertise https://.
    tls_secret: str | None = None

    # Lifecycle
    startup_timeout_s: float = Field(default=120, gt=0)
    max_retries: int = Field(default=2, ge=0)  # fresh pods for failures before Ready
    ttl_s: float = Field(default=3600, ge=0)  # finished Matches are deleted after this
    timer_interval_s: float = Field(default=5, gt=0)
    # Players connected/expected in a Match's status: written at most this often per Match.
    players_interval_s: float = Field(default=3, ge=0)
    # Redis connections of the acknowledgement reader (one blocking XREAD for every wait).
    ack_connections: int = Field(default=8, ge=1)

    # The operator's own Redis access (cancel reasons, Live detection); optional.
    redis_url: str | None = None
    # How often every pool server's state hash and matches are read (one pipeline).
    pool_state_interval_s: float = Field(default=1.0, gt=0)

    # Leader election (kopf peering) and endpoints
    peering: str = "tradearena-operator"
    standalone: bool = False  # no peering at all (a single replica, tests)
    priority: int | None = None  # None: random, so replicas never tie
    peering_lifetime_s: int = Field(default=30, ge=5)
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped by Prometheus from outside the pod
    metrics_port: int = Field(default=8090, ge=0, le=65535)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return None if value is None else redisurl.validate_url(value)

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(n.strip() for n in value.split(",") if n.strip())
        return value

    @model_validator(mode="after")
    def _range(self) -> OperatorSettings:
        if self.port_min > self.port_max:
            raise ValueError("port_min must not exceed port_max")
        if self.port_min <= self.admin_port <= self.port_max:
            raise ValueError("admin_port must be outside the game ports (port_min..port_max)")
        if self.catalogue_configmap == "":
            raise ValueError("catalogue_configmap: a ConfigMap name, or unset")
        if self.tls_secret == "":
            raise ValueError("tls_secret: a Secret name, or unset for plaintext")
        try:
            self.address_template.format_map(_ADDRESS_PROBE)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"address_template: unknown or malformed placeholder ({exc}); "
                f"use {', '.join('{' + k + '}' for k in ADDRESS_PLACEHOLDERS)}"
            ) from None
        if not self.address_template.strip():
            raise ValueError("address_template must not be empty")
        if not self.namespaces:
            raise ValueError("watch at least one namespace")
        return self
