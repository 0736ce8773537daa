"""Settings are built once at start-up from `TRADEARENA_*` environment variables.

Each component declares its own settings class deriving from `BaseAppSettings`;
they are validated on construction (a bad value stops the process with a clear
message) and then passed down explicitly, never read from globals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tradearena import redisurl

ENV_PREFIX = "TRADEARENA_"


class BaseAppSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    redis_url: str = "redis://127.0.0.1:6379/0"
    catalogue: Path | None = None  # mode catalogue TOML; the packaged one when unset

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        """redis://, rediss://, redis+cluster:// or rediss+cluster:// (a Redis Cluster)."""
        return redisurl.validate_url(value)
