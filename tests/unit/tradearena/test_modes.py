"""The mode catalogue is data: bad data is refused at load time with a clear message."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest
from pydantic import ValidationError

from tradearena.modes import default_catalogue, parse_catalogue


def raw_catalogue() -> dict[str, Any]:
    text = resources.files("tradearena").joinpath("modes.toml").read_text()
    return tomllib.loads(text)


def test_packaged_catalogue_has_the_documented_defaults() -> None:
    cat = default_catalogue()
    rules = cat.mode("standard").rules
    assert rules.bankroll == Decimal("10000")
    assert rules.price_delay_ms == 5000
    assert rules.max_leverage == 20
    assert rules.taker_fee_rate == Decimal("0.0004")
    assert rules.cooldown_ms == 3000
    assert (rules.trade_delay.duration_ms, rules.trade_delay.delay_ms) == (20_000, 2_000)
    assert rules.shield.duration_ms == 30_000
    assert (rules.peek.meter_max, rules.peek.refill_per_s, rules.peek.duration_ms) == (100, 2, 5000)
    assert (rules.disconnect.grace_ms, rules.disconnect.max_reconnects) == (60_000, 3)
    assert cat.mode("duel").players.model_dump() == {"min": 2, "recommended": 2, "max": 2}
    assert cat.duration_ms("sprint") == 17 * 60_000
    assert cat.duration_ms("blitz") == 3 * 60_000


def test_mode_overrides_merge_over_the_defaults() -> None:
    raw = raw_catalogue()
    raw["modes"]["duel"]["rules"] = {"max_leverage": 5, "peek": {"duration_ms": 1000}}
    cat = parse_catalogue(raw)
    duel = cat.mode("duel").rules
    assert duel.max_leverage == 5
    assert duel.peek.duration_ms == 1000
    assert duel.peek.meter_max == 100  # untouched keys keep the default
    assert cat.mode("standard").rules.max_leverage == 20


@pytest.mark.parametrize(
    ("move", "fmt"),
    [
        ("5", "sprint"),
        ("2.0", "sprint"),
        ("1.5", "quick"),
        ("0.6", "standard"),
        ("0.2", "extended"),
        ("0.01", "marathon"),
        ("0", "marathon"),
    ],
)
def test_auto_format_gives_shorter_matches_for_bigger_moves(move: str, fmt: str) -> None:
    assert default_catalogue().auto_format_for(Decimal(move)) == fmt


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            lambda r: r["modes"]["duel"].update(players={"min": 3, "recommended": 2, "max": 2}),
            "min <= recommended <= max",
        ),
        (lambda r: r["rules"]["action_bar"].update(initial_charges=9), "initial_charges"),
        (lambda r: r["rules"].update(max_leverage=250), "max_leverage"),
        (lambda r: r["rules"].update(maintenance_margin_rate="0.06"), "already liquidated"),
        (lambda r: r["auto_format"][0].update(format="nope"), "unknown format 'nope'"),
        (lambda r: r["rules"].update(bankroll="lots"), "bankroll"),
        (lambda r: r["rules"].update(surprise=1), "surprise"),
        (lambda r: r["rules"]["spectate"].update(delay_ms=0), "delay_ms"),
        (lambda r: r["rules"]["spectate"].update(cap=-1), "cap"),
        (lambda r: r["rules"]["spectate"].update(frame_ms=10), "frame_ms"),
    ],
)
def test_bad_catalogues_are_refused(patch: Any, message: str) -> None:
    raw = raw_catalogue()
    patch(raw)
    with pytest.raises(ValidationError, match=message):
        parse_catalogue(raw)


def test_unknown_mode_or_format_names_the_known_ones() -> None:
    cat = default_catalogue()
    with pytest.raises(KeyError, match="known: \\['arena', 'duel', 'standard'\\]"):
        cat.mode("chess")
    with pytest.raises(KeyError, match="unknown format 'eternal'"):
        cat.duration_ms("eternal")


def test_rule_overrides_merge_nested_tables_and_are_validated() -> None:
    rules = default_catalogue().mode("standard").rules
    faster = rules.with_overrides(price_delay_ms=0, peek={"duration_ms": 1000})
    assert (faster.price_delay_ms, faster.peek.duration_ms) == (0, 1000)
    assert faster.peek.meter_max == rules.peek.meter_max
    with pytest.raises(ValidationError, match="initial_charges"):
        rules.with_overrides(action_bar={"initial_charges": 9})


def test_spectate_rules_default_and_override_per_mode() -> None:
    spectate = default_catalogue().mode("standard").rules.spectate
    assert (spectate.delay_ms, spectate.cap, spectate.frame_ms) == (60_000, 200, 1000)
    raw = raw_catalogue()
    raw["modes"]["duel"]["rules"] = {"spectate": {"cap": 10}}
    cat = parse_catalogue(raw)
    assert cat.mode("duel").rules.spectate.cap == 10
    assert cat.mode("duel").rules.spectate.delay_ms == 60_000  # the rest stays the default
    assert cat.mode("standard").rules.spectate.cap == 200
