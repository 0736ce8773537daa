"""The mode catalogue: game rules as data, validated once at load time.

Every component (lobby, match server, operator, replay) reads rules from here so
that a match is fully described by its mode name plus this file; a match log
embeds the resolved rules so that replays never depend on a later catalogue.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

AUTO_FORMAT = "auto"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ActionBarRules(_Frozen):
    max_charges: int = Field(ge=0)
    initial_charges: int = Field(ge=0)
    regen_ms: PositiveInt
    charge_per_profitable_close: int = Field(ge=0)


class TradeDelayRules(_Frozen):
    cost: int = Field(ge=0)
    duration_ms: PositiveInt
    delay_ms: PositiveInt


class ShieldRules(_Frozen):
    cost: int = Field(ge=0)
    duration_ms: PositiveInt


class PeekRules(_Frozen):
    meter_max: PositiveInt
    refill_per_s: PositiveInt
    duration_ms: PositiveInt


class DisconnectRules(_Frozen):
    grace_ms: PositiveInt
    max_reconnects: int = Field(ge=0)


class RateLimitRules(_Frozen):
    per_s: PositiveInt
    burst: PositiveInt


class SpectateRules(_Frozen):
    """Watching a live match: everything a spectator sees is `delay_ms` old; at most
    `cap` spectators per match (0: none); a frame every `frame_ms`. Not part of the
    match's record (the log header leaves it out): spectating never changes a match."""

    delay_ms: PositiveInt
    cap: int = Field(ge=0, le=100_000)
    frame_ms: int = Field(ge=100, le=60_000)


# Only for a rules record without the table (a log header, which leaves it out).
SPECTATE_WHEN_UNRECORDED = SpectateRules(delay_ms=60_000, cap=200, frame_ms=1000)


class Rules(_Frozen):
    """Everything the engine needs to run one match."""

    bankroll: Decimal = Field(gt=0)
    price_delay_ms: int = Field(ge=0)
    stale_after_ms: PositiveInt
    max_leverage: int = Field(ge=1, le=200)
    min_margin: Decimal = Field(gt=0)
    taker_fee_rate: Decimal = Field(ge=0, lt=Decimal("0.1"))
    maintenance_margin_rate: Decimal = Field(ge=0, lt=Decimal("0.5"))
    qty_step: Decimal = Field(gt=0)
    price_step: Decimal = Field(gt=0)
    cooldown_ms: int = Field(ge=0)
    action_bar: ActionBarRules
    trade_delay: TradeDelayRules
    shield: ShieldRules
    peek: PeekRules
    disconnect: DisconnectRules
    rate_limit: RateLimitRules
    spectate: SpectateRules = SPECTATE_WHEN_UNRECORDED

    def with_overrides(self, **over: Any) -> Rules:
        """A copy with some rules changed (nested tables by dict), validated again."""
        merged = _deep_merge(self.model_dump(), over)
        return Rules.model_validate(merged)

    @model_validator(mode="after")
    def _charges_fit(self) -> Self:
        if self.action_bar.initial_charges > self.action_bar.max_charges:
            raise ValueError("action_bar.initial_charges exceeds max_charges")
        if self.maintenance_margin_rate * self.max_leverage >= 1:
            raise ValueError(
                "maintenance_margin_rate x max_leverage must stay below 1, "
                "or a position would open already liquidated"
            )
        return self


class PlayerCounts(_Frozen):
    min: PositiveInt
    recommended: PositiveInt
    max: PositiveInt

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.min <= self.recommended <= self.max:
            raise ValueError("players must satisfy min <= recommended <= max")
        return self


class Mode(_Frozen):
    name: str
    description: str = ""
    players: PlayerCounts
    countdown_ms: PositiveInt
    rules: Rules


class AutoFormatRow(_Frozen):
    min_move_pct: Decimal = Field(ge=0)
    format: str


class Catalogue(_Frozen):
    formats: dict[str, PositiveInt]  # minutes
    auto_format: tuple[AutoFormatRow, ...]
    modes: dict[str, Mode]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for row in self.auto_format:
            if row.format not in self.formats:
                raise ValueError(f"auto_format names unknown format {row.format!r}")
        if not self.auto_format or self.auto_format[-1].min_move_pct != 0:
            raise ValueError("the last auto_format row must have min_move_pct = 0")
        if AUTO_FORMAT in self.formats:
            raise ValueError(f"{AUTO_FORMAT!r} is reserved and cannot be a format name")
        return self

    def mode(self, name: str) -> Mode:
        try:
            return self.modes[name]
        except KeyError:
            raise KeyError(f"unknown mode {name!r}; known: {sorted(self.modes)}") from None

    def duration_ms(self, fmt: str) -> int:
        try:
            return self.formats[fmt] * 60_000
        except KeyError:
            raise KeyError(f"unknown format {fmt!r}; known: {sorted(self.formats)}") from None

    def auto_format_for(self, move_pct: Decimal) -> str:
        """Pick the format for `auto` queues: a bigger recent move gives a shorter match."""
        for row in self.auto_format:
            if move_pct >= row.min_move_pct:
                return row.format
        return self.auto_format[-1].format


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_catalogue(raw: dict[str, Any]) -> Catalogue:
    defaults = raw.get("rules", {})
    modes = {
        name: {**spec, "name": name, "rules": _deep_merge(defaults, spec.get("rules", {}))}
        for name, spec in raw.get("modes", {}).items()
    }
    return Catalogue.model_validate(
        {
            "formats": raw.get("formats", {}),
            "auto_format": raw.get("auto_format", []),
            "modes": modes,
        }
    )


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Load and validate a catalogue file; the packaged one when no path is given."""
    if path is None:
        return default_catalogue()
    with path.open("rb") as fh:
        return parse_catalogue(tomllib.load(fh))


@cache
def default_catalogue() -> Catalogue:
    text = resources.files("tradearena").joinpath("modes.toml").read_text(encoding="utf-8")
    return parse_catalogue(tomllib.loads(text))
